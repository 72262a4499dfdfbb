// Command server is shipshape's example service: the full middleware stack
// on a net/http ServeMux, with embedded defaults, so that
//
//	go run ./examples/server
//
// serves on :8080 with nothing else installed. The stack, outermost first:
//
//	chi ClientIPFromXFF → accesslog (with the request id) → recoverer → slowdown → ratelimit → routes
//
// Routes: / (embedded page), /static/ (embedded assets through the static
// package), GET /api/hello, POST /api/echo (body ≤ 1 MiB), GET /api/stream
// (server-sent events, exempt from the write timeout), GET /healthz (not
// limited, not logged), and, each only with its flag, GET /debug/panic
// (-debug-panic: a panic), GET /debug/hang (-debug-hang: /healthz stops
// answering) and GET /debug/alloc?mib=N (-debug-alloc: memory that is never
// freed), which the deploy tests use to show what health checks, restarts
// and memory limits do.
//
// Logs: every request in Apache combined format to a rotating, gzip'd file
// under -log-dir (rotated at -log-max-size, -log-max-backups kept; lines a
// full disk refuses are counted and reported, not fatal), plus a short
// coloured line per request on stdout (-log-format dev, the default) or JSON
// records (-log-format json). Panics are logged and,
// with SENTRY_DSN set, reported to Sentry. REDIS_URL switches the rate-limit
// counts to Redis, shared by every process that uses it.
//
// Run with -h for the flags; each can also be set by the environment variable
// named in its help. SIGINT/SIGTERM drain in-flight requests, then flush the
// logs and Sentry. -healthcheck URL performs one GET and exits 0 on a 2xx (for
// container health checks in images without a shell).
package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/signal"
	"syscall"

	"github.com/shipshape-go/shipshape/examples/internal/app"
)

func main() {
	os.Exit(run(os.Args[1:]))
}

// run is main with an exit code: 0 after a clean shutdown, 1 on a runtime
// error, 2 on a bad command line.
func run(args []string) int {
	cfg, err := app.ParseConfig("server", args, os.Getenv, os.Stderr)
	if code, exit := app.Preflight(cfg, err); exit {
		return code
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ln, err := net.Listen("tcp", cfg.Addr)
	if err == nil {
		err = app.Serve(ctx, ln, cfg, os.Stdout)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "server:", err)
		return 1
	}
	return 0
}
