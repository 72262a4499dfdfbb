package redisstore

import (
	"context"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/shipshape-go/shipshape/internal/testenv"
	"github.com/shipshape-go/shipshape/ratelimit"
)

// clientModes: the store calls a client that honours context deadlines
// directly, and guards one that does not with a goroutine; both must stay
// within the timeout.
var clientModes = []struct {
	name string
	mod  func(*redis.Options)
}{
	{"client ignores context deadlines", func(*redis.Options) {}},
	{"client honours context deadlines", func(o *redis.Options) { o.ContextTimeoutEnabled = true }},
}

// slack is what the fault tests allow above the timeout for scheduling on
// a loaded 2-core machine under -race. What they catch is much larger:
// without the store's own timeout a take waits for go-redis's read timeout
// and retries, seconds.
const slack = 250 * time.Millisecond

// timedStore records how long each Take of the store underneath took.
type timedStore struct {
	*Store
	mu   sync.Mutex
	took []time.Duration
}

func (s *timedStore) Take(ctx context.Context, p ratelimit.Policy, key string, now time.Time, n int) (ratelimit.Window, error) {
	start := time.Now()
	w, err := s.Store.Take(ctx, p, key, now, n)
	d := time.Since(start)
	s.mu.Lock()
	s.took = append(s.took, d)
	s.mu.Unlock()
	return w, err
}

// reset returns the durations recorded so far and starts over.
func (s *timedStore) reset() []time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	took := s.took
	s.took = nil
	return took
}

// TestFaultKillAndRestart serves HTTP through a Limiter on the store, from
// 8 clients without pause, while redis-server is killed and restarted: no
// error and no 5xx at any point, the outage and the recovery are each
// logged once, decisions come from the fallback during the outage and from
// Redis after it, and no take waits longer than the timeout.
func TestFaultKillAndRestart(t *testing.T) {
	for _, mode := range clientModes {
		t.Run(mode.name, func(t *testing.T) {
			r := testenv.StartRedis(t)
			c := newClient(t, r.Addr, mode.mod)
			logger, logs := newLogger()
			fallback, err := ratelimit.NewMemoryStore()
			require.NoError(t, err)
			const timeout = 250 * time.Millisecond // a healthy take under -race on a loaded machine must not reach it
			s := newStore(t, c, WithTimeout(timeout), WithFallback(fallback),
				WithLogger(logger), WithProbeInterval(20*time.Millisecond))
			timed := &timedStore{Store: s}
			lim, err := ratelimit.New(100000, day, ratelimit.WithStore(timed), ratelimit.WithName("fault"),
				ratelimit.WithFailOpen(false)) // a store error would show as a 5xx
			require.NoError(t, err)
			srv := httptest.NewServer(lim.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(http.StatusNoContent)
			})))
			t.Cleanup(srv.Close)

			// Eight clients send requests without pause through the whole
			// test, across the kill and the restart.
			var served atomic.Int64
			stop := make(chan struct{})
			var wg sync.WaitGroup
			for g := 0; g < 8; g++ {
				wg.Go(func() {
					for {
						select {
						case <-stop:
							return
						default:
						}
						resp, err := srv.Client().Get(srv.URL)
						if !assert.NoError(t, err, "GET") {
							return
						}
						resp.Body.Close()
						assert.Equal(t, http.StatusNoContent, resp.StatusCode, "status")
						served.Add(1)
					}
				})
			}
			stopped := false
			stopTraffic := func() {
				if !stopped {
					stopped = true
					close(stop)
					wg.Wait()
				}
			}
			defer stopTraffic()
			// serve waits until n more requests were served.
			serve := func(what string, n int64) {
				t.Helper()
				target := served.Load() + n
				require.Eventually(t, func() bool { return served.Load() >= target }, 20*time.Second, time.Millisecond,
					"%s: %d requests not served", what, n)
			}

			serve("healthy", 100)
			// A loaded machine may push a healthy take past the timeout:
			// then wait for the probe, and count messages from there.
			require.Eventually(t, func() bool { return !s.Degraded() }, 10*time.Second, time.Millisecond,
				"Degraded before the outage:\n%s", logs)
			down0, up0, fallback0 := logs.count(msgDown), logs.count(msgUp), fallback.Len()

			timed.reset()
			r.Kill() // with requests in flight
			require.Eventually(t, s.Degraded, 10*time.Second, time.Millisecond, "store did not notice the outage")
			serve("redis down", 400)
			took := timed.reset()
			assert.Greater(t, fallback.Len(), fallback0, "fallback keys: decisions during the outage must come from it")
			slices.Sort(took)
			t.Logf("redis killed: %d takes, p50 %v, p99 %v, max %v (timeout %v)",
				len(took), took[len(took)/2], took[len(took)*99/100], took[len(took)-1], timeout)
			assert.Less(t, took[len(took)-1], timeout+slack, "slowest take while redis is down")

			r.Restart()
			require.Eventually(t, func() bool { return !s.Degraded() }, 10*time.Second, time.Millisecond,
				"store did not return to redis after restart")
			serve("redis back", 100)
			stopTraffic()
			assert.Equal(t, down0+1, logs.count(msgDown), "outage messages, want exactly one:\n%s", logs)
			assert.Equal(t, up0+1, logs.count(msgUp), "recovery messages, want exactly one:\n%s", logs)
			got, err := c.HGet(ctxT(t), s.redisKey("fault", "127.0.0.1"), "c").Int()
			require.NoError(t, err, "count in redis after recovery")
			assert.Positive(t, got, "requests after recovery must be counted in redis")
		})
	}
}

