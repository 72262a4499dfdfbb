// Package storetest is the conformance suite of ratelimit.Store: what
// every store (ratelimit.MemoryStore, redisstore.Store, and any store to
// come, such as one shared by cluster workers) must do, run against the
// real thing. A store's tests call [Run] with a constructor.
//
// The suite does not control a store's clock (redisstore uses the Redis
// server's), so it uses windows of a day and reads a key's count as
// Previous + Current, which stays exact across one window boundary.
package storetest

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/shipshape-go/shipshape/ratelimit"
)

const day = 24 * time.Hour

// Run runs every conformance test against stores made by newStore, one
// per test.
func Run(t *testing.T, newStore func(t *testing.T) ratelimit.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s ratelimit.Store)
	}{
		{"TakeAllOrNone", testTakeAllOrNone},
		{"LimitAppliedAtDecision", testLimitAppliedAtDecision},
		{"Refund", testRefund},
		{"RefundOtherWindow", testRefundOtherWindow},
		{"Peek", testPeek},
		{"Reset", testReset},
		{"InvalidArgs", testInvalidArgs},
		{"ConcurrentTakeAndRefund", testConcurrentTakeAndRefund},
		{"CountOnlyBound", testCountOnlyBound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.fn(t, newStore(t)) })
	}
}

// count is the requests a window holds, across one boundary.
func count(w ratelimit.Window) int64 { return w.Previous + w.Current }

// peek returns what s holds for key under ps.
func peek(t *testing.T, s ratelimit.Store, ps []ratelimit.Policy, key string) []ratelimit.Window {
	t.Helper()
	ws := make([]ratelimit.Window, len(ps))
	require.NoError(t, s.Peek(context.Background(), ps, key, time.Now(), ws))
	return ws
}

func testTakeAllOrNone(t *testing.T, s ratelimit.Store) {
	ctx := context.Background()
	ps := []ratelimit.Policy{{Name: "burst", Limit: 2, Window: day}, {Name: "sustained", Limit: 5, Window: day}}
	ws := make([]ratelimit.Window, 2)
	for i := range 2 {
		ok, err := s.TakeAll(ctx, ps, "k", time.Now(), 1, ws)
		require.NoError(t, err)
		require.True(t, ok, "take %d", i+1)
		assert.True(t, ws[0].Allowed && ws[1].Allowed, "take %d: Allowed in every window", i+1)
		assert.EqualValues(t, i+1, count(ws[0]), "burst after take %d", i+1)
		assert.EqualValues(t, i+1, count(ws[1]), "sustained after take %d", i+1)
	}
	ok, err := s.TakeAll(ctx, ps, "k", time.Now(), 1, ws)
	require.NoError(t, err)
	assert.False(t, ok, "the burst policy refuses the third")
	assert.False(t, ws[0].Allowed || ws[1].Allowed, "refused in every window")
	got := peek(t, s, ps, "k")
	assert.EqualValues(t, 2, count(got[1]), "a take refused by one policy is counted in none")

	// Another key, and each policy alone, are apart from these counts.
	ok, err = s.TakeAll(ctx, ps, "other", time.Now(), 2, ws)
	require.NoError(t, err)
	assert.True(t, ok, "another key")
	w, err := s.Take(ctx, ps[1], "k", time.Now(), 3)
	require.NoError(t, err)
	assert.True(t, w.Allowed, "sustained alone has room for 3")
	assert.EqualValues(t, 5, count(w), "Take and TakeAll share the (policy, key) count")
}

// testLimitAppliedAtDecision: the limit is not part of a count's identity.
func testLimitAppliedAtDecision(t *testing.T, s ratelimit.Store) {
	ctx := context.Background()
	p := ratelimit.Policy{Name: "plan", Limit: 10, Window: day}
	for range 5 {
		w, err := s.Take(ctx, p, "k", time.Now(), 1)
		require.NoError(t, err)
		require.True(t, w.Allowed)
	}
	p.Limit = 5
	w, err := s.Take(ctx, p, "k", time.Now(), 1)
	require.NoError(t, err)
	assert.False(t, w.Allowed, "downgraded to 5 after 5: refused at once")
	p.Limit = 20
	w, err = s.Take(ctx, p, "k", time.Now(), 1)
	require.NoError(t, err)
	assert.True(t, w.Allowed, "upgraded to 20")
	assert.EqualValues(t, 6, count(w), "the count carried over")
}

