package redisstore

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/shipshape-go/shipshape/internal/storetest"
	"github.com/shipshape-go/shipshape/internal/testenv"
	"github.com/shipshape-go/shipshape/ratelimit"
)

var _ ratelimit.Store = (*Store)(nil)

func TestTakeCountsUpToTheLimit(t *testing.T) {
	r := testenv.StartRedis(t)
	c := newClient(t, r.Addr)
	s := newStore(t, c, WithTimeout(5*time.Second))
	ctx := ctxT(t)
	p := ratelimit.Policy{Name: "api", Limit: 3, Window: day}

	tests := []struct {
		name    string
		n       int
		allowed bool
		current int64
	}{
		{"first", 1, true, 1},
		{"second", 1, true, 2},
		{"two more do not fit", 2, false, 2},
		{"third", 1, true, 3},
		{"over the limit", 1, false, 3},
		{"refused takes are not counted", 1, false, 3},
		{"n=0 always fits at the limit", 0, true, 3},
	}
	for _, tt := range tests {
		w, err := s.Take(ctx, p, "client", time.Time{}, tt.n)
		require.NoError(t, err, tt.name)
		assert.Equal(t, tt.allowed, w.Allowed, "%s: Allowed", tt.name)
		assert.Equal(t, tt.current, w.Current, "%s: Current", tt.name)
		assert.Zero(t, w.Previous, "%s: Previous", tt.name)
		assert.True(t, w.Elapsed >= 0 && w.Elapsed < p.Window, "%s: Elapsed %v not in [0, %v)", tt.name, w.Elapsed, p.Window)
	}

	// The same key under another name, and another key, count apart.
	w, err := s.Take(ctx, ratelimit.Policy{Name: "web", Limit: 3, Window: day}, "client", time.Time{}, 1)
	require.NoError(t, err)
	assert.Equal(t, int64(1), w.Current, "other policy name: Current")
	w, err = s.Take(ctx, p, "other", time.Time{}, 1)
	require.NoError(t, err)
	assert.Equal(t, int64(1), w.Current, "other key: Current")
	assert.False(t, s.Degraded(), "Degraded after healthy takes")
}

// TestTakeRollsWindows writes a key's state as an earlier take would have
// left it, relative to the window Redis is in now, and checks what the
// script makes of it.
func TestTakeRollsWindows(t *testing.T) {
	r := testenv.StartRedis(t)
	c := newClient(t, r.Addr)
	s := newStore(t, c, WithTimeout(5*time.Second))
	ctx := ctxT(t)
	p := ratelimit.Policy{Name: "roll", Limit: 1000, Window: day}

	tests := []struct {
		name     string
		offset   int64 // stored window index relative to the current one
		c, prev  int64 // stored counts
		wantPrev int64
		wantCurr int64 // before this take
		wantW    int64 // stored window index after the take, relative to the current one
	}{
		{name: "same window keeps both", offset: 0, c: 7, prev: 5, wantPrev: 5, wantCurr: 7},
		{name: "previous window becomes prev", offset: -1, c: 7, prev: 5, wantPrev: 7, wantCurr: 0},
		{name: "older window is forgotten", offset: -2, c: 7, prev: 5, wantPrev: 0, wantCurr: 0},
		{name: "far past is forgotten", offset: -1000, c: 7, prev: 5, wantPrev: 0, wantCurr: 0},
		// The Redis clock went back (a failover to a replica whose clock is
		// behind, an NTP step): the counts are kept, not reset.
		{name: "window ahead of the clock keeps both", offset: 1, c: 7, prev: 5, wantPrev: 5, wantCurr: 7, wantW: 1},
		{name: "two windows ahead keeps both", offset: 2, c: 7, prev: 5, wantPrev: 5, wantCurr: 7, wantW: 2},
		// Further ahead the window is stale (the clock jumped ahead and came
		// back): kept, it would refuse the client until the clock caught up.
		{name: "three windows ahead is stale", offset: 3, c: 7, prev: 5, wantPrev: 0, wantCurr: 0},
		{name: "far future is stale", offset: 1000, c: 7, prev: 5, wantPrev: 0, wantCurr: 0},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key := fmt.Sprintf("k%d", i)
			for attempt := 0; ; attempt++ {
				idx := redisWindow(t, c, p.Window)
				rk := s.redisKey(p.Name, key)
				require.NoError(t, c.HSet(ctx, rk, "w", idx+tt.offset, "c", tt.c, "p", tt.prev).Err())
				w, err := s.Take(ctx, p, key, time.Time{}, 1)
				require.NoError(t, err)
				if redisWindow(t, c, p.Window) != idx && attempt < 3 {
					continue // crossed a window boundary meanwhile: redo
				}
				assert.True(t, w.Allowed, "Allowed")
				assert.Equal(t, tt.wantPrev, w.Previous, "Previous")
				assert.Equal(t, tt.wantCurr+1, w.Current, "Current")
				got, err := c.HGetAll(ctx, rk).Result()
				require.NoError(t, err)
				assert.Equal(t, map[string]string{
					"w": fmt.Sprint(idx + tt.wantW), "c": fmt.Sprint(tt.wantCurr + 1), "p": fmt.Sprint(tt.wantPrev),
				}, got, "stored state after the take")
				if tt.wantW > 0 {
					assert.Zero(t, w.Elapsed, "Elapsed of a take counted at the start of a window ahead of the clock")
				}
				return
			}
		})
	}
}

