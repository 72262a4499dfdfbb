package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/shipshape-go/shipshape/internal/errlog"
	"github.com/shipshape-go/shipshape/internal/ratelimitheader"
	"github.com/shipshape-go/shipshape/internal/respwriter"
	"github.com/shipshape-go/shipshape/problem"
	"github.com/shipshape-go/shipshape/reqlog"
)

// Limiter limits requests per key to a number per sliding window. It is
// safe for concurrent use. Create it with [New]; the zero value is not
// usable.
type Limiter struct {
	policy    Policy   // the first policy, New's
	policies  []Policy // every policy, policy first
	store     Store
	limitFunc func(*http.Request, Policy) int
	cost      func(*http.Request) int
	countOnly func(status int) bool
	// simple: one policy and none of the functions above, the default:
	// the Handler's path that allocates nothing but the headers.
	simple    bool
	fnErrs    *errlog.Reporter
	key       KeyFunc
	headers   ratelimitheader.Policy
	problem   problem.Writer
	failOpen  bool
	skip      func(*http.Request) bool
	storeErrs *errlog.Reporter
	keyErrs   *errlog.Reporter
	metrics   *metrics
	// base is the wall time at New, with its monotonic reading: the clock
	// (see now).
	base time.Time
	// baseNs is base in Unix nanoseconds.
	baseNs int64
}

// Decision is the outcome of one check against the limit. With several
// policies (see [WithPolicy]) Allowed is the outcome under all of them and
// the other fields describe the one closest to refusing, named by Policy.
type Decision struct {
	Allowed    bool
	Policy     string        // the name of the policy the figures describe
	Limit      int           // requests per window
	Remaining  int           // requests left now
	Reset      time.Duration // until the quota is fully available again
	RetryAfter time.Duration // 0 when allowed; else the earliest time the same request fits
}

// ErrInvalidN is returned by [Limiter.AllowN] for n < 1 or n > a limit
// (a take that can never fit), and wrapped by stores for a negative n.
var ErrInvalidN = errors.New("ratelimit: n must be between 1 and the limit")

// errFunc is the error logged for a WithLimitFunc or WithCost result that
// cannot be used.
var errFunc = errors.New("ratelimit: WithLimitFunc or WithCost returned a value that cannot be used")

// New returns a Limiter that allows limit requests per key in any trailing
// window (a sliding-window counter, see [Window]). It returns an error for
// limit ≤ 0, window ≤ 0, a nil option and every option given a value it
// cannot use (see each option).
func New(limit int, window time.Duration, opts ...Option) (*Limiter, error) {
	cfg := config{
		key:      KeyByIP,
		name:     "default",
		headers:  HeadersIETF,
		problem:  problem.Write,
		failOpen: true,
	}
	for _, o := range opts {
		if o == nil {
			return nil, errors.New("ratelimit: nil option")
		}
		o(&cfg)
	}
	p := Policy{Name: cfg.name, Limit: limit, Window: window}
	if err := p.Valid(); err != nil {
		return nil, err
	}
	policies := append([]Policy{p}, cfg.policies...)
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if !cfg.storeSet {
		s, err := DefaultStore(policies)
		if err != nil {
			return nil, err
		}
		cfg.store = s
	}
	storeMsg := "ratelimit: store failed, serving without limit"
	if !cfg.failOpen {
		storeMsg = "ratelimit: store failed, refusing with 503"
	}
	quotas := make([]ratelimitheader.Quota, len(policies))
	for i, p := range policies {
		quotas[i] = ratelimitheader.Quota{Name: p.Name, Limit: p.Limit, Window: p.Window}
	}
	ms, err := newMetrics(cfg.meterProvider, policies)
	if err != nil {
		return nil, fmt.Errorf("ratelimit: WithMeterProvider: %w", err)
	}
	base := time.Now()
	return &Limiter{
		policy:    p,
		policies:  policies,
		store:     cfg.store,
		limitFunc: cfg.limitFunc,
		cost:      cfg.cost,
		countOnly: cfg.countOnly,
		simple:    len(policies) == 1 && cfg.limitFunc == nil && cfg.cost == nil && cfg.countOnly == nil,
		fnErrs:    errlog.New(cfg.logger, "ratelimit: limit or cost function failed, answering 500", 0),
		key:       cfg.key,
		headers:   ratelimitheader.NewPolicy(ratelimitheader.Style(cfg.headers), ratelimitheader.RateLimitNames, quotas...),
		problem:   cfg.problem,
		failOpen:  cfg.failOpen,
		skip:      cfg.skip,
		storeErrs: errlog.New(cfg.logger, storeMsg, 0),
		keyErrs:   errlog.New(cfg.logger, "ratelimit: key function failed, answering 500", 0),
		metrics:   ms,
		base:      base,
		baseNs:    base.UnixNano(),
	}, nil
}

