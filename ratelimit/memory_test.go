package ratelimit

import (
	"context"
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC) // a window boundary for every window that divides a day

// newMemoryStore is NewMemoryStore for options that must be valid.
func newMemoryStore(t testing.TB, opts ...MemoryOption) *MemoryStore {
	t.Helper()
	s, err := NewMemoryStore(opts...)
	require.NoError(t, err)
	return s
}

func TestNewMemoryStoreRejectsBadConfig(t *testing.T) {
	tests := []struct {
		name string
		opts []MemoryOption
		want string
	}{
		{"nil option", []MemoryOption{WithMaxKeys(10), nil}, "ratelimit: NewMemoryStore: nil option"},
		{"zero max keys", []MemoryOption{WithMaxKeys(0)}, "ratelimit: WithMaxKeys: 0 keys, want > 0"},
		{"negative max keys", []MemoryOption{WithMaxKeys(-5)}, "ratelimit: WithMaxKeys: -5 keys, want > 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := NewMemoryStore(tt.opts...)
			assert.EqualError(t, err, tt.want)
			assert.Nil(t, s)
		})
	}
	s, err := NewMemoryStore(WithMaxKeys(1))
	require.NoError(t, err, "the smallest cap")
	for i := range 3 {
		take(t, s, Policy{Name: "p", Limit: 1, Window: time.Minute}, strconv.Itoa(i), t0)
	}
	assert.Equal(t, 1, s.Len(), "keys tracked under a cap of 1")
}

func take(t *testing.T, s Store, p Policy, key string, now time.Time) Window {
	t.Helper()
	w, err := s.Take(context.Background(), p, key, now, 1)
	require.NoError(t, err)
	return w
}

// TestSlidingWindowAccuracy drives a store with random arrivals at three
// times the limit and checks every trailing window against the bound of
// the sliding-window counter: a window ending at t, e into its fixed
// window, holds at most limit + prev·e/W admitted requests (prev being the
// previous fixed window's count), never more than limit in one fixed window,
// and under steady overload about limit per window (no starvation).
func TestSlidingWindowAccuracy(t *testing.T) {
	for _, limit := range []int{1, 10, 1000} {
		for _, window := range []time.Duration{time.Second, time.Minute} {
			t.Run(fmt.Sprintf("limit=%d/window=%v", limit, window), func(t *testing.T) {
				s := newMemoryStore(t)
				p := Policy{Name: "t", Limit: limit, Window: window}
				const windows = 20
				rng := rand.New(rand.NewPCG(uint64(limit), uint64(window)))
				arrivals := make([]time.Duration, 3*limit*windows)
				for i := range arrivals {
					arrivals[i] = time.Duration(rng.Int64N(int64(windows) * int64(window)))
				}
				slices.Sort(arrivals)

				var admitted []time.Duration
				perWindow := map[int64]int{}
				for _, at := range arrivals {
					if take(t, s, p, "k", t0.Add(at)).Allowed {
						admitted = append(admitted, at)
						perWindow[int64(at/window)]++
					}
				}
				for k, n := range perWindow {
					require.LessOrEqual(t, n, limit, "fixed window %d admitted %d > limit", k, n)
				}
				lo := 0
				for hi, at := range admitted {
					for admitted[lo] <= at-window {
						lo++
					}
					inTrailing := hi - lo + 1
					idx := int64(at / window)
					e := at - time.Duration(idx)*window
					bound := float64(limit) + float64(perWindow[idx-1])*float64(e)/float64(window)
					require.LessOrEqual(t, float64(inTrailing), bound+1e-9,
						"trailing window ending at %v holds %d, bound %.2f", at, inTrailing, bound)
					require.LessOrEqual(t, inTrailing, 2*limit)
				}
				// Steady overload admits close to the limit: the estimate
				// only reaches zero at a window's end, so a window after a
				// full one admits limit−1 — and a limit of 1 admits one
				// request every other window.
				total := len(admitted)
				want := float64(windows * (limit - 1))
				if limit == 1 {
					want = windows / 2
				}
				assert.GreaterOrEqual(t, float64(total), want*0.9-1,
					"admitted %d over %d windows of limit %d", total, windows, limit)
				assert.LessOrEqual(t, total, windows*limit)
			})
		}
	}
}

