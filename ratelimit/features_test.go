package ratelimit

import (
	"bytes"
	"context"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/shipshape-go/shipshape/recoverer"
)

func TestNewRejectsBadFeatureConfig(t *testing.T) {
	var nine []Option
	for i := range MaxPolicies {
		nine = append(nine, WithPolicy("p"+strconv.Itoa(i), 10, time.Hour))
	}
	tests := []struct {
		name string
		opts []Option
		want string
	}{
		{"policy name used twice", []Option{WithName("a"), WithPolicy("a", 10, time.Hour)}, `ratelimit: WithPolicy: policy name "a" used twice`},
		{"policy name of New", []Option{WithPolicy("default", 10, time.Hour)}, `ratelimit: WithPolicy: policy name "default" used twice`},
		{"policy with zero limit", []Option{WithPolicy("h", 0, time.Hour)}, "ratelimit: WithPolicy \"h\": ratelimit: invalid policy\nratelimit: limit must be > 0"},
		{"policy with negative window", []Option{WithPolicy("h", 1, -time.Hour)}, "ratelimit: WithPolicy \"h\": ratelimit: invalid policy\nratelimit: window must be > 0"},
		{"policy with bad name", []Option{WithPolicy(`a"b`, 1, time.Hour)}, `ratelimit: WithPolicy: name must be printable ASCII without '"' or '\'`},
		{"too many policies", nine, "ratelimit: WithPolicy: 9 policies, at most 8"},
		{"nil limit function", []Option{WithLimitFunc(nil)}, "ratelimit: WithLimitFunc: nil function"},
		{"nil cost function", []Option{WithCost(nil)}, "ratelimit: WithCost: nil function"},
		{"nil count-only function", []Option{WithCountOnly(nil)}, "ratelimit: WithCountOnly: nil function"},
		{"draft-7 past the styles", []Option{WithHeaders(HeadersDraft7 + 1)}, "ratelimit: WithHeaders: unknown header style HeaderStyle(6)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, err := New(10, time.Second, tt.opts...)
			assert.EqualError(t, err, tt.want)
			assert.Nil(t, l)
		})
	}
	_, err := New(10, time.Second, nine[1:]...)
	assert.NoError(t, err, "MaxPolicies policies")
	_, err = New(MaxLimit+1, time.Second)
	assert.EqualError(t, err, "ratelimit: invalid policy\nratelimit: limit must be at most 2147483647",
		"a limit whose counts would not fit in 32 bits")
	_, err = New(MaxLimit, time.Second)
	assert.NoError(t, err, "MaxLimit")
}

// burstAndHour is the limiter of issue 16's example: 10 per second and
// 1,000 per hour (here 11, so that the hour refuses within a test).
func burstAndHour(t *testing.T, style HeaderStyle, opts ...Option) *Limiter {
	t.Helper()
	return newTestLimiter(t, 10, time.Second, append([]Option{WithName("burst"),
		WithPolicy("hour", 11, time.Hour), WithHeaders(style)}, opts...)...)
}

