//go:build unix

package cluster

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"sync"
	"syscall"
	"time"

	"go.opentelemetry.io/otel/attribute"

	"github.com/shipshape-go/shipshape/internal/instrument"
)

const (
	// metricsFile is the inherited descriptor of a worker's end of its
	// metrics socket pair.
	metricsFile = "metrics"
	// scrapeTimeout bounds how long a scrape waits for one worker.
	scrapeTimeout = 5 * time.Second
)

// metricsPart is the part of the supervisor that records its own metrics
// and, with WithMetrics, hands every worker a socket pair and serves the
// service's one scrape (see WithMetrics).
type metricsPart struct {
	s   *supervisor
	cfg metricsConfig

	starts    instrument.Counter
	crashes   instrument.Counter
	workers   instrument.ObservableGauge
	rss       instrument.ObservableGauge
	reasons   *instrument.Series[string]
	crashAttr *instrument.Series[Reason]
	states    [3]*instrument.Attrs // starting, serving, draining
	byWorker  *instrument.Series[int]
	unobserve func()

	mu    sync.Mutex
	procs map[*proc]*workerMetrics // started and not yet reaped

	srv  *http.Server
	done chan struct{}
}

// workerMetrics is the supervisor's end of one worker's metrics socket
// pair.
type workerMetrics struct {
	m    *metricsPart
	p    *proc
	peer *os.File // the worker's end, closed once it started

	mu   sync.Mutex // one scrape at a time on conn
	conn net.Conn   // nil without WithMetrics, or once broken
	br   *bufio.Reader
}

// newMetricsPart creates the supervisor's instruments and, with
// WithMetrics, starts serving the scrape address. With any of WithMetrics,
// WithMeterProvider and WithCrashHandler the crash monitor classifies
// every crash, and the part counts them by reason.
func newMetricsPart(s *supervisor) (*metricsPart, error) {
	c := s.c
	m := instrument.New(c.metrics.meter, "cluster")
	mp := &metricsPart{
		s:   s,
		cfg: c.metrics,
		starts: m.Counter("shipshape.cluster.worker.starts", "{start}",
			"Worker processes started, by reason: start, restart (after an exit), rolling restart, memory limit, …"),
		crashes: m.Counter("shipshape.cluster.worker.crashes", "{crash}",
			"Worker processes that ended unexpectedly, by reason (panic, fatal error, signal, OOM kill, memory cap, not ready, exit code, start failed)."),
		workers: m.Gauge("shipshape.cluster.workers", "{worker}",
			"Worker processes by state: starting (not ready yet), serving, draining (replaced or stopping)."),
		rss: m.Gauge("shipshape.cluster.worker.memory.rss", "By",
			"Resident set size of each serving worker process."),
		reasons: instrument.NewSeries(func(r string) []attribute.KeyValue {
			return []attribute.KeyValue{attribute.String("shipshape.cluster.reason", r)}
		}),
		crashAttr: instrument.NewSeries(func(r Reason) []attribute.KeyValue {
			return []attribute.KeyValue{attribute.String("shipshape.cluster.crash.reason", string(r))}
		}),
		byWorker: instrument.NewSeries(func(id int) []attribute.KeyValue {
			return []attribute.KeyValue{attribute.String("worker", workerLabel(id))}
		}),
		procs: map[*proc]*workerMetrics{},
		done:  make(chan struct{}),
	}
	for i, st := range []string{"starting", "serving", "draining"} {
		mp.states[i] = instrument.NewAttrs(attribute.String("shipshape.cluster.worker.state", st))
	}
	mp.unobserve = m.Observe(mp.observe, mp.workers, mp.rss)
	if err := m.Err(); err != nil {
		mp.unobserve()
		return nil, fmt.Errorf("cluster: WithMeterProvider: %w", err)
	}
	if c.metrics.set || c.metrics.meterSet || c.crashSet {
		user := c.crashHandler
		c.crashHandler = func(cr Crash) {
			mp.crashes.Inc(context.Background(), mp.crashAttr.Get(cr.Reason))
			if user != nil {
				user(cr)
			}
		}
	}
	if !c.metrics.set {
		close(mp.done)
		return mp, nil
	}
	ln, err := net.Listen("tcp", c.metrics.addr)
	if err != nil {
		mp.unobserve()
		return nil, fmt.Errorf("cluster: WithMetrics: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /metrics", mp.scrape)
	mp.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		defer close(mp.done)
		_ = mp.srv.Serve(ln)
	}()
	s.log().Info("cluster: serving metrics", "addr", ln.Addr().String())
	return mp, nil
}

