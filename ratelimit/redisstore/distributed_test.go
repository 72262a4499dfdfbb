package redisstore

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/shipshape-go/shipshape/internal/storetest"
	"github.com/shipshape-go/shipshape/internal/testenv"
	"github.com/shipshape-go/shipshape/ratelimit"
)

// hammer takes from one key from goroutines spread over the stores until
// each has tried perGoroutine times, and returns how many were admitted.
func hammer(t *testing.T, stores []*Store, goroutinesPerStore, perGoroutine int, p ratelimit.Policy, key string) int64 {
	t.Helper()
	ctx := ctxT(t)
	var admitted, errs atomic.Int64
	var wg sync.WaitGroup
	start := make(chan struct{})
	for _, s := range stores {
		for g := 0; g < goroutinesPerStore; g++ {
			wg.Go(func() {
				<-start
				for i := 0; i < perGoroutine; i++ {
					w, err := s.Take(ctx, p, key, time.Now(), 1)
					if err != nil {
						errs.Add(1)
						continue
					}
					if w.Allowed {
						admitted.Add(1)
					}
				}
			})
		}
	}
	close(start)
	wg.Wait()
	require.Zero(t, errs.Load(), "Take errors")
	for i, s := range stores {
		require.False(t, s.Degraded(), "store %d went to its fallback: the count is not Redis's", i)
	}
	return admitted.Load()
}

// TestAtomicity: 4 clients (as 4 processes would have) × 8 goroutines on
// one key admit exactly the limit.
func TestAtomicity(t *testing.T) {
	r := testenv.StartRedis(t)
	const limit = 500
	p := ratelimit.Policy{Name: "atomic", Limit: limit, Window: day}
	var stores []*Store
	for i := 0; i < 4; i++ {
		// A generous timeout: this test is about counting, and a slow
		// round trip on a loaded machine must not send takes to the
		// fallback.
		stores = append(stores, newStore(t, newClient(t, r.Addr), WithTimeout(10*time.Second)))
	}
	got := hammer(t, stores, 8, 4*limit/32+10, p, "one-key")
	assert.Equal(t, int64(limit), got, "admitted over 4 clients × 8 goroutines: got %d, want the limit %d", got, limit)
}

// TestAtomicityOnCluster runs the same race against a 3-node Redis
// Cluster through cluster clients; it also checks that keys of many
// clients spread over the masters.
func TestAtomicityOnCluster(t *testing.T) {
	cl := testenv.StartRedisCluster(t)
	const limit = 300
	p := ratelimit.Policy{Name: "cluster", Limit: limit, Window: day}
	var stores []*Store
	var clients []*redis.ClusterClient
	for i := 0; i < 4; i++ {
		c := redis.NewClusterClient(&redis.ClusterOptions{Addrs: cl.Addrs})
		t.Cleanup(func() { c.Close() })
		clients = append(clients, c)
		stores = append(stores, newStore(t, c, WithTimeout(10*time.Second)))
	}
	for _, key := range []string{"one-key", "{braces}in:key", "2001:db8::/64"} {
		got := hammer(t, stores, 8, 2*limit/32+10, p, key)
		assert.Equal(t, int64(limit), got, "key %q: admitted on the cluster: got %d, want %d", key, got, limit)
	}

	// 30 distinct clients: their keys must not all share a slot.
	ctx := ctxT(t)
	slots := map[int64]bool{}
	for i := 0; i < 30; i++ {
		k := fmt.Sprintf("198.51.100.%d", i)
		_, err := stores[0].Take(ctx, p, k, time.Now(), 1)
		require.NoError(t, err)
		slot, err := clients[0].ClusterKeySlot(ctx, stores[0].redisKey(p.Name, k)).Result()
		require.NoError(t, err)
		slots[slot] = true
	}
	assert.Greater(t, len(slots), 20, "distinct slots for 30 client keys")
}

const (
	childEnv = "REDISSTORE_CHILD" // "addr key limit attempts"
)

