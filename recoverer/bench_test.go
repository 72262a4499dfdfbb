package recoverer_test

import (
	"bufio"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/shipshape-go/shipshape/internal/respwriter"
	"github.com/shipshape-go/shipshape/recoverer"
)

// benchWriter is a ResponseWriter with the interfaces of net/http's HTTP/1
// writer (Flusher, Hijacker, ReaderFrom) that does no I/O.
type benchWriter struct{ h http.Header }

func (w *benchWriter) Header() http.Header                          { return w.h }
func (w *benchWriter) Write(p []byte) (int, error)                  { return len(p), nil }
func (w *benchWriter) WriteHeader(int)                              {}
func (w *benchWriter) Flush()                                       {}
func (w *benchWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) { return nil, nil, nil }
func (w *benchWriter) ReadFrom(r io.Reader) (int64, error)          { return io.Copy(io.Discard, r) }

var okHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	w.WriteHeader(http.StatusNoContent)
})

// BenchmarkHappyPath is a request that does not panic, through the
// middleware alone: the deferred recover plus a writer view of its own,
// carved from a block of 16 (so 0 allocs/op, and about 80 B/op of the
// block). The inside-accesslog cases hand it a view of a Recorder, as
// accesslog does: it then uses that Recorder, and costs the deferred
// recover and one type assertion.
func BenchmarkHappyPath(b *testing.B) {
	h := mustNew(b)(okHandler)
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	for _, bb := range []struct {
		name   string
		writer func() http.ResponseWriter
	}{
		{"", func() http.ResponseWriter { return &benchWriter{h: http.Header{}} }},
		{"inside-accesslog/", func() http.ResponseWriter { return respwriter.New(&benchWriter{h: http.Header{}}).Wrap() }},
	} {
		b.Run(bb.name+"serial", func(b *testing.B) {
			w := bb.writer()
			b.ReportAllocs()
			for b.Loop() {
				h.ServeHTTP(w, req)
			}
		})
		b.Run(bb.name+"parallel", func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				w := bb.writer()
				for pb.Next() {
					h.ServeHTTP(w, req)
				}
			})
		})
	}
}

// BenchmarkInsideAccesslog is the recommended order, accesslog outside
// recoverer (the access line discarded before it is built), next to
// accesslog alone: the difference is what recoverer costs there, where it
// uses accesslog's writer instead of a view of its own.
func BenchmarkInsideAccesslog(b *testing.B) {
	quiet := slog.New(slog.DiscardHandler)
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	for _, bb := range []struct {
		name string
		h    http.Handler
	}{
		{"accesslog", withAccessLog(b, quiet, okHandler)},
		{"accesslog+recoverer", withAccessLog(b, quiet, mustNew(b)(okHandler))},
	} {
		b.Run(bb.name, func(b *testing.B) {
			w := &benchWriter{h: http.Header{}}
			b.ReportAllocs()
			for b.Loop() {
				bb.h.ServeHTTP(w, req)
			}
		})
	}
}

// BenchmarkPanic is the cost of one recovered panic without Sentry, logged
// to a discarding handler: stack capture, record, 500 response.
func BenchmarkPanic(b *testing.B) {
	logger := slog.New(slog.DiscardHandler)
	h := mustNew(b, recoverer.WithLogger(logger))(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
		panic("bench")
	}))
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	b.ReportAllocs()
	for b.Loop() {
		h.ServeHTTP(&benchWriter{h: http.Header{}}, req)
	}
}

// BenchmarkLoopback is a whole request on a real server over loopback TCP
// (keep-alive, client in the same process), with and without the
// middleware: what the happy path costs next to net/http's own work.
func BenchmarkLoopback(b *testing.B) {
	hello := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "hello")
	})
	for _, bb := range []struct {
		name string
		h    http.Handler
	}{
		{"bare", hello},
		{"recoverer", mustNew(b)(hello)},
	} {
		b.Run(bb.name, func(b *testing.B) {
			srv := httptest.NewServer(bb.h)
			defer srv.Close()
			tr := &http.Transport{MaxIdleConnsPerHost: 64}
			defer tr.CloseIdleConnections()
			client := &http.Client{Transport: tr}
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					res, err := client.Get(srv.URL)
					if err != nil {
						b.Error(err)
						return
					}
					_, _ = io.Copy(io.Discard, res.Body)
					_ = res.Body.Close()
				}
			})
		})
	}
}
