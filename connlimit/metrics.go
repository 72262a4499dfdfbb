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
	gate     instrument.Gate
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
		gate: m.Gate(),
	}
	for r := RejectMaxConns; r <= RejectAcceptRate; r++ {
		ms.reasons[r] = instrument.NewAttrs(attribute.String("shipshape.connlimit.reason", r.String()))
	}
	return ms, m.Err()
}

// admitted counts an admitted connection, and reports whether it was
// counted as open: one check while nothing records (no provider set).
func (m *metrics) admitted() bool {
	ctx := context.Background()
	if !m.gate.Open() || !m.accepted.Enabled(ctx) {
		return false
	}
	m.accepted.Inc(ctx, m.none)
	m.open.Add(ctx, 1, m.none)
	return true
}

func (m *metrics) rejected(r RejectReason) { m.refused.Inc(context.Background(), m.reasons[r]) }

func (m *metrics) closed() { m.open.Add(context.Background(), -1, m.none) }
