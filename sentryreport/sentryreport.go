// Package sentryreport sends what shipshape recovers to Sentry, with
// sentry-go: its [Reporter] is the [recoverer.Reporter] that turns a
// recovered panic into one Sentry event, and its [Reporter.ReportCrash]
// turns the cluster supervisor's report of a crashed worker (a panic in
// any goroutine, a fatal error, an OOM kill, see cluster.Crash) into one.
//
// It is a module of its own (github.com/shipshape-go/shipshape/sentryreport)
// so that a program that does not report to Sentry neither links nor
// inherits sentry-go: recoverer reports through a one-method interface and
// imports no SDK. And since recoverer and the cluster supervisor both report
// through it, the adapter belongs to neither of them.
//
// Usage, with accesslog outside recoverer (so that the access line carries
// the event id):
//
//	if err := sentry.Init(sentry.ClientOptions{Dsn: os.Getenv("SENTRY_DSN")}); err != nil {
//		log.Fatal(err)
//	}
//	defer sentry.Flush(2 * time.Second) // after http.Server.Shutdown: send what is queued
//
//	rep, err := sentryreport.New()
//	…
//	recovery, err := recoverer.New(recoverer.WithLogger(logger), recoverer.WithReporter(rep))
//	…
//	access, err := accesslog.New(logger)
//	…
//	h := access(recovery(reqlog.RecordRoute(mux)))
//
// The same Reporter reports the panics of goroutines,
// recoverer.NewGo(recoverer.WithReporter(rep)), and, in the supervisor,
// the crashes of cluster workers:
//
//	err := cluster.Serve(ctx, srv, cluster.WithCrashHandler(rep.ReportCrash))
//	sentry.Flush(2 * time.Second) // the supervisor's events, before main exits
//

// Each panic becomes one event: level fatal, the exception's type and value
// (an error's wrapped chain the way the SDK unwraps it), mechanism "panic"
// and unhandled, the stack trace of the code that panicked, the route as
// transaction ("GET /items/{id}"; the path without a route), chi's request
// id as tag request_id, and the request without secrets (below). The hub
// is the one of [WithHub], else the hub in the request context (sentryhttp
// puts one there), else [sentry.CurrentHub], read at the time of the
// panic, so sentry.Init may run after New; a hub without a client, or
// whose client has no DSN, reports nothing. Each report uses a clone of the
// hub, so reports never share scope data.
//
// Events go through the client's asynchronous transport, so an unreachable
// or slow Sentry never delays a response, and what cannot be sent is
// dropped by the SDK's bounded buffers rather than piling up. Call
// [sentry.Flush] (or Flush on your hub) during graceful shutdown so that
// queued events leave before the process exits.
//
// # What Sentry gets about the request
//
// The Reporter builds the event's request itself, so sentry-go's own
// request collection (SendDefaultPII, DataCollection) never applies to it:
// method; URL without the query; the query with the value of every
// secret-looking parameter replaced by "[Filtered]"; and an allow-list of
// headers — Accept, Content-Length, Content-Type, Host, Referer and
// User-Agent, plus what [WithHeaders] adds — with the query of a URL in a
// header value (the Referer's) filtered the same way. Every other header is
// left out, its name included: no cookies, no credentials, no client
// address (X-Forwarded-For, Forwarded, X-Real-Ip, X-Azure-ClientIP,
// X-Client-Addr and the rest, whatever a proxy calls them), no body, no
// REMOTE_ADDR. [WithRequestScrubber] opts in to more (or less).
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
// the SDK from the request, not by this package: scrub them in
// BeforeSendTransaction.
//
// Tests of code that reports to Sentry can point a real client at the
// loopback Sentry of package [github.com/shipshape-go/shipshape/sentryreport/sentrytest].
//
// Examples: [Example], [ExampleWithHeaders], [ExampleWithRequestScrubber],
// [ExampleReporter_ReportCrash].
package sentryreport

import (
	"context"
	"errors"
	"net/http"

	"github.com/getsentry/sentry-go"
	"github.com/go-chi/chi/v5/middleware"

	"github.com/shipshape-go/shipshape/recoverer"
)

// Reporter sends recovered panics and cluster crash reports to Sentry. It
// is safe for concurrent use.
type Reporter struct {
	hub      *sentry.Hub
	headers  []string // validated, canonical, beyond the defaults
	scrubber func(dst *sentry.Request, r *http.Request)
}

var _ recoverer.Reporter = (*Reporter)(nil)

// Option configures [New].
type Option func(*config)

type config struct {
	hub         *sentry.Hub
	hubSet      bool
	headerNames []string // as given to WithHeaders
	scrubber    func(dst *sentry.Request, r *http.Request)
	scrubSet    bool
}

