package slowdown_test

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/shipshape-go/shipshape/ratelimit"
	"github.com/shipshape-go/shipshape/slowdown"
)

// A Delayer in front of a Limiter on one store: the third and fourth
// requests in the hour are slowed, the fifth is slowed and then refused.
func Example() {
	store, err := ratelimit.NewMemoryStore()
	if err != nil {
		log.Fatal(err)
	}
	slow, err := slowdown.New(2, time.Hour, slowdown.WithStore(store),
		slowdown.WithStep(time.Millisecond))
	if err != nil {
		log.Fatal(err)
	}
	limit, err := ratelimit.New(4, time.Hour, ratelimit.WithStore(store))
	if err != nil {
		log.Fatal(err)
	}
	app := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		delay, _ := slowdown.FromContext(r.Context())
		fmt.Fprintf(w, "served after %v", delay)
	})
	h := slow.Handler(limit.Handler(app))

	for i := 1; i <= 5; i++ {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
		if rec.Code != http.StatusOK {
			fmt.Println(i, rec.Code, http.StatusText(rec.Code))
			continue
		}
		fmt.Println(i, rec.Code, rec.Body.String())
	}
	// Output:
	// 1 200 served after 0s
	// 2 200 served after 0s
	// 3 200 served after 1ms
	// 4 200 served after 2ms
	// 5 429 Too Many Requests
}

// Delay is the Delayer's core, with the time passed in: it counts a
// request and says how long it should wait, without waiting.
func ExampleDelayer_Delay() {
	d, err := slowdown.New(3, time.Minute, slowdown.WithMaxDelay(250*time.Millisecond))
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	start := time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)
	for i := range 6 {
		delay, err := d.Delay(ctx, "client-1", start.Add(time.Duration(i)*time.Second))
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("request %d: wait %v\n", i+1, delay)
	}
	// Two windows later the client starts from zero again.
	delay, _ := d.Delay(ctx, "client-1", start.Add(2*time.Minute))
	fmt.Printf("later: wait %v\n", delay)
	// Output:
	// request 1: wait 0s
	// request 2: wait 0s
	// request 3: wait 0s
	// request 4: wait 100ms
	// request 5: wait 200ms
	// request 6: wait 250ms
	// later: wait 0s
}

// WithDelayFunc replaces the linear steps, here by doubling ones.
func ExampleWithDelayFunc() {
	d, err := slowdown.New(0, time.Minute,
		slowdown.WithDelayFunc(func(over int) time.Duration {
			return 50 * time.Millisecond << min(over-1, 10)
		}),
		slowdown.WithMaxDelay(time.Second))
	if err != nil {
		log.Fatal(err)
	}
	now := time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)
	for range 6 {
		delay, _ := d.Delay(context.Background(), "client-1", now)
		fmt.Println(delay)
	}
	// Output:
	// 50ms
	// 100ms
	// 200ms
	// 400ms
	// 800ms
	// 1s
}

// One header style for the Delayer and the Limiter behind it: the IETF
// lists carry both policies' items, and each has its own legacy trio
// (X-Slow-Down-* for the Delayer, X-RateLimit-* for the Limiter).
func ExampleWithHeaders() {
	store, err := ratelimit.NewMemoryStore()
	if err != nil {
		log.Fatal(err)
	}
	style := ratelimit.HeadersBoth
	slow, err := slowdown.New(50, time.Minute, slowdown.WithStore(store), slowdown.WithHeaders(style))
	if err != nil {
		log.Fatal(err)
	}
	limit, err := ratelimit.New(100, time.Minute, ratelimit.WithStore(store), ratelimit.WithHeaders(style))
	if err != nil {
		log.Fatal(err)
	}
	h := slow.Handler(limit.Handler(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
	fmt.Println(rec.Header().Values("RateLimit-Policy"))
	fmt.Println("X-Slow-Down:", rec.Header().Get("X-Slow-Down-Limit"), rec.Header().Get("X-Slow-Down-Remaining"))
	fmt.Println("X-RateLimit:", rec.Header().Get("X-RateLimit-Limit"), rec.Header().Get("X-RateLimit-Remaining"))
	// Output:
	// ["slowdown";q=50;w=60 "default";q=100;w=60]
	// X-Slow-Down: 50 49
	// X-RateLimit: 100 99
}

// Outside HTTP: a queue worker slows down a tenant that submits too many
// jobs, waiting on a timer it abandons when its own context ends.
func ExampleDelayer_Delay_worker() {
	d, err := slowdown.New(2, time.Minute, slowdown.WithStep(10*time.Millisecond))
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	run := func(ctx context.Context, tenant string, job int) error {
		delay, err := d.Delay(ctx, tenant, time.Now())
		if err != nil {
			// The count is unknown: go on undelayed, as the Handler does.
			delay = 0
		}
		if delay > 0 {
			t := time.NewTimer(delay)
			defer t.Stop()
			select {
			case <-t.C:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		fmt.Printf("job %d of %s ran after %v\n", job, tenant, delay)
		return nil
	}
	for job := 1; job <= 4; job++ {
		if err := run(ctx, "tenant-a", job); err != nil {
			log.Fatal(err)
		}
	}
	// Output:
	// job 1 of tenant-a ran after 0s
	// job 2 of tenant-a ran after 0s
	// job 3 of tenant-a ran after 10ms
	// job 4 of tenant-a ran after 20ms
}
