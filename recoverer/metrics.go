package recoverer

import (
	"context"
	"sync"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/shipshape-go/shipshape/internal/instrument"
)

// WithMeterProvider sets where the panics are counted (default: the
// global provider, otel.GetMeterProvider() at the time of New or NewGo,
// which records nothing until the application sets one):
// shipshape.recoverer.panics by shipshape.recoverer.source (handler or
// goroutine), and, with [WithReporter], shipshape.recoverer.reports by
// shipshape.recoverer.result (sent: the Reporter returned an event id;
// not_sent: it returned none, e.g. sampled out or rate limited).
// [Go] counts through the global provider. docs/metrics.md lists every
// instrument. Only panics record anything. A nil provider is an error.
func WithMeterProvider(mp metric.MeterProvider) Option {
	return func(c *config) { c.meter, c.meterSet = mp, true }
}

// metrics are the recoverer's instruments.
type metrics struct {
	panics             instrument.Counter
	reports            instrument.Counter
	handler, goroutine *instrument.Attrs
	sent, notSent      *instrument.Attrs
}

func newMetrics(mp metric.MeterProvider) (*metrics, error) {
	m := instrument.New(mp, "recoverer")
	ms := &metrics{
		panics: m.Counter("shipshape.recoverer.panics", "{panic}",
			"Panics recovered, in handlers and in goroutines started by Go."),
		reports: m.Counter("shipshape.recoverer.reports", "{panic}",
			"Panics handed to the Reporter, by whether it sent an event."),
		handler:   instrument.NewAttrs(attribute.String("shipshape.recoverer.source", "handler")),
		goroutine: instrument.NewAttrs(attribute.String("shipshape.recoverer.source", "goroutine")),
		sent:      instrument.NewAttrs(attribute.String("shipshape.recoverer.result", "sent")),
		notSent:   instrument.NewAttrs(attribute.String("shipshape.recoverer.result", "not_sent")),
	}
	return ms, m.Err()
}

// globalMetrics are those of [Go], whose config has no options.
var globalMetrics = sync.OnceValue(func() *metrics {
	ms, _ := newMetrics(nil) // the global provider's instruments do not fail
	return ms
})

// recorded counts one panic (in a handler when inHandler) and, with a
// Reporter, whether it sent an event.
func (c *config) recorded(ctx context.Context, inHandler, reported bool, eventID string) {
	ms := c.metrics
	if ms == nil {
		ms = globalMetrics()
	}
	src := ms.goroutine
	if inHandler {
		src = ms.handler
	}
	ms.panics.Inc(ctx, src)
	if !reported {
		return
	}
	if eventID != "" {
		ms.reports.Inc(ctx, ms.sent)
	} else {
		ms.reports.Inc(ctx, ms.notSent)
	}
}