// WithHub sets the hub whose client reports. The default is the hub in the
// request context ([sentry.GetHubFromContext], set by sentryhttp for
// example; for a goroutine, the one in its context), else
// [sentry.CurrentHub], read at the time of each report. A nil hub is an
// error.
func WithHub(hub *sentry.Hub) Option {
	return func(c *config) { c.hub, c.hubSet = hub, true }
}

// WithHeaders adds request headers to the ones an event carries. By
// default it carries Accept, Content-Length, Content-Type, Host, Referer and
// User-Agent, and no other header, not even its name: an allow-list, so
// that a header nobody thought of (a proxy's X-Client-Addr, an
// X-Original-Uri with a token in it) stays out. An added header is sent
// like the default ones: values joined with ",", the value filtered when
// the name looks secret (as for the query, see the package documentation),
// and the query of a URL in the value filtered. A client-address header
// that you add (X-Forwarded-For) is sent as the client sent it.
//
// Names are ASCII case-insensitive and trimmed. A name that is not a
// header field name (RFC 9110: letters, digits and !#$%&'*+-.^_`|~), and
// Authorization, Proxy-Authorization, Cookie and Set-Cookie, are errors
// from [New]; [WithRequestScrubber] can still send anything on purpose.
// WithHeaders may be given more than once; the names add up.
func WithHeaders(names ...string) Option {
	return func(c *config) { c.headerNames = append(c.headerNames, names...) }
}

// WithRequestScrubber lets the caller change what Sentry receives about the
// request. fn runs after the default scrubbing (see the package
// documentation) with the event's request (dst) and the original request
// (r), and may add to dst what the default leaves out — cookies, a header,
// the client address in dst.Env["REMOTE_ADDR"] — or remove more. It runs on
// the panicking request's goroutine and must not read r.Body: the handler
// may have consumed it, and reading more would block. Without it, the event
// carries the scrubbed request alone; a nil fn is an error.
func WithRequestScrubber(fn func(dst *sentry.Request, r *http.Request)) Option {
	return func(c *config) { c.scrubber, c.scrubSet = fn, true }
}

// New returns a Reporter, or an error for an invalid option (every refused
// header name of [WithHeaders] is named in it).
func New(opts ...Option) (*Reporter, error) {
	c := &config{}
	for _, o := range opts {
		if o == nil {
			return nil, errors.New("sentryreport: nil Option")
		}
		o(c)
	}
	switch {
	case c.hubSet && c.hub == nil:
		return nil, errors.New("sentryreport: WithHub: nil hub")
	case c.scrubSet && c.scrubber == nil:
		return nil, errors.New("sentryreport: WithRequestScrubber: nil function")
	}
	headers, err := headerNames(c.headerNames)
	if err != nil {
		return nil, err
	}
	return &Reporter{hub: c.hub, headers: headers, scrubber: c.scrubber}, nil
}

// ReportPanic sends one event for p and returns its id, "" when nothing was
// sent: no hub whose client has a DSN, or the event was sampled out or
// dropped by BeforeSend or an event processor. It builds and serializes the
// event on the calling goroutine and hands it to the client's asynchronous
// transport; it never waits for the network.
func (rep *Reporter) ReportPanic(ctx context.Context, p recoverer.Panic) string {
	hub := rep.hubFor(ctx)
	if hub == nil {
		return ""
	}
	hub = hub.Clone()
	client := hub.Client()

	event := sentry.NewEvent()
	event.Level = sentry.LevelFatal
	event.Logger = "recoverer"
	setException(event, p.Value, sentryStacktrace(p.Frames), client.Options().MaxErrorDepth)

	hint := &sentry.EventHint{RecoveredException: p.Value, Context: ctx}
	if r := p.Request; r != nil {
		hint.Request = r
		event.Request = rep.request(r)
		event.Transaction = transactionName(r, p.Route)
	}
	if id := middleware.GetReqID(ctx); id != "" {
		event.Tags["request_id"] = id
	}
	id := hub.CaptureEventWithHint(event, hint)
	if id == nil {
		return ""
	}
	return string(*id)
}

// hubFor returns the hub to report to, or nil when none can deliver events.
func (rep *Reporter) hubFor(ctx context.Context) *sentry.Hub {
	hub := rep.hub
	if hub == nil {
		hub = sentry.GetHubFromContext(ctx)
	}
	if hub == nil {
		hub = sentry.CurrentHub()
	}
	client := hub.Client()
	if !client.IsEnabled() || client.Options().Dsn == "" {
		return nil
	}
	return hub
}

// request builds the request part of the event with the default
// scrubbing, then lets the configured scrubber change it.
func (rep *Reporter) request(r *http.Request) *sentry.Request {
	sr := scrubbedRequest(r, rep.headers)
	if rep.scrubber != nil {
		rep.scrubber(sr, r)
	}
	return sr
}
