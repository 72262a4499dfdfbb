package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/shipshape-go/shipshape/internal/errlog"
	"github.com/shipshape-go/shipshape/problem"
	"github.com/shipshape-go/shipshape/reqlog"
)

// Limiter limits requests per key to a number per sliding window. It is
// safe for concurrent use. Create it with [New]; the zero value is not
// usable.
type Limiter struct {
	policy   Policy
	store    Store
	key      KeyFunc
	headers  HeaderStyle
	denied   http.Handler
	onError  func(http.ResponseWriter, *http.Request, error)
	failOpen bool
	skip     func(*http.Request) bool
	report   *errlog.Reporter
	now      func() time.Time // the clock; tests replace it

	policyHeader string // RateLimit-Policy value, built once
	limitHeader  string // X-RateLimit-Limit value, built once
}

// Decision is the outcome of one check against the limit.
type Decision struct {
	Allowed    bool
	Limit      int           // requests per window
	Remaining  int           // requests left now
	Reset      time.Duration // until the quota is fully available again
	RetryAfter time.Duration // 0 when allowed; else the earliest time the same request fits
}

// ErrInvalidN is returned by [Limiter.AllowN] for n < 1 or n > the limit
// (a take that can never fit).
var ErrInvalidN = errors.New("ratelimit: n must be between 1 and the limit")

// New returns a Limiter that allows limit requests per key in any trailing
// window (a sliding-window counter, see [Window]). It returns an error for
// limit ≤ 0, window ≤ 0 or a bad option.
func New(limit int, window time.Duration, opts ...Option) (*Limiter, error) {
	cfg := config{
		key:      KeyByIP,
		name:     "default",
		headers:  HeadersIETF,
		failOpen: true,
	}
	cfg.denied = http.HandlerFunc(deniedDefault)
	cfg.onError = errorDefault
	for _, o := range opts {
		o(&cfg)
	}
	p := Policy{Name: cfg.name, Limit: limit, Window: window}
	if err := p.Valid(); err != nil {
		return nil, err
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if !cfg.storeSet {
		cfg.store = NewMemoryStore()
	}
	l := &Limiter{
		policy:   p,
		store:    cfg.store,
		key:      cfg.key,
		headers:  cfg.headers,
		denied:   cfg.denied,
		onError:  cfg.onError,
		failOpen: cfg.failOpen,
		skip:     cfg.skip,
		report:   errlog.New(cfg.logger, "ratelimit: store failed, serving without limit", 0),
		now:      monotonicNow(),
	}
	l.policyHeader = fmt.Sprintf(`"%s";q=%d;w=%d`, p.Name, p.Limit, ceilSeconds(p.Window))
	l.limitHeader = strconv.Itoa(p.Limit)
	return l, nil
}

// monotonicNow returns a clock that reads the wall time at its creation
// plus the monotonic time since: one clock read instead of time.Now's two,
// and immune to the wall clock being stepped (a window never runs
// backwards). Windows stay aligned on the epoch as the wall clock saw it at
// start; NTP slewing moves both clocks alike.
func monotonicNow() func() time.Time {
	base := time.Now()
	return func() time.Time { return base.Add(time.Since(base)) }
}

// Policy returns the limiter's policy.
func (l *Limiter) Policy() Policy { return l.policy }

// Allow checks and counts one request for key now.
func (l *Limiter) Allow(ctx context.Context, key string) (Decision, error) {
	return l.AllowN(ctx, key, l.now(), 1)
}

// AllowN checks whether n requests for key fit at time now and counts them
// if they do. Refused requests are not counted. It returns an error
// wrapping [ErrInvalidN] for n outside 1..limit, and the store's error when
// the store fails.
func (l *Limiter) AllowN(ctx context.Context, key string, now time.Time, n int) (Decision, error) {
	if n < 1 || n > l.policy.Limit {
		return Decision{}, fmt.Errorf("%w (n=%d, limit=%d)", ErrInvalidN, n, l.policy.Limit)
	}
	w, err := l.store.Take(ctx, l.policy, key, now, n)
	if err != nil {
		return Decision{}, err
	}
	return decide(l.policy, w, n), nil
}

// Handler limits next. A request within the limit is passed on with the
// rate-limit headers set; one over it gets 429 (see [WithDeniedHandler]).
// A request whose key cannot be computed is never passed on uncounted:
// it goes to the error handler (see [WithErrorHandler]).
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
			l.fail(w, r, fmt.Errorf("ratelimit: key: %w", err))
			return
		}
		now := l.now()
		d, err := l.AllowN(r.Context(), key, now, 1)
		if cerr := r.Context().Err(); cerr != nil {
			// The one rule for a request whose client is gone: a store
			// call cut short by the request's own context (redisstore
			// returns its error) would otherwise fail open and serve the
			// request uncounted. Counted and not served is harmless.
			l.abandon(w, r, cerr)
			return
		}
		if err != nil {
			if l.failOpen {
				l.report.Report(r.Context(), err, slog.String("policy", l.policy.Name))
				next.ServeHTTP(w, r)
				return
			}
			l.fail(w, r, &storeError{err})
			return
		}
		l.setHeaders(w.Header(), d, now)
		if d.Allowed {
			next.ServeHTTP(w, r)
			return
		}
		ctx := context.WithValue(r.Context(), decisionKey{}, d)
		reqlog.AddAttrs(ctx, slog.Group("ratelimit",
			slog.String("policy", l.policy.Name),
			slog.String("decision", "denied"),
			slog.Duration("retry_after", d.RetryAfter)))
		w.Header().Set("Retry-After", itoa(retryAfterSeconds(d.RetryAfter)))
		l.denied.ServeHTTP(w, r.WithContext(ctx))
	})
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

