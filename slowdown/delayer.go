// Package slowdown delays requests instead of refusing them: past a
// threshold of requests per key in a sliding window, each further request
// waits a little longer before it is served. Someone who clicks too fast
// is slowed, not locked out; a script is slowed first and, with a
// ratelimit.Limiter behind the Delayer, refused later.
//
// Usage, in front of a limiter on the same store and key:
//
//	store, err := ratelimit.NewMemoryStore()
//	if err != nil { … }
//	slow, err := slowdown.New(50, time.Minute, // 51st request in a minute waits 100ms, 52nd 200ms, …
//		slowdown.WithStore(store), slowdown.WithMaxDelay(5*time.Second))
//	if err != nil { … }
//	limit, err := ratelimit.New(100, time.Minute, ratelimit.WithStore(store))
//	if err != nil { … }
//	http.ListenAndServe(addr, slow.Handler(limit.Handler(mux)))
//
// The Delayer counts with the same sliding-window counter as ratelimit,
// through a [ratelimit.Store] (one Take per request), under its own policy
// name ("slowdown"), so a Delayer and a Limiter that share a store and a
// KeyFunc count the same requests separately and see the same count for
// each request the limiter admits (the limiter counts after the delay, so
// while the previous window slides out it can see one less when the wait
// crosses a whole request's worth of the slide). With a redisstore the
// count, and so the delay, is the same in every process.
//
// # Order and the trade-off past the limit
//
// Put the Delayer before (outside) the limiter, as shipshape's examples
// do. Then every request is counted by both, and a client past the
// limiter's limit is still delayed before it gets its 429: a tarpit that
// costs an abusive client time on every refused request, bounded by
// [WithMaxDelay] per request and by [WithMaxWaiting] for the server as a
// whole. The other order (limiter outside) would refuse at once past the
// limit, cheaper for the server but free for the abuser, and the Delayer
// would then count only admitted requests.
//
// # Waiting
//
// A delayed request waits on a timer selected against its context: when
// the client disconnects the wait ends at once, the handler is not called
// and nothing is left behind. At most [WithMaxWaiting] requests wait at
// once; past that, 503 with Retry-After, written by a problem.Writer
// ([WithProblemWriter]) so that a service keeps its own error format.
//
// # Per request
//
// [WithAfterFunc] gives each request its threshold (a plan's allowance);
// counts are kept per key whatever the threshold. [WithCountOnly] counts
// only the responses that matter (failed logins), as
// ratelimit.WithCountOnly does: every request is counted before it is
// passed on and given back afterwards when it does not count.
// [Delayer.Delay] is the same count for callers outside HTTP.
//
// # Headers
//
// [WithHeaders] takes the same styles as ratelimit.WithHeaders: the
// Delayer's items in the IETF RateLimit lists, beside the Limiter's; for
// the styles whose fields describe a single policy, fields of its own,
// the Limiter's with RateLimit replaced by Slow-Down (X-Slow-Down-Limit,
// Slow-Down-Remaining, Slow-Down: limit=…, …).
//
// Examples: [Example], [ExampleDelayer_Delay], [ExampleDelayer_Delay_worker],
// [ExampleWithDelayFunc], [ExampleWithHeaders].
package slowdown

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/shipshape-go/shipshape/internal/errlog"
	"github.com/shipshape-go/shipshape/internal/ratelimitheader"
	"github.com/shipshape-go/shipshape/internal/respwriter"
	"github.com/shipshape-go/shipshape/problem"
	"github.com/shipshape-go/shipshape/ratelimit"
	"github.com/shipshape-go/shipshape/reqlog"
)

// countLimit is the Limit of the Delayer's policy: large enough that the
// store never refuses a take, so that every request is counted.
const countLimit = math.MaxInt32

// Delayer delays requests past a threshold per key and sliding window. It
// is safe for concurrent use. Create it with [New]; the zero value is not
// usable.
type Delayer struct {
	after      int
	afterFunc  func(*http.Request) int
	countOnly  func(status int) bool
	policy     ratelimit.Policy
	policies   []ratelimit.Policy // policy alone, for the Store's slices
	store      ratelimit.Store
	key        ratelimit.KeyFunc
	step       time.Duration
	delayFunc  func(over int) time.Duration
	maxDelay   time.Duration
	maxWaiting int64
	headers    ratelimitheader.Policy
	sendHeader bool // headers' style is not None
	problem    problem.Writer
	skip       func(*http.Request) bool
	storeErrs  *errlog.Reporter
	keyErrs    *errlog.Reporter
	fnErrs     *errlog.Reporter
	// base is the wall time at New, with its monotonic reading: the clock
	// (see now).
	base time.Time
	// baseNs is base in Unix nanoseconds.
	baseNs int64

	// waiting counts the requests waiting (see admit); ≤ maxWaiting.
	waiting atomic.Int64
	metrics *metrics
}