// now reads the clock: the wall time at New plus the monotonic time
// since, one clock read instead of time.Now's two, and immune to the wall
// clock being stepped (a window never runs backwards). Windows stay
// aligned on the epoch as the wall clock saw it at New; NTP slewing moves
// both clocks alike. In a testing/synctest bubble both are the bubble's
// fake clock. The result carries no monotonic reading (time.Unix is
// cheaper than Time.Add, which the profile showed): it is only ever used
// as an instant.
func (l *Limiter) now() time.Time { return time.Unix(0, l.baseNs+int64(time.Since(l.base))) }

// Policy returns the limiter's first policy, the one of [New].
func (l *Limiter) Policy() Policy { return l.policy }

// Policies returns every policy of the limiter, the one of [New] first
// (see [WithPolicy]).
func (l *Limiter) Policies() []Policy { return append([]Policy(nil), l.policies...) }

// Allow checks and counts one request for key now.
func (l *Limiter) Allow(ctx context.Context, key string) (Decision, error) {
	return l.AllowN(ctx, key, l.now(), 1)
}

// AllowN checks whether n requests for key fit at time now under every
// policy and counts them in all of them if they do. Refused requests are
// not counted. It returns an error wrapping [ErrInvalidN] for n outside
// 1..limit (of any policy), and the store's error when the store fails.
func (l *Limiter) AllowN(ctx context.Context, key string, now time.Time, n int) (Decision, error) {
	for _, p := range l.policies {
		if n < 1 || n > p.Limit {
			return Decision{}, fmt.Errorf("%w (n=%d, limit=%d)", ErrInvalidN, n, p.Limit)
		}
	}
	if len(l.policies) == 1 {
		w, err := l.store.Take(ctx, l.policy, key, now, n)
		if err != nil {
			return Decision{}, err
		}
		return decide(l.policy, w, n), nil
	}
	ws := make([]Window, len(l.policies))
	allowed, err := l.store.TakeAll(ctx, l.policies, key, now, n, ws)
	if err != nil {
		return Decision{}, err
	}
	d, _ := decideAll(l.policies, ws, n, allowed)
	return d, nil
}

// Peek returns the Decision a request of cost 1 for key would get now,
// under the configured limits, without counting it: Remaining and Reset
// as they stand, Allowed whether it would fit, RetryAfter when it would
// not. With redisstore it is one round trip.
func (l *Limiter) Peek(ctx context.Context, key string) (Decision, error) {
	ws := make([]Window, len(l.policies))
	if err := l.store.Peek(ctx, l.policies, key, l.now(), ws); err != nil {
		return Decision{}, err
	}
	allowed := true
	for _, w := range ws {
		allowed = allowed && w.Allowed
	}
	d, _ := decideAll(l.policies, ws, 1, allowed)
	return d, nil
}

// Reset forgets key under every policy of the limiter: its next request
// starts from a count of zero (after a successful login, say, or to
// unblock a client). With redisstore it is one round trip.
func (l *Limiter) Reset(ctx context.Context, key string) error {
	return l.store.Reset(ctx, l.policies, key)
}

