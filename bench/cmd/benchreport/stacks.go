package main

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
)

// stackResult is one configuration's handler benchmarked in this process,
// without the network: what its middleware costs per request, apart from
// net/http's connection handling and the kernel.
type stackResult struct {
	Config      string
	NsPerOp     float64 // wall time per request with all cores serving
	BytesPerOp  float64
	AllocsPerOp float64
}

// discardWriter is the ResponseWriter of the in-process benchmark: the
// body is thrown away and the header map is reused, so that only the
// allocations of the handler chain are counted.
type discardWriter struct {
	h    http.Header
	code int
	bad  int // the last status other than 200, 0 when none
}

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) WriteHeader(code int)        { w.code = code }
func (w *discardWriter) Write(p []byte) (int, error) { return len(p), nil }

// serve is one iteration: the writer is reset, h serves req, and a status
// other than 200 is remembered.
func (w *discardWriter) serve(h http.Handler, req *http.Request) {
	clear(w.h)
	w.code = 0
	h.ServeHTTP(w, req)
	if w.code != 0 && w.code != http.StatusOK {
		w.bad = w.code
	}
}

// benchRequest is the request every iteration serves: GET /hello from
// 127.0.0.1, as in the load test.
func benchRequest() (*discardWriter, *http.Request) {
	req := httptest.NewRequest(http.MethodGet, "/hello", nil)
	req.RemoteAddr = "127.0.0.1:40000"
	return &discardWriter{h: http.Header{}}, req
}

// figures are the medians of count testing.Benchmark runs of one handler.
type figures struct{ ns, bytes, allocs float64 }

// benchHandler benchmarks h count times, with all cores serving
// (RunParallel) or on one goroutine, and returns the median of each
// figure. It fails when h answers other than 200.
func benchHandler(h http.Handler, count int, parallel bool) (figures, error) {
	var ns, bytes, allocs []float64
	for range count {
		var bad atomic.Int64
		r := testing.Benchmark(func(b *testing.B) {
			b.ReportAllocs()
			if parallel {
				b.RunParallel(func(pb *testing.PB) {
					w, req := benchRequest()
					for pb.Next() {
						w.serve(h, req)
					}
					if w.bad != 0 {
						bad.Store(int64(w.bad))
					}
				})
				return
			}
			w, req := benchRequest()
			for b.Loop() {
				w.serve(h, req)
			}
			if w.bad != 0 {
				bad.Store(int64(w.bad))
			}
		})
		if code := bad.Load(); code != 0 {
			return figures{}, fmt.Errorf("answered %d in the in-process benchmark", code)
		}
		if r.N == 0 {
			return figures{}, errors.New("ran no iteration of the in-process benchmark")
		}
		ns = append(ns, float64(r.T.Nanoseconds())/float64(r.N))
		bytes = append(bytes, float64(r.AllocedBytesPerOp()))
		allocs = append(allocs, float64(r.AllocsPerOp()))
	}
	return figures{median(ns), median(bytes), median(allocs)}, nil
}

// benchStacks runs each configuration's handler count times with
// testing.Benchmark (RunParallel, one second each) and returns the median
// of each figure. The stacks write their access logs to logDir.
func benchStacks(logDir string, count int) ([]stackResult, error) {
	var out []stackResult
	for _, name := range configs {
		res, err := benchStack(name, logDir, count)
		if err != nil {
			return nil, err
		}
		logf("in-process %-13s %6.0f ns/op %6.0f B/op %4.0f allocs/op", name, res.NsPerOp, res.BytesPerOp, res.AllocsPerOp)
		out = append(out, res)
	}
	return out, nil
}

func benchStack(name, logDir string, count int) (_ stackResult, err error) {
	h, closers, err := handlerFor(name, logDir)
	if err != nil {
		return stackResult{}, err
	}
	defer func() {
		for _, c := range closers {
			if cerr := c(); err == nil {
				err = cerr
			}
		}
	}()
	f, err := benchHandler(h, count, true)
	if err != nil {
		return stackResult{}, fmt.Errorf("benchreport: %s %w", name, err)
	}
	return stackResult{Config: name, NsPerOp: f.ns, BytesPerOp: f.bytes, AllocsPerOp: f.allocs}, nil
}

// layerResult is the shipshape stack built up from the mux, one layer at a
// time (innermost first), benchmarked on one goroutine: the figures are
// those of the whole stack so far.
type layerResult struct {
	Added       string // the layer just added; "ServeMux + hello handler" for the mux alone
	NsPerOp     float64
	BytesPerOp  float64
	AllocsPerOp float64
}

// benchLayers measures the shipshape stack layer by layer, count times
// each (the median counts), on one goroutine so that ns/op is CPU time.
func benchLayers(logDir string, count int) (_ []layerResult, err error) {
	mws, mux, closers, err := shipshapeMiddleware(logDir)
	if err != nil {
		return nil, err
	}
	defer func() {
		for _, c := range closers {
			if cerr := c(); err == nil {
				err = cerr
			}
		}
	}()
	var out []layerResult
	h, added := mux, "ServeMux + hello handler"
	for i := len(mws); i >= 0; i-- {
		if i < len(mws) {
			h, added = mws[i].wrap(h), mws[i].name
		}
		f, err := benchHandler(h, count, false)
		if err != nil {
			return nil, fmt.Errorf("benchreport: the stack up to %s %w", added, err)
		}
		res := layerResult{Added: added, NsPerOp: f.ns, BytesPerOp: f.bytes, AllocsPerOp: f.allocs}
		logf("in-process, layer by layer: %-25s %6.0f ns/op %6.0f B/op %4.0f allocs/op", res.Added, res.NsPerOp, res.BytesPerOp, res.AllocsPerOp)
		out = append(out, res)
	}
	return out, nil
}