func TestMemoryStoreWindowRolls(t *testing.T) {
	s := newMemoryStore(t)
	p := Policy{Name: "t", Limit: 10, Window: time.Minute}
	for i := range 10 {
		w := take(t, s, p, "k", t0.Add(time.Duration(i)*time.Second))
		require.True(t, w.Allowed, "request %d", i+1)
	}
	w := take(t, s, p, "k", t0.Add(30*time.Second))
	assert.False(t, w.Allowed, "11th in the window is refused")
	idx := t0.Unix() / 60 // t0 is a minute boundary
	assert.Equal(t, Window{Previous: 0, Current: 10, Elapsed: 30 * time.Second, Index: idx}, w)

	// 75% into the next window, 25% of the previous 10 still counts: 2.5,
	// so 7 more fit.
	at := t0.Add(time.Minute + 45*time.Second)
	for i := range 7 {
		w = take(t, s, p, "k", at)
		require.True(t, w.Allowed, "request %d in the next window", i+1)
	}
	w = take(t, s, p, "k", at)
	assert.False(t, w.Allowed)
	assert.Equal(t, Window{Previous: 10, Current: 7, Elapsed: 45 * time.Second, Index: idx + 1}, w)

	// Two windows later everything has left the trailing window.
	w = take(t, s, p, "k", t0.Add(3*time.Minute))
	assert.Equal(t, Window{Allowed: true, Previous: 0, Current: 1, Index: idx + 3}, w)
}

func TestMemoryStoreRefusedNotCounted(t *testing.T) {
	s := newMemoryStore(t)
	p := Policy{Name: "t", Limit: 10, Window: time.Minute}
	admitted := 0
	for range 110 { // 10 admitted, 100 refused
		if take(t, s, p, "k", t0.Add(10*time.Second)).Allowed {
			admitted++
		}
	}
	require.Equal(t, 10, admitted)
	// Half-way through the next window the previous 10 weigh 5: 5 fit. Had
	// the 100 refusals counted, none would.
	admitted = 0
	for range 20 {
		if take(t, s, p, "k", t0.Add(90*time.Second)).Allowed {
			admitted++
		}
	}
	assert.Equal(t, 5, admitted)
}

func TestMemoryStoreTakeN(t *testing.T) {
	s := newMemoryStore(t)
	p := Policy{Name: "t", Limit: 10, Window: time.Minute}
	w, err := s.Take(context.Background(), p, "k", t0, 7)
	require.NoError(t, err)
	assert.True(t, w.Allowed)
	w, err = s.Take(context.Background(), p, "k", t0, 4)
	require.NoError(t, err)
	assert.False(t, w.Allowed, "7+4 > 10")
	assert.EqualValues(t, 7, w.Current, "a refused take of 4 is not counted")
	w, err = s.Take(context.Background(), p, "k", t0, 3)
	require.NoError(t, err)
	assert.True(t, w.Allowed)
}

// TestMemoryStoreClockGoingBack: a time up to two windows before the key's
// window is counted in the key's window, at its start, not in a rewritten
// past; a key window further ahead than that is stale (a clock that jumped
// ahead and came back) and starts over, rather than refusing the client
// until the clock catches up.
func TestMemoryStoreClockGoingBack(t *testing.T) {
	tests := []struct {
		name  string
		ahead time.Duration // of the first take, relative to the second
		want  Window        // of the second take, at t0 (Index: windows after t0's)
	}{
		{"one window back", time.Minute, Window{Allowed: true, Current: 2, Index: 1}},
		{"two windows back", 2 * time.Minute, Window{Allowed: true, Current: 2, Index: 2}},
		{"three windows back: stale", 3 * time.Minute, Window{Allowed: true, Current: 1}},
		{"a day back: stale", 24 * time.Hour, Window{Allowed: true, Current: 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newMemoryStore(t)
			p := Policy{Name: "t", Limit: 2, Window: time.Minute}
			take(t, s, p, "k", t0.Add(tt.ahead+10*time.Second))
			want := tt.want
			want.Index += t0.Unix() / 60 // the key's own window, counted in
			assert.Equal(t, want, take(t, s, p, "k", t0))
			if tt.want.Current == 2 {
				assert.False(t, take(t, s, p, "k", t0).Allowed, "the limit holds in the key's window")
			}
		})
	}
}

