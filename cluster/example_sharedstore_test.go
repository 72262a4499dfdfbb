package cluster_test

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"time"

	"github.com/shipshape-go/shipshape/cluster"
	"github.com/shipshape-go/shipshape/ratelimit"
	"github.com/shipshape-go/shipshape/slowdown"
)

// A limit for the service, not per worker: the limiter and the delayer are
// built in the workers (ServeFunc) without WithStore, so they count in the
// table the supervisor shares with all four workers. 100 requests a minute
// per client is 100 however the connections spread over the workers, and
// it stays so through kill -9 of a worker and rolling restarts.
func ExampleWithSharedKeys() {
	err := cluster.ServeFunc(context.Background(), func(ctx context.Context) (*cluster.Service, error) {
		delay, err := slowdown.New(50, time.Minute, slowdown.WithMaxDelay(2*time.Second))
		if err != nil {
			return nil, err
		}
		limit, err := ratelimit.New(100, time.Minute)
		if err != nil {
			return nil, err // e.g. a worker of another build than its supervisor's
		}
		hello := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "hello") })
		return &cluster.Service{Server: &http.Server{
			Handler:           delay.Handler(limit.Handler(hello)),
			ReadHeaderTimeout: 10 * time.Second,
		}}, nil
	},
		cluster.WithAddr("tcp", ":8080"),
		cluster.WithWorkers(4),
		cluster.WithSharedKeys(2_000_000), // clients active within two windows, across every limiter
	)
	if err != nil {
		log.Fatal(err)
	}
}

// Limiters that share counts on purpose (a login limit counted from two
// routes) take the shared table's store explicitly, as they would share a
// MemoryStore; a limiter can keep its counts in its own process with
// WithStore(ratelimit.NewMemoryStore()).
func ExampleSharedStore() {
	store, err := cluster.SharedStore()
	if err != nil {
		log.Fatal(err) // not a worker, or WithSharedKeys(0)
	}
	login, err := ratelimit.New(5, 15*time.Minute, ratelimit.WithName("login"), ratelimit.WithStore(store))
	if err != nil {
		log.Fatal(err)
	}
	local, err := ratelimit.NewMemoryStore()
	if err != nil {
		log.Fatal(err)
	}
	perWorker, err := ratelimit.New(1000, time.Second, ratelimit.WithStore(local))
	if err != nil {
		log.Fatal(err)
	}
	_, _ = login, perWorker
}
