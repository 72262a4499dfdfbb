package redisstore_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/shipshape-go/shipshape/ratelimit"
	"github.com/shipshape-go/shipshape/ratelimit/redisstore"
)

// The usual wiring: one store shared by every limiter of the process, on a
// client whose context deadlines cut socket I/O.
func ExampleNew() {
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379", ContextTimeoutEnabled: true})
	defer rdb.Close()
	store, err := redisstore.New(rdb, redisstore.WithPrefix("myapp:rl:"))
	if err != nil {
		panic(err) // a nil client or a bad option
	}
	defer store.Close() // stops the probe; before rdb.Close

	api, err := ratelimit.New(100, time.Minute, ratelimit.WithStore(store), ratelimit.WithName("api"))
	if err != nil {
		panic(err)
	}
	login, err := ratelimit.New(5, time.Minute, ratelimit.WithStore(store), ratelimit.WithName("login"))
	if err != nil {
		panic(err)
	}
	mux := http.NewServeMux()
	mux.Handle("POST /login", login.Handler(http.NotFoundHandler()))
	mux.Handle("/api/", api.Handler(http.NotFoundHandler()))
	_ = mux
}

// With Redis unreachable the store answers from its fallback: requests
// are still limited (here per process), and the outage is logged once.
func ExampleWithFallback() {
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"}) // nothing listens there
	defer rdb.Close()
	logger := slog.New(slog.NewTextHandler(os.Stdout, &slog.HandlerOptions{
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key != slog.MessageKey && a.Key != slog.LevelKey {
				return slog.Attr{} // keep the example's output stable
			}
			return a
		},
	}))
	fallback, err := ratelimit.NewMemoryStore()
	if err != nil {
		panic(err)
	}
	store, err := redisstore.New(rdb,
		redisstore.WithFallback(fallback),
		redisstore.WithTimeout(20*time.Millisecond),
		redisstore.WithLogger(logger))
	if err != nil {
		panic(err)
	}
	defer store.Close()

	p := ratelimit.Policy{Name: "api", Limit: 2, Window: time.Minute}
	for range 3 {
		w, err := store.Take(context.Background(), p, "192.0.2.1", time.Now(), 1)
		fmt.Println(w.Allowed, err)
	}
	fmt.Println("degraded:", store.Degraded())
	// Output:
	// level=WARN msg="redisstore: redis unavailable, rate limits now counted by the fallback store"
	// true <nil>
	// true <nil>
	// false <nil>
	// degraded: true
}
