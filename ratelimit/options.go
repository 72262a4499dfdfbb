package ratelimit

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
)

// Option configures a [Limiter].
type Option func(*config)

type config struct {
	key       KeyFunc
	store     Store
	storeSet  bool // WithStore was given, even with nil
	name      string
	headers   HeaderStyle
	problem   problem.Writer
	failOpen  bool
	skip      func(*http.Request) bool
	skipSet   bool // WithSkip was given, even with nil
	logger    *slog.Logger
	loggerSet bool // WithLogger was given, even with nil

	policies     []Policy // WithPolicy's, after New's
	limitFunc    func(*http.Request, Policy) int
	limitFuncSet bool
	cost         func(*http.Request) int
	costSet      bool
	countOnly    func(status int) bool
	countOnlySet bool

	meterProvider metric.MeterProvider
	meterSet      bool // WithMeterProvider was given, even with nil
}

// validate reports the first bad setting; New returns it.
func (c *config) validate() error {
	switch {
	case c.key == nil:
		return errors.New("ratelimit: WithKey: nil KeyFunc")
	case c.storeSet && nilcheck.Is(c.store):
		return errors.New("ratelimit: WithStore: nil store")
	case !ratelimitheader.Style(c.headers).Valid():
		return fmt.Errorf("ratelimit: WithHeaders: unknown header style %v", c.headers)
	case c.problem == nil:
		return errors.New("ratelimit: WithProblemWriter: nil Writer")
	case c.skipSet && c.skip == nil:
		return errors.New("ratelimit: WithSkip: nil function")
	case c.loggerSet && c.logger == nil:
		return errors.New("ratelimit: WithLogger: nil logger")
	case c.limitFuncSet && c.limitFunc == nil:
		return errors.New("ratelimit: WithLimitFunc: nil function")
	case c.costSet && c.cost == nil:
		return errors.New("ratelimit: WithCost: nil function")
	case c.countOnlySet && c.countOnly == nil:
		return errors.New("ratelimit: WithCountOnly: nil function")
	case c.meterSet && nilcheck.Is(c.meterProvider):
		return errors.New("ratelimit: WithMeterProvider: nil provider")
	}
	if err := ratelimitheader.ValidName(c.name); err != nil {
		return fmt.Errorf("ratelimit: WithName: %w", err)
	}
	if len(c.policies)+1 > MaxPolicies {
		return fmt.Errorf("ratelimit: WithPolicy: %d policies, at most %d", len(c.policies)+1, MaxPolicies)
	}
	seen := map[string]bool{c.name: true}
	for _, p := range c.policies {
		if err := ratelimitheader.ValidName(p.Name); err != nil {
			return fmt.Errorf("ratelimit: WithPolicy: %w", err)
		}
		if err := p.Valid(); err != nil {
			return fmt.Errorf("ratelimit: WithPolicy %q: %w", p.Name, err)
		}
		if seen[p.Name] {
			return fmt.Errorf("ratelimit: WithPolicy: policy name %q used twice", p.Name)
		}
		seen[p.Name] = true
	}
	return nil
}

// WithKey sets how requests are grouped (default [KeyByIP]). A nil
// KeyFunc is an error from [New].
func WithKey(fn KeyFunc) Option {
	return func(c *config) { c.key = fn }
}

// WithStore sets where counts are kept (default [DefaultStore]: a new
// [MemoryStore] per Limiter, or in a worker of a cluster supervisor the
// table all its workers share, so that a limit is the service's; see
// [SetDefaultStore]). Share one store between limiters, or use redisstore
// to share counts between processes. Limiters that share a store must have
// distinct names (see [WithName]) unless they are meant to share counts.
// WithStore(NewMemoryStore()) opts a limiter out of a worker's shared
// table. A nil store, or an interface holding a nil pointer, is an error
// from [New].
func WithStore(s Store) Option {
	return func(c *config) { c.store, c.storeSet = s, true }
}

// WithName names the policy (default "default"): the name in the
// RateLimit-Policy and RateLimit headers and the namespace of the counts in
// the store. It goes verbatim into a structured-field string, so it must
// be 1–64 printable ASCII characters without '"' or '\' (slowdown.WithName
// has the same rule); anything else is an error from [New].
func WithName(name string) Option {
	return func(c *config) { c.name = name }
}

// WithHeaders chooses the rate-limit headers sent on every response
// (default [HeadersIETF]). Retry-After is sent on 429 in every style. A
// value other than the four HeaderStyle constants is an error from [New].
func WithHeaders(style HeaderStyle) Option {
	return func(c *config) { c.headers = style }
}

// WithProblemWriter sets how the Limiter writes the responses it
// generates itself (default [problem.Write], RFC 9457 problem details),
// so that a service keeps its own error format for them:
//
//   - 429 Too Many Requests for a refused request; [FromContext] on the
//     request's context returns the [Decision];
//   - 400 Bad Request when the request lacks what the KeyFunc needs (its
//     error wraps [ErrNoKey]);
//   - 500 Internal Server Error when the KeyFunc fails otherwise (a
//     misconfiguration, logged: see [WithLogger]);
//   - 503 Service Unavailable when the store fails and the Limiter fails
//     closed ([WithFailOpen](false)).
//
// The headers the Limiter sets are already on w when w runs: the
// rate-limit headers of the chosen style and Retry-After on 429 (the time
// until one request fits) and 503 (1 second). Details.Detail is text for
// the client; it never holds an error's text. A nil Writer is an error
// from [New].
func WithProblemWriter(pw problem.Writer) Option {
	return func(c *config) { c.problem = pw }
}

