// Package app is the service the shipshape examples run: configuration,
// the middleware stack in the recommended order, routes, logs and graceful
// shutdown. examples/server serves it in one process; examples/cluster runs
// it in supervised worker processes.
package app

import (
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/getsentry/sentry-go"
	"github.com/go-chi/chi/v5/middleware"
	"github.com/redis/go-redis/v9"
	slogmulti "github.com/samber/slog-multi"

	"github.com/shipshape-go/shipshape/accesslog"
	"github.com/shipshape-go/shipshape/ratelimit"
	"github.com/shipshape-go/shipshape/ratelimit/redisstore"
	"github.com/shipshape-go/shipshape/recoverer"
	"github.com/shipshape-go/shipshape/slowdown"
	"github.com/shipshape-go/shipshape/static"
)

//go:embed static
var embedded embed.FS

// App is the wired service: its handler and what must be closed when it
// stops.
type App struct {
	// Handler is the middleware stack around the routes.
	Handler http.Handler
	// Logger gets the application records (start, stop, panics).
	Logger *slog.Logger
	// ServerLog is for http.Server.ErrorLog: net/http's own errors, through
	// Logger.
	ServerLog *log.Logger

	closers []func() error
}

// ConnLimit returns the listener wrapper that applies cfg.MaxConnsPerIP
// (layer 4: connections beyond it are reset before any HTTP is read).
func ConnLimit(cfg Config) func(net.Listener) net.Listener {
	return func(ln net.Listener) net.Listener {
		if cfg.MaxConnsPerIP <= 0 {
			return ln
		}
		return ratelimit.LimitListener(ln, ratelimit.WithMaxConnsPerIP(cfg.MaxConnsPerIP))
	}
}

// Close flushes and closes what New opened (log files, Redis, Sentry),
// last opened first.
func (a *App) Close() error {
	var errs []error
	for i := len(a.closers) - 1; i >= 0; i-- {
		errs = append(errs, a.closers[i]())
	}
	return errors.Join(errs...)
}

// New builds the service for cfg; request lines and application records
// go to stdout (and the access log file under cfg.LogDir).
func New(cfg Config, stdout io.Writer) (_ *App, err error) {
	a := &App{}
	defer func() {
		if err != nil {
			a.Close()
		}
	}()
	accessLog, err := a.openLogs(cfg, stdout)
	if err != nil {
		return nil, err
	}
	store, err := a.openStore(cfg)
	if err != nil {
		return nil, err
	}
	hub, err := a.openSentry(cfg)
	if err != nil {
		return nil, err
	}

	health := func(r *http.Request) bool { return r.URL.Path == "/healthz" }
	limiter, err := ratelimit.New(cfg.Limit, cfg.Window,
		ratelimit.WithStore(store), ratelimit.WithName("api"),
		ratelimit.WithSkip(health), ratelimit.WithLogger(a.Logger))
	if err != nil {
		return nil, err
	}
	assets, err := fs.Sub(embedded, "static")
	if err != nil {
		return nil, err
	}
	files, err := static.New(assets)
	if err != nil {
		return nil, err
	}

	var h http.Handler = a.routes(cfg, files)
	h = http.MaxBytesHandler(h, cfg.MaxBodyBytes)
	h = limiter.Handler(h)
	if cfg.SlowAfter > 0 {
		slow, err := slowdown.New(cfg.SlowAfter, cfg.Window,
			slowdown.WithStore(store), slowdown.WithStep(cfg.SlowStep), slowdown.WithMaxDelay(cfg.SlowMax),
			slowdown.WithSkip(health), slowdown.WithLogger(a.Logger))
		if err != nil {
			return nil, err
		}
		h = slow.Handler(h)
	}
	recOpts := []recoverer.Option{recoverer.WithLogger(a.Logger)}
	if hub != nil {
		recOpts = append(recOpts, recoverer.WithSentry(hub))
	}
	h = recoverer.New(recOpts...)(h)
	h = accesslog.New(accessLog, accesslog.WithSkip(health))(h)
	h = middleware.RequestID(h)
	if len(cfg.TrustedProxies) > 0 {
		h = middleware.ClientIPFromXFF(cfg.TrustedProxies...)(h)
	}
	a.Handler = h
	return a, nil
}

