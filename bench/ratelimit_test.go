package bench_test

import (
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-chi/httprate"

	"github.com/shipshape-go/shipshape/ratelimit"
)

// benchHandler runs an allowed request through h from 256 client IPs on
// all cores.
func benchHandler(b *testing.B, h http.Handler) {
	b.Helper()
	reqs := make([]*http.Request, 256)
	for i := range reqs {
		reqs[i] = httptest.NewRequest(http.MethodGet, "/", nil)
		reqs[i].RemoteAddr = "10.0.0." + strconv.Itoa(i) + ":4711"
	}
	var seq atomic.Uint64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		w := &discardWriter{h: http.Header{}}
		i := seq.Add(1)
		for pb.Next() {
			i++
			clear(w.h)
			w.code = 0
			h.ServeHTTP(w, reqs[i%uint64(len(reqs))])
			if w.code != 0 && w.code != http.StatusOK {
				b.Fatalf("status %d", w.code)
			}
		}
	})
}

var benchOK = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})

// BenchmarkLimiterHandler: shipshape's limiter middleware on an allowed
// request, for each header style (target ≤ 250 ns/op, ≤ 1 alloc/op).
func BenchmarkLimiterHandler(b *testing.B) {
	for _, style := range []ratelimit.HeaderStyle{ratelimit.HeadersIETF, ratelimit.HeadersBoth, ratelimit.HeadersNone} {
		b.Run("headers="+style.String(), func(b *testing.B) {
			l, err := ratelimit.New(1<<30, time.Minute, ratelimit.WithHeaders(style))
			if err != nil {
				b.Fatal(err)
			}
			benchHandler(b, l.Handler(benchOK))
		})
	}
}

type discardWriter struct {
	h    http.Header
	code int
}

func (w *discardWriter) Header() http.Header { return w.h }
func (w *discardWriter) Write(p []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return len(p), nil
}
func (w *discardWriter) WriteHeader(code int) { w.code = code }

// BenchmarkHttprateLimitByIP is the peer: go-chi/httprate with the same
// limit and window, on the same requests, in the same run.
func BenchmarkHttprateLimitByIP(b *testing.B) {
	//lint:ignore SA1019 LimitByIP is the peer users pick today; both sides key by RemoteAddr here.
	benchHandler(b, httprate.LimitByIP(1<<30, time.Minute)(benchOK))
}
