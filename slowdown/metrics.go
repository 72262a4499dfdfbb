package slowdown

import (
	"context"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/shipshape-go/shipshape/internal/instrument"
)

// decisions are the values of the shipshape.slowdown.decision attribute:
// the decision= of the access log line, for every request that was not
// passed on undelayed.
var decisions = []string{"delayed", "overflow", "canceled", "deadline", "error"}

// metrics are a Delayer's instruments (see [WithMeterProvider]). Requests
// passed on undelayed record nothing: the hot path stays as it was.
type metrics struct {
	requests instrument.Counter
	delay    instrument.Histogram
	waiting  instrument.UpDown
	policy   *instrument.Attrs
	byName   map[string]*instrument.Attrs
}

func newMetrics(mp metric.MeterProvider, policy string) (*metrics, error) {
	m := instrument.New(mp, "slowdown")
	p := attribute.String("shipshape.slowdown.policy", policy)
	ms := &metrics{
		requests: m.Counter("shipshape.slowdown.requests", "{request}",
			"Requests the Delayer delayed, refused for too many waiting (overflow), or lost while waiting, by decision."),
		delay: m.Histogram("shipshape.slowdown.delay", "s",
			"Delay given to each delayed request.", instrument.DurationBuckets),
		waiting: m.UpDown("shipshape.slowdown.waiting", "{request}",
			"Requests waiting in the Delayer now."),
		policy: instrument.NewAttrs(p),
		byName: make(map[string]*instrument.Attrs, len(decisions)),
	}
	for _, d := range decisions {
		ms.byName[d] = instrument.NewAttrs(p, attribute.String("shipshape.slowdown.decision", d))
	}
	return ms, m.Err()
}

// decided counts a request with decision, and its delay when delayed.
func (m *metrics) decided(ctx context.Context, decision string, delay time.Duration) {
	if a, ok := m.byName[decision]; ok {
		m.requests.Inc(ctx, a)
	}
	if decision == "delayed" {
		m.delay.Seconds(ctx, delay, m.policy)
	}
}