// Handler limits next. A request within the limit is passed on with the
// rate-limit headers set; one over it gets 429 (see [WithProblemWriter]).
// A request whose key cannot be computed is never passed on uncounted:
// it gets 400, or 500 when the KeyFunc is misconfigured; likewise 500 when
// [WithLimitFunc] or [WithCost] returns a value that cannot be used.
//
// A request whose context is done once the store has answered (the client
// closed, reset or half-closed its connection, which net/http reports by
// cancelling the context, or a deadline outside passed) is never passed
// on, whatever the store answered: the status is set to 499
// (reqlog.StatusClientClosedRequest) with no body when the client left,
// and nothing is written under a deadline, which belongs to the timeout
// middleware that set it (decision=canceled or deadline on the access log
// line). It is not a store failure and is not logged as one: failing open
// applies only to requests that are still alive.
func (l *Limiter) Handler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if l.skip != nil && l.skip(r) {
			next.ServeHTTP(w, r)
			return
		}
		key, err := l.key(r)
		if err != nil {
			l.keyFailed(w, r, err)
			return
		}
		if !l.simple {
			l.serve(next, w, r, key)
			return
		}
		now := l.now()
		win, err := l.store.Take(r.Context(), l.policy, key, now, 1)
		// One check while nothing records (no provider set), then none.
		rec := l.metrics.gate.Open() && l.metrics.enabled(r.Context())
		if rec {
			l.took(r.Context(), now)
		}
		if l.stopped(w, r, err) {
			if err != nil && l.failOpen && r.Context().Err() == nil {
				next.ServeHTTP(w, r)
			}
			return
		}
		d := decide(l.policy, win, 1)
		l.headers.Set(w.Header(), nil, 0, d.Remaining, d.Reset, now)
		if d.Allowed {
			if rec {
				l.metrics.decided(r.Context(), 0, outcomeAllowed)
			}
			next.ServeHTTP(w, r)
			return
		}
		l.metrics.decided(r.Context(), 0, outcomeDenied)
		l.refuse(w, r, d)
	})
}

// stopped handles what ends a request before its decision: its context
// is done (see Handler), or the store failed (err), logged, and answered
// 503 unless the Limiter fails open, when the caller passes it on. It
// reports whether the request goes no further down the limiting path.
func (l *Limiter) stopped(w http.ResponseWriter, r *http.Request, err error) bool {
	if cerr := r.Context().Err(); cerr != nil {
		// The one rule for a request whose client is gone: a store
		// call cut short by the request's own context (redisstore
		// returns its error) would otherwise fail open and serve the
		// request uncounted. Counted and not served is harmless.
		l.metrics.decided(r.Context(), 0, outcomeCanceled)
		l.abandon(w, r, cerr)
		return true
	}
	if err == nil {
		return false
	}
	l.metrics.decided(r.Context(), 0, outcomeStoreError)
	l.storeErrs.Report(r.Context(), err, slog.String("policy", l.policy.Name))
	if l.failOpen {
		return true
	}
	l.logError(r, fmt.Errorf("ratelimit: store: %w", err))
	ratelimitheader.SetRetryAfter(w.Header(), time.Second)
	l.problem(w, r, problem.Details{Status: http.StatusServiceUnavailable, Detail: "Rate limiting is unavailable; try again shortly."})
	return true
}

// refuse answers a request over the limit with 429.
func (l *Limiter) refuse(w http.ResponseWriter, r *http.Request, d Decision) {
	ctx := context.WithValue(r.Context(), decisionKey{}, d)
	reqlog.AddAttrs(ctx, slog.Group("ratelimit",
		slog.String("policy", d.Policy),
		slog.String("decision", "denied"),
		slog.Duration("retry_after", d.RetryAfter)))
	ratelimitheader.SetRetryAfter(w.Header(), d.RetryAfter)
	l.problem(w, r.WithContext(ctx), problem.Details{Status: http.StatusTooManyRequests,
		Detail: "Rate limit exceeded: retry in " + strconv.FormatInt(ratelimitheader.RetryAfterSeconds(d.RetryAfter), 10) + " seconds."})
}

// takeState is one request's take on the Handler's general path (several
// policies, a limit or cost function, or counting only some responses).
// It is pooled: the slices passed to the Store escape.
type takeState struct {
	ps     [MaxPolicies]Policy
	ws     [MaxPolicies]Window
	limits [MaxPolicies]int
}

var takePool = sync.Pool{New: func() any { return new(takeState) }}