// TestClockJumpedAheadAndBack: a key written while the Redis clock was a
// day ahead (its window index 1,440 one-minute windows in the future, its
// TTL a day away) must not keep its client refused for that day once the
// clock is back: the key starts over, with a TTL of at most two windows.
func TestClockJumpedAheadAndBack(t *testing.T) {
	r := testenv.StartRedis(t)
	c := newClient(t, r.Addr)
	s := newStore(t, c, WithTimeout(5*time.Second))
	ctx := ctxT(t)
	p := ratelimit.Policy{Name: "jump", Limit: 5, Window: time.Minute}
	rk := s.redisKey(p.Name, "client")
	ahead := redisWindow(t, c, p.Window) + 24*60
	require.NoError(t, c.HSet(ctx, rk, "w", ahead, "c", p.Limit, "p", p.Limit).Err())
	require.NoError(t, c.Expire(ctx, rk, 24*time.Hour).Err())

	w, err := s.Take(ctx, p, "client", time.Time{}, 1)
	require.NoError(t, err)
	assert.True(t, w.Allowed, "the client is refused by counts from a clock a day ahead: %+v", w)
	assert.Equal(t, int64(1), w.Current, "Current")
	assert.Zero(t, w.Previous, "Previous")
	ttl, err := c.PTTL(ctx, rk).Result()
	require.NoError(t, err)
	assert.True(t, ttl > 0 && ttl <= 2*p.Window, "PTTL %v, want in (0, %v]", ttl, 2*p.Window)
}

// redisWindow is the index of the window of length w that the Redis clock
// is in.
func redisWindow(t *testing.T, c *redis.Client, w time.Duration) int64 {
	t.Helper()
	now, err := c.Time(context.Background()).Result()
	require.NoError(t, err)
	return now.UnixMicro() / w.Microseconds()
}

