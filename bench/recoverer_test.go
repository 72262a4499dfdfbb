package bench_test

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/felixge/httpsnoop"
	"github.com/go-chi/chi/v5/middleware"

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

var noContent = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	w.WriteHeader(http.StatusNoContent)
})

// BenchmarkTrackingAlternatives measures the ways the middleware could know
// whether the status line was written, for the README's rationale: bare
// handler, a deferred recover alone, chi's WrapResponseWriter and httpsnoop
// per request, and recoverer's view (never reused, from a block of 16).
func BenchmarkTrackingAlternatives(b *testing.B) {
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	run := func(b *testing.B, h http.Handler) {
		w := &benchWriter{h: http.Header{}}
		b.ReportAllocs()
		for b.Loop() {
			h.ServeHTTP(w, req)
		}
	}
	b.Run("bare", func(b *testing.B) { run(b, noContent) })
	b.Run("defer-recover", func(b *testing.B) {
		run(b, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			defer func() {
				if p := recover(); p != nil {
					panic(p)
				}
			}()
			noContent.ServeHTTP(w, r)
		}))
	})
	b.Run("chi-wrap", func(b *testing.B) {
		run(b, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			ww := middleware.NewWrapResponseWriter(w, r.ProtoMajor)
			defer func() {
				if p := recover(); p != nil && ww.Status() == 0 {
					panic(p)
				}
			}()
			noContent.ServeHTTP(ww, r)
		}))
	})
	b.Run("httpsnoop", func(b *testing.B) {
		run(b, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			wrote := false
			ww := httpsnoop.Wrap(w, httpsnoop.Hooks{
				WriteHeader: func(next httpsnoop.WriteHeaderFunc) httpsnoop.WriteHeaderFunc {
					return func(code int) { wrote = true; next(code) }
				},
			})
			defer func() {
				if p := recover(); p != nil && !wrote {
					panic(p)
				}
			}()
			noContent.ServeHTTP(ww, r)
		}))
	})
	b.Run("recoverer", func(b *testing.B) {
		rec, err := recoverer.New()
		if err != nil {
			b.Fatal(err)
		}
		run(b, rec(noContent))
	})
}