// TestMultiPolicyHeadersGolden: every style for two policies, as the burst
// policy and then the hour policy come closest to refusing.
func TestMultiPolicyHeadersGolden(t *testing.T) {
	// 9 requests at 0s leave burst 1 and hour 2; the 10th leaves burst 0
	// and hour 1; the 11th is refused by burst (it fits 1.1s later, 2
	// rounded up). At 2s the burst window is empty again; the 12th leaves
	// the hour 0, and the 13th is refused by the hour: 11 weigh 11·(W−e)/W
	// in the next hour, so one more fits at e = W/11, 3598+327.3s from now.
	tests := []struct {
		style HeaderStyle
		want  []http.Header // after request 9, 10, 11 (refused), 13 at 2s (refused by the hour)
	}{
		{HeadersIETF, []http.Header{
			{"Ratelimit-Policy": {`"burst";q=10;w=1, "hour";q=11;w=3600`}, "Ratelimit": {`"burst";r=1;t=2`}},
			{"Ratelimit-Policy": {`"burst";q=10;w=1, "hour";q=11;w=3600`}, "Ratelimit": {`"burst";r=0;t=2`}},
			{"Ratelimit-Policy": {`"burst";q=10;w=1, "hour";q=11;w=3600`}, "Ratelimit": {`"burst";r=0;t=2`}, "Retry-After": {"2"}},
			{"Ratelimit-Policy": {`"burst";q=10;w=1, "hour";q=11;w=3600`}, "Ratelimit": {`"hour";r=0;t=7198`}, "Retry-After": {"3926"}},
		}},
		{HeadersDraft6, []http.Header{
			{"Ratelimit-Policy": {"10;w=1, 11;w=3600"}, "Ratelimit-Limit": {"10"}, "Ratelimit-Remaining": {"1"}, "Ratelimit-Reset": {"2"}},
			{"Ratelimit-Policy": {"10;w=1, 11;w=3600"}, "Ratelimit-Limit": {"10"}, "Ratelimit-Remaining": {"0"}, "Ratelimit-Reset": {"2"}},
			{"Ratelimit-Policy": {"10;w=1, 11;w=3600"}, "Ratelimit-Limit": {"10"}, "Ratelimit-Remaining": {"0"}, "Ratelimit-Reset": {"2"}, "Retry-After": {"2"}},
			{"Ratelimit-Policy": {"10;w=1, 11;w=3600"}, "Ratelimit-Limit": {"11"}, "Ratelimit-Remaining": {"0"}, "Ratelimit-Reset": {"7198"}, "Retry-After": {"3926"}},
		}},
		{HeadersDraft7, []http.Header{
			{"Ratelimit-Policy": {"10;w=1, 11;w=3600"}, "Ratelimit": {"limit=10, remaining=1, reset=2"}},
			{"Ratelimit-Policy": {"10;w=1, 11;w=3600"}, "Ratelimit": {"limit=10, remaining=0, reset=2"}},
			{"Ratelimit-Policy": {"10;w=1, 11;w=3600"}, "Ratelimit": {"limit=10, remaining=0, reset=2"}, "Retry-After": {"2"}},
			{"Ratelimit-Policy": {"10;w=1, 11;w=3600"}, "Ratelimit": {"limit=11, remaining=0, reset=7198"}, "Retry-After": {"3926"}},
		}},
		{HeadersLegacy, []http.Header{
			{"X-Ratelimit-Limit": {"10"}, "X-Ratelimit-Remaining": {"1"}, "X-Ratelimit-Reset": {"946684802"}},
			{"X-Ratelimit-Limit": {"10"}, "X-Ratelimit-Remaining": {"0"}, "X-Ratelimit-Reset": {"946684802"}},
			{"X-Ratelimit-Limit": {"10"}, "X-Ratelimit-Remaining": {"0"}, "X-Ratelimit-Reset": {"946684802"}, "Retry-After": {"2"}},
			{"X-Ratelimit-Limit": {"11"}, "X-Ratelimit-Remaining": {"0"}, "X-Ratelimit-Reset": {"946692000"}, "Retry-After": {"3926"}},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.style.String(), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				h := burstAndHour(t, tt.style).Handler(okHandler)
				var got []http.Header
				for i := 1; i <= 11; i++ {
					rec := serve(h, "192.0.2.1:1")
					if i == 11 {
						require.Equal(t, http.StatusTooManyRequests, rec.Code, "request 11: burst refuses")
					} else {
						require.Equal(t, http.StatusOK, rec.Code, "request %d", i)
					}
					if i >= 9 {
						got = append(got, rateLimitFields(rec.Header()))
					}
				}
				sleepUntil(bubbleStart.Add(2 * time.Second))
				for i := 12; i <= 13; i++ {
					rec := serve(h, "192.0.2.1:1")
					if i == 13 {
						require.Equal(t, http.StatusTooManyRequests, rec.Code, "request 13: hour refuses")
						got = append(got, rateLimitFields(rec.Header()))
					} else {
						require.Equal(t, http.StatusOK, rec.Code, "request 12")
					}
				}
				assert.Equal(t, tt.want, got)
			})
		})
	}
}

// rateLimitFields is h without the fields of the problem body.
func rateLimitFields(h http.Header) http.Header {
	h = h.Clone()
	for _, k := range []string{"Content-Type", "X-Content-Type-Options", "Cache-Control", "Content-Length"} {
		h.Del(k)
	}
	return h
}

