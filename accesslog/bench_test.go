package accesslog_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/go-chi/chi/v5/middleware"

	"github.com/shipshape-go/shipshape/accesslog"
	"github.com/shipshape-go/shipshape/reqlog"
)

// discardResponse is a reusable ResponseWriter that throws the response
// away, so that the benchmarks measure the middleware, not a recorder.
type discardResponse struct{ h http.Header }

func (d *discardResponse) Header() http.Header         { return d.h }
func (d *discardResponse) Write(p []byte) (int, error) { return len(p), nil }
func (d *discardResponse) WriteHeader(int)             {}
func (d *discardResponse) Flush()                      {}

func benchRequest() *http.Request {
	r := httptest.NewRequest(http.MethodGet, "/api/items/42?page=2&sort=name", nil)
	r.RemoteAddr = "203.0.113.7:52113"
	r.Header.Set("User-Agent", "Mozilla/5.0 (X11; Linux x86_64; rv:126.0) Gecko/20100101 Firefox/126.0")
	r.Header.Set("Referer", "https://example.com/list?page=1")
	return r
}

var body = []byte("{\"id\":42,\"name\":\"widget\"}\n")

func benchMiddleware(b *testing.B, h slog.Handler) {
	app := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(body)
	})
	srv := mustNew(b, slog.New(h))(app)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		r := benchRequest()
		w := &discardResponse{h: http.Header{}}
		for pb.Next() {
			srv.ServeHTTP(w, r)
		}
	})
}

// BenchmarkMiddlewareJSON is the middleware with slog.JSONHandler writing
// to io.Discard.
func BenchmarkMiddlewareJSON(b *testing.B) {
	benchMiddleware(b, slog.NewJSONHandler(io.Discard, nil))
}

// BenchmarkMiddlewareCombined is the middleware with the combined handler
// writing to io.Discard.
func BenchmarkMiddlewareCombined(b *testing.B) {
	benchMiddleware(b, accesslog.NewCombinedHandler(io.Discard, nil))
}

// BenchmarkBareJSON is one Logger.LogAttrs call on slog.JSONHandler with
// the attributes the middleware writes for the request of the middleware
// benchmarks: the reference for the JSON target.
func BenchmarkBareJSON(b *testing.B) {
	logger := slog.New(slog.NewJSONHandler(io.Discard, nil))
	ctx := context.Background()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			start := time.Now()
			logger.LogAttrs(ctx, slog.LevelInfo, accesslog.Message,
				slog.String(reqlog.KeyMethod, "GET"),
				slog.String(reqlog.KeyPath, "/api/items/42"),
				slog.String(reqlog.KeyQuery, "page=2&sort=name"),
				slog.String(reqlog.KeyProtocol, "1.1"),
				slog.Int(reqlog.KeyStatus, 200),
				slog.Int64(reqlog.KeyRequestSize, 0),
				slog.Int64(reqlog.KeyResponseSize, int64(len(body))),
				slog.String(reqlog.KeyClient, "203.0.113.7"),
				slog.String(reqlog.KeyPeer, "203.0.113.7"),
				slog.String(reqlog.KeyUserAgent, "Mozilla/5.0 (X11; Linux x86_64; rv:126.0) Gecko/20100101 Firefox/126.0"),
				slog.String(reqlog.KeyReferer, "https://example.com/list?page=1"),
				slog.Duration(reqlog.KeyDuration, time.Since(start)),
				slog.Duration(reqlog.KeyTTFB, time.Since(start)),
			)
		}
	})
}

// BenchmarkRequestID is the access line with a request id: chi's
// middleware.RequestID outside accesslog, or accesslog's own
// (WithRequestID), combined format to io.Discard.
func BenchmarkRequestID(b *testing.B) {
	app := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(body)
	})
	logger := slog.New(accesslog.NewCombinedHandler(io.Discard, nil))
	for _, bc := range []struct {
		name string
		h    http.Handler
	}{
		{"chi", middleware.RequestID(mustNew(b, logger)(app))},
		{"accesslog", mustNew(b, logger, accesslog.WithRequestID())(app)},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				r := benchRequest()
				w := &discardResponse{h: http.Header{}}
				for pb.Next() {
					bc.h.ServeHTTP(w, r)
				}
			})
		})
	}
}
