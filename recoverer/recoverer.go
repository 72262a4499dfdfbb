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
//     access log line with [reqlog.AddAttrs];
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
// # What Sentry gets about the request
//
// recoverer builds the event's request itself, so sentry-go's own request
// collection (SendDefaultPII, DataCollection) never applies to it: method;
// URL without the query; the query with the value of every secret-looking
// parameter replaced by "[Filtered]"; and an allow-list of headers —
// Accept, Content-Length, Content-Type, Host, Referer and User-Agent, plus
// what [WithSentryHeaders] adds — with the query of a URL in a header
// value (the Referer's) filtered the same way. Every other header is left
// out, its name included: no cookies, no credentials, no client address
// (X-Forwarded-For, Forwarded, X-Real-Ip, X-Azure-ClientIP, X-Client-Addr
// and the rest, whatever a proxy calls them), no body, no REMOTE_ADDR.
// [WithRequestScrubber] opts in to more (or less).
//
// A name is secret-looking when, ignoring ASCII case, raw or
// percent-decoded, it contains accesskey, apikey, authorization, cookie,
// credential, csrf, jwt, passcode, passphrase, passwd, password,
// privatekey, pwd, secret, sessid, session, signature, ticket, token or
// xsrf, or has auth, code, key, otp, pass, pw, sid, sig or totp (or one of
// them followed by "s") as a word: the words of "api_key", "x-api-key",
// "apiKey" and "APIKey" are api and key, so all four are secret, while
// "keyword", "monkey", "author", "design" and "inside" are not. Words are
// split at characters other than ASCII letters and digits, at a change
// from lower to upper case, before the last of several upper-case letters
// followed by a lower-case one, and between letters and digits. accesslog
// redacts the same names.
//
// What the Sentry scope carries is still applied to the event by the SDK:
// a user you set with Scope.SetUser (with an IP address, say), tags,
// breadcrumbs. Transactions that sentryhttp's tracing sends are built by
// the SDK from the request, not by recoverer: scrub them in
// BeforeSendTransaction.
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
// safer than bare net/http, where
// a late HTTP/1 write fails with [http.ErrContentLength] only when the
// response had a known length; after a flushed (streamed) response it goes
// into a buffer net/http has given back to its pool, which may by then be
// another request's, and a late HTTP/2 write panics, which kills the
// process when it happens in a goroutine.
//
// A request that does not panic costs one deferred call and a writer view
// carved from a block of 16: one allocation per 16 requests (about 80 bytes
// per request), no lock.
package recoverer

import (
	"context"
	"log/slog"
	"net/http"

	"github.com/getsentry/sentry-go"

	"github.com/shipshape-go/shipshape/internal/respwriter"
)

// ErrHandlerReturned is what the ResponseWriter a handler got from [New]
// returns once the handler returned, to a goroutine that kept it and writes
// to it (see "After the handler returned" in the package documentation). A
// wrapper between the handler and recoverer, such as accesslog's, passes it
// on.
var ErrHandlerReturned = respwriter.ErrHandlerReturned

// Option configures [New] and [Go].
type Option func(*config)

type config struct {
	logger   *slog.Logger
	hub      *sentry.Hub
	response http.Handler
	scrubber func(dst *sentry.Request, r *http.Request)

	sentryHeaderNames []string // as given to WithSentryHeaders
	sentryHeaders     []string // validated, canonical, beyond the defaults
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

// WithSentryHeaders adds request headers to the ones a Sentry event
// carries. By default it carries Accept, Content-Length, Content-Type,
// Host, Referer and User-Agent, and no other header, not even its name: an
// allow-list, so that a header nobody thought of (a proxy's X-Client-Addr,
// an X-Original-Uri with a token in it) stays out. An added header is sent
// like the default ones: values joined with ",", the value filtered when
// the name looks secret (as for the query, see the package documentation),
// and the query of a URL in the value filtered. A client-address header
// that you add (X-Forwarded-For) is sent as the client sent it.
//
// Names are ASCII case-insensitive and trimmed. A name that is not a
// header field name (RFC 9110: letters, digits and !#$%&'*+-.^_`|~), and
// Authorization, Proxy-Authorization, Cookie and Set-Cookie, are refused:
// [New] logs one error record per refused name, through the logger of
// [WithLogger] (else slog.Default), and leaves it out. [WithRequestScrubber]
// can still send anything on purpose. WithSentryHeaders may be given more
// than once; the names add up. It does not apply to [Go], which has no
// request.
func WithSentryHeaders(names ...string) Option {
	return func(c *config) { c.sentryHeaderNames = append(c.sentryHeaderNames, names...) }
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
// It belongs to this request alone and stops working when the handler
// returns: a goroutine that kept it gets [ErrHandlerReturned] from Write
// (see the package documentation), never another request's response.
func New(opts ...Option) func(http.Handler) http.Handler {
	c := newConfig(opts)
	var refused []refusedHeader
	c.sentryHeaders, refused = sentryHeaderNames(c.sentryHeaderNames)
	if len(refused) > 0 {
		logger := c.logger
		if logger == nil {
			logger = slog.Default()
		}
		for _, h := range refused {
			logger.LogAttrs(context.Background(), slog.LevelError, msgHeaderRefused,
				slog.String("header", h.name), slog.String("reason", h.reason))
		}
	}
	return func(next http.Handler) http.Handler {
		return &handler{cfg: c, next: next}
	}
}

type handler struct {
	cfg  *config
	next http.Handler
}

// ServeHTTP gives the handler a view of a Recorder of its own, which holds
// what the handler did with the response: whether a status line may still
// be written and whether the connection was hijacked. The Recorder is never
// reused (respwriter.New carves them from blocks, so most requests do not
// allocate), and it is ended before ServeHTTP returns: a goroutine that kept
// the view gets ErrHandlerReturned, never the response of the request that
// comes next.
func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rec := respwriter.New(w)
	defer h.recover(rec, r)
	h.next.ServeHTTP(rec.Wrap(), r)
}

// recover is deferred by ServeHTTP; recover() works here because recover is
// the deferred call itself.
func (h *handler) recover(rec *respwriter.Recorder, r *http.Request) {
	p := recover()
	if p == nil {
		rec.End()
		return
	}
	// After the 500, and also when the panic goes on (ErrAbortHandler).
	defer rec.End()
	if p == http.ErrAbortHandler { // compared the way net/http does
		panic(p)
	}
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
