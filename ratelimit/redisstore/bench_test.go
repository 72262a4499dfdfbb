package redisstore

import (
	"context"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/shipshape-go/shipshape/internal/testenv"
	"github.com/shipshape-go/shipshape/ratelimit"
)

// benchCallers is the number of goroutines taking at once.
const benchCallers = 64

// BenchmarkTake measures decisions per second and latency from one process
// against a loopback redis-server with 64 concurrent callers, for the
// store (one round trip, atomic) and for a naive two-round-trip store
// (MGET, then INCRBY+PEXPIRE; not atomic), in the same run:
//
//	go test -run '^$' -bench BenchmarkTake -benchtime 5s ./ratelimit/redisstore/
func BenchmarkTake(b *testing.B) {
	r := testenv.StartRedis(b)
	client := func(ctxTimeouts bool) *redis.Client {
		return newClient(b, r.Addr, func(o *redis.Options) {
			o.PoolSize = benchCallers
			o.ContextTimeoutEnabled = ctxTimeouts
		})
	}
	// A timeout far above loopback latency: a loaded machine must not
	// measure the fallback.
	const timeout = time.Second
	script := []string{"evalsha", "eval"}
	impls := []struct {
		name     string
		store    func() ratelimit.Store
		commands []string // sent by the store; commands run by scripts are left out
	}{
		{"script/client-with-context-timeouts", func() ratelimit.Store {
			return newStore(b, client(true), WithTimeout(timeout))
		}, script},
		{"script/client-default-guarded", func() ratelimit.Store {
			return newStore(b, client(false), WithTimeout(timeout))
		}, script},
		{"script/autopipeline", func() ratelimit.Store {
			ap, err := client(false).AutoPipeline()
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { ap.Close() })
			return newStore(b, ap, WithTimeout(timeout))
		}, script},
		{"naive-get-incr", func() ratelimit.Store {
			return &naiveStore{c: client(true), prefix: "naive:"}
		}, []string{"mget", "incrby", "pexpire"}},
	}
	for _, impl := range impls {
		b.Run(impl.name, func(b *testing.B) {
			s := impl.store()
			p := ratelimit.Policy{Name: "bench", Limit: 1 << 30, Window: time.Minute}
			var ids atomic.Int64
			var mu sync.Mutex
			var all []time.Duration
			var errs atomic.Int64
			admin := newClient(b, r.Addr)
			if err := admin.ConfigResetStat(context.Background()).Err(); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.SetParallelism((benchCallers + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0))
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				// 1024 keys per caller: many clients, as in production.
				id := ids.Add(1)
				keys := make([]string, 1024)
				for i := range keys {
					keys[i] = "203.0." + strconv.FormatInt(id, 10) + "." + strconv.Itoa(i)
				}
				lat := make([]time.Duration, 0, 1<<14)
				ctx := context.Background()
				for i := 0; pb.Next(); i++ {
					start := time.Now()
					if _, err := s.Take(ctx, p, keys[i%len(keys)], start, 1); err != nil {
						errs.Add(1)
					}
					lat = append(lat, time.Since(start))
				}
				mu.Lock()
				all = append(all, lat...)
				mu.Unlock()
			})
			b.StopTimer()
			if n := errs.Load(); n > 0 {
				b.Fatalf("%d take errors", n)
			}
			if st, ok := s.(*Store); ok && st.Degraded() {
				b.Fatal("the store fell back during the benchmark: the figures are not Redis's")
			}
			// Redis CPU per decision: what limits how many processes one
			// Redis can serve, and less sensitive to the load of this
			// machine than the rates.
			b.ReportMetric(redisCommandMicros(b, admin, impl.commands)/float64(b.N), "redis-µs/op")
			slices.Sort(all)
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "decisions/s")
			b.ReportMetric(float64(all[len(all)/2].Microseconds()), "p50-µs")
			b.ReportMetric(float64(all[len(all)*99/100].Microseconds()), "p99-µs")
		})
	}
}