// close stops the scrape address and the observations.
func (mp *metricsPart) close() {
	if mp.srv != nil {
		_ = mp.srv.Close()
	}
	<-mp.done
	mp.unobserve()
}

// started counts a worker start for reason (see spawn).
func (mp *metricsPart) started(reason string) {
	mp.starts.Inc(context.Background(), mp.reasons.Get(reason))
}

// prepare hands the worker its end of a socket pair, with WithMetrics.
func (mp *metricsPart) prepare(p *proc) ([]inheritedFile, error) {
	w := &workerMetrics{m: mp, p: p}
	p.attach(w)
	mp.mu.Lock()
	mp.procs[p] = w
	mp.mu.Unlock()
	if !mp.cfg.set {
		return nil, nil
	}
	fds, err := socketpair()
	if err != nil {
		return nil, fmt.Errorf("cluster: metrics socket pair: %w", err)
	}
	mine := os.NewFile(uintptr(fds[0]), "metrics")
	w.peer = os.NewFile(uintptr(fds[1]), "metrics-worker")
	conn, err := net.FileConn(mine)
	mine.Close()
	if err != nil {
		w.peer.Close()
		return nil, fmt.Errorf("cluster: metrics socket pair: %w", err)
	}
	w.conn, w.br = conn, bufio.NewReader(conn)
	return []inheritedFile{{metricsFile, w.peer}}, nil
}

// socketpair is a connected pair of Unix stream sockets, close-on-exec.
func socketpair() ([2]int, error) {
	syscall.ForkLock.RLock() // no fork between the pair and close-on-exec
	defer syscall.ForkLock.RUnlock()
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM, 0)
	if err == nil {
		syscall.CloseOnExec(fds[0])
		syscall.CloseOnExec(fds[1])
	}
	return fds, err
}

func (w *workerMetrics) started(*proc) {
	if w.peer != nil {
		w.peer.Close()
	}
}

func (w *workerMetrics) exited(p *proc) {
	w.m.mu.Lock()
	delete(w.m.procs, p)
	w.m.mu.Unlock()
	w.mu.Lock()
	if w.conn != nil {
		w.conn.Close()
		w.conn = nil
	}
	w.mu.Unlock()
}

// observe reports the workers by state and the serving workers' RSS.
func (mp *metricsPart) observe(o instrument.Observer) {
	s := mp.s
	s.mu.Lock()
	serving := make(map[int]*proc, len(s.serving))
	for id, p := range s.serving {
		serving[id] = p
	}
	s.mu.Unlock()
	mp.mu.Lock()
	procs := make([]*proc, 0, len(mp.procs))
	for p := range mp.procs {
		procs = append(procs, p)
	}
	mp.mu.Unlock()
	var n [3]int64
	for _, p := range procs {
		cur := serving[p.id]
		switch {
		case cur == p:
			n[1]++
		case cur != nil && cur.inc > p.inc:
			n[2]++ // a newer worker serves its id
		case cur != nil || s.ctx.Err() != nil:
			n[2]++
		default:
			n[0]++
		}
	}
	for i, a := range mp.states {
		o.Gauge(mp.workers, n[i], a)
	}
	if !rssSupported {
		return
	}
	for id, p := range serving {
		if b, err := rss(p.pid); err == nil {
			o.Gauge(mp.rss, b, mp.byWorker.Get(id))
		}
	}
}

