package slowdown

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"go.opentelemetry.io/otel/metric"

	"github.com/shipshape-go/shipshape/internal/nilcheck"
	"github.com/shipshape-go/shipshape/internal/ratelimitheader"
	"github.com/shipshape-go/shipshape/problem"
	"github.com/shipshape-go/shipshape/ratelimit"
)

// Defaults of the options.
const (
	// DefaultStep is the delay added per request over the threshold.
	DefaultStep = 100 * time.Millisecond
	// DefaultMaxDelay caps the delay of one request.
	DefaultMaxDelay = 10 * time.Second
	// DefaultMaxWaiting bounds the requests waiting at once in a Delayer.
	DefaultMaxWaiting = 1024
	// DefaultName is the policy name: the namespace of the counts in the
	// store and the name in the RateLimit headers.
	DefaultName = "slowdown"
)

// Option configures a [Delayer].
type Option func(*config)

type config struct {
	step       time.Duration
	delayFunc  func(over int) time.Duration
	delayFnSet bool // WithDelayFunc was given, even with nil
	maxDelay   time.Duration
	maxWaiting int
	key        ratelimit.KeyFunc
	store      ratelimit.Store
	storeSet   bool // WithStore was given, even with nil
	name       string
	headers    ratelimit.HeaderStyle
	problem    problem.Writer
	skip       func(*http.Request) bool
	skipSet    bool         // WithSkip was given, even with nil
	logger     *slog.Logger // nil: slog.Default() at the time of each report
	loggerSet  bool         // WithLogger was given, even with nil

	afterFunc    func(*http.Request) int
	afterFuncSet bool
	countOnly    func(status int) bool
	countOnlySet bool

	meterProvider metric.MeterProvider
	meterSet      bool // WithMeterProvider was given, even with nil
}

func defaults() config {
	return config{
		step:       DefaultStep,
		maxDelay:   DefaultMaxDelay,
		maxWaiting: DefaultMaxWaiting,
		key:        ratelimit.KeyByIP,
		name:       DefaultName,
		headers:    ratelimit.HeadersNone,
		problem:    problem.Write,
	}
}

// validate reports the first bad setting; New returns it.
func (c *config) validate(after int) error {
	switch {
	case c.step <= 0:
		return fmt.Errorf("slowdown: WithStep: step %v, want > 0", c.step)
	case c.delayFnSet && c.delayFunc == nil:
		return errors.New("slowdown: WithDelayFunc: nil function")
	case c.maxDelay <= 0:
		return fmt.Errorf("slowdown: WithMaxDelay: max delay %v, want > 0", c.maxDelay)
	case c.maxWaiting <= 0:
		return fmt.Errorf("slowdown: WithMaxWaiting: %d requests, want > 0", c.maxWaiting)
	case c.key == nil:
		return errors.New("slowdown: WithKey: nil KeyFunc")
	case c.storeSet && nilcheck.Is(c.store):
		return errors.New("slowdown: WithStore: nil store")
	case !ratelimitheader.Style(c.headers).Valid():
		return fmt.Errorf("slowdown: WithHeaders: unknown header style %v", c.headers)
	case c.headers != ratelimit.HeadersNone && after == 0:
		return errors.New("slowdown: WithHeaders: after must be > 0 to send headers (a limit of 0 would tell clients they have no quota)")
	case c.problem == nil:
		return errors.New("slowdown: WithProblemWriter: nil Writer")
	case c.skipSet && c.skip == nil:
		return errors.New("slowdown: WithSkip: nil function")
	case c.loggerSet && c.logger == nil:
		return errors.New("slowdown: WithLogger: nil logger")
	case c.afterFuncSet && c.afterFunc == nil:
		return errors.New("slowdown: WithAfterFunc: nil function")
	case c.countOnlySet && c.countOnly == nil:
		return errors.New("slowdown: WithCountOnly: nil function")
	case c.meterSet && nilcheck.Is(c.meterProvider):
		return errors.New("slowdown: WithMeterProvider: nil provider")
	}
	if err := ratelimitheader.ValidName(c.name); err != nil {
		return fmt.Errorf("slowdown: WithName: %w", err)
	}
	return nil
}

