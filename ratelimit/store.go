package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"
)

// Policy is one rate limit: at most Limit requests in any trailing Window,
// counted separately for each Name. It is what a [Store] needs to know to
// take from a key.
type Policy struct {
	// Name separates policies that share a Store: the same key under two
	// names is counted twice, independently. It is also the policy name
	// in the RateLimit headers.
	Name string
	// Limit is the number of requests allowed per Window (> 0).
	Limit int
	// Window is the length of the sliding window (> 0).
	Window time.Duration
}

// ErrInvalidPolicy is returned by stores for a Policy with Limit ≤ 0 or
// above MaxLimit, or Window ≤ 0, and wrapped by [New] for the same
// configuration.
var ErrInvalidPolicy = errors.New("ratelimit: invalid policy")

// MaxLimit is the largest limit of a Policy: counts fit in 32 bits in
// every store (a MemoryStore slot holds two), and a count never passes
// its limit, so no count saturates into a bypass.
const MaxLimit = math.MaxInt32

// Valid reports an error wrapping [ErrInvalidPolicy] when p cannot be used.
func (p Policy) Valid() error {
	switch {
	case p.Limit <= 0:
		return errors.Join(ErrInvalidPolicy, errors.New("ratelimit: limit must be > 0"))
	case p.Limit > MaxLimit:
		return errors.Join(ErrInvalidPolicy, errors.New("ratelimit: limit must be at most 2147483647"))
	case p.Window <= 0:
		return errors.Join(ErrInvalidPolicy, errors.New("ratelimit: window must be > 0"))
	}
	return nil
}

// Window is the state of one key's sliding window as a Store saw it right
// after a take.
//
// The sliding-window counter keeps two fixed windows per key, aligned on
// the Unix epoch (window k covers [k·W, (k+1)·W)). The number of requests
// in the trailing window is estimated as
//
//	Previous·(W−Elapsed)/W + Current
//
// that is, the previous window's count weighted by the share of it that is
// still inside the trailing window, plus the current window's count.
type Window struct {
	// Allowed reports whether the take fitted and was counted.
	Allowed bool
	// Previous is the count of the previous fixed window.
	Previous int64
	// Current is the count of the current fixed window, including the
	// take when it was allowed.
	Current int64
	// Elapsed is the time from the start of the current fixed window to
	// the take, in [0, W). Stores that use their own clock (redisstore
	// uses the Redis server's) report it on that clock.
	Elapsed time.Duration
	// Index is the number of the fixed window that Current counts (window
	// k covers [k·W, (k+1)·W) on the store's clock): the window a take was
	// counted in, which [Store.Refund] gives back to.
	Index int64
}

// Estimate is the sliding-window estimate of the requests in the trailing
// window of length window (see [Window]).
func (w Window) Estimate(window time.Duration) float64 {
	return float64(w.Previous)*float64(window-w.Elapsed)/float64(window) + float64(w.Current)
}

// Count is the number of requests in the trailing window: the estimate
// rounded up (with a tolerance for floating-point error), so that the
// request that was just counted is number Count. A Limiter's Remaining is
// its limit minus Count; slowdown numbers requests with it too.
func (w Window) Count(window time.Duration) int {
	k := math.Ceil(w.Estimate(window) - 1e-9)
	if k < 0 {
		return 0
	}
	if k > math.MaxInt32 {
		return math.MaxInt32
	}
	return int(k)
}

// Reset is the time from the take until the estimate is back to zero: the
// current window's count leaves the trailing window at the end of the next
// fixed window, the previous window's at the end of this one.
func (w Window) Reset(window time.Duration) time.Duration {
	switch {
	case w.Current > 0:
		return 2*window - w.Elapsed
	case w.Previous > 0:
		return window - w.Elapsed
	}
	return 0
}

// Fits reports whether n more requests fit under p for a key whose windows
// hold prev and curr at elapsed: the check every Store makes before it
// counts. Stores implemented elsewhere (redisstore's Lua script) compute
// the same expression in the same order.
func (p Policy) Fits(prev, curr int64, elapsed time.Duration, n int) bool {
	w := Window{Previous: prev, Current: curr, Elapsed: elapsed}
	return w.Estimate(p.Window)+float64(n) <= float64(p.Limit)
}

