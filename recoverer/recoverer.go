// Package recoverer turns a panic in an HTTP handler into a 500 response,
// one slog error record and one report to an error tracker, instead of a
// dropped connection and a stack trace on stderr.
//
// Usage, in the recommended order (accesslog outside, so that the access line
// carries the 500, the panic and the event id):
//
//	recovery, err := recoverer.New(recoverer.WithLogger(logger))
//	if err != nil {
//		log.Fatal(err)
//	}
//	r := chi.NewRouter()
//	r.Use(access) // accesslog.New(logger, accesslog.WithRequestID())
//	r.Use(recovery)
//	r.Get("/", handler)
//
// and for work that leaves the request goroutine:
//
//	goSafe, err := recoverer.NewGo(recoverer.WithLogger(logger))
//	…
//	goSafe(ctx, func(ctx context.Context) { … })
//
// On a panic the middleware:
//
//   - re-panics [http.ErrAbortHandler] untouched and reports nothing: it is
//     net/http's way to abort a response on purpose;
//   - reports the panic: one error record through slog (panic value, stack
//     without runtime frames, method, route, request id, event id), and the
//     [Panic] to the [Reporter] of [WithReporter], if any; it adds the panic
//     and the event id to the request's access log line with
//     [reqlog.AddAttrs];
//   - answers 500 when nothing has been written yet, through the
//     [problem.Writer] of [WithProblemWriter] (default [problem.Write]:
//     RFC 9457 application/problem+json when the client accepts JSON,
//     text/plain otherwise). The body never contains the panic value or the
//     stack;
//   - aborts the connection when the status line was already written (a
//     streaming response): it panics with [http.ErrAbortHandler] after
//     reporting, so net/http closes the connection (HTTP/1) or resets the
//     stream (HTTP/2) without logging again, and the client sees a truncated
//     response instead of one that looks complete;
//   - leaves a hijacked connection (a websocket) alone: nothing is written to
//     it.
//
// The route of the panic record and of the [Panic] is [reqlog.Route]: the
// ServeMux pattern or chi route, also through middleware that copies the
// request between recoverer and the router when [reqlog.RecordRoute] wraps
// the router.
//
// # Sentry
//
// recoverer links no error tracker's SDK, so that a program that does not
// report to Sentry neither links nor inherits sentry-go; it hands each panic
// to a [Reporter]. The Sentry one is
// github.com/shipshape-go/shipshape/sentryreport, a module of its own
// because the crash reports of the cluster supervisor are to go through it
// too, and it belongs to neither package:
//
//	rep, err := sentryreport.New() // the hub in the request context, else sentry.CurrentHub
//	…
//	recovery, err := recoverer.New(recoverer.WithLogger(logger), recoverer.WithReporter(rep))
//
// See its documentation for what the event holds about the request (an
// allow-list of headers, secrets filtered, no client address). Without
// [WithReporter], panics are only logged.
//
// # After the handler returned
//
// A goroutine that kept the handler's ResponseWriter and uses it after the
// handler returned gets [ErrHandlerReturned] from Write, WriteString,
// ReadFrom, Hijack, Push and every http.ResponseController method;
// WriteHeader and Flush do nothing, Header returns a map that goes nowhere.
// The writer belongs to one request and is never reused: no call on it can
// reach another request's response. (A call still running when the handler
// returns — a data race the handler already has — completes on the
// request's own net/http writer, as it would without recoverer.) This is
// safer than bare net/http, where a late HTTP/1 write fails with
// [http.ErrContentLength] only when the response had a known length; after
// a flushed (streamed) response it goes into a buffer net/http has given
// back to its pool, which may by then be another request's, and a late
// HTTP/2 write panics, which kills the process when it happens in a
// goroutine.
//
// Inside accesslog (the recommended order) the handler gets accesslog's
// writer as it is: it already records what recoverer needs, and accesslog
// ends it when its handler returns, a moment after recoverer's. Elsewhere
// recoverer wraps the writer in a view of its own, carved from a block of
// 16 (one allocation per 16 requests, about 80 bytes per request, no lock),
// and ends it when the handler returns. Either way a request that does not
// panic costs one deferred call.
//
// Examples: [Example], [ExampleWithProblemWriter], [ExampleWithReporter],
// [ExampleNewGo], [ExampleGo].
package recoverer

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"

	"go.opentelemetry.io/otel/metric"

	"github.com/shipshape-go/shipshape/internal/nilcheck"
	"github.com/shipshape-go/shipshape/internal/respwriter"
	"github.com/shipshape-go/shipshape/problem"
)

// ErrHandlerReturned is what the ResponseWriter a handler got from [New]
// returns once the handler returned, to a goroutine that kept it and writes
// to it (see "After the handler returned" in the package documentation). A
// wrapper between the handler and recoverer, such as accesslog's, passes it
// on.
var ErrHandlerReturned = respwriter.ErrHandlerReturned

// Option configures [New] and [NewGo].
type Option func(*config)