// WithStep sets the delay added for each request over the threshold
// (default [DefaultStep], 100ms): request number k in the window waits
// (k−after)·step, capped by [WithMaxDelay]. It must be > 0.
func WithStep(step time.Duration) Option {
	return func(c *config) { c.step = step }
}

// WithDelayFunc replaces the linear delay: a request over the threshold
// waits fn(over), where over = k−after ≥ 1, capped by [WithMaxDelay];
// negative results count as no delay. fn is called on every request over
// the threshold, concurrently: it must be fast and safe for concurrent
// use. WithStep is then unused.
func WithDelayFunc(fn func(over int) time.Duration) Option {
	return func(c *config) { c.delayFunc, c.delayFnSet = fn, true }
}

// WithMaxDelay caps the delay of one request (default [DefaultMaxDelay],
// 10s). It must be > 0. Keep it below the server's WriteTimeout and any
// proxy read timeout in front, or the client sees a timeout instead of a
// slow answer. It also bounds the Retry-After of the 503 sent past
// [WithMaxWaiting].
func WithMaxDelay(d time.Duration) Option {
	return func(c *config) { c.maxDelay = d }
}

// WithMaxWaiting bounds how many requests may wait at once in the Delayer
// (default [DefaultMaxWaiting], 1024); it must be > 0. A request that
// should wait while n others already do is answered at once with 503
// Service Unavailable and a Retry-After of the delay it would have waited
// (whole seconds, rounded up, at least 1), so that a flood cannot pile up
// goroutines, connections and memory. 503 and not 429: the client may be
// within its quota; it is the server that has no room left to hold slowed
// requests.
func WithMaxWaiting(n int) Option {
	return func(c *config) { c.maxWaiting = n }
}

// WithKey sets how requests are grouped (default [ratelimit.KeyByIP]). Use
// the same KeyFunc as the ratelimit.Limiter behind the Delayer so that both
// count the same clients. A request whose key cannot be computed is passed
// on without delay (see [Delayer.Handler]). A nil KeyFunc is an error from
// [New].
func WithKey(fn ratelimit.KeyFunc) Option {
	return func(c *config) { c.key = fn }
}

// WithStore sets where counts are kept (default [ratelimit.DefaultStore]:
// a new [ratelimit.MemoryStore] per Delayer, or in a worker of a cluster
// supervisor the table all its workers share). It may be the store of a
// ratelimit.Limiter: the counts are kept apart by policy name (see
// [WithName]). With a redisstore the delays agree across processes. A nil
// store, or an interface holding a nil pointer, is an error from [New].
func WithStore(s ratelimit.Store) Option {
	return func(c *config) { c.store, c.storeSet = s, true }
}

// WithName names the policy (default [DefaultName], "slowdown"): the
// namespace of the counts in the store and the name in the RateLimit
// headers. It must differ from the name of any ratelimit.Limiter on the
// same store, or both would count into one counter and every request would
// be counted twice. Rules as for ratelimit.WithName: 1–64 printable ASCII
// characters without '"' or '\'; anything else is an error from [New].
func WithName(name string) Option {
	return func(c *config) { c.name = name }
}

// WithHeaders chooses the rate-limit headers the Delayer sends for its own
// policy on every response it passes on or refuses (default
// [ratelimit.HeadersNone]: none). Every style of ratelimit.WithHeaders is
// accepted, so one setting can configure both.
//
// With [ratelimit.HeadersIETF] the Delayer adds its items to the
// structured-field lists, after those of other policies (a
// ratelimit.Limiter's), which it keeps:
//
//	RateLimit-Policy: "slowdown";q=<after>;w=<window in seconds>
//	RateLimit: "slowdown";r=<requests left before delays start>;t=<seconds until the count is back to 0>
//
// With [ratelimit.HeadersLegacy] it sends its own trio: X-Slow-Down-Limit
// (after), X-Slow-Down-Remaining (requests left before delays start) and
// X-Slow-Down-Reset (the Unix time, in seconds rounded up, when the count
// is back to 0). The X-RateLimit-* names describe a single policy, the
// limit past which requests are refused, and belong to the Limiter; a
// Delayer that wrote them would overwrite or contradict it. With
// [ratelimit.HeadersBoth] it sends both.
//
// The fields of [ratelimit.HeadersDraft6] and [ratelimit.HeadersDraft7]
// describe a single policy too, so the Delayer's are the Limiter's with
// RateLimit replaced by Slow-Down, as for the legacy trio (without the X-
// of the legacy names, as the draft fields have none):
//
//	draft-6: Slow-Down-Policy: 50;w=60, Slow-Down-Limit: 50,
//	         Slow-Down-Remaining: 7, Slow-Down-Reset: 17
//	draft-7: Slow-Down-Policy: 50;w=60,
//	         Slow-Down: limit=50, remaining=7, reset=17
//
// Reset is then in seconds from the end of the delay. With [WithAfterFunc]
// the fields show the request's after, and a response whose after is 0
// gets none.
//
// The headers are set before the wait and sent after it, so t counts from
// the end of the delay. Retry-After is only ever sent on the 503 past
// [WithMaxWaiting]. A style other than the four constants is an error from
// [New], and so is any style but HeadersNone with after = 0, which would
// announce a quota of zero.
func WithHeaders(style ratelimit.HeaderStyle) Option {
	return func(c *config) { c.headers = style }
}

