//go:build unix

package shmtable

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os/exec"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/shipshape-go/shipshape/ratelimit"
)

// TestSameAsMemoryStore drives a shared table and a MemoryStore with the
// same random operations (takes of 1 to 3 under one or two policies,
// refunds, peeks, resets, a clock that moves forward by up to two windows,
// sometimes back by less than one and now and then back by several) and requires the same answers,
// field by field: the table keeps MemoryStore's semantics.
func TestSameAsMemoryStore(t *testing.T) {
	for seed := range uint64(50) {
		t.Run(strconv.FormatUint(seed, 10), func(t *testing.T) { compareWithMemory(t, seed, 3000) })
	}
}

// FuzzSameAsMemoryStore is TestSameAsMemoryStore from fuzzed seeds.
func FuzzSameAsMemoryStore(f *testing.F) {
	f.Add(uint64(1))
	f.Fuzz(func(t *testing.T, seed uint64) { compareWithMemory(t, seed, 500) })
}

func compareWithMemory(t *testing.T, seed uint64, ops int) {
	rng := rand.New(rand.NewPCG(seed, 99))
	ctx := context.Background()
	mem, err := ratelimit.NewMemoryStore()
	require.NoError(t, err)
	shared := testTable(t, 10_000).Store("")
	stores := []ratelimit.Store{mem, shared}
	pols := []ratelimit.Policy{
		{Name: "a", Limit: 5, Window: time.Second},
		{Name: "b", Limit: 12, Window: 3 * time.Second},
	}
	now := time.Unix(1_700_000_000, 0)
	type taken struct {
		key string
		ps  []ratelimit.Policy
		ws  []ratelimit.Window
		n   int
	}
	var history []taken
	for op := range ops {
		key := "k" + strconv.Itoa(rng.IntN(6))
		ps := pols[:1+rng.IntN(2)]
		if rng.IntN(4) == 0 {
			ps = pols[1:]
		}
		switch r := rng.IntN(20); {
		case r < 3:
			now = now.Add(time.Duration(rng.Int64N(int64(2 * time.Second))))
		case r == 3:
			now = now.Add(-time.Duration(rng.Int64N(int64(900 * time.Millisecond))))
		case r == 4 && rng.IntN(4) == 0:
			now = now.Add(-time.Duration(rng.Int64N(int64(10 * time.Second)))) // a clock stepped back
		case r < 12:
			n := 1 + rng.IntN(3)
			var got [2][]ratelimit.Window
			var ok [2]bool
			for i, s := range stores {
				got[i] = make([]ratelimit.Window, len(ps))
				if len(ps) == 1 && rng.IntN(2) == 0 {
					w, err := s.Take(ctx, ps[0], key, now, n)
					require.NoError(t, err)
					got[i][0], ok[i] = w, w.Allowed
				} else {
					ok[i], err = s.TakeAll(ctx, ps, key, now, n, got[i])
					require.NoError(t, err)
				}
			}
			require.Equal(t, ok[0], ok[1], "op %d: take %d of %s under %v at %v", op, n, key, ps, now)
			require.Equal(t, got[0], got[1], "op %d: take %d of %s under %v at %v", op, n, key, ps, now)
			if ok[0] {
				history = append(history, taken{key, ps, got[0], n})
			}
		case r < 15 && len(history) > 0:
			h := history[rng.IntN(len(history))]
			for _, s := range stores {
				require.NoError(t, s.Refund(ctx, h.ps, h.key, h.n, h.ws))
			}
		case r < 19:
			var got [2][]ratelimit.Window
			for i, s := range stores {
				got[i] = make([]ratelimit.Window, len(ps))
				require.NoError(t, s.Peek(ctx, ps, key, now, got[i]))
			}
			require.Equal(t, got[0], got[1], "op %d: peek of %s under %v at %v", op, key, ps, now)
		default:
			for _, s := range stores {
				require.NoError(t, s.Reset(ctx, ps, key))
			}
		}
	}
}