type config struct {
	logger    *slog.Logger
	loggerSet bool
	reporter  Reporter
	repSet    bool
	problem   problem.Writer
	probSet   bool
	meter     metric.MeterProvider
	meterSet  bool
	metrics   *metrics // nil for Go's config: the global provider's
}

// newConfig applies opts and validates the result; New and NewGo return
// its error.
func newConfig(opts []Option) (*config, error) {
	c := &config{}
	for _, o := range opts {
		if o == nil {
			return nil, errors.New("recoverer: nil Option")
		}
		o(c)
	}
	switch {
	case c.loggerSet && c.logger == nil:
		return nil, errors.New("recoverer: WithLogger: nil logger")
	case c.repSet && c.reporter == nil:
		return nil, errors.New("recoverer: WithReporter: nil Reporter")
	case c.probSet && c.problem == nil:
		return nil, errors.New("recoverer: WithProblemWriter: nil Writer")
	case c.meterSet && nilcheck.Is(c.meter):
		return nil, errors.New("recoverer: WithMeterProvider: nil provider")
	}
	ms, err := newMetrics(c.meter)
	if err != nil {
		return nil, fmt.Errorf("recoverer: WithMeterProvider: %w", err)
	}
	c.metrics = ms
	return c, nil
}

// WithLogger sets the logger of the panic records. The default is
// [slog.Default] at the time of each panic, so that slog.SetDefault reaches
// it. A nil logger is an error.
func WithLogger(l *slog.Logger) Option {
	return func(c *config) { c.logger, c.loggerSet = l, true }
}

// WithProblemWriter sets how the 500 of a panic is written, when nothing has
// been written to the response yet. The writer gets a [problem.Details] with
// Status 500, and the request whose context carries the event id of the
// report ([EventID]), a reference to show the user. Headers that described
// the response the handler meant to send (Set-Cookie, ETag, Content-Length,
// Cache-Control…) are removed before it runs. If it writes nothing, or
// panics, [problem.Write] follows; it must not write the panic value or
// anything else internal to the client. The default is [problem.Write]:
// RFC 9457 application/problem+json when the Accept header allows JSON,
// "Internal Server Error" as text/plain otherwise. A nil Writer is an error.
// It does not apply to [NewGo], which has no response.
func WithProblemWriter(w problem.Writer) Option {
	return func(c *config) { c.problem, c.probSet = w, true }
}

// New returns the middleware, or an error for an invalid option. It is safe
// for concurrent use, and so is the handler it returns. See the package
// documentation for what happens on a panic.
//
// The handler downstream gets a ResponseWriter that records whether the
// status line was written and whether the connection was hijacked:
// accesslog's when recoverer is inside it, else a view of its own. It has
// exactly the optional interfaces of the writer it wraps among
// http.Flusher, http.Hijacker, io.ReaderFrom and http.Pusher (plus
// io.StringWriter), and FlushError and Unwrap for http.ResponseController.
// It belongs to this request alone and stops working when the handler
// returns: a goroutine that kept it gets [ErrHandlerReturned] from Write
// (see the package documentation), never another request's response.
func New(opts ...Option) (func(http.Handler) http.Handler, error) {
	c, err := newConfig(opts)
	if err != nil {
		return nil, err
	}
	return func(next http.Handler) http.Handler {
		return &handler{cfg: c, next: next}
	}, nil
}

type handler struct {
	cfg  *config
	next http.Handler
}

// ServeHTTP needs a Recorder of the response, which holds what the handler
// did with it: whether a status line may still be written and whether the
// connection was hijacked. When w is a view of one (accesslog's, outside),
// that Recorder already records it and its owner ends it: the handler gets
// w as it is. Otherwise the handler gets a view of a Recorder of its own,
// never reused (respwriter.New carves them from blocks, so most requests do
// not allocate), which is ended before ServeHTTP returns: a goroutine that
// kept the view gets ErrHandlerReturned, never the response of the request
// that comes next.
func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if rec := respwriter.From(w); rec != nil {
		defer h.recover(rec, r, false)
		h.next.ServeHTTP(w, r)
		return
	}
	rec := respwriter.New(w)
	defer h.recover(rec, r, true)
	h.next.ServeHTTP(rec.Wrap(), r)
}

// recover is deferred by ServeHTTP; recover() works here because recover is
// the deferred call itself. own says whether rec is recoverer's to end.
func (h *handler) recover(rec *respwriter.Recorder, r *http.Request, own bool) {
	p := recover()
	if p == nil {
		if own {
			rec.End()
		}
		return
	}
	if own {
		// After the 500, and also when the panic goes on (ErrAbortHandler).
		defer rec.End()
	}
	if p == http.ErrAbortHandler { // compared the way net/http does
		panic(p)
	}
	eventID := h.cfg.report(r.Context(), r, p, callers())

	switch {
	case rec.Hijacked:
		// The connection belongs to whoever hijacked it; writing to it
		// would corrupt their protocol.
	case rec.Status != 0:
		// Too late for a status: make the truncation visible instead of
		// letting the response look complete.
		panic(http.ErrAbortHandler)
	default:
		h.cfg.respond(rec, r, eventID)
	}
}