// WithProblemWriter sets how the Delayer writes the one response it
// generates itself, the 503 Service Unavailable past [WithMaxWaiting]
// (default [problem.Write], RFC 9457 problem details), so that a service
// keeps its own error format for it. Retry-After and the headers of
// [WithHeaders] are already on w when w runs. A nil Writer is an error
// from [New].
func WithProblemWriter(pw problem.Writer) Option {
	return func(c *config) { c.problem = pw }
}

// WithSkip exempts requests for which fn returns true (health checks,
// trusted networks): they are neither counted nor delayed. A nil fn is an
// error from [New].
func WithSkip(fn func(*http.Request) bool) Option {
	return func(c *config) { c.skip, c.skipSet = fn, true }
}

// WithLogger sets the logger for store errors and for KeyFunc errors that
// do not wrap ratelimit.ErrNoKey, each kind at most once per 10s (default:
// slog.Default() at the time of each record, so that slog.SetDefault after
// New still applies). A nil logger is an error from [New].
func WithLogger(l *slog.Logger) Option {
	return func(c *config) { c.logger, c.loggerSet = l, true }
}

// WithAfterFunc sets the threshold per request (a plan's allowance, say):
// fn returns the after of the request, the number of requests in the
// trailing window that pass undelayed, instead of the after of [New],
// which [Delayer.Delay] keeps using. Counts are kept per key whatever the
// threshold, which is applied when the request is counted: a key whose
// after changes mid-window keeps its count. fn is called once per request
// that is not skipped, concurrently: it must be fast and safe for
// concurrent use. A negative result is a bug in fn: the request is
// answered 500 (never passed on undelayed) and the error is logged at
// most once per 10s. A nil fn is an error from [New].
func WithAfterFunc(fn func(r *http.Request) int) Option {
	return func(c *config) { c.afterFunc, c.afterFuncSet = fn, true }
}

// WithCountOnly counts a request only when counts(status) reports true for
// its response's status, as ratelimit.WithCountOnly does: every request
// is counted (and delayed by its number) before it is passed on, and given
// back, in the window it was counted in, once its response shows that it
// does not count. Slowing down only failed logins:
//
//	slowdown.WithCountOnly(func(status int) bool { return status >= 400 })
//
// A request whose handler panicked counts as status 500, one whose context
// is done when the handler returns as 499 (reqlog.StatusClientClosedRequest).
// A nil function is an error from [New].
func WithCountOnly(counts func(status int) bool) Option {
	return func(c *config) { c.countOnly, c.countOnlySet = counts, true }
}

// WithMeterProvider sets where the Delayer's metrics go (default: the
// global provider, otel.GetMeterProvider() at the time of New, which
// records nothing until the application sets one): requests delayed,
// refused for overflow or lost while waiting
// (shipshape.slowdown.requests), the delays (shipshape.slowdown.delay)
// and the requests waiting now (shipshape.slowdown.waiting);
// docs/metrics.md lists them. Requests passed on undelayed record
// nothing. A nil provider is an error from [New].
func WithMeterProvider(mp metric.MeterProvider) Option {
	return func(c *config) { c.meterProvider, c.meterSet = mp, true }
}
