// Package app is the service the shipshape examples run: configuration,
// the middleware stack in the recommended order, routes, logs and graceful
// shutdown. examples/server serves it in one process; examples/cluster runs
// it in supervised worker processes.
package app

import (
	"context"
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
	"net/netip"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/getsentry/sentry-go"
	"github.com/go-chi/chi/v5/middleware"
	"github.com/redis/go-redis/v9"

	"github.com/shipshape-go/shipshape/accesslog"
	"github.com/shipshape-go/shipshape/connlimit"
	"github.com/shipshape-go/shipshape/logfile"
	"github.com/shipshape-go/shipshape/ratelimit"
	"github.com/shipshape-go/shipshape/ratelimit/redisstore"
	"github.com/shipshape-go/shipshape/recoverer"
	"github.com/shipshape-go/shipshape/reqlog"
	"github.com/shipshape-go/shipshape/sentryreport"
	"github.com/shipshape-go/shipshape/slowdown"
	"github.com/shipshape-go/shipshape/static"
)

//go:embed static
var embedded embed.FS

// App is the wired service: what it depends on (logs, rate-limit store,
// Sentry, embedded files), its handler, and what must be closed when it
// stops.
type App struct {
	// Handler is the middleware stack around the routes (set by New).
	Handler http.Handler
	// Logger gets the application records (start, stop, panics).
	Logger *slog.Logger
	// ServerLog is for http.Server.ErrorLog: net/http's own errors, through
	// Logger.
	ServerLog *log.Logger
	// AccessLog gets one record per request (accesslog).
	AccessLog *slog.Logger
	// Store counts requests for the rate limits and the slow-down: memory,
	// or Redis when Config.RedisURL is set.
	Store ratelimit.Store
	// Sentry is the hub panics are reported to; nil without a DSN.
	Sentry *sentry.Hub
	// Files serves the embedded static files.
	Files http.Handler

	closers []func() error
}

// ConnLimit returns the listener wrapper that applies cfg.MaxConnsPerIP
// (layer 4: connections beyond it are reset before any HTTP is read). The
// trusted proxies are exempt: their connections carry every client's
// requests.
func ConnLimit(cfg Config) func(net.Listener) (net.Listener, error) {
	exempt := trustedPrefixes(cfg)
	return func(ln net.Listener) (net.Listener, error) {
		if cfg.MaxConnsPerIP <= 0 {
			return ln, nil
		}
		return connlimit.New(ln, connlimit.WithMaxConnsPerIP(cfg.MaxConnsPerIP), connlimit.WithExempt(exempt...))
	}
}

// trustedPrefixes is cfg.TrustedProxies parsed (ParseConfig has checked
// each one).
func trustedPrefixes(cfg Config) []netip.Prefix {
	var out []netip.Prefix
	for _, p := range cfg.TrustedProxies {
		if pfx, err := netip.ParsePrefix(p); err == nil {
			out = append(out, pfx)
		}
	}
	return out
}

// Close flushes and closes what Open opened (log files, Redis, Sentry),
// last opened first.
func (a *App) Close() error {
	var errs []error
	for i := len(a.closers) - 1; i >= 0; i-- {
		errs = append(errs, a.closers[i]())
	}
	return errors.Join(errs...)
}

// New opens the service for cfg and builds its handler: the middleware
// stack around a ServeMux with the routes. Request lines and application
// records go to stdout (and the access log file under cfg.LogDir).
func New(cfg Config, stdout io.Writer) (*App, error) {
	a, err := Open(cfg, stdout)
	if err != nil {
		return nil, err
	}
	mws, err := a.Middleware(cfg)
	if err != nil {
		a.Close()
		return nil, err
	}
	h, err := a.Routes(cfg)
	if err != nil {
		a.Close()
		return nil, err
	}
	for i := len(mws) - 1; i >= 0; i-- {
		h = mws[i](h)
	}
	a.Handler = h
	return a, nil
}

// Open opens what the service depends on: logs, the rate-limit store,
// Sentry and the embedded files. Close releases them.
func Open(cfg Config, stdout io.Writer) (_ *App, err error) {
	a := &App{}
	defer func() {
		if err != nil {
			a.Close()
		}
	}()
	if a.AccessLog, err = a.openLogs(cfg, stdout); err != nil {
		return nil, err
	}
	if a.Store, err = a.openStore(cfg); err != nil {
		return nil, err
	}
	if a.Sentry, err = a.openSentry(cfg); err != nil {
		return nil, err
	}
	assets, err := fs.Sub(embedded, "static")
	if err != nil {
		return nil, err
	}
	if a.Files, err = static.New(assets); err != nil {
		return nil, err
	}
	return a, nil
}

// isHealthCheck exempts the health check from limits and the access log.
func isHealthCheck(r *http.Request) bool { return r.URL.Path == "/healthz" }

