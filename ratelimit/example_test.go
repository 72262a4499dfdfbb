package ratelimit_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/shipshape-go/shipshape/ratelimit"
)

func ExampleNew() {
	// 100 requests per client IP in any trailing minute.
	limiter, err := ratelimit.New(100, time.Minute)
	if err != nil {
		panic(err)
	}
	d, err := limiter.Allow(context.Background(), "192.0.2.1")
	if err != nil {
		panic(err)
	}
	fmt.Println(d.Allowed, d.Remaining, d.Limit)

	// Bad configuration is an error, not a panic.
	_, err = ratelimit.New(0, time.Minute)
	fmt.Println(err)
	// Output:
	// true 99 100
	// ratelimit: invalid policy
	// ratelimit: limit must be > 0
}

func ExampleLimiter_Handler() {
	limiter, err := ratelimit.New(2, time.Minute, ratelimit.WithName("api"))
	if err != nil {
		panic(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /hello", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "hello")
	})
	h := limiter.Handler(mux)

	for range 3 {
		req := httptest.NewRequest(http.MethodGet, "/hello", nil)
		req.RemoteAddr = "192.0.2.1:4711"
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		fmt.Println(rec.Code, rec.Header().Get("RateLimit-Policy"), rec.Header().Get("Retry-After") != "")
	}
	// Output:
	// 200 "api";q=2;w=60 false
	// 200 "api";q=2;w=60 false
	// 429 "api";q=2;w=60 true
}

func ExampleKeys() {
	// Count per client and API key together, for example on a login route.
	key := ratelimit.Keys(ratelimit.KeyByIP, ratelimit.KeyByHeader("X-API-Key"))
	req := httptest.NewRequest(http.MethodPost, "/login", nil)
	req.RemoteAddr = "192.0.2.1:4711"
	req.Header.Set("X-API-Key", "k-123")
	k, err := key(req)
	fmt.Printf("%q %v\n", k, err)
	// Output:
	// "9:192.0.2.1;5:k-123" <nil>
}