func (l *Limiter) fail(w http.ResponseWriter, r *http.Request, err error) {
	reqlog.AddAttrs(r.Context(), slog.Group("ratelimit",
		slog.String("policy", l.policy.Name),
		slog.String("decision", "error"),
		slog.String("error", err.Error())))
	l.onError(w, r, err)
}

// storeError marks store failures for the default error handler.
type storeError struct{ err error }

func (e *storeError) Error() string { return "ratelimit: store: " + e.err.Error() }
func (e *storeError) Unwrap() error { return e.err }

type decisionKey struct{}

// FromContext returns the decision for the request whose context is ctx.
// It is set for refused requests, so the denied handler can use it;
// allowed requests carry the same information in their response headers
// and are passed on with their context unchanged (this keeps the allowed
// path free of allocations).
func FromContext(ctx context.Context) (Decision, bool) {
	d, ok := ctx.Value(decisionKey{}).(Decision)
	return d, ok
}

func deniedDefault(w http.ResponseWriter, r *http.Request) {
	d, _ := FromContext(r.Context())
	problem.Write(w, r, problem.Details{Status: http.StatusTooManyRequests, Detail: fmt.Sprintf("Rate limit exceeded: retry in %d seconds.", retryAfterSeconds(d.RetryAfter))})
}

func errorDefault(w http.ResponseWriter, r *http.Request, err error) {
	var se *storeError
	switch {
	case errors.Is(err, ErrNoKey):
		problem.Write(w, r, problem.Details{Status: http.StatusBadRequest, Detail: "The request does not identify a client for rate limiting."})
	case errors.As(err, &se):
		w.Header().Set("Retry-After", "1")
		problem.Write(w, r, problem.Details{Status: http.StatusServiceUnavailable, Detail: "Rate limiting is unavailable; try again shortly."})
	default:
		problem.Write(w, r, problem.Details{Status: http.StatusInternalServerError})
	}
}

// decide derives the Decision for a take of n from the window a store
// returned.
func decide(p Policy, w Window, n int) Decision {
	d := Decision{Allowed: w.Allowed, Limit: p.Limit, Reset: w.Reset(p.Window)}
	if w.Allowed {
		d.Remaining = max(0, p.Limit-w.Count(p.Window))
	} else {
		d.RetryAfter = retryAfter(p, w, n)
	}
	return d
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

// retryAfterSeconds is the Retry-After value: whole seconds rounded up,
// never 0 (a 0 would invite an immediate retry that is refused again).
func retryAfterSeconds(d time.Duration) int64 {
	return max(1, ceilSeconds(d))
}

func ceilSeconds(d time.Duration) int64 {
	s := int64(d / time.Second)
	if d%time.Second > 0 {
		s++
	}
	return s
}
