// Command cluster serves the example service (see examples/server) from
// several supervised worker processes on one port. Rate limits are the
// service's, not each worker's: the workers count in the supervisor's
// shared table (cluster.WithSharedKeys), or in Redis when REDIS_URL is set
// (several machines):
//
//	go run ./examples/cluster -workers 4
//	REDIS_URL=redis://127.0.0.1:6379/0 go run ./examples/cluster -workers 4
//
// It takes every flag of examples/server plus -workers and -memory-limit.
// Signals to the supervisor: SIGTERM/SIGINT drain every worker and exit;
// SIGHUP replaces the workers one at a time from the binary on disk (the
// upgrade path). The supervisor owns the one access log of the service,
// access.log under -log-dir (cluster.WithLog): workers write their lines
// into memory it holds (cluster.LogWriter), so a worker killed with kill
// -9 loses none of the lines of the requests it answered. Application
// records go to stdout, each saying which worker wrote it
// (cluster.WorkerAttr).
//
// With SENTRY_DSN, the supervisor reports every crash of a worker that no
// recoverer can catch (a panic in another goroutine, a fatal error, a kill,
// an OOM kill, the memory cap) as one Sentry event
// (cluster.WithCrashHandler with sentryreport's ReportCrash); the workers
// report their handlers' panics themselves.
//
// The service (Redis pool, Sentry, log writers) is built by the function
// given to cluster.ServeFunc, which only workers call: the supervisor
// opens none of it.
//
// With -metrics-addr (env METRICS_ADDR; a bare port is loopback) the
// supervisor serves /metrics in the Prometheus format for the whole
// service: every worker's series with a worker label, and its own.
//
// The supervisor listens for control commands on a unix socket (-control,
// default cluster.ControlPath("shipshape-cluster"); empty turns it off),
// which the same binary talks to with -ctl:
//
//	cluster -ctl status          # one line per worker: id, incarnation, pid, state, uptime, restarts, RSS, last exit
//	cluster -ctl 'status -json'  # the same as JSON
//	cluster -ctl reload          # rolling restart (SIGHUP), returns when done
//	cluster -ctl 'scale 8'       # 8 workers, started or drained one at a time
//	cluster -ctl stop            # drain and stop (SIGTERM), returns when the supervisor is gone
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/getsentry/sentry-go"

	"github.com/shipshape-go/shipshape/cluster"
	"github.com/shipshape-go/shipshape/examples/internal/app"
	"github.com/shipshape-go/shipshape/logfile"
	"github.com/shipshape-go/shipshape/sentryreport"
)

func main() {
	os.Exit(run(os.Args[1:], os.Getenv))
}

// run is main with an exit code: 0 after a requested stop, 1 on a runtime
// error or a crash loop, 2 on a bad command line.
func run(args []string, getenv func(string) string) int {
	var workers int
	var memLimit int64
	var control, ctl string
	cfg, err := app.ParseConfig("cluster", args, getenv, os.Stderr, func(fs *flag.FlagSet) {
		n, _ := strconv.Atoi(getenv("WORKERS"))
		if n == 0 {
			n = runtime.GOMAXPROCS(0)
		}
		fs.IntVar(&workers, "workers", n, "worker processes; default GOMAXPROCS (env WORKERS)")
		m, _ := strconv.ParseInt(getenv("MEMORY_LIMIT"), 10, 64)
		fs.Int64Var(&memLimit, "memory-limit", m, "replace a worker whose RSS passes this many bytes; 0 = off (env MEMORY_LIMIT)")
		c := getenv("CONTROL_SOCKET")
		if c == "" {
			c = cluster.ControlPath("shipshape-cluster")
		}
		fs.StringVar(&control, "control", c, "the supervisor's control socket; empty = none (env CONTROL_SOCKET)")
		fs.StringVar(&ctl, "ctl", "", "send a command to the running supervisor and exit: status, 'status -json', reload, stop, 'scale N'")
	})
	if code, exit := app.Preflight(cfg, err); exit {
		return code
	}
	if ctl != "" {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		if err := cluster.ControlCommand(ctx, control, strings.Fields(ctl), os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		return 0
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, nil))

	opts := []cluster.Option{
		cluster.WithAddr("tcp", cfg.Addr),
		cluster.WithWorkers(workers),
		cluster.WithMemoryLimit(memLimit),
		cluster.WithLogger(logger),
		cluster.WithListener(app.ConnLimit(cfg)),
	}
	if control != "" {
		opts = append(opts, cluster.WithControl(control))
	}
	if cfg.MetricsAddr != "" {
		// Every process records into its own provider (the supervisor
		// its workers' states, each worker its requests); the supervisor
		// serves the one scrape of the service and asks each worker for
		// its part over the channel it handed it (cluster.WithMetrics).
		m, err := app.NewMetrics()
		if err != nil {
			fmt.Fprintln(os.Stderr, "cluster:", err)
			return 1
		}
		defer m.Shutdown(context.Background())
		opts = append(opts, cluster.WithMetrics(cfg.MetricsAddr, m.Handler))
	}
	if cfg.SentryDSN != "" {
		// Crashes that no recoverer can catch (a panic in another
		// goroutine, a fatal error, a kill) are seen by the supervisor:
		// each becomes one event, with the crashing goroutine's stack.
		// Handler panics are reported by the workers' own clients.
		client, err := sentry.NewClient(sentry.ClientOptions{Dsn: cfg.SentryDSN})
		if err != nil {
			fmt.Fprintln(os.Stderr, "cluster: SENTRY_DSN:", err)
			return 2
		}
		hub := sentry.NewHub(client, sentry.NewScope())
		defer hub.Flush(2 * time.Second) // the last crash reports, before the supervisor exits
		rep, err := sentryreport.New(sentryreport.WithHub(hub))
		if err != nil {
			fmt.Fprintln(os.Stderr, "cluster:", err)
			return 1
		}
		opts = append(opts, cluster.WithCrashHandler(rep.ReportCrash))
	}
	if cfg.LogDir != "" {
		// One file for the whole service, opened and rotated by the
		// supervisor only.
		opts = append(opts, cluster.WithLog("access", filepath.Join(cfg.LogDir, cfg.LogName),
			logfile.WithMaxSize(100<<20), logfile.WithRotateEvery(24*time.Hour),
			logfile.WithMaxBackups(14), logfile.WithCompression(true)))
	}

	// main runs in the supervisor too; the service is built in the workers
	// only, by the function ServeFunc calls there, and closed by it after
	// the drain.
	err = cluster.ServeFunc(context.Background(), func(context.Context) (*cluster.Service, error) {
		id, _ := cluster.WorkerID()
		if w, ok := cluster.LogWriter("access"); ok {
			cfg.AccessLog = w
		} else if cfg.LogDir != "" {
			// A supervisor started before WithLog (a SIGHUP upgrade keeps
			// its settings): a file of this worker's own.
			cfg.LogName = fmt.Sprintf("access-%d.log", id)
		}
		cfg.LogAttrs = []any{cluster.WorkerAttr()}
		a, err := app.New(cfg, os.Stdout)
		if err != nil {
			return nil, err
		}
		srv := app.NewServer(a.Handler, cfg)
		srv.ErrorLog = a.ServerLog
		return &cluster.Service{Server: srv, Close: a.Close}, nil
	}, opts...)
	if err != nil {
		fmt.Fprintln(os.Stderr, "cluster:", err)
		return 1
	}
	return 0
}
