// Command server is shipshape's example service: the full middleware stack
// on a net/http ServeMux, with embedded defaults, so that
//
//	go run ./examples/server
//
// serves on :8080 with nothing else installed. The stack, outermost first:
//
//	chi ClientIPFromXFF → chi RequestID → accesslog → recoverer → slowdown → ratelimit → routes
//
// Routes: / (embedded page), /static/ (embedded assets through the static
// package), GET /api/hello, POST /api/echo (body ≤ 1 MiB), GET /api/stream
// (server-sent events, exempt from the write timeout), GET /healthz (not
// limited, not logged), and GET /debug/panic when -debug-panic is set.
//
// Logs: every request in Apache combined format to a rotating, gzip'd file
// under -log-dir, plus a short coloured line per request on stdout (-log-format
// dev, the default) or JSON records (-log-format json). Panics are logged and,
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
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// config is everything the server can be told.
type config struct {
	Addr              string
	TrustedProxies    []string
	Limit             int
	Window            time.Duration
	SlowAfter         int
	SlowStep          time.Duration
	SlowMax           time.Duration
	MaxConnsPerIP     int
	RedisURL          string
	LogDir            string
	LogFormat         string
	SentryDSN         string
	DebugPanic        bool
	ReadHeaderTimeout time.Duration
	MaxBodyBytes      int64
	HealthCheck       string
}

func main() {
	cfg, err := parseConfig(os.Args[1:], os.Getenv)
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	if cfg.HealthCheck != "" {
		os.Exit(healthCheck(cfg.HealthCheck))
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, cfg); err != nil {
		fmt.Fprintln(os.Stderr, "server:", err)
		os.Exit(1)
	}
}

func parseConfig(args []string, getenv func(string) string) (config, error) {
	fs := flag.NewFlagSet("server", flag.ContinueOnError)
	var cfg config
	var proxies string
	var errs []error
	env := func(name, def string) string {
		if v := getenv(name); v != "" {
			return v
		}
		return def
	}
	envInt := func(name string, def int) int {
		v, err := strconv.Atoi(env(name, strconv.Itoa(def)))
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", name, err))
		}
		return v
	}
	envDur := func(name string, def time.Duration) time.Duration {
		v, err := time.ParseDuration(env(name, def.String()))
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", name, err))
		}
		return v
	}
	fs.StringVar(&cfg.Addr, "addr", env("ADDR", ":8080"), "listen address (env ADDR)")
	fs.StringVar(&proxies, "trusted-proxies", env("TRUSTED_PROXIES", "127.0.0.1/32,::1/128"),
		"comma-separated CIDRs of the proxies whose X-Forwarded-For is trusted (env TRUSTED_PROXIES)")
	fs.IntVar(&cfg.Limit, "rate-limit", envInt("RATE_LIMIT", 100), "requests per client per window; past it 429 (env RATE_LIMIT)")
	fs.DurationVar(&cfg.Window, "rate-window", envDur("RATE_WINDOW", time.Minute), "rate-limit and slow-down window (env RATE_WINDOW)")
	fs.IntVar(&cfg.SlowAfter, "slow-after", envInt("SLOW_AFTER", -1), "requests per window before delays start; 0 disables; -1 is half of -rate-limit (env SLOW_AFTER)")
	fs.DurationVar(&cfg.SlowStep, "slow-step", envDur("SLOW_STEP", 100*time.Millisecond), "added delay per request past -slow-after (env SLOW_STEP)")
	fs.DurationVar(&cfg.SlowMax, "slow-max", envDur("SLOW_MAX", 2*time.Second), "longest delay (env SLOW_MAX)")
	fs.IntVar(&cfg.MaxConnsPerIP, "max-conns-per-ip", envInt("MAX_CONNS_PER_IP", 256), "concurrent connections per client IP at the listener; 0 = unlimited (env MAX_CONNS_PER_IP)")
	fs.StringVar(&cfg.RedisURL, "redis-url", env("REDIS_URL", ""), "redis://host:port/db to share rate limits between processes (env REDIS_URL)")
	fs.StringVar(&cfg.LogDir, "log-dir", env("LOG_DIR", "./logs"), "directory of the rotating access log; empty disables the file (env LOG_DIR)")
	fs.StringVar(&cfg.LogFormat, "log-format", env("LOG_FORMAT", "dev"), "stdout format: dev, json or none (env LOG_FORMAT)")
	fs.StringVar(&cfg.SentryDSN, "sentry-dsn", env("SENTRY_DSN", ""), "report panics to this Sentry DSN (env SENTRY_DSN)")
	debug, _ := strconv.ParseBool(env("DEBUG_PANIC", "false"))
	fs.BoolVar(&cfg.DebugPanic, "debug-panic", debug, "serve GET /debug/panic, which panics on purpose (env DEBUG_PANIC)")
	fs.DurationVar(&cfg.ReadHeaderTimeout, "read-header-timeout", envDur("READ_HEADER_TIMEOUT", 5*time.Second), "time allowed to send the request headers (env READ_HEADER_TIMEOUT)")
	fs.Int64Var(&cfg.MaxBodyBytes, "max-body", int64(envInt("MAX_BODY", 1<<20)), "largest request body in bytes (env MAX_BODY)")
	fs.StringVar(&cfg.HealthCheck, "healthcheck", "", "GET this URL, exit 0 on 2xx, else 1 (for container health checks)")
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	if err := errors.Join(errs...); err != nil {
		return cfg, err
	}
	if fs.NArg() > 0 {
		return cfg, fmt.Errorf("server: unexpected arguments %q", fs.Args())
	}
	for _, p := range strings.Split(proxies, ",") {
		if p = strings.TrimSpace(p); p != "" {
			cfg.TrustedProxies = append(cfg.TrustedProxies, p)
		}
	}
	switch cfg.LogFormat {
	case "dev", "json", "none":
	default:
		return cfg, fmt.Errorf("server: -log-format must be dev, json or none, not %q", cfg.LogFormat)
	}
	if cfg.SlowAfter == -1 {
		cfg.SlowAfter = max(0, cfg.Limit/2)
	}
	// Slow-down starts before the limit refuses, or it never acts.
	if cfg.SlowAfter < 0 || (cfg.SlowAfter > 0 && cfg.Limit > 0 && cfg.SlowAfter >= cfg.Limit) {
		return cfg, fmt.Errorf("server: -slow-after must be 0 (off) or between 1 and -rate-limit−1, not %d", cfg.SlowAfter)
	}
	return cfg, nil
}

