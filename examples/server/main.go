// Command server is shipshape's example service: the full middleware
// stack on a net/http ServeMux, with embedded defaults so that
//
//	go run ./examples/server
//
// serves on :8080 with nothing else installed. Run it with -h for the flags;
// every flag can also be set by the environment variable shown in its help.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/go-chi/chi/v5/middleware"

	"github.com/shipshape-go/shipshape/ratelimit"
)

// config is everything the server can be told.
type config struct {
	Addr           string
	TrustedProxies []string
	Limit          int
	Window         time.Duration
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
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, cfg, slog.New(slog.NewTextHandler(os.Stderr, nil))); err != nil {
		fmt.Fprintln(os.Stderr, "server:", err)
		os.Exit(1)
	}
}

func parseConfig(args []string, getenv func(string) string) (config, error) {
	fs := flag.NewFlagSet("server", flag.ContinueOnError)
	env := func(name, def string) string {
		if v := getenv(name); v != "" {
			return v
		}
		return def
	}
	var cfg config
	var proxies string
	fs.StringVar(&cfg.Addr, "addr", env("ADDR", ":8080"), "listen address (env ADDR)")
	fs.StringVar(&proxies, "trusted-proxies", env("TRUSTED_PROXIES", "127.0.0.0/8,::1/128"),
		"comma-separated CIDRs whose X-Forwarded-For is trusted (env TRUSTED_PROXIES)")
	limit, _ := strconv.Atoi(env("RATE_LIMIT", "100"))
	fs.IntVar(&cfg.Limit, "rate-limit", limit, "requests per client per window (env RATE_LIMIT)")
	window, _ := time.ParseDuration(env("RATE_WINDOW", "1m"))
	fs.DurationVar(&cfg.Window, "rate-window", window, "rate-limit window (env RATE_WINDOW)")
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	cfg.TrustedProxies = splitList(proxies)
	return cfg, nil
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// newHandler builds the middleware stack around the routes.
func newHandler(cfg config, logger *slog.Logger) (http.Handler, error) {
	limiter, err := ratelimit.New(cfg.Limit, cfg.Window, ratelimit.WithLogger(logger))
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "shipshape example server")
	})
	mux.HandleFunc("GET /api/hello", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]string{"hello": clientIP(r)})
	})
	var h http.Handler = limiter.Handler(mux)
	h = middleware.ClientIPFromXFF(cfg.TrustedProxies...)(h)
	return h, nil
}

// clientIP is the client address chi's ClientIPFromXFF found, else the TCP
// peer (a request that came straight to the server, not through a proxy).
func clientIP(r *http.Request) string {
	if ip := middleware.GetClientIP(r.Context()); ip != "" {
		return ip
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// run listens on cfg.Addr and serves until ctx is done.
func run(ctx context.Context, cfg config, logger *slog.Logger) error {
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return err
	}
	return serve(ctx, ln, cfg, logger)
}

// serve serves on ln until ctx is done, then shuts down gracefully.
func serve(ctx context.Context, ln net.Listener, cfg config, logger *slog.Logger) error {
	h, err := newHandler(cfg, logger)
	if err != nil {
		ln.Close()
		return err
	}
	srv := newServer(h)
	logger.Info("listening", "addr", ln.Addr().String())
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return srv.Shutdown(shutdownCtx)
}

// newServer returns an http.Server hardened with timeouts and limits.
func newServer(h http.Handler) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
	}
}