func TestMemoryStorePolicyNamesAndWindowsAreSeparate(t *testing.T) {
	s := newMemoryStore(t)
	a := Policy{Name: "a", Limit: 1, Window: time.Minute}
	b := Policy{Name: "b", Limit: 1, Window: time.Minute}
	assert.True(t, take(t, s, a, "k", t0).Allowed)
	assert.True(t, take(t, s, b, "k", t0).Allowed, "same key, other policy name")
	assert.False(t, take(t, s, a, "k", t0).Allowed)
	// Same name with another window: counts are not comparable, start over.
	a2 := Policy{Name: "a", Limit: 1, Window: time.Hour}
	assert.True(t, take(t, s, a2, "k", t0).Allowed)
}

func TestMemoryStoreInvalidPolicy(t *testing.T) {
	s := newMemoryStore(t)
	for _, p := range []Policy{{Limit: 0, Window: time.Second}, {Limit: 1, Window: 0}, {Limit: -1, Window: -1}} {
		_, err := s.Take(context.Background(), p, "k", t0, 1)
		assert.ErrorIs(t, err, ErrInvalidPolicy, "%+v", p)
	}
}

// TestMemoryStoreHashCollision forces two keys onto one hash: they must
// keep separate counts.
func TestMemoryStoreHashCollision(t *testing.T) {
	s := newMemoryStore(t)
	p := Policy{Name: "t", Limit: 1, Window: time.Minute}
	const h = 42 << 32
	pol, err := s.policyID(p)
	require.NoError(t, err)
	assert.True(t, s.take(p, pol, "alice", false, h, t0, 1).Allowed)
	assert.True(t, s.take(p, pol, "mallory", false, h, t0, 1).Allowed, "a colliding key must not share alice's count")
	assert.True(t, s.take(p, pol, "eve", false, h, t0, 1).Allowed)
	assert.False(t, s.take(p, pol, "alice", false, h, t0, 1).Allowed)
	assert.False(t, s.take(p, pol, "mallory", false, h, t0, 1).Allowed)
	assert.False(t, s.take(p, pol, "eve", false, h, t0, 1).Allowed)
	assert.Equal(t, 3, s.Len())
	// A digest is never the same key as a verbatim key of the same bytes.
	assert.True(t, s.take(p, pol, "alice", true, h, t0, 1).Allowed)
	// Deleting from the middle of a probe run keeps the others reachable.
	sh := &s.shards[h&s.mask]
	i, found := sh.find(h, pol, "mallory", false)
	require.True(t, found)
	sh.mu.Lock()
	sh.deleteAt(i)
	sh.mu.Unlock()
	assert.False(t, s.take(p, pol, "alice", false, h, t0, 1).Allowed, "alice still counted")
	assert.False(t, s.take(p, pol, "eve", false, h, t0, 1).Allowed, "eve still counted")
	assert.True(t, s.take(p, pol, "mallory", false, h, t0, 1).Allowed, "mallory was removed")
}

func TestMemoryStoreLongKeys(t *testing.T) {
	s := newMemoryStore(t)
	p := Policy{Name: "t", Limit: 1, Window: time.Minute}
	a := strings.Repeat("x", 10<<10) + "a"
	b := strings.Repeat("x", 10<<10) + "b"
	assert.True(t, take(t, s, p, a, t0).Allowed)
	assert.True(t, take(t, s, p, b, t0).Allowed, "long keys differing in their last byte are different clients")
	assert.False(t, take(t, s, p, a, t0).Allowed)
	assert.Equal(t, 2, s.Len())
}

