package redisstore

import (
	"context"
	"errors"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/shipshape-go/shipshape/internal/instrument"
)

// WithMeterProvider sets where the Store's metrics go (default: the
// global provider, otel.GetMeterProvider() at the time of New, which
// records nothing until the application sets one), by
// shipshape.ratelimit.redis.prefix (see [WithPrefix]): whether the Store
// is on its fallback now (shipshape.ratelimit.redis.degraded, 1 or 0, see
// [Store.Degraded]) and its switches to the fallback and back to Redis
// (shipshape.ratelimit.redis.switches by shipshape.ratelimit.redis.to,
// fallback or redis). They stop at Close. docs/metrics.md lists them. A
// nil provider is an error from [New].
func WithMeterProvider(mp metric.MeterProvider) Option {
	return func(c *config) { c.meter, c.meterSet = mp, true }
}

// metrics are a Store's instruments.
type metrics struct {
	switches            instrument.Counter
	toFallback, toRedis *instrument.Attrs
	unobserve           func()
}

func (s *Store) newMetrics() error {
	if s.cfg.meterSet && isNil(s.cfg.meter) {
		return errors.New("redisstore: WithMeterProvider: nil provider")
	}
	m := instrument.New(s.cfg.meter, "ratelimit/redisstore")
	prefix := attribute.String("shipshape.ratelimit.redis.prefix", s.cfg.prefix)
	degraded := m.Gauge("shipshape.ratelimit.redis.degraded", "1",
		"1 while the Store answers from its fallback store (Redis unavailable), else 0.")
	at := instrument.NewAttrs(prefix)
	s.metrics = metrics{
		switches: m.Counter("shipshape.ratelimit.redis.switches", "{switch}",
			"Switches of the Store to its fallback (Redis failed) and back to Redis (a probe found it healthy)."),
		toFallback: instrument.NewAttrs(prefix, attribute.String("shipshape.ratelimit.redis.to", "fallback")),
		toRedis:    instrument.NewAttrs(prefix, attribute.String("shipshape.ratelimit.redis.to", "redis")),
	}
	s.metrics.unobserve = m.Observe(func(o instrument.Observer) {
		var v int64
		if s.degraded.Load() {
			v = 1
		}
		o.Gauge(degraded, v, at)
	}, degraded)
	if err := m.Err(); err != nil {
		s.metrics.unobserve()
		return errors.New("redisstore: WithMeterProvider: " + err.Error())
	}
	return nil
}

// switched counts a switch to the fallback, or back to Redis.
func (m *metrics) switched(toFallback bool) {
	a := m.toRedis
	if toFallback {
		a = m.toFallback
	}
	m.switches.Inc(context.Background(), a)
}
