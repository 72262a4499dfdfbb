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
	"github.com/shipshape-go/shipshape/internal/ratelimitheader"
	"github.com/shipshape-go/shipshape/problem"
	"github.com/shipshape-go/shipshape/reqlog"
)

// Limiter limits requests per key to a number per sliding window. It is
// safe for concurrent use. Create it with [New]; the zero value is not
// usable.
type Limiter struct {
	policy    Policy
	store     Store
	key       KeyFunc
	headers   ratelimitheader.Policy
	problem   problem.Writer
	failOpen  bool
	skip      func(*http.Request) bool
	storeErrs *errlog.Reporter
	keyErrs   *errlog.Reporter
	// base is the wall time at New, with its monotonic reading: the clock
	// (see now).
	base time.Time
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
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if !cfg.storeSet {
		s, err := NewMemoryStore()
		if err != nil {
			return nil, err
		}
		cfg.store = s
	}
	storeMsg := "ratelimit: store failed, serving without limit"
	if !cfg.failOpen {
		storeMsg = "ratelimit: store failed, refusing with 503"
	}
	return &Limiter{
		policy:    p,
		store:     cfg.store,
		key:       cfg.key,
		headers:   ratelimitheader.NewPolicy(ratelimitheader.Style(cfg.headers), ratelimitheader.RateLimitNames, p.Name, p.Limit, p.Window),
		problem:   cfg.problem,
		failOpen:  cfg.failOpen,
		skip:      cfg.skip,
		storeErrs: errlog.New(cfg.logger, storeMsg, 0),
		keyErrs:   errlog.New(cfg.logger, "ratelimit: key function failed, answering 500", 0),
		base:      time.Now(),
	}, nil
}

// now reads the clock: the wall time at New plus the monotonic time
// since, one clock read instead of time.Now's two, and immune to the wall
// clock being stepped (a window never runs backwards). Windows stay
// aligned on the epoch as the wall clock saw it at New; NTP slewing moves
// both clocks alike. In a testing/synctest bubble both are the bubble's
// fake clock.
func (l *Limiter) now() time.Time { return l.base.Add(time.Since(l.base)) }

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
// rate-limit headers set; one over it gets 429 (see [WithProblemWriter]).
// A request whose key cannot be computed is never passed on uncounted:
// it gets 400, or 500 when the KeyFunc is misconfigured.
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
			l.storeErrs.Report(r.Context(), err, slog.String("policy", l.policy.Name))
			if l.failOpen {
				next.ServeHTTP(w, r)
				return
			}
			l.logError(r, fmt.Errorf("ratelimit: store: %w", err))
			ratelimitheader.SetRetryAfter(w.Header(), time.Second)
			l.problem(w, r, problem.Details{Status: http.StatusServiceUnavailable, Detail: "Rate limiting is unavailable; try again shortly."})
			return
		}
		l.headers.Set(w.Header(), d.Remaining, d.Reset, now)
		if d.Allowed {
			next.ServeHTTP(w, r)
			return
		}
		ctx := context.WithValue(r.Context(), decisionKey{}, d)
		reqlog.AddAttrs(ctx, slog.Group("ratelimit",
			slog.String("policy", l.policy.Name),
			slog.String("decision", "denied"),
			slog.Duration("retry_after", d.RetryAfter)))
		ratelimitheader.SetRetryAfter(w.Header(), d.RetryAfter)
		l.problem(w, r.WithContext(ctx), problem.Details{Status: http.StatusTooManyRequests,
			Detail: "Rate limit exceeded: retry in " + strconv.FormatInt(ratelimitheader.RetryAfterSeconds(d.RetryAfter), 10) + " seconds."})
	})
}

// keyFailed answers a request whose key could not be computed: 400 when
// the request lacks what the key needs, else 500 for a KeyFunc that is
// misconfigured, which is also logged.
func (l *Limiter) keyFailed(w http.ResponseWriter, r *http.Request, err error) {
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