// serve is the Handler's general path.
func (l *Limiter) serve(next http.Handler, w http.ResponseWriter, r *http.Request, key string) {
	t := takePool.Get().(*takeState)
	defer takePool.Put(t)
	k := len(l.policies)
	ps, ws, limits := t.ps[:k], t.ws[:k], t.limits[:k]
	copy(ps, l.policies)
	n := 1
	if l.cost != nil {
		n = l.cost(r)
	}
	for i := range ps {
		if l.limitFunc != nil {
			ps[i].Limit = l.limitFunc(r, l.policies[i])
		}
		limits[i] = ps[i].Limit
		if n < 1 || n > ps[i].Limit || ps[i].Limit > MaxLimit {
			l.fnFailed(w, r, fmt.Errorf("%w: policy %q: limit %d, cost %d", errFunc, ps[i].Name, ps[i].Limit, n))
			return
		}
	}
	now := l.now()
	var allowed bool
	var err error
	if k == 1 {
		ws[0], err = l.store.Take(r.Context(), ps[0], key, now, n)
		allowed = ws[0].Allowed
	} else {
		allowed, err = l.store.TakeAll(r.Context(), ps, key, now, n, ws)
	}
	rec := l.metrics.enabled(r.Context())
	if rec {
		l.took(r.Context(), now)
	}
	if l.stopped(w, r, err) {
		if err != nil && l.failOpen && r.Context().Err() == nil {
			next.ServeHTTP(w, r)
		}
		return
	}
	d, i := decideAll(ps, ws, n, allowed)
	if l.limitFunc == nil {
		limits = nil
	}
	l.headers.Set(w.Header(), limits, i, d.Remaining, d.Reset, now)
	if !d.Allowed {
		l.metrics.decided(r.Context(), i, outcomeDenied)
		l.refuse(w, r, d)
		return
	}
	if rec {
		l.metrics.decided(r.Context(), i, outcomeAllowed)
	}
	if l.countOnly == nil {
		next.ServeHTTP(w, r)
		return
	}
	l.serveCounting(next, w, r, key, n, ps, ws)
}

// serveCounting passes r on and gives its take back when its response
// does not count (see [WithCountOnly]).
func (l *Limiter) serveCounting(next http.Handler, w http.ResponseWriter, r *http.Request, key string, n int, ps []Policy, ws []Window) {
	respwriter.ServeJudged(next, w, r, func(status int) {
		if l.countOnly(status) {
			return
		}
		// Given back even when the client has left: the refund must not
		// fail because the request's context is done.
		if err := l.store.Refund(context.WithoutCancel(r.Context()), ps, key, n, ws); err != nil {
			l.storeErrs.Report(r.Context(), err, slog.String("policy", l.policy.Name))
		}
	})
}

// fnFailed answers a request whose limit or cost function returned a value
// that cannot be used: 500, logged, never passed on.
func (l *Limiter) fnFailed(w http.ResponseWriter, r *http.Request, err error) {
	l.metrics.decided(r.Context(), 0, outcomeFuncError)
	l.logError(r, err)
	l.fnErrs.Report(r.Context(), err, slog.String("policy", l.policy.Name))
	l.problem(w, r, problem.Details{Status: http.StatusInternalServerError})
}

// keyFailed answers a request whose key could not be computed: 400 when
// the request lacks what the key needs, else 500 for a KeyFunc that is
// misconfigured, which is also logged.
func (l *Limiter) keyFailed(w http.ResponseWriter, r *http.Request, err error) {
	l.metrics.decided(r.Context(), 0, outcomeKeyError)
	l.logError(r, fmt.Errorf("ratelimit: key: %w", err))
	if errors.Is(err, ErrNoKey) {
		l.problem(w, r, problem.Details{Status: http.StatusBadRequest, Detail: "The request does not identify a client for rate limiting."})
		return
	}
	l.keyErrs.Report(r.Context(), err, slog.String("policy", l.policy.Name))
	l.problem(w, r, problem.Details{Status: http.StatusInternalServerError})
}