// TestConcurrentInsertsConverge: goroutines that insert the same new keys
// at once end up in one slot per key, and every take is counted.
func TestConcurrentInsertsConverge(t *testing.T) {
	tab := testTable(t, 20_000)
	p := ratelimit.Policy{Name: "a", Limit: 1000, Window: time.Hour}
	const workers, keys = 8, 2000
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			s := tab.Store("") // a Store per goroutine, as per process
			rng := rand.New(rand.NewPCG(uint64(w), 1))
			for _, i := range rng.Perm(keys) {
				_, err := s.Take(context.Background(), p, "key"+strconv.Itoa(i), time.Now(), 1)
				assert.NoError(t, err)
			}
		})
	}
	wg.Wait()
	st, err := tab.Check()
	require.NoError(t, err, "no key in two slots")
	assert.Equal(t, keys, st.Ready)
	assert.Equal(t, keys, st.Live, "the live counter")
	assert.Zero(t, st.Busy)
	ws := make([]ratelimit.Window, 1)
	for i := range keys {
		require.NoError(t, tab.Store("").Peek(context.Background(), []ratelimit.Policy{p}, "key"+strconv.Itoa(i), time.Now(), ws))
		require.EqualValues(t, workers, ws[0].Current+ws[0].Previous, "key%d", i)
	}
}

// TestExactUnderContention: goroutines taking one key admit exactly the
// limit, under one policy and under two.
func TestExactUnderContention(t *testing.T) {
	tests := []struct {
		name string
		ps   []ratelimit.Policy
	}{
		{"one policy", []ratelimit.Policy{{Name: "a", Limit: 777, Window: time.Hour}}},
		{"two policies", []ratelimit.Policy{{Name: "a", Limit: 2000, Window: time.Hour}, {Name: "b", Limit: 777, Window: 24 * time.Hour}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := testTable(t, 1000).Store("")
			var mu sync.Mutex
			admitted := 0
			var wg sync.WaitGroup
			for range 16 {
				wg.Go(func() {
					ws := make([]ratelimit.Window, len(tt.ps))
					for range 250 {
						ok, err := s.TakeAll(context.Background(), tt.ps, "hot", time.Now(), 1, ws)
						assert.NoError(t, err)
						if ok {
							mu.Lock()
							admitted++
							mu.Unlock()
						}
					}
				})
			}
			wg.Wait()
			assert.Equal(t, 777, admitted, "4,000 takes against a limit of 777")
		})
	}
}

// deadPid returns the pid of a process that has exited and been reaped.
func deadPid(t *testing.T) int {
	cmd := exec.Command("true")
	require.NoError(t, cmd.Run())
	return cmd.Process.Pid
}

// TestDeadClaim: a slot a dead process left BUSY (killed between its claim
// and its publication) is reclaimed by the next process that needs the
// key, and by ReclaimDead for a key nobody asks for; a BUSY slot of a live
// process that never finishes delays a take by a bounded time only.
func TestDeadClaim(t *testing.T) {
	f, tab, err := Create(1000)
	require.NoError(t, err)
	t.Cleanup(func() { tab.Close(); f.Close() })
	dead, err := Open(f) // the dead process's mapping
	require.NoError(t, err)
	t.Cleanup(func() { dead.Close() })
	dead.pid = uint64(deadPid(t))
	p := ratelimit.Policy{Name: "a", Limit: 10, Window: time.Hour}
	ctx := context.Background()

	require.NoError(t, dead.Store("").HoldClaim(p, "wanted"))
	require.NoError(t, dead.Store("").HoldClaim(p, "orphan"))
	st, err := tab.Check()
	require.NoError(t, err)
	require.Equal(t, 2, st.Busy)

	w, err := tab.Store("").Take(ctx, p, "wanted", time.Now(), 1)
	require.NoError(t, err)
	assert.True(t, w.Allowed)
	assert.EqualValues(t, 1, w.Current, "a new key: the dead claim counted nothing")
	st, err = tab.Check()
	require.NoError(t, err)
	assert.Equal(t, 1, st.Busy, "the dead claim on the wanted key was reclaimed")

	assert.Equal(t, 1, tab.ReclaimDead(int(dead.pid)), "the orphan")
	st, err = tab.Check()
	require.NoError(t, err)
	assert.Equal(t, Stats{Live: 1, Ready: 1, Tomb: st.Tomb}, st)

	// A live owner that never publishes (a stopped process): the take
	// waits busyWait, then passes the slot by.
	require.NoError(t, tab.Store("").HoldClaim(p, "stuck"))
	start := time.Now()
	w, err = tab.Store("").Take(ctx, p, "stuck", time.Now(), 1)
	require.NoError(t, err)
	assert.True(t, w.Allowed)
	assert.Less(t, time.Since(start), 20*busyWait, "liveness only")
}