// TestMultiPolicyAllOrNone: a request refused by one policy is counted in
// none, so the hour's count is what was admitted, not what was sent.
func TestMultiPolicyAllOrNone(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := burstAndHour(t, HeadersNone)
		h := l.Handler(okHandler)
		for range 30 {
			serve(h, "192.0.2.1:1")
		}
		d, err := l.Peek(context.Background(), "192.0.2.1")
		require.NoError(t, err)
		assert.Equal(t, "burst", d.Policy)
		d, err = l.AllowN(context.Background(), "192.0.2.1", l.now().Add(2*time.Second), 1)
		require.NoError(t, err)
		assert.True(t, d.Allowed, "the hour has 11−10 left: the 20 refused were not counted")
		assert.Equal(t, Decision{Allowed: true, Policy: "hour", Limit: 11, Remaining: 0, Reset: 2*time.Hour - 2*time.Second}, d)
	})
}

func TestPeekAndReset(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newTestLimiter(t, 5, time.Minute, WithName("login"))
		ctx := context.Background()
		d, err := l.Peek(ctx, "alice")
		require.NoError(t, err)
		assert.Equal(t, Decision{Allowed: true, Policy: "login", Limit: 5, Remaining: 5}, d, "a key never seen")
		for range 3 {
			_, err := l.Allow(ctx, "alice")
			require.NoError(t, err)
		}
		for range 2 {
			d, err = l.Peek(ctx, "alice")
			require.NoError(t, err)
			assert.Equal(t, Decision{Allowed: true, Policy: "login", Limit: 5, Remaining: 2, Reset: 2 * time.Minute}, d, "a peek counts nothing")
		}
		for range 2 {
			_, err := l.Allow(ctx, "alice")
			require.NoError(t, err)
		}
		d, err = l.Peek(ctx, "alice")
		require.NoError(t, err)
		// 5 at 0s: one more fits once 5·(60−e)/60 + 1 ≤ 5, at 12s of the next minute.
		assert.Equal(t, Decision{Policy: "login", Limit: 5, Reset: 2 * time.Minute, RetryAfter: 72 * time.Second}, d, "at the limit")
		require.NoError(t, l.Reset(ctx, "alice"))
		d, err = l.Allow(ctx, "alice")
		require.NoError(t, err)
		assert.Equal(t, 4, d.Remaining, "after Reset the key starts from zero")
	})
}

// TestCostAndRetryAfter: a request that costs 4 under a limit of 10.
func TestCostAndRetryAfter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newTestLimiter(t, 10, time.Minute, WithName("bulk"),
			WithCost(func(r *http.Request) int { n, _ := strconv.Atoi(r.Header.Get("Cost")); return n }))
		var served int
		h := l.Handler(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { served++ }))
		do := func(cost int) *httptest.ResponseRecorder {
			req := httptest.NewRequest(http.MethodPost, "/bulk", nil)
			req.RemoteAddr = "192.0.2.1:1"
			req.Header.Set("Cost", strconv.Itoa(cost))
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			return rec
		}
		sleepUntil(bubbleStart.Add(15 * time.Second))
		assert.Equal(t, `"bulk";r=6;t=105`, do(4).Header().Get("RateLimit"))
		assert.Equal(t, `"bulk";r=2;t=105`, do(4).Header().Get("RateLimit"))
		rec := do(4)
		require.Equal(t, http.StatusTooManyRequests, rec.Code, "8+4 > 10")
		// 8 in window 0; a cost of 4 fits once 8·(60−e)/60 ≤ 6, e = 15s of
		// window 1: 60 − 15 + 15 = 60s from now.
		assert.Equal(t, "60", rec.Header().Get("Retry-After"))
		assert.Equal(t, http.StatusOK, do(2).Code, "a cost of 2 still fits")
		assert.Equal(t, 3, served)
		sleepUntil(bubbleStart.Add(15*time.Second + time.Minute - time.Second))
		assert.Equal(t, http.StatusTooManyRequests, do(4).Code, "a second before Retry-After")

		for _, bad := range []int{0, -1, 11} {
			rec := do(bad)
			assert.Equal(t, http.StatusInternalServerError, rec.Code, "cost %d: a bug in the cost function, never a bypass", bad)
		}
		assert.Equal(t, 3, served, "no bad cost reached the handler")
	})
}