// TestTakeDecidesLikePolicyFits fills the previous window, then takes until
// refused: every decision must be the one Policy.Fits makes on the state
// the script saw, and the number admitted the one the sliding estimate
// gives.
func TestTakeDecidesLikePolicyFits(t *testing.T) {
	r := testenv.StartRedis(t)
	c := newClient(t, r.Addr)
	s := newStore(t, c, WithTimeout(5*time.Second))
	ctx := ctxT(t)
	for _, tt := range []struct {
		name   string
		limit  int
		window time.Duration
		prev   int64
	}{
		{"full previous window", 100, day, 100},
		{"half previous window", 100, day, 50},
		{"previous over the limit", 10, day, 1000},
		{"hour window", 60, time.Hour, 60},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := ratelimit.Policy{Name: "fits", Limit: tt.limit, Window: tt.window}
			key := tt.name
			idx := redisWindow(t, c, p.Window)
			require.NoError(t, c.HSet(ctx, s.redisKey(p.Name, key), "w", idx, "c", 0, "p", tt.prev).Err())
			curr := int64(0)
			for i := 0; i <= tt.limit+1; i++ {
				w, err := s.Take(ctx, p, key, time.Time{}, 1)
				require.NoError(t, err)
				if w.Previous != tt.prev {
					t.Skip("crossed a window boundary during the test")
				}
				want := p.Fits(w.Previous, curr, w.Elapsed, 1)
				require.Equal(t, want, w.Allowed, "take %d: prev %d curr %d elapsed %v: Allowed", i, w.Previous, curr, w.Elapsed)
				if !w.Allowed {
					est := ratelimit.Window{Previous: w.Previous, Current: curr, Elapsed: w.Elapsed}.Estimate(p.Window)
					assert.Greater(t, est+1, float64(tt.limit), "refused although the estimate %.3f + 1 fits %d", est, tt.limit)
					return
				}
				curr = w.Current
			}
			t.Fatalf("never refused after %d takes", tt.limit+2)
		})
	}
}

func TestKeysExpire(t *testing.T) {
	r := testenv.StartRedis(t)
	c := newClient(t, r.Addr)
	s := newStore(t, c, WithTimeout(5*time.Second))
	ctx := ctxT(t)
	for _, w := range []time.Duration{time.Second, time.Minute, day} {
		p := ratelimit.Policy{Name: "ttl", Limit: 10, Window: w}
		_, err := s.Take(ctx, p, w.String(), time.Time{}, 1)
		require.NoError(t, err)
		ttl, err := c.PTTL(ctx, s.redisKey(p.Name, w.String())).Result()
		require.NoError(t, err)
		assert.True(t, ttl > 0 && ttl <= 2*w, "window %v: PTTL %v, want in (0, %v]", w, ttl, 2*w)
	}
}

func TestTakeRejectsBadInput(t *testing.T) {
	r := testenv.StartRedis(t)
	s := newStore(t, newClient(t, r.Addr))
	ctx := ctxT(t)
	tests := []struct {
		name string
		p    ratelimit.Policy
		n    int
		want error
	}{
		{"zero limit", ratelimit.Policy{Limit: 0, Window: time.Second}, 1, ratelimit.ErrInvalidPolicy},
		{"negative window", ratelimit.Policy{Limit: 1, Window: -time.Second}, 1, ratelimit.ErrInvalidPolicy},
		{"negative n", ratelimit.Policy{Limit: 1, Window: time.Second}, -1, ratelimit.ErrInvalidN},
	}
	for _, tt := range tests {
		_, err := s.Take(ctx, tt.p, "k", time.Time{}, tt.n)
		assert.ErrorIs(t, err, tt.want, tt.name)
	}
	assert.False(t, s.Degraded(), "bad input must not switch to the fallback")
}

// TestNewRejectsBadConfig: every invalid configuration is an error from
// New, and no Store: a nil client is a mistake of the wiring, known at
// start-up, not something to discover on every request.
func TestNewRejectsBadConfig(t *testing.T) {
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	defer c.Close()
	tests := []struct {
		name   string
		client redis.UniversalClient
		opts   []Option
		want   string
	}{
		{"nil interface", nil, nil, "nil redis client"},
		{"nil *redis.Client", (*redis.Client)(nil), nil, "nil redis client"},
		{"nil *redis.ClusterClient", (*redis.ClusterClient)(nil), nil, "nil redis client"},
		{"nil option", c, []Option{WithPrefix("app:"), nil}, "nil option"},
		{"brace in prefix", c, []Option{WithPrefix("bad{pre}:")}, "must not contain '{' or '}'"},
		{"closing brace in prefix", c, []Option{WithPrefix("bad}:")}, "must not contain '{' or '}'"},
		{"zero timeout", c, []Option{WithTimeout(0)}, "WithTimeout: timeout must be > 0"},
		{"negative timeout", c, []Option{WithTimeout(-time.Second)}, "WithTimeout: timeout must be > 0"},
		{"nil fallback", c, []Option{WithFallback(nil)}, "WithFallback: nil store"},
		{"typed nil fallback", c, []Option{WithFallback((*ratelimit.MemoryStore)(nil))}, "WithFallback: nil store"},
		{"zero probe interval", c, []Option{WithProbeInterval(0)}, "WithProbeInterval: interval must be > 0"},
		{"negative probe interval", c, []Option{WithProbeInterval(-time.Second)}, "WithProbeInterval: interval must be > 0"},
		{"nil logger", c, []Option{WithLogger(nil)}, "WithLogger: nil logger"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := New(tt.client, tt.opts...)
			require.Error(t, err)
			assert.Nil(t, s)
			assert.Contains(t, err.Error(), tt.want)
			assert.True(t, strings.HasPrefix(err.Error(), "redisstore: "), "error %q: want the package prefix", err)
			if tt.client == nil || tt.want == "nil redis client" {
				assert.ErrorIs(t, err, ErrNilClient)
			}
		})
	}
}

