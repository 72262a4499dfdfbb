package cluster_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"log"
	"log/slog"
	"net/http"
	"os"
	"time"

	"github.com/shipshape-go/shipshape/cluster"
	"github.com/shipshape-go/shipshape/logfile"
)

// ServeFunc builds the service in each worker only: the log file (and a
// database pool, a Sentry client…) is never opened by the supervisor.
// Close runs after the worker's drain. A second address, for admin
// routes, is served by the same workers.
func ExampleServeFunc() {
	err := cluster.ServeFunc(context.Background(), func(ctx context.Context) (*cluster.Service, error) {
		inc, _ := cluster.WorkerIncarnation() // unique per process: a file of its own
		f, err := logfile.Open(fmt.Sprintf("/var/log/app/audit-%d-%d.log", os.Getpid(), inc))
		if err != nil {
			return nil, err // the worker fails to start; the supervisor retries with backoff
		}
		logger := slog.New(slog.NewJSONHandler(f, nil)).With(cluster.WorkerAttr())
		mux := http.NewServeMux()
		mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
			logger.InfoContext(r.Context(), "hello", "path", r.URL.Path)
			fmt.Fprintln(w, "hello")
		})
		admin := http.NewServeMux()
		admin.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "ok") })
		return &cluster.Service{
			Server:  &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second},
			Servers: map[string]*http.Server{"admin": {Handler: admin, ReadHeaderTimeout: 10 * time.Second}},
			Close:   f.Close,
		}, nil
	},
		cluster.WithAddr("tcp", ":8080"),
		cluster.WithNamedAddr("admin", "tcp", "127.0.0.1:9090"),
		cluster.WithWorkers(4),
	)
	if err != nil {
		log.Fatal(err)
	}
}

// A server with a TLSConfig is served over TLS, with HTTP/2 offered by
// ALPN as net/http does.
func ExampleServe_tls() {
	cert, err := tls.LoadX509KeyPair("/etc/app/tls.crt", "/etc/app/tls.key")
	if err != nil {
		log.Fatal(err)
	}
	srv := &http.Server{
		Handler:           http.NotFoundHandler(),
		ReadHeaderTimeout: 10 * time.Second,
		TLSConfig:         &tls.Config{Certificates: []tls.Certificate{cert}},
	}
	if err := cluster.Serve(context.Background(), srv, cluster.WithAddr("tcp", ":8443")); err != nil {
		log.Fatal(err)
	}
}

// WorkerIncarnation tells apart two processes of one worker id, as during a
// replacement; outside a worker it reports false.
func ExampleWorkerIncarnation() {
	if inc, ok := cluster.WorkerIncarnation(); ok {
		fmt.Println("incarnation", inc)
	} else {
		fmt.Println("not a worker")
	}
	// Output: not a worker
}