// TestLimitFuncChangesMidWindow: a key's count carries over when its
// limit changes, and the new limit applies at once.
func TestLimitFuncChangesMidWindow(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newTestLimiter(t, 5, time.Minute, WithName("plan"), WithHeaders(HeadersDraft7),
			WithLimitFunc(func(r *http.Request, p Policy) int {
				if r.Header.Get("Plan") == "pro" {
					return 4 * p.Limit
				}
				return p.Limit
			}))
		h := l.Handler(okHandler)
		do := func(plan string) *httptest.ResponseRecorder {
			req := httptest.NewRequest(http.MethodGet, "/", nil)
			req.RemoteAddr = "192.0.2.1:1"
			req.Header.Set("Plan", plan)
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			return rec
		}
		for i := range 5 {
			require.Equal(t, http.StatusOK, do("free").Code, "free request %d", i+1)
		}
		assert.Equal(t, http.StatusTooManyRequests, do("free").Code, "free: 5 of 5")
		rec := do("pro")
		require.Equal(t, http.StatusOK, rec.Code, "upgraded: the 5 carry over, 15 left")
		assert.Equal(t, "limit=20, remaining=14, reset=120", rec.Header().Get("RateLimit"))
		assert.Equal(t, "20;w=60", rec.Header().Get("RateLimit-Policy"))
		assert.Equal(t, http.StatusTooManyRequests, do("free").Code, "downgraded after 6: refused")
	})
}

// TestLimitFuncBadValue: a limit below 1 is a bug in the function: 500.
func TestLimitFuncBadValue(t *testing.T) {
	var logs bytes.Buffer
	l := newTestLimiter(t, 5, time.Minute, WithLimitFunc(func(*http.Request, Policy) int { return 0 }),
		WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	calls := 0
	h := l.Handler(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { calls++ }))
	assert.Equal(t, http.StatusInternalServerError, serve(h, "192.0.2.1:1").Code)
	assert.Zero(t, calls)
	assert.Contains(t, logs.String(), "limit or cost function failed")
}

// TestSlidingWindowBoundWithCostsAndLimitFunc drives a limiter on a fake
// clock with random arrivals of random costs under a limit function, and
// checks the admitted cost against the bound of the sliding-window counter
// in every fixed window: at most the limit, and at most limit +
// previous·elapsed/W in every trailing window at each admission.
func TestSlidingWindowBoundWithCostsAndLimitFunc(t *testing.T) {
	const window = time.Minute
	synctest.Test(t, func(t *testing.T) {
		limitOf := func(r *http.Request) int { n, _ := strconv.Atoi(r.Header.Get("Limit")); return n }
		l := newTestLimiter(t, 1000, window, WithHeaders(HeadersNone),
			WithLimitFunc(func(r *http.Request, _ Policy) int { return limitOf(r) }),
			WithCost(func(r *http.Request) int { n, _ := strconv.Atoi(r.Header.Get("Cost")); return n }))
		h := l.Handler(okHandler)
		rng := rand.New(rand.NewPCG(1, 2))
		type admission struct {
			at   time.Duration
			cost int
		}
		var admitted []admission
		perWindow := map[int64]int{}
		limit := 30
		start := time.Now()
		for i := 0; i < 4000; i++ {
			time.Sleep(time.Duration(rng.IntN(int(window / 40)))) // ~3 requests per limit's worth
			if i%1000 == 999 {
				limit = []int{30, 45, 20, 30}[i/1000] // changes mid-window
			}
			cost := 1 + rng.IntN(5)
			req := httptest.NewRequest(http.MethodGet, "/", nil)
			req.RemoteAddr = "192.0.2.1:1"
			req.Header.Set("Cost", strconv.Itoa(cost))
			req.Header.Set("Limit", strconv.Itoa(limit))
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != http.StatusOK {
				require.Equal(t, http.StatusTooManyRequests, rec.Code)
				continue
			}
			at := time.Since(start)
			idx := time.Now().UnixNano() / int64(window)
			perWindow[idx] += cost
			// The trailing window ending now holds what the estimate let
			// in: at most limit + previous·elapsed/W.
			elapsed := time.Duration(time.Now().UnixNano() % int64(window))
			prev := perWindow[idx-1]
			inTrailing := 0
			for _, a := range admitted {
				if at-a.at < window {
					inTrailing += a.cost
				}
			}
			inTrailing += cost
			bound := float64(limit) + float64(prev)*float64(elapsed)/float64(window)
			require.LessOrEqual(t, float64(inTrailing), bound+1e-9, "request %d at %v: trailing window", i, at)
			require.LessOrEqual(t, perWindow[idx], max(30, 45), "request %d: fixed window", i)
			admitted = append(admitted, admission{at, cost})
		}
		assert.Greater(t, len(admitted), 500, "admitted: no starvation")
	})
}