// openLogs sets up the access log (combined format into a rotating gzip'd
// file, plus stdout) and the application logger (stdout), and returns the
// access logger.
func (a *App) openLogs(cfg Config, stdout io.Writer) (*slog.Logger, error) {
	var out slog.Handler
	switch cfg.LogFormat {
	case "json":
		out = slog.NewJSONHandler(stdout, nil)
	case "dev":
		if isTerminal(stdout) {
			out = accesslog.NewColorDevHandler(stdout, nil)
		} else {
			out = accesslog.NewDevHandler(stdout, nil)
		}
	default:
		out = slog.DiscardHandler
	}
	// The dev handler writes other records as text lines, so the
	// application logger can share it.
	a.Logger = slog.New(out)
	a.ServerLog = slog.NewLogLogger(out, slog.LevelWarn)
	if cfg.LogDir == "" {
		return a.Logger, nil
	}
	if err := os.MkdirAll(cfg.LogDir, 0o750); err != nil {
		return nil, err
	}
	f, err := accesslog.OpenFile(filepath.Join(cfg.LogDir, cfg.LogName),
		accesslog.WithMaxSize(100<<20), accesslog.WithRotateEvery(24*time.Hour),
		accesslog.WithMaxBackups(14), accesslog.WithCompress(true))
	if err != nil {
		return nil, err
	}
	a.closers = append(a.closers, f.Close)
	bw := accesslog.NewBufferedWriter(f)
	a.closers = append(a.closers, bw.Close) // closed before f: everything buffered reaches the file
	return slog.New(slogmulti.Fanout(accesslog.NewCombinedHandler(bw, nil), out)), nil
}

// openStore returns the rate-limit store: Redis when REDIS_URL is set
// (falling back to memory while Redis is down), else memory.
func (a *App) openStore(cfg Config) (ratelimit.Store, error) {
	if cfg.RedisURL == "" {
		return ratelimit.NewMemoryStore(), nil
	}
	opts, err := redis.ParseURL(cfg.RedisURL)
	if err != nil {
		return nil, fmt.Errorf("app: REDIS_URL: %w", err)
	}
	client := redis.NewClient(opts)
	store := redisstore.New(client, redisstore.WithLogger(a.Logger))
	a.closers = append(a.closers, client.Close, store.Close)
	return store, nil
}

// openSentry returns a hub bound to a client for cfg.SentryDSN, or nil.
func (a *App) openSentry(cfg Config) (*sentry.Hub, error) {
	if cfg.SentryDSN == "" {
		return nil, nil
	}
	client, err := sentry.NewClient(sentry.ClientOptions{Dsn: cfg.SentryDSN})
	if err != nil {
		return nil, fmt.Errorf("app: SENTRY_DSN: %w", err)
	}
	a.closers = append(a.closers, func() error {
		client.Flush(2 * time.Second) // what is queued, after the last request
		client.Close()
		return nil
	})
	return sentry.NewHub(client, sentry.NewScope()), nil
}

func (a *App) routes(cfg Config, files http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /static/", http.StripPrefix("/static", files))
	mux.Handle("GET /{$}", files) // the embedded index.html
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		io.WriteString(w, "ok\n")
	})
	mux.HandleFunc("GET /api/hello", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"hello": clientIP(r)})
	})
	mux.HandleFunc("POST /api/echo", func(w http.ResponseWriter, r *http.Request) {
		var body any
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			var tooBig *http.MaxBytesError
			if errors.As(err, &tooBig) {
				writeJSON(w, http.StatusRequestEntityTooLarge, map[string]string{"error": "body too large"})
				return
			}
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid JSON"})
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"echo": body})
	})
	mux.HandleFunc("GET /api/stream", func(w http.ResponseWriter, r *http.Request) {
		// Streaming is exempt from the server's WriteTimeout: extend the
		// deadline per event instead.
		rc := http.NewResponseController(w)
		w.Header().Set("Content-Type", "text/event-stream")
		w.Header().Set("Cache-Control", "no-store")
		for i := range 5 {
			_ = rc.SetWriteDeadline(time.Now().Add(10 * time.Second))
			fmt.Fprintf(w, "id: %d\ndata: tick %d\n\n", i, i)
			if err := rc.Flush(); err != nil {
				return
			}
			select {
			case <-r.Context().Done():
				return
			case <-time.After(200 * time.Millisecond):
			}
		}
	})
	if cfg.DebugPanic {
		mux.HandleFunc("GET /debug/panic", func(http.ResponseWriter, *http.Request) {
			panic("debug: panic on purpose")
		})
	}
	return mux
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
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

// isTerminal reports whether w is a character device (a terminal), where
// colours help; files and pipes get plain text.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
