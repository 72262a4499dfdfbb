package redisstore

import (
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"

	"github.com/shipshape-go/shipshape/internal/instrument/metrictest"
	"github.com/shipshape-go/shipshape/internal/testenv"
	"github.com/shipshape-go/shipshape/ratelimit"
)

// TestMetricsDegradedAndSwitches: a real redis-server killed and
// restarted under a Store: degraded is 0, then 1 with one switch to the
// fallback, then 0 again with one switch back to Redis; after Close the
// Store is no longer observed.
func TestMetricsDegradedAndSwitches(t *testing.T) {
	mr := metrictest.New(t)
	r := testenv.StartRedis(t)
	c := newClient(t, r.Addr)
	s, err := New(c, WithMeterProvider(mr), WithTimeout(250*time.Millisecond), WithProbeInterval(20*time.Millisecond),
		WithLogger(slog.New(slog.DiscardHandler)))
	require.NoError(t, err)
	p := ratelimit.Policy{Name: "m", Limit: 10, Window: time.Minute}
	prefix := attribute.String("shipshape.ratelimit.redis.prefix", DefaultPrefix)
	to := func(v string) attribute.KeyValue { return attribute.String("shipshape.ratelimit.redis.to", v) }

	_, err = s.Take(ctxT(t), p, "k", time.Now(), 1)
	require.NoError(t, err)
	require.False(t, s.Degraded(), "healthy redis")
	assert.Equal(t, int64(0), mr.Value(t, "shipshape.ratelimit.redis.degraded", prefix), "degraded while healthy")

	r.Kill()
	require.Eventually(t, func() bool {
		_, err := s.Take(ctxT(t), p, "k", time.Now(), 1)
		return err == nil && s.Degraded()
	}, 10*time.Second, time.Millisecond, "the store did not notice the outage")
	assert.Equal(t, int64(1), mr.Value(t, "shipshape.ratelimit.redis.degraded", prefix), "degraded during the outage")
	assert.Equal(t, int64(1), mr.Value(t, "shipshape.ratelimit.redis.switches", prefix, to("fallback")), "switches to the fallback")

	r.Restart()
	require.Eventually(t, func() bool { return !s.Degraded() }, 10*time.Second, time.Millisecond, "the store did not return to redis")
	assert.Equal(t, int64(0), mr.Value(t, "shipshape.ratelimit.redis.degraded", prefix), "degraded after the recovery")
	assert.Equal(t, int64(1), mr.Value(t, "shipshape.ratelimit.redis.switches", prefix, to("redis")), "switches back to redis")

	require.NoError(t, s.Close())
	assert.False(t, mr.Has(t, "shipshape.ratelimit.redis.degraded"), "a closed Store is no longer observed")
}

func TestWithMeterProviderNil(t *testing.T) {
	r := testenv.StartRedis(t)
	_, err := New(newClient(t, r.Addr), WithMeterProvider(nil))
	require.EqualError(t, err, "redisstore: WithMeterProvider: nil provider")
}
