package connlimit

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/shipshape-go/shipshape/internal/instrument"
)

// metrics are a Listener's instruments (see [WithMeterProvider]).
type metrics struct {
	accepted instrument.Counter
	refused  instrument.Counter
	open     instrument.UpDown
	none     *instrument.Attrs
	reasons  [RejectAcceptRate + 1]*instrument.Attrs // by RejectReason
}

func newMetrics(mp metric.MeterProvider) (*metrics, error) {
	m := instrument.New(mp, "connlimit")
	ms := &metrics{
		accepted: m.Counter("shipshape.connlimit.connections.accepted", "{connection}",
			"Connections the listener admitted."),
		refused: m.Counter("shipshape.connlimit.connections.refused", "{connection}",
			"Connections the listener refused (closed at once), by reason."),
		open: m.UpDown("shipshape.connlimit.connections.open", "{connection}",
			"Admitted connections not yet closed."),
		none: instrument.NewAttrs(),
	}
	for r := RejectMaxConns; r <= RejectAcceptRate; r++ {
		ms.reasons[r] = instrument.NewAttrs(attribute.String("shipshape.connlimit.reason", r.String()))
	}
	return ms, m.Err()
}

func (m *metrics) admitted() {
	m.accepted.Inc(context.Background(), m.none)
	m.open.Add(context.Background(), 1, m.none)
}

func (m *metrics) rejected(r RejectReason) { m.refused.Inc(context.Background(), m.reasons[r]) }

func (m *metrics) closed() { m.open.Add(context.Background(), -1, m.none) }