// TestCountOnly: what counts is what the function says, and a panic or a
// client that left counts as a failure.
func TestCountOnly(t *testing.T) {
	failures := func(status int) bool { return status >= 400 }
	successes := func(status int) bool { return status < 400 }
	tests := []struct {
		name   string
		counts func(int) bool
		handle func(w http.ResponseWriter, r *http.Request, cancel context.CancelFunc)
		kept   bool // the request stays counted
	}{
		{"failure, counting failures", failures, func(w http.ResponseWriter, _ *http.Request, _ context.CancelFunc) { w.WriteHeader(401) }, true},
		{"success, counting failures", failures, func(w http.ResponseWriter, _ *http.Request, _ context.CancelFunc) { w.Write([]byte("ok")) }, false},
		{"nothing written, counting failures", failures, func(http.ResponseWriter, *http.Request, context.CancelFunc) {}, false},
		{"panic, counting failures", failures, func(w http.ResponseWriter, _ *http.Request, _ context.CancelFunc) { w.WriteHeader(200); panic("boom") }, true},
		{"client left, counting failures", failures, func(w http.ResponseWriter, _ *http.Request, cancel context.CancelFunc) { cancel() }, true},
		{"failure, counting successes", successes, func(w http.ResponseWriter, _ *http.Request, _ context.CancelFunc) { w.WriteHeader(500) }, false},
		{"panic, counting successes", successes, func(http.ResponseWriter, *http.Request, context.CancelFunc) { panic("boom") }, false},
		{"client left, counting successes", successes, func(w http.ResponseWriter, _ *http.Request, cancel context.CancelFunc) { cancel() }, false},
		{"success, counting successes", successes, func(w http.ResponseWriter, _ *http.Request, _ context.CancelFunc) {}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				for _, policies := range [][]Option{nil, {WithPolicy("hour", 100, time.Hour)}} {
					l := newTestLimiter(t, 3, time.Minute, append(policies, WithCountOnly(tt.counts), WithHeaders(HeadersNone))...)
					rec, err := recoverer.New(recoverer.WithLogger(slog.New(slog.DiscardHandler)))
					require.NoError(t, err)
					var cancel context.CancelFunc
					h := rec(l.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { tt.handle(w, r, cancel) })))
					for range 3 {
						var ctx context.Context
						ctx, cancel = context.WithCancel(context.Background())
						req := httptest.NewRequest(http.MethodPost, "/login", nil).WithContext(ctx)
						req.RemoteAddr = "192.0.2.1:1"
						serveAborted(h, req)
						cancel()
					}
					d, err := l.Peek(context.Background(), "192.0.2.1")
					require.NoError(t, err)
					if tt.kept {
						assert.False(t, d.Allowed, "%d policies: 3 kept of 3", len(policies)+1)
					} else {
						assert.Equal(t, 3, d.Remaining, "%d policies: all given back", len(policies)+1)
					}
				}
			})
		})
	}
}

// TestCountOnlyKeepsInterfaces: the writer passed on keeps the optional
// interfaces of the one given (a Flusher here, for SSE).
func TestCountOnlyKeepsInterfaces(t *testing.T) {
	l := newTestLimiter(t, 3, time.Minute, WithCountOnly(func(int) bool { return true }))
	var flusher bool
	h := l.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, flusher = w.(http.Flusher) }))
	serve(h, "192.0.2.1:1")
	assert.True(t, flusher)
}

// TestMemoryStoreTakeAllAtTheCap: a TakeAll under every policy at once on
// a store whose cap is one key: the keys it inserts are pinned, so making
// room for one never evicts another, and the take ends.
func TestMemoryStoreTakeAllAtTheCap(t *testing.T) {
	s := newMemoryStore(t, WithMaxKeys(1))
	ps := make([]Policy, MaxPolicies)
	for i := range ps {
		ps[i] = Policy{Name: "p" + strconv.Itoa(i), Limit: 2, Window: time.Minute}
	}
	ws := make([]Window, len(ps))
	for range 2 {
		ok, err := s.TakeAll(context.Background(), ps, "k", t0, 1, ws)
		require.NoError(t, err)
		require.True(t, ok)
	}
	for i := range ws {
		assert.EqualValues(t, 2, ws[i].Current, "policy %d counted twice", i)
	}
	ok, err := s.TakeAll(context.Background(), ps, "other", t0, 1, ws)
	require.NoError(t, err)
	assert.True(t, ok, "another key at the cap")
}