func TestMemoryStoreCapEvictsStaleFirst(t *testing.T) {
	s := newMemoryStore(t, WithMaxKeys(64)) // one shard of 64
	require.Len(t, s.shards, 1)
	p := Policy{Name: "t", Limit: 5, Window: time.Minute}
	for i := range 64 {
		take(t, s, p, "old"+strconv.Itoa(i), t0)
	}
	require.Equal(t, 64, s.Len())
	// Three minutes later all 64 have expired: a new key sweeps them all.
	take(t, s, p, "new", t0.Add(3*time.Minute))
	assert.Equal(t, 1, s.Len())
}

func TestMemoryStoreCapKeepsActiveClients(t *testing.T) {
	s := newMemoryStore(t, WithMaxKeys(64))
	p := Policy{Name: "t", Limit: 5, Window: time.Minute}
	now := t0
	for range 5 {
		take(t, s, p, "abuser", now)
	}
	require.False(t, take(t, s, p, "abuser", now).Allowed)
	// A flood of distinct keys, while the abuser keeps sending; each new key
	// arrives in a later window than the last, so the abuser is always among
	// the most recently active.
	for i := range 10_000 {
		now = now.Add(time.Second)
		take(t, s, p, "flood"+strconv.Itoa(i), now)
		require.LessOrEqual(t, s.Len(), 64, "cap respected")
		if i%50 == 0 {
			take(t, s, p, "abuser", now)
		}
	}
	// The abuser's entry survived: its count is not reset to zero.
	w := take(t, s, p, "abuser", now)
	assert.Positive(t, w.Previous+w.Current, "the active abuser's counter was evicted")
}

// TestMemoryStoreKeyFloodKeepsRefusedKeys: abusers at or over their limit
// stay refused however many fresh keys flood the store in the same window
// (where every key's windows end at the same time, so expiry cannot tell
// them apart), at small and large caps and the default one.
func TestMemoryStoreKeyFloodKeepsRefusedKeys(t *testing.T) {
	tests := []struct {
		name    string
		maxKeys int // 0: the default
		flood   int
	}{
		{"one shard", 64, 5 * 64},
		{"many shards", 10_000, 5 * 10_000},
		{"default cap", 0, 1_400_000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.maxKeys == 0 && testing.Short() {
				t.Skip("1,400,000 keys")
			}
			var opts []MemoryOption
			if tt.maxKeys > 0 {
				opts = append(opts, WithMaxKeys(tt.maxKeys))
			}
			s := newMemoryStore(t, opts...)
			maxKeys := tt.maxKeys
			if maxKeys == 0 {
				maxKeys = DefaultMaxKeys
			}
			p := Policy{Name: "login", Limit: 5, Window: 15 * time.Minute}
			now := t0.Add(time.Minute)
			// Half the abusers stopped at the limit, half went on and were
			// refused: both are refused on their next request.
			const abusers = 16
			for a := range abusers {
				key := "abuser" + strconv.Itoa(a)
				for range p.Limit {
					require.True(t, take(t, s, p, key, now).Allowed)
				}
				if a%2 == 1 {
					require.False(t, take(t, s, p, key, now).Allowed)
				}
			}
			ctx := context.Background()
			buf := make([]byte, 0, 32)
			for i := range tt.flood {
				buf = strconv.AppendInt(append(buf[:0], "flood"...), int64(i), 10)
				// Not testify: 1.4 M calls of it would dominate the run.
				if w, err := s.Take(ctx, p, string(buf), now.Add(time.Duration(i)), 1); err != nil || !w.Allowed {
					t.Fatalf("flood key %d: %+v, %v: want allowed", i, w, err)
				}
			}
			assert.LessOrEqual(t, s.Len(), maxKeys, "cap respected")
			for a := range abusers {
				w := take(t, s, p, "abuser"+strconv.Itoa(a), now.Add(time.Duration(tt.flood)))
				assert.False(t, w.Allowed, "abuser %d got a fresh quota after %d flood keys (window %+v)", a, tt.flood, w)
			}
		})
	}
}

