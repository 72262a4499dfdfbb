// Package accesslog writes one structured log record per HTTP request, at a
// level chosen by the response status, through log/slog.
//
// The middleware records the client and peer addresses, method, path,
// (redacted) query, route pattern, status, body sizes, total duration and
// time to first byte, with OpenTelemetry semantic-convention keys, so that
// the JSON output is recognised by log pipelines. slog handlers in this
// package print the same records in the Apache/nginx "combined" and
// "common" formats (byte for byte what nginx writes) or in a short coloured
// form for terminals. The records go wherever the slog handler writes:
// package logfile has the rotating, gzip'ing file and the buffered writer
// that suit them.
//
//	f, err := logfile.Open("/var/log/app/access.log",
//		logfile.WithMaxSize(100<<20), logfile.WithRotateEvery(24*time.Hour),
//		logfile.WithMaxBackups(14))
//	if err != nil {
//		return err
//	}
//	defer f.Close()
//	bw, err := logfile.NewBufferedWriter(f)
//	if err != nil {
//		return err
//	}
//	defer bw.Close() // runs before f.Close: everything buffered is written
//	access, err := accesslog.New(slog.New(accesslog.NewCombinedHandler(bw, nil)),
//		accesslog.WithRequestID()) // chi's request id, one allocation instead of six
//	if err != nil {
//		return err
//	}
//
//	r := chi.NewRouter()
//	r.Use(middleware.ClientIPFromXFF("10.0.0.0/8"))
//	r.Use(access) // outside recoverer: a panic's 500 is logged
//	r.Use(recovery) // recoverer.New(…)
//
// The record has the message "http request" and these attributes (absent
// ones are left out, never written empty):
//
//	http.request.method          GET
//	url.path                     path as the client sent it (still percent-encoded)
//	url.query                    raw query, sensitive values replaced by REDACTED; present when the target had a '?'
//	http.route                   matched pattern, "/items/{id}": see "Route" below
//	network.protocol.version     1.1, 2
//	http.response.status_code    status sent; see "Aborted requests"
//	http.request.body.size       Content-Length, or the bytes the handler read when it is unknown
//	http.response.body.size      body bytes written by the handler (0 for HEAD, as nginx)
//	client.address               chi's client IP (ClientIPFrom…), else the TCP peer
//	network.peer.address         TCP peer address, without the port
//	user_agent.original          User-Agent header, when the request had one (even empty)
//	http.request.header.referer  Referer header, when the request had one, its query redacted like url.query
//	user.name                    Basic auth user name, only with WithBasicAuthUser(true) (never the password)
//	http.request.id              the request id: WithRequestID's, else chi's (middleware.RequestID), when set
//	trace_id, span_id            the OpenTelemetry span in the request's context, when there is one (see below)
//	duration                     time.Duration from the start of the request to the end of the response
//	ttfb                         time.Duration to the first byte (headers) written; equal to duration when the handler wrote nothing
//	aborted                      "panic", "client_disconnect" or "timeout"; only on aborted requests
//	http.request.header.<name>   headers listed with WithRequestHeaders
//
// (in this order; trace_id and span_id come after the listed headers),
// followed by what [reqlog.AddAttrs] added. An added attribute with the
// key of one of the above replaces it.
//
// # Route
//
// http.route is [reqlog.Route] of the request: the pattern the net/http
// ServeMux that accesslog wraps matched (r.Pattern, without method and
// host), or chi's route pattern when accesslog is one of a chi router's
// middleware. A middleware between accesslog and a ServeMux that hands the
// mux a copy of the request (r.WithContext in an authentication
// middleware, http.StripPrefix, http.MaxBytesHandler, http.TimeoutHandler)
// hides the Pattern the mux sets on the copy; so does any such middleware
// between accesslog and a chi router that accesslog is outside of. Wrap
// the router with [reqlog.RecordRoute], inside those middleware, and the
// route reaches the line, also when the handler panics and when
// TimeoutHandler gives up on a ServeMux:
//
//	handler := access(authenticate(reqlog.RecordRoute(mux)))
//
// recoverer and the metrics read the route the same way.
//
// # Correlation with traces and application logs
//
// When the request's context carries an OpenTelemetry span (otelhttp
// outside accesslog puts its server span there), the line carries its
// trace_id and span_id ([reqlog.AppendTrace]). [reqlog.NewHandler] adds
// the same ids, and the request id, client address and route, to the
// records the application logs with the request's context, so that they
// can be found next to the line. The text formats (combined, common, dev)
// do not print the ids; JSON and the other slog handlers do.
//
// # Aborted requests
//
// When the handler panics, the middleware does not recover: it writes the
// line (status as written, or 500 if nothing was written, aborted="panic")
// while the panic unwinds through it, and the panic continues unchanged,
// with its original stack, to the recoverer or net/http outside. This also
// covers recoverer re-panicking with http.ErrAbortHandler after a panic
// mid-response.
//
// When the request's context ends before the handler returned (the client
// disconnected, an HTTP/2 stream was reset, a write to the client failed),
// the line gets aborted="client_disconnect" and, if no status had been
// written, status 499, nginx's "client closed request". A request whose
// context passed its deadline gets aborted="timeout" and the status that
// was sent (200 when the handler wrote nothing, as net/http then sends).
// A panic is logged at the 5xx level whatever the status. A hijacked
// connection (websocket) is logged when the handler returns, with status
// 101 when the request asked for an upgrade.
//
// # Secrets
//
// Query parameters with a secret-looking name have their value replaced by
// REDACTED, in url.query and in the query of the Referer. A name is secret
// when it contains one of accesskey, apikey, authorization, cookie,
// credential, csrf, jwt, passcode, passphrase, passwd, password,
// privatekey, pwd, secret, sessid, session, signature, ticket, token or
// xsrf anywhere, or has auth, code, key, otp, pass, pw, sid, sig or totp as
// one of its words ("api_key", "apiKey", "auth_code", "connect.sid"; not
// "keyword" or "author"); ASCII case-insensitive, also percent-decoded.
// Add terms with [WithRedactQuery]. recoverer hides the same names from
// Sentry: the rule is one, shared.
// Bodies are never logged. Authorization, Proxy-Authorization and Cookie
// headers are never logged, even when listed in [WithRequestHeaders]. The
// Basic auth user name is logged only with [WithBasicAuthUser] (some APIs
// take an API key as the user name): by default user.name is absent and %u
// of the combined and common formats is "-". The text handlers escape
// control characters and non-ASCII bytes, so a client cannot forge log
// lines. The path is logged as sent: an application that puts secrets in
// paths must redact them itself.
//
// Examples: [ExampleNew], [ExampleNewCombinedHandler], [ExampleNewDevHandler],
// [Example_fanOut]; [reqlog.ExampleRecordRoute] and [reqlog.ExampleNewHandler]
// show the route through a request copy and correlated application logs.
package accesslog

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/go-chi/chi/v5/middleware"
	"go.opentelemetry.io/otel/metric"

	"github.com/shipshape-go/shipshape/internal/errlog"
	"github.com/shipshape-go/shipshape/internal/nilcheck"
	"github.com/shipshape-go/shipshape/internal/redact"
	"github.com/shipshape-go/shipshape/internal/respwriter"
	"github.com/shipshape-go/shipshape/reqlog"
)

