package bench_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/go-chi/chi/v5/middleware"
)

// BenchmarkChiClientIP is what chi's ClientIPFromXFF, the first layer of
// the recommended stack, costs a request: from a trusted peer without
// X-Forwarded-For (the load report's wrk on loopback), it stores nothing;
// behind a trusted proxy that sends the header (production), it copies
// the request to put the client IP in its context. accesslog cannot take
// that copy over as it does chi's request id: chi reads the client IP
// under an unexported key.
func BenchmarkChiClientIP(b *testing.B) {
	sawIP := false
	h := middleware.ClientIPFromXFF("127.0.0.0/8")(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		sawIP = middleware.GetClientIPAddr(r.Context()).IsValid()
	}))
	for _, bc := range []struct {
		name string
		xff  string
		want bool
	}{
		{"peer-without-xff", "", false},
		{"behind-proxy", "203.0.113.7", true},
	} {
		b.Run(bc.name, func(b *testing.B) {
			req := httptest.NewRequest(http.MethodGet, "/", nil)
			req.RemoteAddr = "127.0.0.1:40000"
			if bc.xff != "" {
				req.Header.Set("X-Forwarded-For", bc.xff)
			}
			b.ReportAllocs()
			for b.Loop() {
				h.ServeHTTP(nil, req)
			}
			if sawIP != bc.want {
				b.Fatalf("client IP stored: %v, want %v", sawIP, bc.want)
			}
		})
	}
}
