// Command chi is the example service on a chi router: the same middleware
// stack as examples/server, added with r.Use in the recommended order, and
// limits where they belong:
//
//   - the page and its static files are not rate-limited (a browser loads
//     them all at once);
//
//   - every /api route is limited per client IP (slowdown, then ratelimit),
//     outside authentication, so that an unauthenticated flood is refused
//     before authentication costs anything;
//
//   - POST /api/login has a stricter per-IP limit on top (5 attempts per 15
//     minutes), which makes guessing passwords slow;
//
//   - the authenticated routes (GET /api/me) have a per-user limit inside
//     authentication, keyed by the user the request authenticated as, so
//     that users behind one NAT address are not limited together and one
//     user cannot get more by changing address.
//
//     go run ./examples/chi
//     curl -H 'Authorization: Bearer demo-alice' localhost:8080/api/me
//
// It takes every flag of examples/server, plus -login-limit, -login-window
// and -user-limit. Authentication is a stand-in: a bearer token
// "demo-<name>" authenticates as <name>. chi's route patterns
// ("/api/users/{id}") appear as http.route in the access log, so lines can
// be grouped without exploding cardinality.
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
	"strings"
	"syscall"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/shipshape-go/shipshape/examples/internal/app"
	"github.com/shipshape-go/shipshape/ratelimit"
	"github.com/shipshape-go/shipshape/reqlog"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Getenv, os.Stdout, nil))
}

// loginConfig is the stricter limit of POST /api/login and the per-user
// limit of the authenticated routes (per -rate-window).
type loginConfig struct {
	limit     int
	window    time.Duration
	userLimit int
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
		u, err := strconv.Atoi(getenv("USER_LIMIT"))
		if err != nil {
			u = 60
		}
		fs.IntVar(&login.userLimit, "user-limit", u, "requests per authenticated user per -rate-window on /api/me (env USER_LIMIT)")
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

// router is the chi version of the service's routes: the shared middleware
// stack for every request, the per-IP limits on /api, a stricter one on
// POST /api/login and a per-user one inside authentication.
func router(a *app.App, cfg app.Config, login loginConfig) (http.Handler, error) {
	mws, err := a.Middleware(cfg)
	if err != nil {
		return nil, err
	}
	limits, err := a.Limits(cfg)
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
	userLimiter, err := ratelimit.New(login.userLimit, cfg.Window,
		ratelimit.WithStore(a.Store), ratelimit.WithName("user"), ratelimit.WithKey(keyByUser),
		ratelimit.WithLogger(a.Logger))
	if err != nil {
		return nil, err
	}

	r := chi.NewRouter()
	r.Use(mws...)
	// Innermost: the route reaches the access line and Sentry although
	// the body limit in mws copies the request.
	r.Use(reqlog.RecordRoute)
	healthz, debugHang := app.HealthRoutes(cfg)
	r.Method(http.MethodGet, "/healthz", healthz)
	r.Get("/", a.Files.ServeHTTP)
	r.Handle("/static/*", http.StripPrefix("/static", a.Files))
	r.Route("/api", func(r chi.Router) {
		r.Use(limits...) // per client IP, before anything is authenticated
		r.Get("/hello", app.Hello)
		r.Post("/echo", app.Echo)
		r.Get("/stream", app.Stream)
		r.Get("/users/{id}", func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintf(w, "user %s\n", chi.URLParam(r, "id"))
		})
		r.With(loginLimiter.Handler).Post("/login", func(w http.ResponseWriter, r *http.Request) {
			// A real service checks the credentials here; the limit makes
			// guessing them slow.
			w.WriteHeader(http.StatusUnauthorized)
			fmt.Fprintln(w, "invalid credentials")
		})
		r.Group(func(r chi.Router) {
			r.Use(authenticate, userLimiter.Handler) // per user, once we know who it is
			r.Get("/me", func(w http.ResponseWriter, r *http.Request) {
				fmt.Fprintf(w, "hello %s\n", userOf(r.Context()))
			})
		})
	})
	if cfg.DebugPanic {
		r.Get("/debug/panic", app.Panic)
	}
	if debugHang != nil {
		r.Method(http.MethodGet, "/debug/hang", debugHang)
	}
	if cfg.DebugAlloc {
		r.Get("/debug/alloc", app.Alloc)
	}
	return r, nil
}

type userKey struct{}

// authenticate stands in for a real authentication middleware: the bearer
// token "demo-<name>" authenticates the request as <name>, which it puts
// in the context; anything else is 401.
func authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer demo-")
		if !ok || token == "" {
			w.Header().Set("WWW-Authenticate", "Bearer")
			http.Error(w, "authentication required", http.StatusUnauthorized)
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), userKey{}, token)))
	})
}

func userOf(ctx context.Context) string {
	u, _ := ctx.Value(userKey{}).(string)
	return u
}

// keyByUser keys the per-user limit by the authenticated user. A request
// that reaches it unauthenticated is a wiring mistake: ErrNoKey refuses it
// (400) rather than count it under a shared empty key.
func keyByUser(r *http.Request) (string, error) {
	if u := userOf(r.Context()); u != "" {
		return u, nil
	}
	return "", ratelimit.ErrNoKey
}