// Message is the message of every access record.
const Message = "http request"

// Values of the "aborted" attribute.
const (
	AbortedPanic            = "panic"
	AbortedClientDisconnect = "client_disconnect"
	AbortedTimeout          = "timeout"
)

// Option configures the middleware returned by [New].
type Option func(*config)

type config struct {
	skip        func(*http.Request) bool
	info        slog.Level
	clientErr   slog.Level
	serverErr   slog.Level
	redact      *redact.Names
	redactExtra []string // from WithRedactQuery
	headers     []headerKey
	basicUser   bool
	logger      *slog.Logger // nil: slog.Default() at the time of each report
	meter       metric.MeterProvider
	requestID   bool           // WithRequestID
	idHeader    string         // WithRequestIDFrom: canonical header name
	idTrusted   []netip.Prefix // WithRequestIDFrom: peers whose header is kept
	err         error          // the first invalid option
}

// fail keeps the first invalid option's error.
func (c *config) fail(err error) {
	if c.err == nil {
		c.err = err
	}
}

type headerKey struct {
	name string // canonical header name
	key  string // attribute key
}

// WithSkip leaves out the requests for which skip returns true (health
// checks, metrics scrapes). They are served normally. The default logs every
// request; a nil skip is an error.
func WithSkip(skip func(*http.Request) bool) Option {
	return func(c *config) {
		if skip == nil {
			c.fail(errors.New("accesslog: skip function is nil"))
			return
		}
		c.skip = skip
	}
}

