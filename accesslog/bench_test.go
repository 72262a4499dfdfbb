package accesslog_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/shipshape-go/shipshape/accesslog"
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
	srv := accesslog.New(slog.New(h))(app)
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
				slog.String(accesslog.KeyMethod, "GET"),
				slog.String(accesslog.KeyPath, "/api/items/42"),
				slog.String(accesslog.KeyQuery, "page=2&sort=name"),
				slog.String(accesslog.KeyProtocol, "1.1"),
				slog.Int(accesslog.KeyStatus, 200),
				slog.Int64(accesslog.KeyRequestSize, 0),
				slog.Int64(accesslog.KeyResponseSize, int64(len(body))),
				slog.String(accesslog.KeyClient, "203.0.113.7"),
				slog.String(accesslog.KeyPeer, "203.0.113.7"),
				slog.String(accesslog.KeyUserAgent, "Mozilla/5.0 (X11; Linux x86_64; rv:126.0) Gecko/20100101 Firefox/126.0"),
				slog.String(accesslog.KeyReferer, "https://example.com/list?page=1"),
				slog.Duration(accesslog.KeyDuration, time.Since(start)),
				slog.Duration(accesslog.KeyTTFB, time.Since(start)),
			)
		}
	})
}

// benchmarkBuffered writes a 120-byte access line per op from 8 goroutines
// (b.SetParallelism on GOMAXPROCS) and reports lines per second.
func benchmarkBuffered(b *testing.B, w io.Writer) {
	bw := accesslog.NewBufferedWriter(w)
	line := []byte(`203.0.113.7 - - [05/Mar/2024:09:04:05 -0700] "GET /api/items/42?page=2 HTTP/1.1" 200 512 "-" "curl/8.0 (x86_64-pc-linux)"` + "\n")
	b.SetParallelism(max(1, 8/runtime.GOMAXPROCS(0)))
	b.SetBytes(int64(len(line)))
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := bw.Write(line); err != nil {
				b.Error(err)
				return
			}
		}
	})
	if err := bw.Close(); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "lines/s")
}

// BenchmarkBufferedWriterDiscard measures the BufferedWriter alone.
func BenchmarkBufferedWriterDiscard(b *testing.B) { benchmarkBuffered(b, io.Discard) }

// BenchmarkBufferedWriterFile measures the BufferedWriter on a File
// (rotating at the default 100 MiB, compressing in the background).
func BenchmarkBufferedWriterFile(b *testing.B) {
	f, err := accesslog.OpenFile(filepath.Join(b.TempDir(), "bench.log"))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	benchmarkBuffered(b, f)
}

// BenchmarkFileWrite measures File.Write alone, one 120-byte line per op
// from parallel writers: the syscall, the lock and the rotation checks
// (default 100 MiB rotation, backups not compressed so that the
// background gzip does not take the CPU the writers are measured on).
func BenchmarkFileWrite(b *testing.B) {
	f, err := accesslog.OpenFile(filepath.Join(b.TempDir(), "bench.log"), accesslog.WithCompress(false))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	line := []byte(`203.0.113.7 - - [05/Mar/2024:09:04:05 -0700] "GET /api/items/42?page=2 HTTP/1.1" 200 512 "-" "curl/8.0 (x86_64-pc-linux)"` + "\n")
	b.SetBytes(int64(len(line)))
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := f.Write(line); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
