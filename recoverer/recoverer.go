// Package recoverer turns a panic in an HTTP handler into a 500 response, one
// slog error record and one Sentry event, instead of a dropped connection and
// a stack trace on stderr.
//
// Usage, in the recommended order (accesslog outside, so that the access line
// carries the 500, the panic and the Sentry event id):
//
//	if err := sentry.Init(sentry.ClientOptions{Dsn: os.Getenv("SENTRY_DSN")}); err != nil {
//		log.Fatal(err)
//	}
//	defer sentry.Flush(2 * time.Second) // deliver what is queued before exiting
//
//	r := chi.NewRouter()
//	r.Use(middleware.RequestID)
//	r.Use(accesslog.New(logger))
//	r.Use(recoverer.New(recoverer.WithLogger(logger)))
//	r.Get("/", handler)
//
// and for work that leaves the request goroutine:
//
//	recoverer.Go(ctx, func(ctx context.Context) { … })
//
// On a panic the middleware:
//
//   - re-panics [http.ErrAbortHandler] untouched and reports nothing: it is
//     net/http's way to abort a response on purpose;
//   - reports the panic: one error record through slog (panic value, stack
//     without runtime frames, method, route, request id, Sentry event id) and
//     one Sentry event (exception type and value, the stack with the handler
//     frames, the route as transaction, the request id as tag, the request
//     without secrets); it adds the panic and the event id to the request's
//     access log line with [accesslog.AddAttrs];
//   - answers 500 when nothing has been written yet: RFC 9457
//     application/problem+json when the client accepts JSON, text/plain
//     otherwise, or what [WithResponse] writes. The body never contains the
//     panic value or the stack;
//   - aborts the connection when the status line was already written (a
//     streaming response): it panics with [http.ErrAbortHandler] after
//     reporting, so net/http closes the connection (HTTP/1) or resets the
//     stream (HTTP/2) without logging again, and the client sees a truncated
//     response instead of one that looks complete;
//   - leaves a hijacked connection (a websocket) alone: nothing is written to
//     it.
//
// Sentry is optional: without [WithSentry] the hub of the request context
// (sentryhttp puts one there) or [sentry.CurrentHub] is used when a client
// with a DSN is bound to it; without one, panics are only logged. Events go
// through the client's asynchronous transport, so an unreachable or slow
// Sentry never delays a response, and what cannot be sent is dropped by the
// SDK's bounded buffers rather than piling up. Call [sentry.Flush] (or
// Flush on your hub) during graceful shutdown so that queued events leave
// before the process exits.
//
// The request sent to Sentry is scrubbed by default: no cookies, no
// Authorization, Proxy-Authorization, Cookie or Set-Cookie headers, no body,
// no client address; the values of headers and query parameters whose names
// look secret are replaced by "[Filtered]". [WithRequestScrubber] opts in to
// more (or less).
//
// A request that does not panic costs one deferred call and a pooled
// response-writer view: no allocation.
package recoverer

import (
	"log/slog"
	"net/http"
	"sync"

	"github.com/getsentry/sentry-go"

	"github.com/shipshape-go/shipshape/internal/respwriter"
)

// Option configures [New] and [Go].
type Option func(*config)

type config struct {
	logger   *slog.Logger
	hub      *sentry.Hub
	response http.Handler
	scrubber func(dst *sentry.Request, r *http.Request)
}

func newConfig(opts []Option) *config {
	c := &config{}
	for _, o := range opts {
		if o != nil {
			o(c)
		}
	}
	return c
}

// WithLogger sets the logger of the panic records. The default (also when
// l is nil) is [slog.Default] at the time of each panic.
func WithLogger(l *slog.Logger) Option {
	return func(c *config) { c.logger = l }
}

// WithSentry sets the hub whose client reports panics; each report uses a
// clone of it, so reports never share scope data. The default (also when
// hub is nil) is the hub in the request context ([sentry.GetHubFromContext],
// set by sentryhttp for example), else [sentry.CurrentHub] — both read at
// the time of the panic, so sentry.Init may run after New. A hub without a
// client, or whose client has no DSN, reports nothing.
func WithSentry(hub *sentry.Hub) Option {
	return func(c *config) { c.hub = hub }
}

// WithResponse replaces the default 500 response. h runs only when nothing
// has been written to the response yet; it gets the request whose context
// carries the Sentry event id ([EventID]). If h writes nothing, or panics,
// the default response is written. h must not write the panic value or
// anything else internal to the client. The default, also when h is nil, is
// a 500 with an RFC 9457 problem body (application/problem+json) when the
// Accept header allows JSON, and "Internal Server Error" as text/plain
// otherwise.
func WithResponse(h http.Handler) Option {
	return func(c *config) { c.response = h }
}

// WithRequestScrubber lets the caller change what Sentry receives about the
// request. fn runs after the default scrubbing (see the package
// documentation) with the event's request (dst) and the original request
// (r), and may add to dst what the default leaves out — cookies, a header,
// the client address in dst.Env["REMOTE_ADDR"] — or remove more. It runs on
// the panicking request's goroutine and must not read r.Body: the handler
// may have consumed it, and reading more would block. The default, also when
// fn is nil, is the scrubbed request alone.
func WithRequestScrubber(fn func(dst *sentry.Request, r *http.Request)) Option {
	return func(c *config) { c.scrubber = fn }
}

// New returns the middleware. It is safe for concurrent use, and so is the
// handler it returns. See the package documentation for what happens on a
// panic.
//
// The handler downstream gets a ResponseWriter that records whether the
// status line was written and whether the connection was hijacked. It has
// exactly the optional interfaces of the writer it wraps among
// http.Flusher, http.Hijacker, io.ReaderFrom and http.Pusher (plus
// io.StringWriter), and FlushError and Unwrap for http.ResponseController.
// It is recycled when the handler returns, so, as net/http already
// requires, it must not be used after that.
func New(opts ...Option) func(http.Handler) http.Handler {
	c := newConfig(opts)
	return func(next http.Handler) http.Handler {
		return &handler{cfg: c, next: next}
	}
}

type handler struct {
	cfg  *config
	next http.Handler
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rec := acquireRecorder(w)
	defer h.recover(rec, r)
	h.next.ServeHTTP(rec.Wrap(), r)
}

// recorders hold what the handler did with the response: whether a status
// line may still be written and whether the connection was hijacked. The
// pool makes a request that does not panic cost no allocation.
var recorders = sync.Pool{New: func() any { return new(respwriter.Recorder) }}

func acquireRecorder(w http.ResponseWriter) *respwriter.Recorder {
	rec := recorders.Get().(*respwriter.Recorder)
	rec.Reset(w)
	return rec
}

// releaseRecorder returns rec to the pool. Only call it when nothing can
// still hold a view of rec: after the handler returned without panicking.
func releaseRecorder(rec *respwriter.Recorder) {
	rec.Reset(nil)
	recorders.Put(rec)
}

// recover is deferred by ServeHTTP; recover() works here because recover is
// the deferred call itself.
func (h *handler) recover(rec *respwriter.Recorder, r *http.Request) {
	p := recover()
	if p == nil {
		releaseRecorder(rec)
		return
	}
	if p == http.ErrAbortHandler { // compared the way net/http does
		panic(p)
	}
	// The recorder is not released from here on: the handler that panicked
	// may have left goroutines holding its view.
	pcs := callers()
	ctx := r.Context()
	eventID := h.cfg.report(ctx, r, p, pcs)

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