// TestMemoryStoreEvictionNeverPrefersRefusedKeys fills one shard with
// refused keys but one: however the sample falls, every new key evicts the
// one key that is not refused, never a refused one. A shard of nothing but
// refused keys still takes a new key (the cap holds; one refused key goes).
func TestMemoryStoreEvictionNeverPrefersRefusedKeys(t *testing.T) {
	s := newMemoryStore(t, WithMaxKeys(64))
	require.Len(t, s.shards, 1)
	p := Policy{Name: "t", Limit: 2, Window: time.Minute}
	for i := range 63 {
		k := "refused" + strconv.Itoa(i)
		take(t, s, p, k, t0)
		take(t, s, p, k, t0)
		require.False(t, take(t, s, p, k, t0).Allowed)
	}
	for i := range 500 {
		require.True(t, take(t, s, p, "fresh"+strconv.Itoa(i), t0).Allowed)
		require.Equal(t, 64, s.Len())
	}
	for i := range 63 {
		assert.False(t, take(t, s, p, "refused"+strconv.Itoa(i), t0).Allowed, "refused key %d was evicted", i)
	}

	// Now every key of the shard is refused: a new key evicts one of them.
	take(t, s, p, "fresh499", t0)
	require.False(t, take(t, s, p, "fresh499", t0).Allowed)
	assert.True(t, take(t, s, p, "newcomer", t0).Allowed)
	assert.Equal(t, 64, s.Len(), "cap respected")
}