// TestMemoryStoreRefundAcrossWindows: a refund gives back to the window the
// take was counted in: the current count while it is current, the
// previous one once the key has moved on by one window, nothing later.
func TestMemoryStoreRefundAcrossWindows(t *testing.T) {
	p := []Policy{{Name: "a", Limit: 10, Window: time.Minute}}
	tests := []struct {
		name      string
		later     time.Duration // of the take that rolls the key, after the refunded one
		wantPrev  int64
		wantCurr  int64
		refundNow bool
	}{
		{"same window", 0, 0, 1, true},
		{"next window", time.Minute, 2, 1, true},
		{"two windows later", 2 * time.Minute, 0, 1, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newMemoryStore(t)
			w := take(t, s, p[0], "k", t0.Add(10*time.Second))
			take(t, s, p[0], "k", t0.Add(10*time.Second))
			take(t, s, p[0], "k", t0.Add(10*time.Second))
			take(t, s, p[0], "k", t0.Add(10*time.Second+tt.later))
			require.NoError(t, s.Refund(context.Background(), p, "k", 1, []Window{w}))
			got := make([]Window, 1)
			require.NoError(t, s.Peek(context.Background(), p, "k", t0.Add(10*time.Second+tt.later), got))
			if tt.later == 0 {
				assert.EqualValues(t, 3, got[0].Current, "4 taken, 1 given back")
				return
			}
			assert.Equal(t, tt.wantPrev, got[0].Previous, "previous")
			assert.Equal(t, tt.wantCurr, got[0].Current, "current")
		})
	}
}

// FuzzCostAndLimit: whatever a cost or limit function returns, the request
// is answered 200 or 429 when 1 ≤ cost ≤ limit, else 500, and never passed
// on otherwise.
func FuzzCostAndLimit(f *testing.F) {
	for _, c := range [][2]int{{1, 1}, {0, 5}, {-1, 5}, {6, 5}, {5, 0}, {1, -3}, {1 << 40, 1 << 41}, {-1 << 62, 1}, {1 << 30, MaxLimit}, {1, MaxLimit + 1}} {
		f.Add(c[0], c[1])
	}
	f.Fuzz(func(t *testing.T, cost, limit int) {
		l, err := New(5, time.Minute, WithHeaders(HeadersBoth), WithPolicy("hour", 7, time.Hour),
			WithCost(func(*http.Request) int { return cost }),
			WithLimitFunc(func(*http.Request, Policy) int { return limit }),
			WithLogger(slog.New(slog.DiscardHandler)))
		require.NoError(t, err)
		passed := 0
		h := l.Handler(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { passed++ }))
		for range 3 {
			rec := serve(h, "192.0.2.1:1")
			valid := cost >= 1 && cost <= limit && limit <= MaxLimit
			switch {
			case !valid:
				require.Equal(t, http.StatusInternalServerError, rec.Code, "cost %d, limit %d", cost, limit)
			case rec.Code == http.StatusOK:
				require.False(t, strings.Contains(rec.Header().Get("RateLimit"), "r=-"), "negative remaining")
			default:
				require.Equal(t, http.StatusTooManyRequests, rec.Code, "cost %d, limit %d", cost, limit)
			}
			if !valid {
				require.Zero(t, passed, "cost %d, limit %d passed on", cost, limit)
			}
		}
		if cost >= 1 && cost <= limit && limit <= MaxLimit {
			require.LessOrEqual(t, passed*cost, limit, "admitted within the limit")
		}
	})
}

// FuzzWithPolicy: any policy is accepted by New or refused with an error.
func FuzzWithPolicy(f *testing.F) {
	f.Add("hour", 1000, int64(time.Hour))
	f.Add("", 0, int64(0))
	f.Add("default", -1, int64(-1))
	f.Fuzz(func(t *testing.T, name string, limit int, window int64) {
		l, err := New(10, time.Second, WithPolicy(name, limit, time.Duration(window)))
		if err != nil {
			require.Nil(t, l)
			return
		}
		require.Len(t, l.Policies(), 2)
		_, err = l.Allow(context.Background(), "k")
		require.NoError(t, err)
	})
}

// serveAborted serves req, absorbing the http.ErrAbortHandler with which a
// recoverer aborts a response whose status was already sent, as net/http
// does.
func serveAborted(h http.Handler, req *http.Request) {
	defer func() {
		if v := recover(); v != nil && v != http.ErrAbortHandler {
			panic(v)
		}
	}()
	h.ServeHTTP(httptest.NewRecorder(), req)
}
