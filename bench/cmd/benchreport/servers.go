package main

import (
	"context"
	"encoding/json"
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
	"sync/atomic"
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

// The Go configurations of the load comparison. Each serves GET /hello and
// GET /json with the same handlers.
const (
	cfgBare      = "net/http"
	cfgShipshape = "shipshape"
	cfgChi       = "chi+httprate"
	// cfgFloor is no middleware: the bare mux behind a wrapper that only
	// burns floorWork of CPU and sets the two RateLimit fields the
	// shipshape stack sends, as fixed strings. Its ratio to net/http is
	// the most any middleware of that cost and those headers can reach on
	// this machine, whatever it does inside.
	cfgFloor = "net/http + 3 µs"
)

// floorWork is about what the shipshape middleware costs in-process on one
// goroutine (the layer table of the report): cfgFloor's busy wait.
const floorWork = 3 * time.Microsecond

var configs = []string{cfgBare, cfgShipshape, cfgChi, cfgFloor}

// The Node peers (bench/node/server.js): express with express-rate-limit,
// express-slow-down and morgan, in one process and in cluster mode.
const (
	cfgNode        = "node express"
	cfgNodeCluster = "node express cluster"
)

var nodeConfigs = []string{cfgNode, cfgNodeCluster}

// helloBody is the response of the tiny handler.
const helloBody = "hello, world\n"

// Limits so large that no request of the run is ever delayed or refused:
// the load test measures the cost of deciding, not of refusing.
const (
	hugeLimit   = 1 << 30
	limitWindow = time.Minute
)

// floor is cfgFloor's wrapper: floorWork of CPU, then the RateLimit
// fields the shipshape stack sends (fixed values of the same length).
func floor(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		burn(floorWork)
		h := w.Header()
		h["Ratelimit"] = []string{`"default";r=1073741823;t=60`}
		h["Ratelimit-Policy"] = []string{`"default";q=1073741824;w=60`}
		next.ServeHTTP(w, r)
	})
}

// burnSink keeps burn's arithmetic from being optimised away.
var burnSink atomic.Uint64

// burn keeps the CPU busy for d (wall time, on a goroutine that is not
// descheduled meanwhile: CPU time under load is about the same).
func burn(d time.Duration) {
	end := time.Now().Add(d)
	x := uint64(1)
	for time.Now().Before(end) {
		for range 32 {
			x = x*6364136223846793005 + 1442695040888963407
		}
	}
	burnSink.Add(x)
}

func hello(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = io.WriteString(w, helloBody)
}

// The /json handler does what a small API endpoint does: it looks a
// product and its neighbours up in a catalogue (a map), computes a score
// and encodes the result with encoding/json, about 50 µs of CPU on the
// bench machine in all (BenchmarkJSONHandler). bench/node/server.js does the
// same in JavaScript, to the byte: the report checks that both answer
// jsonBody().
const (
	catalogueSize = 1000
	jsonSKU       = "sku-0042" // the product every request asks for
	jsonRelated   = 8          // neighbours listed with it
	// jsonRounds is how many rounds of 64 steps jsonScore runs, the knob
	// that sets the handler's cost.
	jsonRounds = 300
)

// product is one catalogue entry, as the /json document lists it.
type product struct {
	ID    int      `json:"id"`
	SKU   string   `json:"sku"`
	Name  string   `json:"name"`
	Price float64  `json:"price"`
	Tags  []string `json:"tags"`
}

// productDoc is the /json response.
type productDoc struct {
	Product product   `json:"product"`
	Related []product `json:"related"`
	Score   uint32    `json:"score"`
}

var catalogue = newCatalogue()

func skuOf(id int) string { return fmt.Sprintf("sku-%04d", id) }

func newCatalogue() map[string]product {
	c := make(map[string]product, catalogueSize)
	for id := range catalogueSize {
		c[skuOf(id)] = product{ID: id, SKU: skuOf(id), Name: fmt.Sprintf("Product %d", id),
			Price: float64(id*37%10000) / 100, Tags: []string{fmt.Sprintf("t%d", id%7), fmt.Sprintf("t%d", id%11)}}
	}
	return c
}

// jsonScore is the handler's computation: rounds of 64 xorshift steps
// folded into a checksum. Everything is uint32 so that JavaScript's 32-bit
// integer operations (Math.imul, >>>) compute the same number.
func jsonScore(seed uint32, rounds int) uint32 {
	x, acc := seed|1, uint32(0)
	for range rounds {
		for range 64 {
			x ^= x << 13
			x ^= x >> 17
			x ^= x << 5
			acc = acc*31 + x
		}
	}
	return acc
}

// buildDoc is the work of one /json request.
func buildDoc() productDoc {
	p := catalogue[jsonSKU]
	related := make([]product, 0, jsonRelated)
	for i := 1; i <= jsonRelated; i++ {
		related = append(related, catalogue[skuOf(p.ID+i)])
	}
	return productDoc{Product: p, Related: related, Score: jsonScore(uint32(p.ID), jsonRounds)}
}

// jsonHandler serves GET /json: the work of buildDoc, encoded.
func jsonHandler(w http.ResponseWriter, _ *http.Request) {
	b, err := json.Marshal(buildDoc())
	if err != nil {
		http.Error(w, "encoding failed", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	_, _ = w.Write(b)
}

// jsonBody is the document every server must answer GET /json with.
func jsonBody() string {
	b, err := json.Marshal(buildDoc())
	if err != nil {
		panic(err) // a productDoc always encodes
	}
	return string(b)
}

// handlerFor builds the handler of configuration name. Log files go to
// logDir; closers must be called, in order, after the server stopped.
func handlerFor(name, logDir string) (h http.Handler, closers []func() error, err error) {
	switch name {
	case cfgBare:
		mux := http.NewServeMux()
		mux.HandleFunc("GET /hello", hello)
		mux.HandleFunc("GET /json", jsonHandler)
		return mux, nil, nil
	case cfgFloor:
		mux := http.NewServeMux()
		mux.HandleFunc("GET /hello", hello)
		mux.HandleFunc("GET /json", jsonHandler)
		return floor(mux), nil, nil
	case cfgShipshape:
		return shipshapeStack(logDir)
	case cfgChi:
		return chiStack(logDir)
	}
	return nil, nil, fmt.Errorf("benchreport: unknown configuration %q", name)
}

// shipshapeStack is the recommended order, outermost first, with every
// feature on: ClientIPFromXFF → accesslog (with its request id) →
// recoverer → slowdown → ratelimit (IETF headers) → mux. The access log is
// the combined format through a BufferedWriter into a File that rotates as
// examples/server's does (daily, gzip'd, 14 kept), at a size the run does
// not reach: the chi Logger's file does not rotate, and a rotation's gzip
// in one run and not in another would measure the rotation, not the
// requests.
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
	f, err := logfile.Open(filepath.Join(logDir, "shipshape-access.log"), logfile.WithMaxSize(1<<40),
		logfile.WithRotateEvery(24*time.Hour), logfile.WithMaxBackups(14), logfile.WithCompression(true))
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
	access, err := accesslog.New(slog.New(accesslog.NewCombinedHandler(bw, nil)), accesslog.WithRequestID())
	if err != nil {
		return fail(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /hello", hello)
	mux.HandleFunc("GET /json", jsonHandler)
	return []namedMiddleware{
		{"chi ClientIPFromXFF", middleware.ClientIPFromXFF("127.0.0.0/8", "::1/128")},
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
	r.Get("/json", jsonHandler)
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