// New returns a Delayer that lets after requests per key pass undelayed in
// any trailing window and delays the ones beyond: request number k waits
// (k−after)·step (see [WithStep], [WithDelayFunc]), at most
// [WithMaxDelay]. after may be 0 (every request is delayed, the first by
// one step). It returns an error for after < 0, window ≤ 0, a nil option
// and every option given a value it cannot use (see each option).
func New(after int, window time.Duration, opts ...Option) (*Delayer, error) {
	if after < 0 {
		return nil, fmt.Errorf("slowdown: after %d, want ≥ 0", after)
	}
	if window <= 0 {
		return nil, fmt.Errorf("slowdown: window %v, want > 0", window)
	}
	cfg := defaults()
	for _, o := range opts {
		if o == nil {
			return nil, errors.New("slowdown: nil option")
		}
		o(&cfg)
	}
	if err := cfg.validate(after); err != nil {
		return nil, err
	}
	if !cfg.storeSet {
		s, err := ratelimit.DefaultStore([]ratelimit.Policy{{Name: cfg.name, Limit: countLimit, Window: window}})
		if err != nil {
			return nil, err
		}
		cfg.store = s
	}
	policy := ratelimit.Policy{Name: cfg.name, Limit: countLimit, Window: window}
	ms, err := newMetrics(cfg.meterProvider, cfg.name)
	if err != nil {
		return nil, fmt.Errorf("slowdown: WithMeterProvider: %w", err)
	}
	base := time.Now()
	return &Delayer{
		after:      after,
		afterFunc:  cfg.afterFunc,
		countOnly:  cfg.countOnly,
		policy:     policy,
		policies:   []ratelimit.Policy{policy},
		store:      cfg.store,
		key:        cfg.key,
		step:       cfg.step,
		delayFunc:  cfg.delayFunc,
		maxDelay:   cfg.maxDelay,
		maxWaiting: int64(cfg.maxWaiting),
		headers:    ratelimitheader.NewPolicy(ratelimitheader.Style(cfg.headers), ratelimitheader.SlowDownNames, ratelimitheader.Quota{Name: cfg.name, Limit: after, Window: window}),
		sendHeader: cfg.headers != ratelimit.HeadersNone,
		problem:    cfg.problem,
		skip:       cfg.skip,
		storeErrs:  errlog.New(cfg.logger, "slowdown: store failed, serving without delay", 0),
		keyErrs:    errlog.New(cfg.logger, "slowdown: key function failed, serving without delay", 0),
		fnErrs:     errlog.New(cfg.logger, "slowdown: after function failed, answering 500", 0),
		base:       base,
		baseNs:     base.UnixNano(),
		metrics:    ms,
	}, nil
}

// now reads the clock as ratelimit.Limiter does: the wall time at New plus
// the monotonic time since, one clock read instead of time.Now's two, and
// immune to the wall clock being stepped. In a testing/synctest bubble
// both are the bubble's fake clock.
func (d *Delayer) now() time.Time { return time.Unix(0, d.baseNs+int64(time.Since(d.base))) }

// Policy returns the policy the Delayer counts under in its store: its
// name, window, and a Limit so large that every request is counted.
func (d *Delayer) Policy() ratelimit.Policy { return d.policy }

// Delay counts one request for key at time now and returns how long it
// should wait: 0 for the first after requests in the trailing window, then
// the configured delay (see [WithStep], [WithDelayFunc], [WithMaxDelay]).
// It is the Delayer's core, for callers outside HTTP (a gRPC interceptor,
// a job queue, a login attempt over another protocol): it counts under the
// same policy and store as the Handler, so the two share counts for a
// key, but it does not wait, does not apply [WithMaxWaiting], and uses the
// after of [New] ([WithAfterFunc] needs a request). The caller waits, on
// a timer selected against its own context so that it gives up when its
// caller does (see ExampleDelayer_Delay). It returns the store's error
// when the store fails; the count is then unknown and the caller chooses
// whether to go on undelayed, as the Handler does.
func (d *Delayer) Delay(ctx context.Context, key string, now time.Time) (time.Duration, error) {
	_, delay, _, err := d.take(ctx, key, now, d.after)
	return delay, err
}