func testRefund(t *testing.T, s ratelimit.Store) {
	ctx := context.Background()
	ps := []ratelimit.Policy{{Name: "a", Limit: 10, Window: day}, {Name: "b", Limit: 10, Window: time.Hour}}
	ws := make([]ratelimit.Window, 2)
	ok, err := s.TakeAll(ctx, ps, "k", time.Now(), 4, ws)
	require.NoError(t, err)
	require.True(t, ok)
	taken := append([]ratelimit.Window(nil), ws...)
	_, err = s.TakeAll(ctx, ps, "k", time.Now(), 3, ws)
	require.NoError(t, err)
	require.NoError(t, s.Refund(ctx, ps, "k", 4, taken))
	got := peek(t, s, ps, "k")
	assert.EqualValues(t, 3, count(got[0]), "a: 4+3 taken, 4 given back")
	assert.EqualValues(t, 3, count(got[1]), "b: 4+3 taken, 4 given back")

	require.NoError(t, s.Refund(ctx, ps, "k", 100, taken))
	got = peek(t, s, ps, "k")
	assert.Zero(t, count(got[0]), "a count never goes below zero")
	ok, err = s.TakeAll(ctx, ps, "k", time.Now(), 10, ws)
	require.NoError(t, err)
	assert.True(t, ok, "the whole limit fits after the refunds")

	refused := []ratelimit.Window{{Index: taken[0].Index}, {Index: taken[1].Index}}
	require.NoError(t, s.Refund(ctx, ps, "k", 5, refused))
	got = peek(t, s, ps, "k")
	assert.EqualValues(t, 10, count(got[0]), "a refused take (not Allowed) is never given back")

	require.NoError(t, s.Refund(ctx, ps, "never-seen", 1, taken), "a refund for an unknown key")
	assert.Zero(t, count(peek(t, s, ps, "never-seen")[0]))
}

// testRefundOtherWindow: a refund to a window the key's count is not in
// (two windows back, or ahead) changes nothing.
func testRefundOtherWindow(t *testing.T, s ratelimit.Store) {
	ctx := context.Background()
	p := []ratelimit.Policy{{Name: "a", Limit: 10, Window: day}}
	w, err := s.Take(ctx, p[0], "k", time.Now(), 3)
	require.NoError(t, err)
	require.True(t, w.Allowed)
	for _, index := range []int64{w.Index - 2, w.Index + 1, w.Index + 100} {
		other := w
		other.Index = index
		require.NoError(t, s.Refund(ctx, p, "k", 3, []ratelimit.Window{other}))
		assert.EqualValues(t, 3, count(peek(t, s, p, "k")[0]), "refund to window %d (counted in %d)", index, w.Index)
	}
}

func testPeek(t *testing.T, s ratelimit.Store) {
	ctx := context.Background()
	ps := []ratelimit.Policy{{Name: "a", Limit: 3, Window: day}}
	got := peek(t, s, ps, "k")
	assert.Zero(t, count(got[0]), "a key never seen")
	assert.True(t, got[0].Allowed, "one request fits a key never seen")
	for range 3 {
		_, err := s.Take(ctx, ps[0], "k", time.Now(), 1)
		require.NoError(t, err)
	}
	for range 3 {
		got = peek(t, s, ps, "k")
		assert.EqualValues(t, 3, count(got[0]), "a peek counts nothing")
		assert.False(t, got[0].Allowed, "at the limit, one more does not fit")
	}
	w, err := s.Take(ctx, ps[0], "k", time.Now(), 1)
	require.NoError(t, err)
	assert.Equal(t, got[0].Index, w.Index, "a peek sees the window a take counts in")
}

func testReset(t *testing.T, s ratelimit.Store) {
	ctx := context.Background()
	a := ratelimit.Policy{Name: "a", Limit: 3, Window: day}
	b := ratelimit.Policy{Name: "b", Limit: 3, Window: day}
	c := ratelimit.Policy{Name: "c", Limit: 3, Window: day}
	for _, p := range []ratelimit.Policy{a, b, c} {
		for _, key := range []string{"k", "other"} {
			_, err := s.Take(ctx, p, key, time.Now(), 3)
			require.NoError(t, err)
		}
	}
	require.NoError(t, s.Reset(ctx, []ratelimit.Policy{a, b}, "k"))
	got := peek(t, s, []ratelimit.Policy{a, b, c}, "k")
	assert.Zero(t, count(got[0]), "a reset")
	assert.Zero(t, count(got[1]), "b reset")
	assert.EqualValues(t, 3, count(got[2]), "c, not named, kept")
	assert.EqualValues(t, 3, count(peek(t, s, []ratelimit.Policy{a}, "other")[0]), "another key kept")
	require.NoError(t, s.Reset(ctx, []ratelimit.Policy{a}, "never-seen"), "resetting an unknown key")
	w, err := s.Take(ctx, a, "k", time.Now(), 3)
	require.NoError(t, err)
	assert.True(t, w.Allowed, "the whole limit after a reset")
}