// WithLevels sets the record level for responses below 400 (default Info),
// 4xx (default Warn) and 5xx (default Error). The levels may be equal but
// must not decrease with the status (a 5xx below a 2xx would be filtered
// out first): that is an error, most likely arguments in the wrong order.
func WithLevels(info, clientErr, serverErr slog.Level) Option {
	return func(c *config) {
		if info > clientErr || clientErr > serverErr {
			c.fail(fmt.Errorf("accesslog: levels %v, %v, %v decrease with the status; want info <= clientErr <= serverErr", info, clientErr, serverErr))
			return
		}
		c.info, c.clientErr, c.serverErr = info, clientErr, serverErr
	}
}

// WithRedactQuery adds terms to the secret-name rule: a query parameter
// whose name contains one of them anywhere (ASCII case-insensitive) has its
// value replaced by [Redacted]. The built-in rule (see "Secrets" in the
// package documentation) stays in force. An empty term (it would match
// every name) is an error.
func WithRedactQuery(names ...string) Option {
	return func(c *config) {
		for _, n := range names {
			if strings.TrimSpace(n) == "" {
				c.fail(errors.New("accesslog: redacted query name is empty"))
				return
			}
		}
		c.redactExtra = append(c.redactExtra, names...)
	}
}

// WithRequestHeaders logs these request headers as
// http.request.header.<lower-case name> (several values joined by ", ").
// Names are matched case-insensitively; a name that is not a valid header
// field name (RFC 9110: a token, so no spaces or colons) is an error, and
// so are Authorization, Proxy-Authorization and Cookie, which are never
// logged, and Referer and User-Agent, which are always logged under their
// own keys.
func WithRequestHeaders(names ...string) Option {
	return func(c *config) {
		for _, n := range names {
			if !validHeaderName(n) {
				c.fail(fmt.Errorf("accesslog: %q is not a valid header name", n))
				return
			}
			canon := http.CanonicalHeaderKey(n)
			switch canon {
			case "Authorization", "Proxy-Authorization", "Cookie":
				c.fail(fmt.Errorf("accesslog: header %s carries credentials and is never logged", canon))
				return
			case "Referer":
				c.fail(fmt.Errorf("accesslog: header Referer is logged as %s already, its query redacted", reqlog.KeyReferer))
				return
			case "User-Agent":
				c.fail(fmt.Errorf("accesslog: header User-Agent is logged as %s already", reqlog.KeyUserAgent))
				return
			}
			if !containsHeader(c.headers, canon) {
				c.headers = append(c.headers, headerKey{name: canon, key: "http.request.header." + strings.ToLower(canon)})
			}
		}
	}
}

// validHeaderName reports whether s is a token (RFC 9110 5.1, 5.6.2).
func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !tokenChar[s[i]] {
			return false
		}
	}
	return true
}