// Middleware returns the stack every request passes, outermost first:
// chi ClientIPFromXFF (trusting cfg.TrustedProxies) → accesslog (with a
// request id: its own, or the X-Request-Id a trusted proxy sent) →
// RequireClientIP (with trusted proxies) → recoverer → request
// body limit. The rate limits are not in it: [App.Limits] puts them on the
// API routes only (see there). Use it with chi's r.Use(mws...) or wrap a
// handler in reverse order.
func (a *App) Middleware(cfg Config) ([]func(http.Handler) http.Handler, error) {
	var mws []func(http.Handler) http.Handler
	if len(cfg.TrustedProxies) > 0 {
		mws = append(mws, middleware.ClientIPFromXFF(cfg.TrustedProxies...))
	}
	recOpts := []recoverer.Option{recoverer.WithLogger(a.Logger)}
	if a.Sentry != nil {
		rep, err := sentryreport.New(sentryreport.WithHub(a.Sentry))
		if err != nil {
			return nil, err
		}
		recOpts = append(recOpts, recoverer.WithReporter(rep))
	}
	recovery, err := recoverer.New(recOpts...)
	if err != nil {
		return nil, err
	}
	// accesslog's request id is chi's (middleware.GetReqID reads it) at one
	// allocation instead of six; it keeps a proxy's X-Request-Id only when
	// the proxy is a trusted one, where chi's RequestID takes any client's.
	idOpt := accesslog.WithRequestID()
	if len(cfg.TrustedProxies) > 0 {
		idOpt = accesslog.WithRequestIDFrom(middleware.RequestIDHeader, cfg.TrustedProxies...)
	}
	access, err := accesslog.New(a.AccessLog, accesslog.WithSkip(isHealthCheck), idOpt)
	if err != nil {
		return nil, err
	}
	mws = append(mws, access)
	if len(cfg.TrustedProxies) > 0 {
		// After the access log, so that the refusal is logged.
		mws = append(mws, RequireClientIP(trustedPrefixes(cfg)))
	}
	maxBody := func(next http.Handler) http.Handler { return http.MaxBytesHandler(next, cfg.MaxBodyBytes) }
	return append(mws, recovery, maxBody), nil
}

// Limits returns the rate limits of the API, outermost first: slowdown
// (when cfg.SlowAfter > 0), then ratelimit, both counting per client IP in
// a.Store under the policy names "slowdown" and "api".
//
// They guard the API routes only, not the page and its static assets: a
// browser loads a single-page application's dozens of files at once, and
// counting them would slow every first page load down (or refuse it) with
// a threshold meant for API calls. Static files are cheap to serve and
// cached by the browser; a flood of them is the front proxy's or
// connlimit's job.
func (a *App) Limits(cfg Config) ([]func(http.Handler) http.Handler, error) {
	var mws []func(http.Handler) http.Handler
	if cfg.SlowAfter > 0 {
		slow, err := slowdown.New(cfg.SlowAfter, cfg.Window,
			slowdown.WithStore(a.Store), slowdown.WithStep(cfg.SlowStep), slowdown.WithMaxDelay(cfg.SlowMax),
			slowdown.WithLogger(a.Logger))
		if err != nil {
			return nil, err
		}
		mws = append(mws, slow.Handler)
	}
	limiter, err := ratelimit.New(cfg.Limit, cfg.Window,
		ratelimit.WithStore(a.Store), ratelimit.WithName("api"), ratelimit.WithLogger(a.Logger))
	if err != nil {
		return nil, err
	}
	return append(mws, limiter.Handler), nil
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
	// application logger can share it. Records logged with a request's
	// context carry its id, client address, route and trace ids.
	app, err := reqlog.NewHandler(out)
	if err != nil {
		return nil, err
	}
	a.Logger = slog.New(app).With(cfg.LogAttrs...)
	a.ServerLog = slog.NewLogLogger(out, slog.LevelWarn)
	if cfg.AccessLog != nil { // a writer that needs neither a buffer nor a Close
		return slog.New(slog.NewMultiHandler(accesslog.NewCombinedHandler(cfg.AccessLog, nil), out)), nil
	}
	if cfg.LogDir == "" {
		return a.Logger, nil
	}
	if err := os.MkdirAll(cfg.LogDir, 0o750); err != nil {
		return nil, err
	}
	// What the file and the buffer cannot write (a full disk) is counted
	// and reported through the application logger, not lost silently.
	f, err := logfile.Open(filepath.Join(cfg.LogDir, cfg.LogName),
		logfile.WithMaxSize(cfg.LogMaxSize), logfile.WithRotateEvery(24*time.Hour),
		logfile.WithMaxBackups(cfg.LogMaxBackups), logfile.WithCompression(true),
		logfile.WithLogger(a.Logger))
	if err != nil {
		return nil, err
	}
	var bw *logfile.BufferedWriter
	// Runs last, once bw and f are closed and their counts final.
	a.closers = append(a.closers, func() error {
		if bw != nil && bw.Dropped()+f.Dropped() > 0 {
			a.Logger.Warn("access log lines dropped", "lines", bw.Dropped(), "file_batches", f.Dropped(), "path", filepath.Join(cfg.LogDir, cfg.LogName))
		}
		return nil
	})
	a.closers = append(a.closers, f.Close)
	// SIGHUP reopens the file (after an external logrotate; systemd's
	// ExecReload sends it), instead of Go's default of exiting. Under the
	// cluster supervisor SIGHUP is a rolling restart and workers never get
	// it from the supervisor.
	reopenCtx, stopReopen := context.WithCancel(context.Background())
	reopened := make(chan struct{})
	go func() {
		defer close(reopened)
		f.ReopenOnSignal(reopenCtx, syscall.SIGHUP)
	}()
	a.closers = append(a.closers, func() error { stopReopen(); <-reopened; return nil })
	bw, err = logfile.NewBufferedWriter(f, logfile.WithLogger(a.Logger))
	if err != nil {
		return nil, err
	}
	a.closers = append(a.closers, bw.Close) // closed before f: everything buffered reaches the file
	return slog.New(slog.NewMultiHandler(accesslog.NewCombinedHandler(bw, nil), out)), nil
}