// TestMemoryStoreBoundedUnderKeyFlood sends 2,000,000 distinct keys through
// a store with the default cap and measures the heap.
func TestMemoryStoreBoundedUnderKeyFlood(t *testing.T) {
	if testing.Short() {
		t.Skip("2,000,000 keys")
	}
	s := newMemoryStore(t)
	p := Policy{Name: "t", Limit: 100, Window: time.Hour}
	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	var wg sync.WaitGroup
	var n atomic.Int64
	const total = 2_000_000
	for g := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx := context.Background()
			buf := make([]byte, 0, 32)
			for i := g; i < total; i += 2 {
				buf = strconv.AppendInt(append(buf[:0], "10.0."...), int64(i), 10)
				if _, err := s.Take(ctx, p, string(buf), t0, 1); err == nil {
					n.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	require.EqualValues(t, total, n.Load())
	assert.LessOrEqual(t, s.Len(), DefaultMaxKeys, "keys tracked")
	assert.GreaterOrEqual(t, s.Len(), DefaultMaxKeys*9/10, "the cap is used, not undershot")
	var after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&after)
	growth := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	t.Logf("heap growth for %d keys tracked after %d distinct keys: %d MiB (%d B/key)",
		s.Len(), total, growth>>20, growth/int64(s.Len()))
	assert.Less(t, growth, int64(300<<20), "heap must stay bounded by the cap")
	runtime.KeepAlive(s)
}

// TestMemoryStoreProbeRunsSurviveDeletes fills one shard's table, deletes
// random keys the way eviction does, and checks that every remaining key is
// still found from its home slot (the backward shift kept the probe runs
// intact) and every deleted one is gone.
func TestMemoryStoreProbeRunsSurviveDeletes(t *testing.T) {
	s := newMemoryStore(t, WithMaxKeys(4096)) // 64 shards of 64 keys
	p := Policy{Name: "t", Limit: 5, Window: time.Minute}
	pol, err := s.policyID(p)
	require.NoError(t, err)
	rng := rand.New(rand.NewPCG(1, 2))
	sh := &s.shards[0]
	var keys []string
	hashes := map[string]uint64{}
	for i := range 48 { // 3/4 of the largest table: long probe runs
		k := "k" + strconv.Itoa(i)
		// Few distinct home slots, so that runs overlap and wrap around.
		h := uint64(rng.IntN(4)+60)<<32 | uint64(i+1)<<8
		h &^= s.mask // shard 0
		hashes[k] = h
		keys = append(keys, k)
		require.True(t, s.take(p, pol, k, false, h, t0, 1).Allowed)
	}
	require.Equal(t, 48, sh.n)
	deleted := map[string]bool{}
	for _, k := range keys {
		if rng.IntN(2) == 0 {
			i, found := sh.find(hashes[k], pol, k, false)
			require.True(t, found, k)
			sh.deleteAt(i)
			deleted[k] = true
		}
	}
	occupied := 0
	for i := range sh.slots {
		if sh.slots[i].hash != 0 {
			occupied++
		}
	}
	assert.Equal(t, 48-len(deleted), sh.n)
	assert.Equal(t, sh.n, occupied)
	for _, k := range keys {
		_, found := sh.find(hashes[k], pol, k, false)
		assert.Equal(t, !deleted[k], found, "key %s (deleted %v)", k, deleted[k])
	}
}

func TestMemoryStoreTableGrowsToTheCap(t *testing.T) {
	s := newMemoryStore(t, WithMaxKeys(64))
	p := Policy{Name: "t", Limit: 5, Window: time.Minute}
	for i := range 1000 {
		take(t, s, p, "k"+strconv.Itoa(i), t0.Add(time.Duration(i)*time.Millisecond))
		require.LessOrEqual(t, s.Len(), 64)
	}
	assert.Equal(t, 64, s.Len())
	assert.Len(t, s.shards[0].slots, 128, "the table stops growing at the cap, load ≤ 3/4")
}

// TestMemoryStoreLayout: a slot is one cache line, and shards do not share
// cache lines (false sharing between cores made parallel takes slower than
// serial ones).
func TestMemoryStoreLayout(t *testing.T) {
	assert.EqualValues(t, 64, unsafe.Sizeof(slot{}))
	assert.EqualValues(t, 64, unsafe.Sizeof(memShard{}))
}

// TestMemoryStorePolicyIDs: a store shared by several policies (a limiter
// and a slowdown) numbers each once and finds them without allocating,
// whichever was used last; past eight, through the map.
func TestMemoryStorePolicyIDs(t *testing.T) {
	s := newMemoryStore(t)
	var ps []Policy
	for i := range 12 {
		ps = append(ps, Policy{Name: "p" + strconv.Itoa(i%6), Limit: 1, Window: time.Duration(1+i/6) * time.Minute})
	}
	for round := range 2 {
		for i, p := range ps {
			id, err := s.policyID(p)
			require.NoError(t, err)
			assert.EqualValues(t, i, id, "round %d: policy %+v", round, p)
		}
	}
	small := newMemoryStore(t)
	a := Policy{Name: "api", Limit: 10, Window: time.Minute}
	b := Policy{Name: "slowdown", Limit: 1 << 30, Window: time.Minute}
	allocs := testing.AllocsPerRun(100, func() {
		_, _ = small.Take(context.Background(), a, "192.0.2.1", t0, 1)
		_, _ = small.Take(context.Background(), b, "192.0.2.1", t0, 1)
	})
	assert.Zero(t, allocs, "alternating policies allocate nothing")
	long := strings.Repeat("k", 100) // an API key from KeyByHeader, say
	_, _ = small.Take(context.Background(), a, long, t0, 1)
	allocs = testing.AllocsPerRun(100, func() { _, _ = small.Take(context.Background(), a, long, t0, 1) })
	assert.Zero(t, allocs, "a key stored as its digest allocates nothing either")
}

// TestFitsSplit: the take's split of Policy.Fits (slidOut, fits) decides
// every case as Fits does, at the boundaries where float rounding could
// tell them apart.
func TestFitsSplit(t *testing.T) {
	windows := []time.Duration{time.Nanosecond, 3 * time.Nanosecond, time.Second, time.Minute, 7 * time.Hour}
	counts := []int64{0, 1, 2, 3, 7, 99, 100, 101, 1<<31 - 2, 1<<32 - 1}
	limits := []int{1, 2, 3, 100, 101, 1 << 30, MaxLimit}
	for _, w := range windows {
		for _, limit := range limits {
			p := Policy{Name: "p", Limit: limit, Window: w}
			for _, elapsed := range []time.Duration{0, 1, w / 3, w / 2, w - 1} {
				for _, prev := range counts {
					for _, cur := range counts {
						for _, n := range []int{1, 2, limit} {
							want := p.Fits(prev, cur, elapsed, n)
							if got := fits(p, slidOut(p, prev, elapsed), cur, n); got != want {
								t.Fatalf("%v: prev %d cur %d elapsed %v n %d: split %v, Fits %v", p, prev, cur, elapsed, n, got, want)
							}
						}
					}
				}
			}
		}
	}
}
