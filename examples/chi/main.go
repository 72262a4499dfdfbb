// Command chi is the example service on a chi router: the same middleware
// stack as examples/server, added with r.Use in the recommended order, plus
// a per-route limit — POST /login allows 5 attempts per client per 15
// minutes on top of the service-wide limit:
//
//	go run ./examples/chi
//
// It takes every flag of examples/server, plus -login-limit and
// -login-window. chi's route patterns ("/users/{id}") appear as http.route
// in the access log, so lines can be grouped without exploding cardinality.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/shipshape-go/shipshape/examples/internal/app"
	"github.com/shipshape-go/shipshape/ratelimit"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Getenv, os.Stdout, nil))
}

// loginConfig is the stricter limit of POST /login.
type loginConfig struct {
	limit  int
	window time.Duration
}

// run is main with an exit code: 0 after a clean shutdown, 1 on a runtime
// error, 2 on a bad command line. Request lines and application records go
// to stdout. When ready is not nil it gets the listener's address once the
// server accepts connections.
func run(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer, ready func(addr string)) int {
	var login loginConfig
	cfg, err := app.ParseConfig("chi", args, getenv, os.Stderr, func(fs *flag.FlagSet) {
		n, err := strconv.Atoi(getenv("LOGIN_LIMIT"))
		if err != nil {
			n = 5
		}
		fs.IntVar(&login.limit, "login-limit", n, "POST /login attempts per client per -login-window (env LOGIN_LIMIT)")
		w, err := time.ParseDuration(getenv("LOGIN_WINDOW"))
		if err != nil {
			w = 15 * time.Minute
		}
		fs.DurationVar(&login.window, "login-window", w, "window of -login-limit (env LOGIN_WINDOW)")
	})
	if code, exit := app.Preflight(cfg, err); exit {
		return code
	}
	if err := serve(ctx, cfg, login, stdout, ready); err != nil {
		fmt.Fprintln(os.Stderr, "chi:", err)
		return 1
	}
	return 0
}

func serve(ctx context.Context, cfg app.Config, login loginConfig, stdout io.Writer, ready func(string)) error {
	a, err := app.Open(cfg, stdout)
	if err != nil {
		return err
	}
	defer a.Close()
	h, err := router(a, cfg, login)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return err
	}
	if ln, err = app.ConnLimit(cfg)(ln); err != nil {
		return err
	}
	srv := app.NewServer(h, cfg)
	srv.ErrorLog = a.ServerLog
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	a.Logger.Info("listening", "addr", ln.Addr().String())
	if ready != nil {
		ready(ln.Addr().String())
	}
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return srv.Shutdown(shutdownCtx)
}

// router is the chi version of the service's routes, with the shared
// middleware stack and a stricter limit on POST /login.
func router(a *app.App, cfg app.Config, login loginConfig) (http.Handler, error) {
	mws, err := a.Middleware(cfg)
	if err != nil {
		return nil, err
	}
	// Its own name: the login policy counts separately from "api" in the
	// shared store, and has its own RateLimit header item.
	loginLimiter, err := ratelimit.New(login.limit, login.window,
		ratelimit.WithStore(a.Store), ratelimit.WithName("login"), ratelimit.WithLogger(a.Logger))
	if err != nil {
		return nil, err
	}

	r := chi.NewRouter()
	r.Use(mws...)
	r.Get("/healthz", app.Healthz)
	r.Get("/", a.Files.ServeHTTP)
	r.Handle("/static/*", http.StripPrefix("/static", a.Files))
	r.Route("/api", func(r chi.Router) {
		r.Get("/hello", app.Hello)
		r.Post("/echo", app.Echo)
		r.Get("/stream", app.Stream)
	})
	r.Get("/users/{id}", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "user %s\n", chi.URLParam(r, "id"))
	})
	r.With(loginLimiter.Handler).Post("/login", func(w http.ResponseWriter, r *http.Request) {
		// A real service checks the credentials here; the limit makes
		// guessing them slow.
		w.WriteHeader(http.StatusUnauthorized)
		fmt.Fprintln(w, "invalid credentials")
	})
	if cfg.DebugPanic {
		r.Get("/debug/panic", app.Panic)
	}
	return r, nil
}