// WithFailOpen chooses what happens when the store fails (default true):
// serve the request uncounted, or, with false, refuse it with 503 (see
// [WithProblemWriter]). Either way the error is logged at most once per
// 10s. Key errors never fail open, and neither does a request whose
// context is done by the time the store answers (the client left): that
// is not a store failure, and the request is not served at all (see
// [Limiter.Handler]).
func WithFailOpen(open bool) Option {
	return func(c *config) { c.failOpen = open }
}

// WithSkip exempts requests for which fn returns true (health checks,
// trusted networks): they are neither counted nor limited. A nil fn is an
// error from [New].
func WithSkip(fn func(*http.Request) bool) Option {
	return func(c *config) { c.skip, c.skipSet = fn, true }
}

// WithLogger sets the logger for store errors and for KeyFunc errors that
// do not wrap [ErrNoKey] (a misconfigured KeyFunc), each kind at most once
// per 10s (default: slog.Default() at the time of each record, so that
// slog.SetDefault after New still applies). A nil logger is an error from
// [New].
func WithLogger(l *slog.Logger) Option {
	return func(c *config) { c.logger, c.loggerSet = l, true }
}

// WithPolicy adds a policy that every request must also fit: at most
// limit requests per trailing window, under its own name (the rules of
// [WithName]; names must be distinct). The policy of [New] is the first;
// up to [MaxPolicies] in all. A burst and a sustained limit on one route:
//
//	ratelimit.New(10, time.Second, ratelimit.WithName("burst"),
//		ratelimit.WithPolicy("hour", 1000, time.Hour))
//
// A request is counted in all of the policies or in none (the store takes
// them in one atomic step: one lock for [MemoryStore], one script for
// redisstore), the [Decision] and the single-policy headers describe the
// policy closest to refusing (the refusing one with the latest
// RetryAfter, else the one with the fewest requests left), and the IETF
// RateLimit-Policy lists every policy. An invalid limit, window or name is
// an error from [New].
func WithPolicy(name string, limit int, window time.Duration) Option {
	return func(c *config) {
		c.policies = append(c.policies, Policy{Name: name, Limit: limit, Window: window})
	}
}

// WithLimitFunc sets the limit of each policy per request (a plan's
// quota, say): fn gets the request and the configured policy and returns
// the limit the request is judged against. It is called for every policy
// of every request that is not skipped, concurrently: it must be fast and
// safe for concurrent use.
//
// Counts are kept per policy name and key whatever the limit, and the
// limit is applied when the request is decided: when a key's limit
// changes mid-window its count carries over and the new limit applies at
// once (a key upgraded from 100 to 1,000 after 100 requests has 900 left;
// one downgraded from 1,000 to 100 after 500 is refused until its count
// slides under 100). Counts of different limits are never kept apart, so
// a client cannot add limits up by switching between them. The headers
// and [Decision.Limit] show the request's limit; [Limiter.Peek] and
// [Limiter.AllowN], which have no request, use the configured ones.
//
// A limit < 1, above [MaxLimit] or below the request's cost is a bug in
// fn: the request
// is answered 500, never passed on uncounted, and the error is logged at
// most once per 10s (see [WithLogger]). A nil fn is an error from [New].
func WithLimitFunc(fn func(r *http.Request, p Policy) int) Option {
	return func(c *config) { c.limitFunc, c.limitFuncSet = fn, true }
}

// WithCost sets what a request costs (default 1): a bulk endpoint that
// costs 10 takes 10 from the count of every policy. The request fits when
// the sliding-window estimate plus its cost stays within the limit;
// Remaining, Reset and Retry-After (the time until a request of that cost
// fits) follow. fn is called once per request that is not skipped,
// concurrently.
//
// A cost < 1 or above a policy's limit (such a request could never fit)
// is a bug in fn: the request is answered 500, never passed on uncounted
// or free, and the error is logged at most once per 10s. Use [WithSkip]
// for requests that should not count. A nil fn is an error from [New].
func WithCost(fn func(r *http.Request) int) Option {
	return func(c *config) { c.cost, c.costSet = fn, true }
}

// WithCountOnly counts a request only when counts(status) reports true for
// its response's status: the login brute-force recipe counts failures,
//
//	ratelimit.WithCountOnly(func(status int) bool { return status >= 400 })
//
// (express-rate-limit's skipSuccessfulRequests), and the reverse,
// status < 400, counts only successes (skipFailedRequests).
//
// The request is counted before it is passed on, like any other, and
// given back once its response shows that it does not count: an atomic
// refund in the fixed window in which it was counted (see [Store]).
// Requests in flight therefore hold their place, and concurrent requests
// never exceed the limit together: 500 concurrent wrong passwords against
// a limit of 5 let at most 5 reach the handler. The price is that requests
// in flight that will be given back are refused meanwhile like any other
// past the limit.
//
// The status is the first one the handler wrote (200 when it wrote none).
// A request whose handler panicked counts as status 500 (the panic goes on
// to a recoverer outside, which answers 500), and one whose context is
// done when the handler returns (the client left, or a deadline passed)
// as 499 (reqlog.StatusClientClosedRequest): with a counts function that
// counts failures, neither is ever given back. The response writer passed
// on keeps every optional interface of the one given. counts is called
// once per request passed on. A nil function is an error from [New].
func WithCountOnly(counts func(status int) bool) Option {
	return func(c *config) { c.countOnly, c.countOnlySet = counts, true }
}

// WithMeterProvider sets where the Limiter's metrics go (default: the
// global provider, otel.GetMeterProvider() at the time of New, which
// records nothing until the application sets one): the count of requests
// by policy and outcome (shipshape.ratelimit.decisions) and the store's
// latency (shipshape.ratelimit.store.duration); docs/metrics.md lists
// them. A nil provider is an error from [New].
func WithMeterProvider(mp metric.MeterProvider) Option {
	return func(c *config) { c.meterProvider, c.meterSet = mp, true }
}