// abandon ends a request whose context ended (cerr) before it was decided.
func (l *Limiter) abandon(w http.ResponseWriter, r *http.Request, cerr error) {
	decision := "canceled"
	if errors.Is(cerr, context.DeadlineExceeded) {
		decision = "deadline"
	}
	reqlog.AddAttrs(r.Context(), slog.Group("ratelimit",
		slog.String("policy", l.policy.Name),
		slog.String("decision", decision)))
	if decision == "canceled" {
		w.WriteHeader(reqlog.StatusClientClosedRequest)
	}
}

// logError puts the error that kept r from being decided on its access
// log line.
func (l *Limiter) logError(r *http.Request, err error) {
	reqlog.AddAttrs(r.Context(), slog.Group("ratelimit",
		slog.String("policy", l.policy.Name),
		slog.String("decision", "error"),
		slog.String("error", err.Error())))
}

type decisionKey struct{}

// FromContext returns the decision for the request whose context is ctx.
// It is set for refused requests, so that the problem Writer (see
// [WithProblemWriter]) can use it; allowed requests carry the same
// information in their response headers and are passed on with their
// context unchanged (this keeps the allowed path free of allocations
// beyond the headers').
func FromContext(ctx context.Context) (Decision, bool) {
	d, ok := ctx.Value(decisionKey{}).(Decision)
	return d, ok
}

// decide derives the Decision for a take of n from the window a store
// returned.
func decide(p Policy, w Window, n int) Decision {
	d := Decision{Allowed: w.Allowed, Policy: p.Name, Limit: p.Limit, Reset: w.Reset(p.Window)}
	if w.Allowed {
		d.Remaining = max(0, p.Limit-w.Count(p.Window))
	} else {
		d.RetryAfter = retryAfter(p, w, n)
	}
	return d
}

// decideAll derives the Decision for a take of n under several policies,
// allowed in all or none, and returns the index of the policy it
// describes: when refused, the refusing policy with the latest RetryAfter
// (the request fits everywhere once it fits there: counts only go down
// meanwhile); when allowed, the one with the fewest requests left, of
// those the one whose count takes longest to clear.
func decideAll(ps []Policy, ws []Window, n int, allowed bool) (Decision, int) {
	var best Decision
	at := -1
	for i, p := range ps {
		w := ws[i]
		w.Allowed = allowed
		var d Decision
		if allowed {
			d = decide(p, w, n)
			if at < 0 || d.Remaining < best.Remaining || (d.Remaining == best.Remaining && d.Reset > best.Reset) {
				best, at = d, i
			}
			continue
		}
		if p.Fits(w.Previous, w.Current, w.Elapsed, n) {
			continue // not the one refusing
		}
		d = decide(p, w, n)
		if at < 0 || d.RetryAfter > best.RetryAfter {
			best, at = d, i
		}
	}
	if at < 0 {
		// Refused while every policy fits: the store saw counts that have
		// since been given back. Describe the first policy, retry soon.
		at = 0
		best = decide(ps[0], ws[0], n)
		best.Allowed, best.Remaining = false, 0
		best.RetryAfter = time.Nanosecond
	}
	return best, at
}

// retryAfter is the time from the take until n requests fit: the estimate
// decreases linearly while the previous window slides out, and the current
// count becomes the previous one at the next fixed window.
func retryAfter(p Policy, w Window, n int) time.Duration {
	W := float64(p.Window)
	e := float64(w.Elapsed)
	L, N := float64(p.Limit), float64(n)
	prev, curr := float64(w.Previous), float64(w.Current)
	if room := L - N - curr; room >= 0 && prev > 0 {
		// Fits later in this window once prev·(W−e')/W ≤ room.
		at := W - room*W/prev
		if at > e {
			return ceilDuration(at - e)
		}
		return time.Nanosecond
	}
	// Fits in the next window once curr·(W−e')/W + n ≤ limit.
	var at float64
	if curr > 0 && curr > L-N {
		at = W - (L-N)*W/curr
	}
	return ceilDuration(W - e + at)
}

// ceilDuration rounds a float number of nanoseconds up, so that the client
// retrying at that time is not a nanosecond early.
func ceilDuration(ns float64) time.Duration {
	if ns <= 0 {
		return 0
	}
	return time.Duration(math.Ceil(ns))
}