// TestZeroStoreDoesNotPanic: a Store not made by New answers ErrNilClient.
func TestZeroStoreDoesNotPanic(t *testing.T) {
	var s Store
	_, err := s.Take(context.Background(), ratelimit.Policy{Limit: 1, Window: time.Second}, "k", time.Now(), 1)
	assert.ErrorIs(t, err, ErrNilClient)
}

// TestScriptCacheFlushed: after SCRIPT FLUSH (a restart, a failover to a
// replica that never saw the script) EVALSHA fails with NOSCRIPT and the
// store must load the script again, not fail over.
func TestScriptCacheFlushed(t *testing.T) {
	r := testenv.StartRedis(t)
	c := newClient(t, r.Addr)
	s := newStore(t, c, WithTimeout(5*time.Second))
	ctx := ctxT(t)
	p := ratelimit.Policy{Name: "flush", Limit: 10, Window: day}
	for i := 1; i <= 3; i++ {
		require.NoError(t, c.ScriptFlush(ctx).Err())
		w, err := s.Take(ctx, p, "k", time.Time{}, 1)
		require.NoError(t, err)
		assert.Equal(t, int64(i), w.Current, "take %d after SCRIPT FLUSH: Current", i)
	}
	assert.False(t, s.Degraded(), "Degraded after NOSCRIPT")
}

func TestCloseIsIdempotentAndUsesFallback(t *testing.T) {
	r := testenv.StartRedis(t)
	c := newClient(t, r.Addr)
	fb, err := ratelimit.NewMemoryStore()
	require.NoError(t, err)
	s, err := New(c, WithFallback(fb), WithTimeout(5*time.Second))
	require.NoError(t, err)
	ctx := ctxT(t)
	p := ratelimit.Policy{Name: "close", Limit: 10, Window: day}
	_, err = s.Take(ctx, p, "k", time.Now(), 1)
	require.NoError(t, err)
	require.NoError(t, s.Close())
	require.NoError(t, s.Close(), "second Close")

	w, err := s.Take(ctx, p, "k", time.Now(), 1)
	require.NoError(t, err)
	assert.Equal(t, int64(1), w.Current, "Current after Close: answered by the fresh fallback")
	got, err := c.HGet(ctx, s.redisKey(p.Name, "k"), "c").Result()
	require.NoError(t, err)
	assert.Equal(t, "1", got, "count in Redis after Close: the take after Close must not reach Redis")
}