// TestEvictionKeepsRefused: past the cap, a flood of new keys evicts new
// keys, never a key that is being refused; the table stays at its cap.
func TestEvictionKeepsRefused(t *testing.T) {
	tab := testTable(t, 1000)
	s := tab.Store("")
	p := ratelimit.Policy{Name: "a", Limit: 2, Window: time.Hour}
	ctx := context.Background()
	now := time.Now()
	for i := range 100 {
		for range 3 {
			_, err := s.Take(ctx, p, fmt.Sprintf("refused-%d", i), now, 1)
			require.NoError(t, err)
		}
	}
	for i := range 20_000 {
		_, err := s.Take(ctx, p, fmt.Sprintf("flood-%d", i), now, 1)
		require.NoError(t, err)
	}
	ws := make([]ratelimit.Window, 1)
	for i := range 100 {
		require.NoError(t, s.Peek(ctx, []ratelimit.Policy{p}, fmt.Sprintf("refused-%d", i), now, ws))
		assert.False(t, ws[0].Allowed, "refused-%d is still refused", i)
	}
	st, err := tab.Check()
	require.NoError(t, err)
	assert.LessOrEqual(t, st.Ready, 1000, "at most the cap")
	assert.Equal(t, st.Ready, st.Live)
}

// TestIncompatible: a table of another layout is refused, never used.
func TestIncompatible(t *testing.T) {
	f, tab, err := Create(100)
	require.NoError(t, err)
	defer f.Close()
	word(tab.mem, hVersion).Store(version + 1)
	tab.Close()
	_, err = Open(f)
	assert.ErrorIs(t, err, ErrIncompatible)
}

// TestEvictionAllRefused: in a table where every key is refused, a new key
// still gets a slot (a refused key goes), and the table stays at its cap.
func TestEvictionAllRefused(t *testing.T) {
	tab := testTable(t, 1000)
	s := tab.Store("")
	p := ratelimit.Policy{Name: "a", Limit: 1, Window: time.Hour}
	ctx := context.Background()
	now := time.Now()
	for i := range 1000 {
		for range 2 {
			_, err := s.Take(ctx, p, fmt.Sprintf("refused-%d", i), now, 1)
			require.NoError(t, err)
		}
	}
	for i := range 100 {
		w, err := s.Take(ctx, p, fmt.Sprintf("new-%d", i), now, 1)
		require.NoError(t, err)
		require.True(t, w.Allowed, "new-%d", i)
	}
	st, err := tab.Check()
	require.NoError(t, err)
	assert.LessOrEqual(t, st.Ready, 1000)
	assert.Equal(t, st.Ready, st.Live)
}

// TestReclaimDeadReadsOnlyUsedPages: the supervisor's scan for the claims
// of a dead worker does not make the kernel allocate the table.
func TestReclaimDeadReadsOnlyUsedPages(t *testing.T) {
	tab := testTable(t, ratelimit.DefaultMaxKeys)
	_, err := tab.Store("").Take(context.Background(), ratelimit.Policy{Name: "a", Limit: 1, Window: time.Hour}, "k", time.Now(), 1)
	require.NoError(t, err)
	tab.ReclaimDead(deadPid(t))
	area := tab.mem[headerSize+MaxPolicies*polSize:]
	vec := make([]byte, len(area)/4096+1)
	require.NoError(t, mincore(area, vec))
	resident := 0
	for _, v := range vec {
		resident += int(v & 1)
	}
	assert.Less(t, resident, 16, "pages of the slots in memory after a scan, of %d", len(vec))
}
