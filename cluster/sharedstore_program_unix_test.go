//go:build unix

package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"syscall"
	"time"

	"github.com/shipshape-go/shipshape/ratelimit"
)

// limitsProgram is the test program of the shared limits table (mode
// "limits"): a supervisor of CLUSTER_TEST_WORKERS workers (default 2),
// WithSharedKeys(CLUSTER_TEST_SHARED_KEYS) when that is set, whose workers
// serve, with limiters built in main without WithStore:
//
//   - /one: one key ("one") limited to CLUSTER_TEST_LIMIT per hour,
//     answered "<pid> ok", or 429;
//   - /flood?k=K: key K under a limit that is never reached;
//   - /count?name=one|flood&k=K: the count of a key, "<pid> <count>";
//   - /check: the table's Stats and Check error, as JSON;
//   - /hold?k=K: claims K's slot under /flood's policy and kills the
//     worker before it publishes it, as kill -9 in the middle of an
//     insert would.
//
// With CLUSTER_TEST_SINGLE set it is one process without a supervisor
// serving the same handler (its limiters on MemoryStores).
func limitsProgram(logger *slog.Logger) int {
	workers, _ := strconv.Atoi(envOr("CLUSTER_TEST_WORKERS", "2"))
	limit, _ := strconv.Atoi(envOr("CLUSTER_TEST_LIMIT", "100"))
	opts := []Option{WithLogger(logger), WithAddr("tcp", envOr("CLUSTER_TEST_ADDR", "127.0.0.1:0")),
		WithWorkers(workers), WithRestartBackoff(10*time.Millisecond, 100*time.Millisecond),
		WithCrashLoop(1000, time.Minute)}
	if v := os.Getenv("CLUSTER_TEST_SHARED_KEYS"); v != "" {
		n, _ := strconv.Atoi(v)
		opts = append(opts, WithSharedKeys(n))
	}
	one, err := ratelimit.New(limit, time.Hour, ratelimit.WithName("one"),
		ratelimit.WithKey(func(*http.Request) (string, error) { return "one", nil }))
	if err != nil {
		logger.Error("test program: limiter", "error", err.Error())
		return 1
	}
	floodPolicy := ratelimit.Policy{Name: "flood", Limit: 1 << 30, Window: time.Hour}
	flood, err := ratelimit.New(floodPolicy.Limit, floodPolicy.Window, ratelimit.WithName(floodPolicy.Name),
		ratelimit.WithKey(func(r *http.Request) (string, error) { return r.URL.Query().Get("k"), nil }))
	if err != nil {
		logger.Error("test program: limiter", "error", err.Error())
		return 1
	}
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprintf(w, "%d ok\n", os.Getpid()) })
	mux := http.NewServeMux()
	mux.Handle("/one", one.Handler(ok))
	mux.Handle("/flood", flood.Handler(ok))
	mux.HandleFunc("/count", func(w http.ResponseWriter, r *http.Request) {
		l := one
		if r.URL.Query().Get("name") == "flood" {
			l = flood
		}
		d, err := l.Peek(r.Context(), r.URL.Query().Get("k"))
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		fmt.Fprintf(w, "%d %d\n", os.Getpid(), d.Limit-d.Remaining)
	})
	mux.HandleFunc("/check", func(w http.ResponseWriter, r *http.Request) {
		wt, err := sharedTable()
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		st, err := wt.t.Check()
		msg := ""
		if err != nil {
			msg = err.Error()
		}
		_ = json.NewEncoder(w).Encode(struct {
			Stats any
			Error string
		}{st, msg})
	})
	mux.HandleFunc("/hold", func(w http.ResponseWriter, r *http.Request) {
		wt, err := sharedTable()
		if err == nil {
			s := wt.t.Store(sharedNamespace([]ratelimit.Policy{floodPolicy}, 0))
			err = s.HoldClaim(floodPolicy, r.URL.Query().Get("k"))
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
	})
	pid := strconv.Itoa(os.Getpid())
	byWorker := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Worker-Pid", pid) // on refusals too: which worker answered
		mux.ServeHTTP(w, r)
	})
	srv := &http.Server{Handler: byWorker, ReadHeaderTimeout: 5 * time.Second}
	if os.Getenv("CLUSTER_TEST_SINGLE") != "" {
		// One plain process with MemoryStores, for the benchmark.
		ln, err := net.Listen("tcp", envOr("CLUSTER_TEST_ADDR", "127.0.0.1:0"))
		if err != nil {
			logger.Error("test program: listen", "error", err.Error())
			return 1
		}
		logger.Info("cluster: supervisor started", slog.Group("cluster", "addr", ln.Addr().String()))
		_ = srv.Serve(ln)
		return 0
	}
	if err := Serve(context.Background(), srv, opts...); err != nil {
		logger.Error("test program: exiting", "error", err.Error())
		return 1
	}
	return 0
}