func TestOptionsDefaults(t *testing.T) {
	fb, err := ratelimit.NewMemoryStore()
	require.NoError(t, err)
	tests := []struct {
		name string
		opts []Option
		want config
	}{
		{"defaults", nil, config{prefix: DefaultPrefix, timeout: DefaultTimeout, probeInterval: DefaultProbeInterval}},
		{"set", []Option{WithPrefix("app:"), WithTimeout(time.Second), WithProbeInterval(time.Minute), WithFallback(fb)},
			config{prefix: "app:", timeout: time.Second, probeInterval: time.Minute, fallback: fb}},
		{"empty prefix is allowed", []Option{WithPrefix("")}, config{prefix: "", timeout: DefaultTimeout, probeInterval: DefaultProbeInterval}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := New(redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"}), tt.opts...)
			require.NoError(t, err)
			defer s.Close()
			defer s.client.Close()
			assert.Equal(t, tt.want.prefix, s.cfg.prefix, "prefix")
			assert.Equal(t, tt.want.timeout, s.cfg.timeout, "timeout")
			assert.Equal(t, tt.want.probeInterval, s.cfg.probeInterval, "probe interval")
			if tt.want.fallback != nil {
				assert.Same(t, tt.want.fallback, s.cfg.fallback, "fallback")
			} else {
				assert.IsType(t, &ratelimit.MemoryStore{}, s.cfg.fallback, "default fallback")
			}
		})
	}
}

func TestGuardOnlyWhenTheClientIgnoresDeadlines(t *testing.T) {
	tests := []struct {
		name      string
		client    redis.UniversalClient
		wantGuard bool
	}{
		{"client default", redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"}), true},
		{"client with context timeouts", redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", ContextTimeoutEnabled: true}), false},
		{"cluster with context timeouts", redis.NewClusterClient(&redis.ClusterOptions{Addrs: []string{"127.0.0.1:1"}, ContextTimeoutEnabled: true}), false},
		{"cluster default", redis.NewClusterClient(&redis.ClusterOptions{Addrs: []string{"127.0.0.1:1"}}), true},
	}
	for _, tt := range tests {
		s, err := New(tt.client)
		require.NoError(t, err, tt.name)
		assert.Equal(t, tt.wantGuard, s.guard, "%s: guard", tt.name)
		s.Close()
		tt.client.Close()
	}
}

// errStore fails every take; it shows whether a Take reached the fallback.
type errStore struct{ err error }

func (e errStore) Take(context.Context, ratelimit.Policy, string, time.Time, int) (ratelimit.Window, error) {
	return ratelimit.Window{}, e.err
}

func (e errStore) TakeAll(context.Context, []ratelimit.Policy, string, time.Time, int, []ratelimit.Window) (bool, error) {
	return false, e.err
}

func (e errStore) Refund(context.Context, []ratelimit.Policy, string, int, []ratelimit.Window) error {
	return e.err
}

func (e errStore) Peek(context.Context, []ratelimit.Policy, string, time.Time, []ratelimit.Window) error {
	return e.err
}

func (e errStore) Reset(context.Context, []ratelimit.Policy, string) error { return e.err }

func TestCallerContextDoneIsNotAnOutage(t *testing.T) {
	r := testenv.StartRedis(t)
	c := newClient(t, r.Addr)
	s := newStore(t, c, WithFallback(errStore{errors.New("fallback reached")}))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := s.Take(ctx, ratelimit.Policy{Limit: 1, Window: time.Second}, "k", time.Now(), 1)
	require.ErrorIs(t, err, context.Canceled)
	assert.True(t, strings.HasPrefix(err.Error(), "redisstore: "), "error %q: want the package prefix", err)
	assert.False(t, s.Degraded(), "a cancelled caller must not switch the store to the fallback")
}

// TestConformance runs the suite every ratelimit.Store passes against
// real Redis, with a client that honours deadlines and one that does not
// (the goroutine guard).
func TestConformance(t *testing.T) {
	r := testenv.StartRedis(t)
	for _, guard := range []bool{false, true} {
		t.Run(fmt.Sprintf("guard=%v", guard), func(t *testing.T) {
			storetest.Run(t, func(t *testing.T) ratelimit.Store {
				c := newClient(t, r.Addr, func(o *redis.Options) { o.ContextTimeoutEnabled = !guard })
				require.NoError(t, c.FlushDB(ctxT(t)).Err())
				s := newStore(t, c, WithTimeout(5*time.Second))
				t.Cleanup(func() { assert.False(t, s.Degraded(), "Redis answered every call") })
				return s
			})
		})
	}
}
