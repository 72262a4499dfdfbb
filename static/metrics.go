package static

import (
	"context"
	"errors"
	"net/http"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/shipshape-go/shipshape/internal/instrument"
	"github.com/shipshape-go/shipshape/internal/nilcheck"
)

// WithMeterProvider sets where the Server's metrics go (default: the
// global provider, otel.GetMeterProvider() at the time of New, which
// records nothing until the application sets one): the files sent by
// shipshape.static.response (identity, br, zstd, gzip, or not_modified
// for a 304; a 304 of on-the-fly compression counts under its coding) and
// the lookups of the file cache by shipshape.static.cache.result (hit or
// miss; a miss reads the file system). docs/metrics.md lists them. A nil
// provider is an error from New.
func WithMeterProvider(mp metric.MeterProvider) Option {
	return func(c *config) {
		if nilcheck.Is(mp) {
			c.fail(errors.New("static: WithMeterProvider: nil provider"))
			return
		}
		c.meter = mp
	}
}

// metrics are a Server's instruments.
type metrics struct {
	responses   instrument.Counter
	lookups     instrument.Counter
	byCoding    [numCodings]*instrument.Attrs
	notModified *instrument.Attrs
	hit, miss   *instrument.Attrs
	gate        instrument.Gate
}

func newMetrics(mp metric.MeterProvider) (*metrics, error) {
	m := instrument.New(mp, "static")
	ms := &metrics{
		responses: m.Counter("shipshape.static.responses", "{response}",
			"Files sent, by content coding, or not_modified for a 304."),
		lookups: m.Counter("shipshape.static.cache.lookups", "{lookup}",
			"Lookups of the Server's file cache, by hit or miss."),
		notModified: instrument.NewAttrs(attribute.String("shipshape.static.response", "not_modified")),
		hit:         instrument.NewAttrs(attribute.String("shipshape.static.cache.result", "hit")),
		miss:        instrument.NewAttrs(attribute.String("shipshape.static.cache.result", "miss")),
		gate:        m.Gate(),
	}
	for c, name := range codingName {
		ms.byCoding[c] = instrument.NewAttrs(attribute.String("shipshape.static.response", name))
	}
	return ms, m.Err()
}

// sent counts a file sent with coding cod, or a 304 when status says so.
func (m *metrics) sent(ctx context.Context, cod coding, status int) {
	if !m.gate.Open() {
		return
	}
	if status == http.StatusNotModified {
		m.responses.Inc(ctx, m.notModified)
		return
	}
	m.responses.Inc(ctx, m.byCoding[cod])
}

// recording reports whether the responses are recorded.
func (m *metrics) recording(ctx context.Context) bool {
	return m.gate.Open() && m.responses.Enabled(ctx)
}

// looked counts a cache lookup.
func (m *metrics) looked(hit bool) {
	if !m.gate.Open() {
		return
	}
	a := m.miss
	if hit {
		a = m.hit
	}
	m.lookups.Inc(context.Background(), a)
}
