package app

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"time"
)

// Serve serves on ln until ctx is done, then drains in-flight requests and
// flushes logs and Sentry. Request lines and application records go to
// stdout and the access log file.
func Serve(ctx context.Context, ln net.Listener, cfg Config, stdout io.Writer) error {
	if cfg.MetricsAddr != "" {
		m, err := NewMetrics()
		if err != nil {
			ln.Close()
			return err
		}
		defer m.Shutdown(context.Background())
		mln, err := net.Listen("tcp", cfg.MetricsAddr)
		if err != nil {
			ln.Close()
			return fmt.Errorf("app: -metrics-addr: %w", err)
		}
		msrv := ServeMetrics(mln, m.Handler)
		defer msrv.Close()
	}
	a, err := New(cfg, stdout)
	if err != nil {
		ln.Close()
		return err
	}
	defer a.Close()
	srv := NewServer(a.Handler, cfg)
	srv.ErrorLog = a.ServerLog
	if ln, err = ConnLimit(cfg)(ln); err != nil {
		return err
	}
	a.Logger.Info("listening", "addr", ln.Addr().String(), "redis", cfg.RedisURL != "", "sentry", cfg.SentryDSN != "",
		"metrics", cfg.MetricsAddr)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	a.Logger.Info("shutting down")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err = srv.Shutdown(shutdownCtx)
	if errors.Is(err, context.DeadlineExceeded) {
		err = srv.Close()
	}
	return err
}

// NewServer returns an http.Server hardened with timeouts and limits: a
// client has ReadHeaderTimeout to send its headers (slowloris), 30s for the
// whole request, 30s for the response (streaming routes extend their own
// deadline), and idle keep-alive connections are closed after 2 minutes.
func NewServer(h http.Handler, cfg Config) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: cfg.ReadHeaderTimeout,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
	}
}

// Preflight handles what a main does between ParseConfig and serving: -h
// (exit 0), a bad command line (the error on stderr, exit 2) and
// -healthcheck (exit with its result). It reports whether main should
// exit now, and with which code.
func Preflight(cfg Config, parseErr error) (code int, exit bool) {
	switch {
	case errors.Is(parseErr, flag.ErrHelp):
		return 0, true
	case parseErr != nil:
		fmt.Fprintln(os.Stderr, parseErr)
		return 2, true
	case cfg.HealthCheck != "":
		return HealthCheck(cfg.HealthCheck), true
	}
	return 0, false
}

// HealthCheck GETs url and returns the exit code: 0 for a 2xx answer.
func HealthCheck(url string) int {
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
