package accesslog

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/shipshape-go/shipshape/internal/instrument"
	"github.com/shipshape-go/shipshape/reqlog"
)

// metrics are the middleware's instruments (see [WithMeterProvider]).
type metrics struct {
	duration instrument.Histogram
	series   *instrument.Series[seriesKey]
	gate     instrument.Gate
}

// seriesKey is what a request's http.server.request.duration series is
// made of.
type seriesKey struct {
	method, scheme, route string
	status                int
}

func newMetrics(mp metric.MeterProvider) (*metrics, error) {
	m := instrument.New(mp, "accesslog")
	ms := &metrics{
		duration: m.Histogram("http.server.request.duration", "s",
			"Duration of HTTP server requests.", instrument.DurationBuckets),
		series: instrument.NewSeries(func(k seriesKey) []attribute.KeyValue {
			kv := []attribute.KeyValue{
				attribute.String("http.request.method", k.method),
				attribute.String("url.scheme", k.scheme),
				attribute.Int("http.response.status_code", k.status),
			}
			if k.route != "" {
				kv = append(kv, attribute.String("http.route", k.route))
			}
			if k.status >= 500 {
				// The semantic conventions' error.type for a server
				// error without a more specific one: the status code.
				kv = append(kv, attribute.String("error.type", strconv.Itoa(k.status)))
			}
			return kv
		}),
		gate: m.Gate(),
	}
	return ms, m.Err()
}

// request records one request's duration (r as it came in, passed the
// copy handed down, whose route the router recorded); the route is read
// only when the measurement is recorded.
func (m *metrics) request(ctx context.Context, r, passed *http.Request, status int, d time.Duration) {
	if !m.gate.Open() || !m.duration.Enabled(ctx) {
		return
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	k := seriesKey{method: knownMethod(r.Method), scheme: scheme, route: reqlog.Route(passed), status: status}
	m.duration.Seconds(ctx, d, m.series.Get(k))
}

// knownMethod is the method as the semantic conventions record it: one
// of the standard methods, or "_OTHER", so that a client cannot mint
// series by inventing methods.
func knownMethod(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodConnect, http.MethodOptions, http.MethodTrace:
		return m
	}
	return "_OTHER"
}