// run listens on cfg.Addr and serves until ctx is done.
func run(ctx context.Context, cfg config) error {
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return err
	}
	return serve(ctx, ln, cfg, os.Stdout)
}

// serve serves on ln until ctx is done, then drains in-flight requests and
// flushes logs and Sentry. Request logs and app logs go to stdout and the
// access log file.
func serve(ctx context.Context, ln net.Listener, cfg config, stdout io.Writer) error {
	a, err := newApp(cfg, stdout)
	if err != nil {
		ln.Close()
		return err
	}
	defer a.Close()
	srv := newServer(a.handler, cfg)
	srv.ErrorLog = a.serverLog
	ln = a.listener(ln)
	a.logger.Info("listening", "addr", ln.Addr().String(), "redis", cfg.RedisURL != "", "sentry", cfg.SentryDSN != "")
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	a.logger.Info("shutting down")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err = srv.Shutdown(shutdownCtx)
	if errors.Is(err, context.DeadlineExceeded) {
		err = srv.Close()
	}
	return err
}

// newServer returns an http.Server hardened with timeouts and limits: a
// client has ReadHeaderTimeout to send its headers (slowloris), 30s for the
// whole request, 30s for the response (streaming routes extend their own
// deadline), and idle keep-alive connections are closed after 2 minutes.
func newServer(h http.Handler, cfg config) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: cfg.ReadHeaderTimeout,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
	}
}

// healthCheck GETs url and returns the exit code: 0 for a 2xx answer.
func healthCheck(url string) int {
	c := &http.Client{Timeout: 3 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		fmt.Fprintln(os.Stderr, "healthcheck:", err)
		return 1
	}
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		fmt.Fprintln(os.Stderr, "healthcheck:", resp.Status)
		return 1
	}
	return 0
}