// scrape answers GET /metrics: every serving worker's exposition with its
// worker label, then the supervisor's own.
func (mp *metricsPart) scrape(w http.ResponseWriter, r *http.Request) {
	s := mp.s
	s.mu.Lock()
	ids := make([]int, 0, len(s.serving))
	serving := make(map[int]*proc, len(s.serving))
	for id, p := range s.serving {
		ids = append(ids, id)
		serving[id] = p
	}
	s.mu.Unlock()
	slices.Sort(ids)
	mp.mu.Lock()
	conns := make([]*workerMetrics, len(ids))
	for i, id := range ids {
		conns[i] = mp.procs[serving[id]]
	}
	mp.mu.Unlock()

	texts := make([][]byte, len(ids))
	var wg sync.WaitGroup
	for i, wm := range conns {
		if wm == nil {
			continue
		}
		wg.Go(func() {
			b, err := wm.fetch(r.Context())
			if err != nil {
				s.log().Warn("cluster: metrics: worker left out of the scrape", "worker", ids[i], "pid", wm.p.pid, "error", err)
				return
			}
			texts[i] = b
		})
	}
	own := &bufferWriter{}
	mp.cfg.export.ServeHTTP(own, exportRequest(r.Context()))
	wg.Wait()

	m := newMerger()
	for i, t := range texts {
		m.add(t, workerLabel(ids[i]))
	}
	m.add(own.buf.Bytes(), "")
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	_ = m.write(w)
}

// exportRequest is the request every export handler gets: the text
// format, uncompressed, whatever the scraper asked for (the merge reads
// text).
func exportRequest(ctx context.Context) *http.Request {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://worker/metrics", nil)
	req.Header.Set("Accept", "text/plain;version=0.0.4")
	return req
}

// fetch asks the worker for its exposition over its socket pair.
func (w *workerMetrics) fetch(ctx context.Context) ([]byte, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.conn == nil {
		return nil, errors.New("no metrics connection")
	}
	fail := func(err error) ([]byte, error) {
		// The stream is out of step: no later scrape can use it.
		w.conn.Close()
		w.conn = nil
		return nil, err
	}
	deadline := time.Now().Add(scrapeTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	_ = w.conn.SetDeadline(deadline)
	req := exportRequest(ctx)
	if err := req.Write(w.conn); err != nil {
		return fail(err)
	}
	resp, err := http.ReadResponse(w.br, req)
	if err != nil {
		return fail(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return fail(err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("export handler answered %s", resp.Status)
	}
	return body, nil
}

// serveWorkerMetrics answers the supervisor's scrapes in a worker with
// WithMetrics' handler, until the worker exits; a no-op without it.
func serveWorkerMetrics(inh *inheritance, c *config) {
	f := inh.file(metricsFile)
	if f == nil || !c.metrics.set {
		return
	}
	conn, err := net.FileConn(f)
	f.Close()
	if err != nil {
		c.log().Error("cluster: worker metrics socket", "error", err)
		return
	}
	srv := &http.Server{Handler: c.metrics.export}
	go func() { _ = srv.Serve(&connListener{conn: conn, closed: make(chan struct{})}) }()
}

// connListener is a net.Listener that accepts one connection, then blocks
// until closed.
type connListener struct {
	conn   net.Conn
	once   sync.Once
	closed chan struct{}
}

func (l *connListener) Accept() (net.Conn, error) {
	var c net.Conn
	l.once.Do(func() { c = l.conn })
	if c != nil {
		return c, nil
	}
	<-l.closed
	return nil, net.ErrClosed
}

func (l *connListener) Close() error {
	select {
	case <-l.closed:
	default:
		close(l.closed)
	}
	return nil
}

func (l *connListener) Addr() net.Addr { return l.conn.LocalAddr() }

// clusterMetrics returns the supervisor's metrics part.
func (s *supervisor) clusterMetrics() *metricsPart {
	for _, p := range s.parts {
		if mp, ok := p.(*metricsPart); ok {
			return mp
		}
	}
	return nil
}

// countStart counts a worker start for reason; spawn calls it.
func (s *supervisor) countStart(reason string) {
	if mp := s.clusterMetrics(); mp != nil {
		mp.started(reason)
	}
}
