// Package loadgen is the loopback HTTP load generator that shipshape's load
// tests and performance report use: N keep-alive workers, closed loop (as
// fast as possible) or open loop (a fixed total rate, latency measured from
// the scheduled send time so a stalled server is not hidden by coordinated
// omission), with throughput, latency percentiles, status counts and
// transport errors in the result.
package loadgen

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"
)

// Config describes one load run.
type Config struct {
	// URL is requested by every worker (required).
	URL string
	// Method defaults to GET.
	Method string
	// Header is sent with every request.
	Header http.Header
	// Body is sent with every request.
	Body []byte
	// Concurrency is the number of workers, each with its own keep-alive
	// connection (default 16).
	Concurrency int
	// Duration of the run (default 5s); the run also ends with ctx.
	Duration time.Duration
	// Rate is the total number of requests per second across workers; 0
	// runs closed loop (each worker sends its next request as soon as the
	// previous one completed).
	Rate float64
	// Timeout per request (default 10s).
	Timeout time.Duration
	// LocalAddr, when set, is the source IP of every connection (for
	// example 127.0.0.2 to look like another client on loopback). It
	// applies to the default transport only, not to Transport.
	LocalAddr net.IP
	// Transport replaces the default transport (for TLS, say). When nil,
	// each run uses a fresh transport with Concurrency idle connections.
	Transport http.RoundTripper
}

// Result is what a run measured.
type Result struct {
	Requests   int64         // completed requests (any status)
	Errors     int64         // transport errors (no status received)
	Status     map[int]int64 // count per status code
	Elapsed    time.Duration // wall time of the run
	Throughput float64       // completed requests per second
	P50        time.Duration
	P90        time.Duration
	P99        time.Duration
	Max        time.Duration
	// ErrorSamples holds up to 10 distinct transport error messages.
	ErrorSamples []string
}

// Failed is the number of requests that did not get a 2xx or 3xx answer.
func (r Result) Failed() int64 {
	n := r.Errors
	for code, c := range r.Status {
		if code >= 400 {
			n += c
		}
	}
	return n
}

// String formats the result on one line.
func (r Result) String() string {
	codes := make([]int, 0, len(r.Status))
	for c := range r.Status {
		codes = append(codes, c)
	}
	sort.Ints(codes)
	var st strings.Builder
	for _, c := range codes {
		fmt.Fprintf(&st, " %d:%d", c, r.Status[c])
	}
	return fmt.Sprintf("%d req in %v (%.0f req/s), p50 %v p90 %v p99 %v max %v, errors %d, status%s",
		r.Requests, r.Elapsed.Round(time.Millisecond), r.Throughput,
		r.P50, r.P90, r.P99, r.Max, r.Errors, st.String())
}

type worker struct {
	lat    []time.Duration
	status map[int]int64
	errs   int64
	samp   []string
}

// Run performs the load run described by cfg.
func Run(ctx context.Context, cfg Config) (Result, error) {
	if cfg.URL == "" {
		return Result{}, errors.New("loadgen: URL is required")
	}
	if cfg.Method == "" {
		cfg.Method = http.MethodGet
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 16
	}
	if cfg.Duration <= 0 {
		cfg.Duration = 5 * time.Second
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	if cfg.Rate < 0 {
		return Result{}, errors.New("loadgen: rate must be >= 0")
	}
	// A URL or method that no request can be made of is an error now, not
	// a run that spins through Duration counting the same error.
	req, err := http.NewRequest(cfg.Method, cfg.URL, nil)
	if err != nil {
		return Result{}, fmt.Errorf("loadgen: %w", err)
	}
	if (req.URL.Scheme != "http" && req.URL.Scheme != "https") || req.URL.Host == "" {
		return Result{}, fmt.Errorf("loadgen: URL %q is not an absolute http or https URL", cfg.URL)
	}
	rt := cfg.Transport
	if rt == nil {
		d := &net.Dialer{Timeout: cfg.Timeout}
		if cfg.LocalAddr != nil {
			d.LocalAddr = &net.TCPAddr{IP: cfg.LocalAddr}
		}
		tr := &http.Transport{
			DialContext:         d.DialContext,
			MaxIdleConns:        cfg.Concurrency,
			MaxIdleConnsPerHost: cfg.Concurrency,
			IdleConnTimeout:     30 * time.Second,
			DisableCompression:  true,
		}
		defer tr.CloseIdleConnections()
		rt = tr
	}
	client := &http.Client{Transport: rt, Timeout: cfg.Timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

	ctx, cancel := context.WithTimeout(ctx, cfg.Duration)
	defer cancel()
	start := time.Now()
	workers := make([]*worker, cfg.Concurrency)
	var wg sync.WaitGroup
	for i := range workers {
		w := &worker{status: map[int]int64{}}
		workers[i] = w
		wg.Add(1)
		go func() {
			defer wg.Done()
			w.run(ctx, client, cfg, i, start)
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)

	res := Result{Status: map[int]int64{}, Elapsed: elapsed}
	var lat []time.Duration
	for _, w := range workers {
		lat = append(lat, w.lat...)
		res.Errors += w.errs
		for c, n := range w.status {
			res.Status[c] += n
			res.Requests += n
		}
		for _, s := range w.samp {
			if len(res.ErrorSamples) < 10 && !slices.Contains(res.ErrorSamples, s) {
				res.ErrorSamples = append(res.ErrorSamples, s)
			}
		}
	}
	res.Throughput = float64(res.Requests) / elapsed.Seconds()
	slices.Sort(lat)
	res.P50, res.P90, res.P99 = quantile(lat, 0.50), quantile(lat, 0.90), quantile(lat, 0.99)
	if len(lat) > 0 {
		res.Max = lat[len(lat)-1]
	}
	return res, nil
}

func (w *worker) run(ctx context.Context, client *http.Client, cfg Config, i int, start time.Time) {
	var interval time.Duration
	next := start
	if cfg.Rate > 0 {
		interval = time.Duration(float64(time.Second) * float64(cfg.Concurrency) / cfg.Rate)
		// Spread the workers over one interval so the rate is smooth.
		next = start.Add(interval * time.Duration(i) / time.Duration(cfg.Concurrency))
	}
	for ctx.Err() == nil {
		sent := time.Now()
		if interval > 0 {
			if d := time.Until(next); d > 0 {
				select {
				case <-ctx.Done():
					return
				case <-time.After(d):
				}
			}
			sent = next // latency from the scheduled time: no coordinated omission
			next = next.Add(interval)
		}
		status, err := w.do(ctx, client, cfg)
		if ctx.Err() != nil && err != nil {
			return // the run ended during this request: not a server error
		}
		if err != nil {
			w.errs++
			if len(w.samp) < 10 {
				w.samp = append(w.samp, err.Error())
			}
			continue
		}
		w.status[status]++
		w.lat = append(w.lat, time.Since(sent))
	}
}

func (w *worker) do(ctx context.Context, client *http.Client, cfg Config) (int, error) {
	var body io.Reader
	if cfg.Body != nil {
		body = bytes.NewReader(cfg.Body)
	}
	req, err := http.NewRequestWithContext(ctx, cfg.Method, cfg.URL, body)
	if err != nil {
		return 0, err
	}
	for k, v := range cfg.Header {
		req.Header[k] = v
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil {
		return 0, err
	}
	return resp.StatusCode, nil
}

func quantile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(float64(len(sorted)-1) * q)
	return sorted[i]
}