// tokenChar marks the bytes of an RFC 9110 token: letters, digits and
// !#$%&'*+-.^_`|~.
var tokenChar = func() (t [256]bool) {
	for c := 'a'; c <= 'z'; c++ {
		t[c], t[c-'a'+'A'] = true, true
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for _, c := range "!#$%&'*+-.^_`|~" {
		t[c] = true
	}
	return t
}()

func containsHeader(hs []headerKey, name string) bool {
	for _, h := range hs {
		if h.name == name {
			return true
		}
	}
	return false
}

// WithBasicAuthUser logs the user name of HTTP Basic authentication as
// user.name (%u in the combined and common formats) when on is true. The
// default (false) leaves it out, "-" in those formats: APIs that take an
// API key as the Basic auth user name (with an empty password) would
// otherwise write the key into the log. The password is never logged. A
// user.name added with [reqlog.AddAttrs] (the account a handler authenticated) is
// logged either way.
func WithBasicAuthUser(on bool) Option {
	return func(c *config) { c.basicUser = on }
}

// WithLogger sets where failures to write the access log (a full disk, a
// closed file) are reported: at most once per 10s, with the number of
// failures in between, so that a broken log does not produce one error per
// request. Requests are served either way. The default is slog.Default()
// at the time of the report; nil is an error.
//
// When the access log is itself the default logger's output (New(nil), or
// a logger on the same file), the report goes to the output that is
// failing and is most likely lost. That cannot loop: slog.Logger drops the
// error of a failed report instead of reporting it, and the reports are
// bounded to one per 10s, so a broken log costs one extra failed write per
// 10s, not one per request. Point WithLogger at another output (stderr)
// to see the failures.
func WithLogger(l *slog.Logger) Option {
	return func(c *config) {
		if l == nil {
			c.fail(errors.New("accesslog: logger is nil"))
			return
		}
		c.logger = l
	}
}

// WithMeterProvider sets where the middleware's metrics go (default: the
// global provider, otel.GetMeterProvider() at the time of New, which
// records nothing until the application sets one): the semantic
// conventions' http.server.request.duration, by http.request.method,
// url.scheme, http.route and http.response.status_code (with error.type
// on 5xx), for every request not left out by [WithSkip]; docs/metrics.md
// lists every instrument. A nil provider is an error from New.
func WithMeterProvider(mp metric.MeterProvider) Option {
	return func(c *config) {
		if nilcheck.Is(mp) {
			c.fail(errors.New("accesslog: WithMeterProvider: nil provider"))
			return
		}
		c.meter = mp
	}
}

// New returns middleware that writes one record per request to logger
// (slog.Default() at the time of each request when logger is nil) once the
// response is complete. See the package documentation for the record. A
// nil option and every invalid option value are errors.
//
// Place it outside the recoverer, so that the 500 of a panic is logged
// with its status, and inside chi's ClientIPFrom… middleware, whose client
// IP it logs. [WithRequestID] gives the requests their ids itself (chi's
// RequestID outside it works too, at six allocations more). Wrap the router with [reqlog.RecordRoute] when
// middleware between accesslog and the router copies the request (see
// "Route" in the package documentation).
func New(logger *slog.Logger, opts ...Option) (func(http.Handler) http.Handler, error) {
	c := config{
		info:      slog.LevelInfo,
		clientErr: slog.LevelWarn,
		serverErr: slog.LevelError,
	}
	for _, o := range opts {
		if o == nil {
			return nil, errors.New("accesslog: nil option")
		}
		o(&c)
		if c.err != nil {
			return nil, c.err
		}
	}
	c.redact = redact.New(c.redactExtra...)
	if c.requestID {
		ids.init()
	}
	errs := errlog.New(c.logger, "accesslog: writing the access log failed", 0)
	ms, err := newMetrics(c.meter)
	if err != nil {
		return nil, fmt.Errorf("accesslog: WithMeterProvider: %w", err)
	}
	return func(next http.Handler) http.Handler {
		return &handler{cfg: &c, logger: logger, next: next, errs: errs, metrics: ms}
	}, nil
}

type handler struct {
	cfg     *config
	logger  *slog.Logger
	next    http.Handler
	errs    *errlog.Reporter
	metrics *metrics
}

// reqState is everything the middleware keeps for one request, in one
// allocation: it is the request's context (so that AddAttrs finds the entry
// and chi's GetReqID the request id without a context.WithValue), the
// response writer wrapper, the body counter, the request id and the copy
// of the request passed down. It is never reused: a handler's goroutine
// may hold the context after the request ended, and the id's string
// points into idBuf. It fits the 576-byte allocation size class (536
// bytes; B/op of the Middleware benchmarks).
type reqState struct {
	context.Context // the incoming request's context
	entry           reqlog.Entry
	rw              respwriter.Recorder
	body            bodyCounter
	req             http.Request
	reqID           any // WithRequestID: the id, a string, for chi's GetReqID; nil without
	idBuf           [RequestIDLen]byte
}

// bodyCounter counts the request body bytes the handler read, for requests
// whose Content-Length is unknown (chunked uploads).
type bodyCounter struct {
	rc io.ReadCloser
	n  int64
}

func (b *bodyCounter) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	b.n += int64(n)
	return n, err
}

