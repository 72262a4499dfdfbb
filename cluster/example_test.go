package cluster_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/shipshape-go/shipshape/cluster"
	"github.com/shipshape-go/shipshape/connlimit"
)

// Serve in main: the process becomes the supervisor of four workers that
// each serve srv on the shared port.
func ExampleServe() {
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		id, _ := cluster.WorkerID()
		fmt.Fprintf(w, "hello from worker %d\n", id)
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	err := cluster.Serve(context.Background(), srv,
		cluster.WithAddr("tcp", ":8080"),
		cluster.WithWorkers(4),
		cluster.WithRestartBackoff(100*time.Millisecond, 15*time.Second),
		cluster.WithCrashLoop(10, time.Minute),
		cluster.WithMemoryLimit(512<<20),
		cluster.WithLogger(slog.New(slog.NewJSONHandler(os.Stderr, nil))),
	)
	if err != nil {
		log.Fatal(err) // non-zero exit: systemd or the orchestrator takes over
	}
}

// Run with a serve function of your own, here a TCP echo service. serve
// must return when ctx is done, after the work in progress: Run closes ln
// then, which ends the accept loop (for HTTP, use Serve, which drains
// for you).
func ExampleRun() {
	err := cluster.Run(context.Background(), func(ctx context.Context, ln net.Listener) error {
		var wg sync.WaitGroup
		defer wg.Wait() // let the connections in progress finish
		for {
			conn, err := ln.Accept()
			if err != nil {
				return err // ln closed by Run: reported as a clean stop
			}
			wg.Go(func() {
				defer conn.Close()
				_ = conn.SetDeadline(time.Now().Add(time.Minute))
				_, _ = io.Copy(conn, conn)
			})
		}
	}, cluster.WithAddr("tcp", ":7000"))
	if err != nil {
		log.Fatal(err)
	}
}

// Listen lets independent processes (systemd instances, containers with the
// host network) share one port; here two listeners in one process.
func ExampleListen() {
	ctx := context.Background()
	a, err := cluster.Listen(ctx, "tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	defer a.Close()
	b, err := cluster.Listen(ctx, "tcp", a.Addr().String())
	if err != nil {
		log.Fatal(err)
	}
	defer b.Close()
	fmt.Println("same port:", a.Addr().String() == b.Addr().String())
	// Output: same port: true
}

// WorkerID tells a worker apart, for logs or per-worker resources.
func ExampleWorkerID() {
	if id, ok := cluster.WorkerID(); ok {
		fmt.Println("worker", id)
	} else {
		fmt.Println("not a worker")
	}
	// Output: not a worker
}

// WithListener wraps every worker's listener, here to cap the connections
// one client IP may hold open (connlimit.New has the signature it takes;
// the caps apply per worker).
func ExampleWithListener() {
	srv := &http.Server{Handler: http.NotFoundHandler(), ReadHeaderTimeout: 10 * time.Second}
	err := cluster.Serve(context.Background(), srv,
		cluster.WithAddr("tcp", ":8080"),
		cluster.WithListener(func(ln net.Listener) (net.Listener, error) {
			return connlimit.New(ln, connlimit.WithMaxConnsPerIP(32))
		}),
	)
	if err != nil {
		log.Fatal(err)
	}
}

// WithCrashHandler gets every crashed worker's report in the supervisor;
// here it logs the culprit. To send the reports to Sentry, pass
// sentryreport's (*Reporter).ReportCrash instead, and flush after Serve.
// One worker is the smallest supervised deployment: a service that
// systemd or a container runtime keeps as one process still gets its
// crashes reported, and restarted in place.
func ExampleWithCrashHandler() {
	srv := &http.Server{Handler: http.NotFoundHandler(), ReadHeaderTimeout: 10 * time.Second}
	err := cluster.Serve(context.Background(), srv,
		cluster.WithAddr("tcp", ":8080"),
		cluster.WithWorkers(1),
		cluster.WithCrashHandler(func(c cluster.Crash) {
			where := "no stack"
			if f, ok := c.Culprit(); ok {
				where = fmt.Sprintf("%s at %s:%d", f.Function, f.File, f.Line)
			}
			log.Printf("worker %d (pid %d): %s: %s; %s; %d more like it", c.Worker, c.PID, c.Reason, c.Message, where, c.Repeats)
		}),
	)
	if err != nil {
		log.Fatal(err)
	}
}
