package slowdown_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/shipshape-go/shipshape/internal/testenv"
	"github.com/shipshape-go/shipshape/ratelimit/redisstore"
	"github.com/shipshape-go/shipshape/slowdown"
)

// TestRedisStoreAcrossProcesses runs two Delayers, each with its own
// client and redisstore as two processes would have, on one real
// redis-server: every request's delay follows the count of both together.
func TestRedisStoreAcrossProcesses(t *testing.T) {
	srv := testenv.StartRedis(t)
	newDelayer := func() *slowdown.Delayer {
		c := redis.NewClient(&redis.Options{Addr: srv.Addr})
		t.Cleanup(func() { c.Close() })
		s, err := redisstore.New(c, redisstore.WithTimeout(2*time.Second))
		require.NoError(t, err)
		t.Cleanup(func() { s.Close() })
		// An hour-long window: the count cannot slide out during the test
		// (rounding the estimate up keeps it stable across a boundary).
		d, err := slowdown.New(2, time.Hour, slowdown.WithStore(s), slowdown.WithStep(time.Millisecond))
		require.NoError(t, err)
		return d
	}
	a, b := newDelayer(), newDelayer()
	ctx := context.Background()

	for i, tc := range []struct {
		d    *slowdown.Delayer
		want time.Duration
	}{{a, 0}, {b, 0}, {a, time.Millisecond}, {b, 2 * time.Millisecond}, {b, 3 * time.Millisecond}} {
		got, err := tc.d.Delay(ctx, "192.0.2.1", time.Now())
		require.NoError(t, err)
		assert.Equal(t, tc.want, got, "request %d: got %v, want %v", i+1, got, tc.want)
	}

	// Through the middleware: the 6th request of the same client waits 4ms.
	var seen time.Duration
	h := a.Handler(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		seen, _ = slowdown.FromContext(r.Context())
	}))
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/", nil)) // from 192.0.2.1
	assert.Equal(t, 4*time.Millisecond, seen, "delay of request 6 through Handler")
}