// redisCommandMicros sums the server time of the named commands since the
// last CONFIG RESETSTAT, from INFO commandstats. Only the commands a store
// sends count: commandstats also lists those its scripts run, whose time is
// already in EVALSHA's.
func redisCommandMicros(b *testing.B, admin *redis.Client, commands []string) float64 {
	info, err := admin.Info(context.Background(), "commandstats").Result()
	if err != nil {
		b.Fatal(err)
	}
	var total float64
	for line := range strings.Lines(info) {
		name, stats, ok := strings.Cut(strings.TrimSpace(line), ":")
		if !ok || !slices.Contains(commands, strings.TrimPrefix(name, "cmdstat_")) {
			continue
		}
		for field := range strings.SplitSeq(stats, ",") {
			if v, ok := strings.CutPrefix(field, "usec="); ok {
				n, err := strconv.ParseFloat(v, 64)
				if err != nil {
					b.Fatalf("commandstats %q: %v", line, err)
				}
				total += n
			}
		}
	}
	return total
}

// naiveStore is the obvious implementation this package does not use: read
// both windows (one round trip), decide in Go, then increment and set the
// expiry (a second round trip). Between the two, other callers read the
// same counts, so it admits more than the limit under contention, and it
// uses each caller's clock.
type naiveStore struct {
	ratelimit.Store // nil: only Take is measured
	c               *redis.Client
	prefix          string
}

func (s *naiveStore) Take(ctx context.Context, p ratelimit.Policy, key string, now time.Time, n int) (ratelimit.Window, error) {
	idx := now.UnixNano() / int64(p.Window)
	elapsed := time.Duration(now.UnixNano() % int64(p.Window))
	kc := s.prefix + key + ":" + strconv.FormatInt(idx, 10)
	kp := s.prefix + key + ":" + strconv.FormatInt(idx-1, 10)
	vals, err := s.c.MGet(ctx, kp, kc).Result()
	if err != nil {
		return ratelimit.Window{}, err
	}
	prev, curr := naiveInt(vals[0]), naiveInt(vals[1])
	w := ratelimit.Window{Previous: prev, Current: curr, Elapsed: elapsed}
	if !p.Fits(prev, curr, elapsed, n) {
		return w, nil
	}
	pipe := s.c.Pipeline()
	incr := pipe.IncrBy(ctx, kc, int64(n))
	pipe.PExpire(ctx, kc, 2*p.Window)
	if _, err := pipe.Exec(ctx); err != nil {
		return ratelimit.Window{}, err
	}
	w.Allowed, w.Current = true, incr.Val()
	return w, nil
}

func naiveInt(v any) int64 {
	s, ok := v.(string)
	if !ok {
		return 0
	}
	n, _ := strconv.ParseInt(s, 10, 64)
	return n
}

// TestNaiveStoreOverAdmits shows why the store is one script: the same
// race as TestAtomicity on the two-round-trip store admits more than the
// limit. It logs rather than asserts the excess, which depends on timing.
func TestNaiveStoreOverAdmits(t *testing.T) {
	if testing.Short() {
		t.Skip("demonstration")
	}
	r := testenv.StartRedis(t)
	const limit = 500
	p := ratelimit.Policy{Name: "naive", Limit: limit, Window: day}
	var admitted atomic.Int64
	var wg sync.WaitGroup
	for i := 0; i < 4; i++ {
		s := &naiveStore{c: newClient(t, r.Addr), prefix: "naive:"}
		for g := 0; g < 8; g++ {
			wg.Go(func() {
				for j := 0; j < 4*limit/32+10; j++ {
					w, err := s.Take(context.Background(), p, "one-key", time.Now(), 1)
					if err == nil && w.Allowed {
						admitted.Add(1)
					}
				}
			})
		}
	}
	wg.Wait()
	t.Logf("naive GET+INCR store admitted %d for a limit of %d", admitted.Load(), limit)
	if admitted.Load() < limit {
		t.Errorf("naive store admitted %d, want at least the limit %d", admitted.Load(), limit)
	}
}
