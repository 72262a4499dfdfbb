package ratelimit

import (
	"context"
	"errors"
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
// Window ≤ 0, and wrapped by [New] for the same configuration.
var ErrInvalidPolicy = errors.New("ratelimit: invalid policy")

// Valid reports an error wrapping [ErrInvalidPolicy] when p cannot be used.
func (p Policy) Valid() error {
	switch {
	case p.Limit <= 0:
		return errors.Join(ErrInvalidPolicy, errors.New("ratelimit: limit must be > 0"))
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
// Take must, atomically per (p.Name, key): roll the key's two fixed
// windows forward to the window that contains now, check that n more
// requests fit under p ([Policy.Fits]), count them only if they do, and
// return the resulting Window. Refused takes are not counted. A Store may
// use its own clock instead of now (so that several processes agree); it
// must then report Elapsed on that clock. Take must be safe for concurrent
// use and must not retain key beyond the call unless it copies it.
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
type Store interface {
	Take(ctx context.Context, p Policy, key string, now time.Time, n int) (Window, error)
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