func (b *bodyCounter) Close() error { return b.rc.Close() }

// Value returns the request's entry for [reqlog.AddAttrs], its id (with
// WithRequestID) for chi's middleware.GetReqID, and defers every other key
// to the incoming context.
func (s *reqState) Value(key any) any {
	if key == reqlog.ContextKey {
		return &s.entry
	}
	if s.reqID != nil && key == chiRequestIDKey {
		return s.reqID
	}
	return s.Context.Value(key)
}

// String names the context in fmt output, as context's own types do.
func (s *reqState) String() string { return "accesslog.requestContext" }

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if h.cfg.skip != nil && h.cfg.skip(r) {
		h.next.ServeHTTP(w, r)
		return
	}
	s := &reqState{Context: r.Context()}
	if h.cfg.requestID {
		s.setRequestID(h.cfg, r)
	}
	s.req = *r.WithContext(s)
	if r.ContentLength < 0 && r.Body != nil && r.Body != http.NoBody {
		s.body.rc = r.Body
		s.req.Body = &s.body
	}
	s.entry.SetPeer(peerHost(r.RemoteAddr))
	s.rw.Reset(w)
	s.rw.Start = time.Now()
	finished := false
	defer func() {
		// From here on, a goroutine the handler leaked that still holds the
		// writer gets ErrHandlerReturned instead of writing into a
		// response net/http may already have handed to another request.
		s.rw.End()
		if !finished {
			// A panic (or runtime.Goexit) is unwinding: write the line and
			// let it continue, without recovering it.
			h.log(s, r, true)
		}
	}()
	h.next.ServeHTTP(s.rw.Wrap(), &s.req)
	finished = true
	s.rw.End()
	h.log(s, r, false)
}

// log builds and hands the record to the logger's handler directly rather
// than through Logger.LogAttrs: the caller's PC (runtime.Callers) is
// meaningless for an access line and costs a third of the budget.
func (h *handler) log(s *reqState, r *http.Request, panicked bool) {
	dur := time.Since(s.rw.Start)
	extra := s.entry.Finish()

	status, aborted := s.outcome(r, panicked)
	h.metrics.request(s, r, &s.req, status, dur)
	level := h.cfg.info
	switch {
	case status >= 500 || panicked:
		level = h.cfg.serverErr
	case status >= 400:
		level = h.cfg.clientErr
	}
	logger := h.logger
	if logger == nil {
		logger = slog.Default()
	}
	lh := logger.Handler()
	if !lh.Enabled(s, level) {
		return
	}

	var f accessFields
	path, query, hasQuery := splitTarget(r)
	f.set(fMethod, slog.StringValue(r.Method))
	f.set(fPath, slog.StringValue(path))
	if hasQuery {
		f.set(fQuery, slog.StringValue(h.cfg.redact.Query(query, Redacted)))
	}
	if route := reqlog.Route(&s.req); route != "" {
		f.set(fRoute, slog.StringValue(route))
	}
	reqSize := r.ContentLength
	if reqSize < 0 {
		reqSize = s.body.n
	}
	respSize := s.rw.Bytes
	if r.Method == http.MethodHead {
		respSize = 0 // the server discards the body; nginx logs 0
	}
	peer := peerHost(r.RemoteAddr)
	f.set(fProto, slog.StringValue(protoVersion(r)))
	f.set(fStatus, slog.IntValue(status))
	f.set(fRequestSize, slog.Int64Value(reqSize))
	f.set(fResponseSize, slog.Int64Value(respSize))
	f.set(fClient, h.clientValue(s, peer))
	f.set(fPeer, slog.StringValue(peer))
	if v, ok := r.Header["User-Agent"]; ok && len(v) > 0 {
		f.set(fUserAgent, slog.StringValue(v[0]))
	}
	if v, ok := r.Header["Referer"]; ok && len(v) > 0 {
		// The previous page's URL can carry a token as well (a
		// password-reset link that loads this page's assets).
		f.set(fReferer, slog.StringValue(h.cfg.redact.URL(v[0], Redacted)))
	}
	if _, ok := r.Header["Authorization"]; ok && h.cfg.basicUser {
		if user, _, ok := r.BasicAuth(); ok {
			f.set(fUser, slog.StringValue(user))
		}
	}
	if id := middleware.GetReqID(s); id != "" {
		f.set(fRequestID, slog.StringValue(id))
	}
	ttfb := dur
	if s.rw.FirstByte > 0 {
		ttfb = s.rw.FirstByte
	}
	f.set(fDuration, slog.DurationValue(dur))
	f.set(fTTFB, slog.DurationValue(ttfb))
	if aborted != "" {
		f.set(fAborted, slog.StringValue(aborted))
	}

	// The wall clock of the end, from the start's wall clock and the
	// monotonic duration: one clock read less than time.Now.
	end := s.rw.Start.Add(dur)
	var err error
	if th, ok := lh.(*textHandler); ok && th.out.replace == nil {
		// The text formats print neither the listed headers, nor the
		// trace ids, nor the order of attributes: skip building them.
		err = th.handleFields(&f, extra, end)
	} else {
		var buf [24]slog.Attr
		attrs := f.appendAttrs(buf[:0])
		for _, hk := range h.cfg.headers {
			if v := r.Header[hk.name]; len(v) > 0 {
				attrs = append(attrs, slog.String(hk.key, strings.Join(v, ", ")))
			}
		}
		attrs = reqlog.AppendTrace(attrs, s)
		attrs = mergeExtra(attrs, extra)
		rec := slog.NewRecord(end, level, Message, 0)
		rec.AddAttrs(attrs...)
		err = lh.Handle(s, rec)
	}
	if err != nil {
		h.errs.Report(s, err)
	}
}