func testInvalidArgs(t *testing.T, s ratelimit.Store) {
	ctx := context.Background()
	good := ratelimit.Policy{Name: "a", Limit: 1, Window: day}
	nine := make([]ratelimit.Policy, ratelimit.MaxPolicies+1)
	for i := range nine {
		nine[i] = good
		nine[i].Name = string(rune('a' + i))
	}
	tests := []struct {
		name string
		ps   []ratelimit.Policy
		nw   int
		n    int
		want error
	}{
		{"no policy", nil, 0, 1, ratelimit.ErrInvalidArgs},
		{"too many policies", nine, len(nine), 1, ratelimit.ErrInvalidArgs},
		{"fewer windows", []ratelimit.Policy{good, good}, 1, 1, ratelimit.ErrInvalidArgs},
		{"invalid policy", []ratelimit.Policy{{Name: "x", Limit: 0, Window: day}}, 1, 1, ratelimit.ErrInvalidPolicy},
		{"negative n", []ratelimit.Policy{good}, 1, -1, ratelimit.ErrInvalidN},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ws := make([]ratelimit.Window, tt.nw)
			_, err := s.TakeAll(ctx, tt.ps, "k", time.Now(), tt.n, ws)
			assert.ErrorIs(t, err, tt.want, "TakeAll")
			assert.ErrorIs(t, s.Refund(ctx, tt.ps, "k", tt.n, ws), tt.want, "Refund")
			if tt.n >= 0 {
				assert.ErrorIs(t, s.Peek(ctx, tt.ps, "k", time.Now(), ws), tt.want, "Peek")
				if tt.nw == len(tt.ps) {
					assert.ErrorIs(t, s.Reset(ctx, tt.ps, "k"), tt.want, "Reset")
				}
			}
		})
	}
	_, err := s.Take(ctx, good, "k", time.Now(), -1)
	assert.ErrorIs(t, err, ratelimit.ErrInvalidN, "Take, negative n")
}

// testConcurrentTakeAndRefund: takes and refunds from many goroutines
// leave exactly what was taken and not given back, under each policy.
func testConcurrentTakeAndRefund(t *testing.T, s ratelimit.Store) {
	ctx := context.Background()
	ps := []ratelimit.Policy{{Name: "a", Limit: 50, Window: day}, {Name: "b", Limit: 1000, Window: day}}
	var allowed, refunded atomic.Int64
	var wg sync.WaitGroup
	for i := range 200 {
		wg.Go(func() {
			ws := make([]ratelimit.Window, 2)
			ok, err := s.TakeAll(ctx, ps, "k", time.Now(), 1, ws)
			if !assert.NoError(t, err) || !ok {
				return
			}
			allowed.Add(1)
			if i%2 == 0 {
				assert.NoError(t, s.Refund(ctx, ps, "k", 1, ws))
				refunded.Add(1)
			}
		})
	}
	wg.Wait()
	got := peek(t, s, ps, "k")
	want := allowed.Load() - refunded.Load()
	assert.Equal(t, want, count(got[0]), "a: taken and kept")
	assert.Equal(t, want, count(got[1]), "b: taken and kept (all or none)")
	assert.LessOrEqual(t, want, int64(50), "never more kept than the limit")
	assert.GreaterOrEqual(t, allowed.Load(), int64(50), "refunds made room")
}

// testCountOnlyBound is the login brute-force recipe under concurrency: 500
// wrong passwords at once against a limit of 5, all in flight together
// (the handler holds them until every request has been decided), let at
// most 5 reach the handler; afterwards the 5 failures stay counted.
func testCountOnlyBound(t *testing.T, s ratelimit.Store) {
	const limit, attempts = 5, 500
	l, err := ratelimit.New(limit, day, ratelimit.WithStore(s), ratelimit.WithName("login"),
		ratelimit.WithCountOnly(func(status int) bool { return status >= 400 }))
	require.NoError(t, err)
	var reached, refused atomic.Int64
	release := make(chan struct{})
	h := l.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reached.Add(1)
		<-release
		w.WriteHeader(http.StatusUnauthorized)
	}))
	var wg sync.WaitGroup
	for range attempts {
		wg.Go(func() {
			req := httptest.NewRequest(http.MethodPost, "/login", nil)
			req.RemoteAddr = "198.51.100.9:4000"
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code == http.StatusTooManyRequests {
				refused.Add(1)
			}
		})
	}
	// Liveness only: every request is either refused or held.
	deadline := time.Now().Add(30 * time.Second)
	for reached.Load()+refused.Load() < attempts && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	close(release)
	wg.Wait()
	assert.LessOrEqual(t, reached.Load(), int64(limit), "wrong passwords that reached the handler")
	assert.Equal(t, int64(attempts)-reached.Load(), refused.Load(), "the rest were refused")
	d, err := l.Peek(context.Background(), "198.51.100.9")
	require.NoError(t, err)
	assert.False(t, d.Allowed, "the failures stay counted")
}