// take counts one request and returns its number k in the trailing window
// (itself included), its delay past after and the store's window.
func (d *Delayer) take(ctx context.Context, key string, now time.Time, after int) (int, time.Duration, ratelimit.Window, error) {
	w, err := d.store.Take(ctx, d.policy, key, now, 1)
	if err != nil {
		return 0, 0, w, err
	}
	k := count(w, d.policy.Window)
	return k, d.delayFor(k, after), w, nil
}

// count is the request's number in the trailing window, the way
// ratelimit.Limiter counts it (its Limit − Remaining): Window.Count. A take
// the store refused (it cannot happen with countLimit) counts as one more.
func count(w ratelimit.Window, window time.Duration) int {
	k := w.Count(window)
	if !w.Allowed {
		k++
	}
	return min(k, countLimit)
}

// delayFor is the delay of request number k past after.
func (d *Delayer) delayFor(k, after int) time.Duration {
	over := k - after
	if over <= 0 {
		return 0
	}
	if d.delayFunc != nil {
		return min(max(d.delayFunc(over), 0), d.maxDelay)
	}
	if int64(over) > int64(d.maxDelay/d.step) { // so over·step > maxDelay; also avoids overflow
		return d.maxDelay
	}
	return min(time.Duration(over)*d.step, d.maxDelay)
}

// Handler delays next. A request within the threshold is passed on at once,
// with its context unchanged. A request over it waits its delay and is
// then passed on with the delay in its context ([FromContext]) and on its
// access log line (accesslog group "slowdown": delay, decision=delayed).
//
// A request whose context is done once the store has answered, or ends
// while it waits, is never passed on, whatever the store answered:
//   - if the client disconnected (it closed, reset or half-closed its
//     connection, and net/http canceled the context), a wait ends at once,
//     next is not called, and the status is set to 499
//     ([reqlog.StatusClientClosedRequest]) with no body, so that an access log
//     shows what happened (decision=canceled).
//   - if the context's deadline passed (a timeout middleware outside, such
//     as http.TimeoutHandler or chi's middleware.Timeout), a wait ends and
//     nothing is written: the timeout middleware owns that response
//     (decision=deadline).
//
// Neither is a store failure, nor logged as one.
//
// A request that should wait while [WithMaxWaiting] others already do
// gets 503 with Retry-After, written by the problem Writer (see
// [WithProblemWriter]; an RFC 9457 problem body by default)
// (decision=overflow).
//
// The Delayer fails open: when the store fails while the request is alive,
// the request is passed on without delay and the error is logged at most
// once per 10s. When the
// KeyFunc fails the request is also passed on (a ratelimit.Limiter behind
// with the same KeyFunc refuses it); errors that do not wrap
// ratelimit.ErrNoKey, which point at a misconfigured KeyFunc rather than at
// the request, are logged the same way.
func (d *Delayer) Handler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		d.serve(next, w, r)
	})
}