// Store counts requests for a [Limiter] (and for slowdown.Delayer).
//
// Counts are kept per (policy name, policy window, key): the limit is not
// part of a count's identity but is applied when a take is decided, so a
// key whose limit changes mid-window (a plan upgraded, a limit that
// depends on the request) keeps its count and is judged against the new
// limit at once. Counts of different limits for one key are therefore
// shared, never kept apart: a client that could choose among limits (by a
// header the limit depends on, say) cannot add them up by alternating.
//
// Every method must be safe for concurrent use, must not retain key beyond
// the call unless it copies it, and must not retain ps or ws.
//
// Take must, atomically per (p.Name, p.Window, key): roll the key's two
// fixed windows forward to the window that contains now, check that n
// more requests fit under p ([Policy.Fits]), count them only if they do,
// and return the resulting Window, Index included. Refused takes are not
// counted. A Store may use its own clock instead of now (so that several
// processes agree); it must then report Elapsed and Index on that clock.
//
// TakeAll is Take under several policies at once, all or none: n is
// counted under every policy of ps only if it fits under each, atomically
// with respect to every other method on any of the (policy, key) pairs it
// touches, and ws[i] is set to the Window of ps[i] (Allowed is the same in
// all of them). The policies of one call have distinct (Name, Window).
// Take is TakeAll for one policy; it exists beside it because it returns
// its Window by value, so that the one-policy path of a Limiter, the
// common one, allocates nothing (a slice passed through an interface
// escapes).
//
// Refund gives n back, under each policy of ps, to the fixed window in
// which ws[i] (returned by a take of that policy and key, Allowed) counted
// it: to the current count if the key's window is still ws[i].Index, to
// the previous count if it has moved on by one, and to nothing otherwise
// (the count has left the trailing window anyway). A count never goes
// below zero. Each policy's refund is atomic; Refund need not be atomic
// across policies, since a refund only ever lowers counts.
//
// Peek sets ws[i] to what a take of one request under ps[i] would see now,
// without counting: Allowed reports whether one request fits. Reset
// forgets the key under every policy of ps.
//
// ctx is the request's. A Store that waits on I/O returns an error when
// ctx ends first (redisstore does), and must not take that for a failure
// of its own; a Store that cannot block may ignore ctx ([MemoryStore]
// does). Either way the Limiter and slowdown.Delayer look at the request's
// context after the take and do not pass on a request whose context is
// done, whatever Take returned: a take that was counted for a request
// that is then not served costs its client one request, while failing
// open on such an error would let any client walk past the limit by
// disconnecting. Only a failure while ctx is still live is a store error.
//
// Invalid arguments are errors, never a panic: a policy that is not
// [Policy.Valid] ([ErrInvalidPolicy]), no policy or more than
// [MaxPolicies], len(ws) ≠ len(ps), and n < 1 for a take or n < 0 for a
// refund ([ErrInvalidN]).
type Store interface {
	Take(ctx context.Context, p Policy, key string, now time.Time, n int) (Window, error)
	TakeAll(ctx context.Context, ps []Policy, key string, now time.Time, n int, ws []Window) (allowed bool, err error)
	Refund(ctx context.Context, ps []Policy, key string, n int, ws []Window) error
	Peek(ctx context.Context, ps []Policy, key string, now time.Time, ws []Window) error
	Reset(ctx context.Context, ps []Policy, key string) error
}

// MaxPolicies is the most policies one Limiter enforces, and one call of
// a [Store] method takes.
const MaxPolicies = 8

// ErrInvalidArgs is wrapped by the errors stores return for a call whose
// slices do not fit (see [Store]).
var ErrInvalidArgs = errors.New("ratelimit: invalid store arguments")

// CheckArgs reports the error a [Store] returns for ps, ws and n, or nil:
// every policy valid, 1 to MaxPolicies of them, as many windows as
// policies (ws may be nil when nw < 0: Reset has none), and n ≥ minN.
// Stores implemented elsewhere (redisstore) call it first so that every
// store refuses the same calls.
func CheckArgs(ps []Policy, nw int, n, minN int) error {
	switch {
	case len(ps) == 0 || len(ps) > MaxPolicies:
		return fmt.Errorf("%w: %d policies, want 1 to %d", ErrInvalidArgs, len(ps), MaxPolicies)
	case nw >= 0 && nw != len(ps):
		return fmt.Errorf("%w: %d windows for %d policies", ErrInvalidArgs, nw, len(ps))
	case n < minN:
		return fmt.Errorf("%w (n=%d)", ErrInvalidN, n)
	}
	for _, p := range ps {
		if err := p.Valid(); err != nil {
			return err
		}
	}
	return nil
}

// windowOf returns the index of the fixed window of length w that contains
// now, and the time elapsed since its start. Windows are aligned on the
// Unix epoch so that every process computes the same windows.
func windowOf(now time.Time, w time.Duration) (index int64, elapsed time.Duration) {
	index, ns := windowIndex(now.UnixNano(), int64(w))
	return index, time.Duration(ns)
}

// windowIndex is windowOf on Unix nanoseconds and a window in nanoseconds.
func windowIndex(ns, w int64) (index, elapsed int64) {
	index, elapsed = ns/w, ns%w
	if elapsed < 0 { // before 1970: floor, not truncate
		index--
		elapsed += w
	}
	return index, elapsed
}