// TestCrossProcess runs two copies of this test binary as OS processes on
// one Redis key; together they admit exactly the limit.
func TestCrossProcess(t *testing.T) {
	if testing.Short() {
		t.Skip("starts two processes")
	}
	r := testenv.StartRedis(t)
	c := newClient(t, r.Addr)
	ctx := ctxT(t)
	const limit, attempts = 400, 600 // per process: together 1200 tries
	key := fmt.Sprintf("xproc-%d", time.Now().UnixNano())

	var outs [2]bytes.Buffer
	var cmds [2]*exec.Cmd
	for i := range cmds {
		cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestCrossProcessChild$", "-test.count=1", "-test.v")
		cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%s %s %d %d", childEnv, r.Addr, key, limit, attempts))
		cmd.Stdout, cmd.Stderr = &outs[i], &outs[i]
		require.NoError(t, cmd.Start())
		cmds[i] = cmd
	}
	// Both children announce themselves, then wait for the start signal,
	// so that their takes really interleave.
	require.Eventually(t, func() bool {
		n, err := c.Get(ctx, key+":ready").Int()
		return err == nil && n == 2
	}, 20*time.Second, 10*time.Millisecond, "children ready")
	require.NoError(t, c.RPush(ctx, key+":go", 1, 1).Err())

	var total int64
	for i, cmd := range cmds {
		err := cmd.Wait()
		require.NoError(t, err, "child %d:\n%s", i, outs[i].String())
		n := parseAdmitted(t, outs[i].String())
		assert.Positive(t, n, "child %d admitted nothing: the processes did not overlap", i)
		total += n
	}
	assert.Equal(t, int64(limit), total, "admitted by two processes together: got %d, want the limit %d", total, limit)
}

func parseAdmitted(t *testing.T, out string) int64 {
	t.Helper()
	for line := range strings.Lines(out) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "admitted="); ok {
			n, err := strconv.ParseInt(v, 10, 64)
			require.NoError(t, err, "admitted line %q", line)
			return n
		}
	}
	t.Fatalf("no admitted= line in child output:\n%s", out)
	return 0
}

// TestCrossProcessChild is the child side of TestCrossProcess; it does
// nothing unless started by it.
func TestCrossProcessChild(t *testing.T) {
	spec := os.Getenv(childEnv)
	if spec == "" {
		t.Skip("child of TestCrossProcess only")
	}
	var addr, key string
	var limit, attempts int
	_, err := fmt.Sscanf(spec, "%s %s %d %d", &addr, &key, &limit, &attempts)
	require.NoError(t, err, "%s=%q", childEnv, spec)
	c := redis.NewClient(&redis.Options{Addr: addr})
	defer c.Close()
	s, err := New(c, WithTimeout(10*time.Second))
	require.NoError(t, err)
	defer s.Close()
	ctx := context.Background()

	require.NoError(t, c.Incr(ctx, key+":ready").Err())
	require.NoError(t, c.BLPop(ctx, 20*time.Second, key+":go").Err())

	p := ratelimit.Policy{Name: "xproc", Limit: limit, Window: day}
	var admitted atomic.Int64
	var wg sync.WaitGroup
	const workers = 8
	for g := 0; g < workers; g++ {
		wg.Go(func() {
			for i := 0; i < attempts/workers; i++ {
				w, err := s.Take(ctx, p, key, time.Now(), 1)
				if assert.NoError(t, err) && w.Allowed {
					admitted.Add(1)
				}
			}
		})
	}
	wg.Wait()
	require.False(t, s.Degraded(), "child used its fallback")
	fmt.Printf("admitted=%d\n", admitted.Load())
}

// TestConformanceOnCluster runs the Store suite on a 3-node Redis Cluster:
// a take, refund, peek or reset under several policies is one script or
// command on the one slot of the client's hash tag (a CROSSSLOT error
// would send it to the fallback, which the suite's cleanup catches).
func TestConformanceOnCluster(t *testing.T) {
	cl := testenv.StartRedisCluster(t)
	storetest.Run(t, func(t *testing.T) ratelimit.Store {
		c := redis.NewClusterClient(&redis.ClusterOptions{Addrs: cl.Addrs})
		t.Cleanup(func() { c.Close() })
		require.NoError(t, c.ForEachMaster(ctxT(t), func(ctx context.Context, m *redis.Client) error {
			return m.FlushDB(ctx).Err()
		}))
		s := newStore(t, c, WithTimeout(10*time.Second))
		t.Cleanup(func() { assert.False(t, s.Degraded(), "Redis Cluster answered every call") })
		return s
	})
}