// TestFaultHungRedis stops redis-server (SIGSTOP): connections still open
// but nothing answers, the case where only the timeout helps. Each take
// must return within the timeout (plus scheduling slack), then the store
// stays on the fallback without waiting at all, and returns to Redis after
// SIGCONT.
func TestFaultHungRedis(t *testing.T) {
	for _, mode := range clientModes {
		t.Run(mode.name, func(t *testing.T) {
			r := testenv.StartRedis(t)
			c := newClient(t, r.Addr, mode.mod)
			logger, logs := newLogger()
			const timeout = DefaultTimeout
			s := newStore(t, c, WithTimeout(timeout), WithLogger(logger), WithProbeInterval(20*time.Millisecond))
			ctx := ctxT(t)
			p := ratelimit.Policy{Name: "hung", Limit: 1000, Window: day}
			// Warm the pool so that takes in flight at the stop sit on
			// connections that are already open. A loaded machine may push
			// a healthy take past 50ms: then wait for the probe to switch
			// back, and count messages from there.
			for i := 0; i < 20; i++ {
				_, err := s.Take(ctx, p, "k", time.Now(), 1)
				require.NoError(t, err)
			}
			require.Eventually(t, func() bool { return !s.Degraded() }, 10*time.Second, time.Millisecond,
				"Degraded before the stop:\n%s", logs)
			down0, up0 := logs.count(msgDown), logs.count(msgUp)

			require.NoError(t, r.Process().Signal(syscall.SIGSTOP))
			t.Cleanup(func() { _ = r.Process().Signal(syscall.SIGCONT) })
			var mu sync.Mutex
			var took []time.Duration
			var wg sync.WaitGroup
			for g := 0; g < 8; g++ {
				wg.Go(func() {
					for i := 0; i < 50; i++ {
						start := time.Now()
						w, err := s.Take(ctx, p, "k", time.Now(), 1)
						d := time.Since(start)
						assert.NoError(t, err, "take while redis is hung")
						assert.True(t, w.Allowed, "take while redis is hung: Allowed")
						mu.Lock()
						took = append(took, d)
						mu.Unlock()
					}
				})
			}
			wg.Wait()
			slices.Sort(took)
			maxTook := took[len(took)-1]
			t.Logf("redis hung: %d takes, p50 %v, p99 %v, max %v (timeout %v)",
				len(took), took[len(took)/2], took[len(took)*99/100], maxTook, timeout)
			assert.Less(t, maxTook, timeout+slack, "slowest take while redis is hung")
			assert.True(t, s.Degraded(), "Degraded while redis is hung")
			assert.Equal(t, down0+1, logs.count(msgDown), "outage messages:\n%s", logs)

			require.NoError(t, r.Process().Signal(syscall.SIGCONT))
			require.Eventually(t, func() bool { return !s.Degraded() }, 10*time.Second, 10*time.Millisecond,
				"store did not return to redis after SIGCONT")
			assert.Equal(t, up0+1, logs.count(msgUp), "recovery messages:\n%s", logs)
		})
	}
}
