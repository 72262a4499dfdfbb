package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"syscall"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"
	"github.com/go-chi/httprate"

	"github.com/shipshape-go/shipshape/accesslog"
	"github.com/shipshape-go/shipshape/logfile"
	"github.com/shipshape-go/shipshape/ratelimit"
	"github.com/shipshape-go/shipshape/recoverer"
	"github.com/shipshape-go/shipshape/slowdown"
)

// The three configurations of the load comparison. Each serves GET /hello
// with the same handler.
const (
	cfgBare      = "net/http"
	cfgShipshape = "shipshape"
	cfgChi       = "chi+httprate"
)

var configs = []string{cfgBare, cfgShipshape, cfgChi}

// helloBody is the response of the tiny handler.
const helloBody = "hello, world\n"

// Limits so large that no request of the run is ever delayed or refused:
// the load test measures the cost of deciding, not of refusing.
const (
	hugeLimit   = 1 << 30
	limitWindow = time.Minute
)

func hello(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = io.WriteString(w, helloBody)
}

// handlerFor builds the handler of configuration name. Log files go to
// logDir; closers must be called, in order, after the server stopped.
func handlerFor(name, logDir string) (h http.Handler, closers []func() error, err error) {
	switch name {
	case cfgBare:
		mux := http.NewServeMux()
		mux.HandleFunc("GET /hello", hello)
		return mux, nil, nil
	case cfgShipshape:
		return shipshapeStack(logDir)
	case cfgChi:
		return chiStack(logDir)
	}
	return nil, nil, fmt.Errorf("benchreport: unknown configuration %q", name)
}

// shipshapeStack is the recommended order, outermost first:
// ClientIPFromXFF → RequestID → accesslog → recoverer → slowdown →
// ratelimit → mux. The access log is the combined format through a
// BufferedWriter into a File, as examples/server writes it, except that the
// file does not rotate during the run (the chi Logger's file does not
// either).
func shipshapeStack(logDir string) (http.Handler, []func() error, error) {
	mws, mux, closers, err := shipshapeMiddleware(logDir)
	if err != nil {
		return nil, nil, err
	}
	h := mux
	for i := len(mws) - 1; i >= 0; i-- {
		h = mws[i].wrap(h)
	}
	return h, closers, nil
}

// namedMiddleware is one layer of the shipshape stack.
type namedMiddleware struct {
	name string
	wrap func(http.Handler) http.Handler
}

// shipshapeMiddleware returns the layers of the shipshape stack, outermost
// first, and the mux they wrap.
func shipshapeMiddleware(logDir string) ([]namedMiddleware, http.Handler, []func() error, error) {
	f, err := logfile.Open(filepath.Join(logDir, "shipshape-access.log"), logfile.WithMaxSize(0))
	if err != nil {
		return nil, nil, nil, err
	}
	bw, err := logfile.NewBufferedWriter(f)
	if err != nil {
		_ = f.Close()
		return nil, nil, nil, err
	}
	closers := []func() error{bw.Close, f.Close}
	fail := func(err error) ([]namedMiddleware, http.Handler, []func() error, error) {
		for _, c := range closers {
			_ = c()
		}
		return nil, nil, nil, err
	}
	store, err := ratelimit.NewMemoryStore()
	if err != nil {
		return fail(err)
	}
	limiter, err := ratelimit.New(hugeLimit, limitWindow, ratelimit.WithStore(store))
	if err != nil {
		return fail(err)
	}
	slow, err := slowdown.New(hugeLimit-1, limitWindow, slowdown.WithStore(store))
	if err != nil {
		return fail(err)
	}
	recovery, err := recoverer.New()
	if err != nil {
		return fail(err)
	}
	access, err := accesslog.New(slog.New(accesslog.NewCombinedHandler(bw, nil)))
	if err != nil {
		return fail(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /hello", hello)
	return []namedMiddleware{
		{"chi ClientIPFromXFF", middleware.ClientIPFromXFF("127.0.0.0/8", "::1/128")},
		{"chi RequestID", middleware.RequestID},
		{"accesslog", access},
		{"recoverer", recovery},
		{"slowdown", slow.Handler},
		{"ratelimit", limiter.Handler},
	}, mux, closers, nil
}

// chiStack is what a Go user picks today: a chi router with chi's
// RequestID, Logger (writing to a file, as the shipshape stack does),
// Recoverer, and httprate.LimitByIP.
func chiStack(logDir string) (http.Handler, []func() error, error) {
	f, err := os.OpenFile(filepath.Join(logDir, "chi-access.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, nil, err
	}
	r := chi.NewRouter()
	r.Use(middleware.RequestID)
	r.Use(middleware.RequestLogger(&middleware.DefaultLogFormatter{Logger: log.New(f, "", log.LstdFlags), NoColor: true}))
	r.Use(middleware.Recoverer)
	//lint:ignore SA1019 LimitByIP (keyed by RemoteAddr) is the limiter Go users pick today; wrk connects directly, so the key is right.
	r.Use(httprate.LimitByIP(hugeLimit, limitWindow))
	r.Get("/hello", hello)
	return r, []func() error{f.Close}, nil
}

// newServer returns the http.Server every configuration runs in: the
// timeouts and limits of a production server (see examples/server).
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

// serveMain is the child mode (-serve NAME): it listens on addr, prints
// "listening ADDR" on stdout, and serves until SIGTERM or SIGINT, writing a
// CPU profile to cpuProfile when it is set.
func serveMain(name, addr, logDir, cpuProfile string) error {
	h, closers, err := handlerFor(name, logDir)
	if err != nil {
		return err
	}
	defer func() {
		for _, c := range closers {
			_ = c()
		}
	}()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	if cpuProfile != "" {
		pf, err := os.Create(cpuProfile)
		if err != nil {
			ln.Close()
			return err
		}
		defer pf.Close()
		if err := pprof.StartCPUProfile(pf); err != nil {
			ln.Close()
			return err
		}
		defer pprof.StopCPUProfile()
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	srv := newServer(h)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	fmt.Printf("listening %s\n", ln.Addr())
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