func (d *Delayer) serve(next http.Handler, w http.ResponseWriter, r *http.Request) {
	if d.skip != nil && d.skip(r) {
		next.ServeHTTP(w, r)
		return
	}
	ctx := r.Context()
	key, err := d.key(r)
	if err != nil {
		if !errors.Is(err, ratelimit.ErrNoKey) {
			d.keyErrs.Report(ctx, err, slog.String("policy", d.policy.Name))
		}
		next.ServeHTTP(w, r)
		return
	}
	after := d.after
	if d.afterFunc != nil {
		if after = d.afterFunc(r); after < 0 {
			err := fmt.Errorf("slowdown: WithAfterFunc returned %d, want ≥ 0", after)
			d.logDecision(ctx, "error", 0)
			d.fnErrs.Report(ctx, err, slog.String("policy", d.policy.Name))
			d.problem(w, r, problem.Details{Status: http.StatusInternalServerError})
			return
		}
	}
	now := d.now()
	k, delay, win, err := d.take(ctx, key, now, after)
	cerr := ctx.Err()
	if err == nil && cerr == nil {
		if d.sendHeader && after > 0 {
			// Set before the wait and sent after it: t counts from the end
			// of the delay; the legacy Reset is an instant either way.
			var limits []int
			if d.afterFunc != nil {
				limits = []int{after}
			}
			d.headers.Set(w.Header(), limits, 0, max(0, after-k), max(0, win.Reset(d.policy.Window)-delay), now.Add(delay))
		}
		if delay > 0 {
			if !d.admit() {
				d.logDecision(ctx, "overflow", delay)
				ratelimitheader.SetRetryAfter(w.Header(), delay)
				d.problem(w, r, problem.Details{Status: http.StatusServiceUnavailable, Detail: "The server is busy slowing down other requests; retry later."})
				return
			}
			d.metrics.waiting.Add(ctx, 1, d.metrics.policy)
			d.wait(ctx, delay)
			d.waiting.Add(-1)
			d.metrics.waiting.Add(ctx, -1, d.metrics.policy)
			cerr = ctx.Err()
		}
	}
	if cerr != nil {
		// The one rule for a request whose client is gone, after the take
		// and after the wait alike: a store call cut short by the
		// request's own context would otherwise fail open, and a limiter
		// behind on the same store would get the same error. Counted and
		// not served is harmless.
		if errors.Is(cerr, context.DeadlineExceeded) {
			d.logDecision(ctx, "deadline", delay)
			return
		}
		d.logDecision(ctx, "canceled", delay)
		w.WriteHeader(reqlog.StatusClientClosedRequest)
		return
	}
	if err != nil {
		d.storeErrs.Report(ctx, err, slog.String("policy", d.policy.Name))
		next.ServeHTTP(w, r)
		return
	}
	if delay <= 0 {
		d.pass(next, w, r, key, win)
		return
	}
	ctx = context.WithValue(ctx, delayKey{}, delay)
	d.logDecision(ctx, "delayed", delay)
	r2 := r.WithContext(ctx)
	d.pass(next, w, r2, key, win)
	// A ServeMux below records the matched pattern on the request it got,
	// the copy; hand it back so that the access log line of a delayed
	// request still has its http.route.
	r.Pattern = r2.Pattern
}

// pass passes r on; with [WithCountOnly], it gives the take win back once
// the response shows that the request does not count.
func (d *Delayer) pass(next http.Handler, w http.ResponseWriter, r *http.Request, key string, win ratelimit.Window) {
	if d.countOnly == nil {
		next.ServeHTTP(w, r)
		return
	}
	respwriter.ServeJudged(next, w, r, func(status int) {
		if d.countOnly(status) {
			return
		}
		// Given back even when the client has left: the refund must not
		// fail because the request's context is done.
		if err := d.store.Refund(context.WithoutCancel(r.Context()), d.policies, key, 1, []ratelimit.Window{win}); err != nil {
			d.storeErrs.Report(r.Context(), err, slog.String("policy", d.policy.Name))
		}
	})
}

// admit takes one of the maxWaiting places, if one is free. The count
// never exceeds maxWaiting, even for a moment, so a flood of requests being
// turned away cannot make a free place look taken.
func (d *Delayer) admit() bool {
	for {
		n := d.waiting.Load()
		if n >= d.maxWaiting {
			return false
		}
		if d.waiting.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

// wait waits for delay or until ctx is done; the caller then looks at
// ctx, which may also have ended just as the delay passed. The timer is
// stopped either way.
func (d *Delayer) wait(ctx context.Context, delay time.Duration) {
	t := time.NewTimer(delay)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

func (d *Delayer) logDecision(ctx context.Context, decision string, delay time.Duration) {
	d.metrics.decided(ctx, decision, delay)
	reqlog.AddAttrs(ctx, slog.Group("slowdown",
		slog.String("policy", d.policy.Name),
		slog.String("decision", decision),
		slog.Duration("delay", delay)))
}

type delayKey struct{}

// FromContext returns the delay the request whose context is ctx waited
// in a [Delayer], and true; or 0 and false when it was not delayed (it was
// within the threshold, or did not pass through a Delayer). Undelayed
// requests are passed on with their context unchanged, which keeps that
// path free of allocations.
func FromContext(ctx context.Context) (time.Duration, bool) {
	d, ok := ctx.Value(delayKey{}).(time.Duration)
	return d, ok
}