// mergeExtra appends what AddAttrs added; an added attribute with the key
// of a built-in one replaces it in place.
func mergeExtra(attrs, extra []slog.Attr) []slog.Attr {
	n := len(attrs)
outer:
	for _, a := range extra {
		for i := 0; i < n; i++ {
			if attrs[i].Key == a.Key {
				attrs[i] = a
				continue outer
			}
		}
		attrs = append(attrs, a)
	}
	return attrs
}

// outcome returns the status to log and the aborted reason, if any.
func (s *reqState) outcome(r *http.Request, panicked bool) (int, string) {
	status := s.rw.Status
	aborted := ""
	switch {
	case panicked:
		aborted = AbortedPanic
		if status == 0 && !s.rw.Hijacked {
			status = http.StatusInternalServerError
		}
	case s.rw.Hijacked:
	default:
		switch s.Context.Err() {
		case nil:
		case context.DeadlineExceeded:
			aborted = AbortedTimeout
		default:
			aborted = AbortedClientDisconnect
		}
		if aborted == AbortedClientDisconnect && status == 0 {
			status = reqlog.StatusClientClosedRequest
		}
	}
	if status == 0 {
		if s.rw.Hijacked && r.Header.Get("Upgrade") != "" {
			status = http.StatusSwitchingProtocols
		} else {
			// net/http sends 200 when the handler wrote nothing.
			status = http.StatusOK
		}
	}
	return status, aborted
}

// clientValue is chi's client IP when set, else the peer. A client IP
// different from the peer is logged through a LogValuer on the request
// state, so that the text handlers can append it without allocating a
// string.
func (h *handler) clientValue(s *reqState, peer string) slog.Value {
	ip := middleware.GetClientIPAddr(s)
	if !ip.IsValid() {
		return slog.StringValue(peer)
	}
	if p, err := netip.ParseAddr(peer); err == nil && p == ip {
		return slog.StringValue(peer)
	}
	return slog.AnyValue(clientAddr{s})
}

// clientAddr resolves to the client IP of a request (chi's, looked up
// again rather than kept in the request state, which stays within one
// allocation size class that way).
type clientAddr struct{ s *reqState }

func (c clientAddr) ip() netip.Addr { return middleware.GetClientIPAddr(c.s) }

// LogValue implements slog.LogValuer.
func (c clientAddr) LogValue() slog.Value { return slog.StringValue(c.ip().String()) }