// openStore returns the rate-limit store: Redis when REDIS_URL is set
// (falling back to memory while Redis is down), else ratelimit's default
// store: in a cluster worker the supervisor's shared table (one limit for
// the service), in a plain process a MemoryStore.
func (a *App) openStore(cfg Config) (ratelimit.Store, error) {
	if cfg.RedisURL == "" {
		return ratelimit.DefaultStore(nil)
	}
	opts, err := redis.ParseURL(cfg.RedisURL)
	if err != nil {
		return nil, fmt.Errorf("app: REDIS_URL: %w", err)
	}
	// Let the store's per-call timeout cut socket I/O (see redisstore).
	opts.ContextTimeoutEnabled = true
	client := redis.NewClient(opts)
	store, err := redisstore.New(client, redisstore.WithLogger(a.Logger))
	if err != nil {
		client.Close()
		return nil, fmt.Errorf("app: redis store: %w", err)
	}
	a.closers = append(a.closers, client.Close, store.Close)
	return store, nil
}

// openSentry returns a hub bound to a client for cfg.SentryDSN, or nil; the
// Middleware reports panics to it through sentryreport.
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

// Routes is the ServeMux of the service: / and /static/ (embedded files),
// /healthz, and, behind [App.Limits], GET /api/hello, POST /api/echo and
// GET /api/stream; GET /debug/panic, /debug/hang and /debug/alloc when
// cfg.DebugPanic, DebugHang and DebugAlloc are set. The muxes
// are wrapped in reqlog.RecordRoute, so that the route pattern reaches the
// access line and the Sentry event although http.MaxBytesHandler and
// http.StripPrefix copy the request on the way.
func (a *App) Routes(cfg Config) (http.Handler, error) {
	limits, err := a.Limits(cfg)
	if err != nil {
		return nil, err
	}
	api := http.NewServeMux()
	api.HandleFunc("GET /api/hello", Hello)
	api.HandleFunc("POST /api/echo", Echo)
	api.HandleFunc("GET /api/stream", Stream)
	limited := reqlog.RecordRoute(api)
	for i := len(limits) - 1; i >= 0; i-- {
		limited = limits[i](limited)
	}

	mux := http.NewServeMux()
	mux.Handle("GET /static/", http.StripPrefix("/static", a.Files))
	mux.Handle("GET /{$}", a.Files) // the embedded index.html
	healthz, debugHang := HealthRoutes(cfg)
	mux.Handle("GET /healthz", healthz)
	if debugHang != nil {
		mux.Handle("GET /debug/hang", debugHang)
	}
	mux.Handle("/api/", limited)
	if cfg.DebugPanic {
		mux.HandleFunc("GET /debug/panic", Panic)
	}
	if cfg.DebugAlloc {
		mux.HandleFunc("GET /debug/alloc", Alloc)
	}
	return reqlog.RecordRoute(mux), nil
}

// Healthz answers the health check.
func Healthz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	io.WriteString(w, "ok\n")
}

// Hello answers with the client address the server saw.
func Hello(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"hello": clientIP(r)})
}

// Echo answers with the JSON body it got (bounded by the body limit).
func Echo(w http.ResponseWriter, r *http.Request) {
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
}

// Stream sends five server-sent events, 200ms apart. Streaming is exempt
// from the server's WriteTimeout: it extends its deadline per event.
func Stream(w http.ResponseWriter, r *http.Request) {
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
}

// Panic panics on purpose, to show what recoverer does.
func Panic(http.ResponseWriter, *http.Request) {
	panic("debug: panic on purpose")
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
