package ratelimit

import (
	"context"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/shipshape-go/shipshape/internal/instrument"
)

// The outcomes of a request in the Handler, the values of the
// shipshape.ratelimit.outcome attribute.
const (
	outcomeAllowed    = iota // passed on
	outcomeDenied            // 429
	outcomeKeyError          // 400 or 500: the KeyFunc failed
	outcomeStoreError        // the store failed: served uncounted, or 503
	outcomeFuncError         // 500: WithLimitFunc or WithCost returned an unusable value
	outcomeCanceled          // the request's context ended before its decision
	numOutcomes
)

var outcomeNames = [numOutcomes]string{"allowed", "denied", "key_error", "store_error", "function_error", "canceled"}

// metrics are a Limiter's instruments (see [WithMeterProvider]).
type metrics struct {
	decisions instrument.Counter
	storeTime instrument.Histogram
	// attrs holds the series of each policy (by index) and outcome.
	attrs [][numOutcomes]*instrument.Attrs
	none  *instrument.Attrs
	gate  instrument.Gate
}

func newMetrics(mp metric.MeterProvider, policies []Policy) (*metrics, error) {
	m := instrument.New(mp, "ratelimit")
	ms := &metrics{
		decisions: m.Counter("shipshape.ratelimit.decisions", "{request}",
			"Requests decided by the rate limiter, by policy and outcome."),
		storeTime: m.Histogram("shipshape.ratelimit.store.duration", "s",
			"Time the rate limiter's store took to answer a take.", instrument.FastBuckets),
		attrs: make([][numOutcomes]*instrument.Attrs, len(policies)),
		none:  instrument.NewAttrs(),
		gate:  m.Gate(),
	}
	for i, p := range policies {
		for o, name := range outcomeNames {
			ms.attrs[i][o] = instrument.NewAttrs(
				attribute.String("shipshape.ratelimit.policy", p.Name),
				attribute.String("shipshape.ratelimit.outcome", name))
		}
	}
	return ms, m.Err()
}

// enabled reports whether the decisions are recorded. The allowed path
// checks the gate first, inlined: while no provider is set that is all
// it does.
func (m *metrics) enabled(ctx context.Context) bool {
	return m.gate.Open() && m.decisions.Enabled(ctx)
}

// decided counts one request of the policy at index i with outcome o.
func (m *metrics) decided(ctx context.Context, i, o int) {
	m.decisions.Inc(ctx, m.attrs[i][o])
}

// took records how long a store take begun at start (the Limiter's clock)
// took, reading the clock again only when the measurement is recorded;
// the caller checked enabled.
func (l *Limiter) took(ctx context.Context, start time.Time) {
	if l.metrics.storeTime.Enabled(ctx) {
		l.metrics.storeTime.Seconds(ctx, l.now().Sub(start), l.metrics.none)
	}
}
