// Package metrictest reads what shipshape's instruments recorded, through
// the OpenTelemetry SDK's ManualReader, for tests only (the library itself
// links the metric API alone).
package metrictest

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

// Reader is an SDK MeterProvider with a ManualReader.
type Reader struct {
	*sdkmetric.MeterProvider
	reader *sdkmetric.ManualReader
}

// New returns a Reader whose provider is shut down at the end of the test.
func New(t testing.TB) *Reader {
	r := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(r))
	t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	return &Reader{MeterProvider: mp, reader: r}
}

// Collect returns every metric recorded so far.
func (r *Reader) Collect(t testing.TB) []metricdata.Metrics {
	t.Helper()
	var rm metricdata.ResourceMetrics
	require.NoError(t, r.reader.Collect(context.Background(), &rm))
	var out []metricdata.Metrics
	for _, sm := range rm.ScopeMetrics {
		out = append(out, sm.Metrics...)
	}
	return out
}

// Find returns the metric called name, failing the test when there is
// none.
func (r *Reader) Find(t testing.TB, name string) metricdata.Metrics {
	t.Helper()
	for _, m := range r.Collect(t) {
		if m.Name == name {
			return m
		}
	}
	require.Failf(t, "no such metric", "metric %q was not recorded", name)
	return metricdata.Metrics{}
}

// Has reports whether the metric called name was recorded.
func (r *Reader) Has(t testing.TB, name string) bool {
	t.Helper()
	for _, m := range r.Collect(t) {
		if m.Name == name {
			return true
		}
	}
	return false
}

// matches reports whether set holds every one of kv.
func matches(set attribute.Set, kv []attribute.KeyValue) bool {
	for _, want := range kv {
		got, ok := set.Value(want.Key)
		if !ok || got != want.Value {
			return false
		}
	}
	return true
}

// Value returns the sum of the points of the counter, up-down counter or
// gauge called name whose attributes hold every one of kv (0 when none
// does).
func (r *Reader) Value(t testing.TB, name string, kv ...attribute.KeyValue) int64 {
	t.Helper()
	var total int64
	switch d := r.Find(t, name).Data.(type) {
	case metricdata.Sum[int64]:
		for _, p := range d.DataPoints {
			if matches(p.Attributes, kv) {
				total += p.Value
			}
		}
	case metricdata.Gauge[int64]:
		for _, p := range d.DataPoints {
			if matches(p.Attributes, kv) {
				total += p.Value
			}
		}
	default:
		require.Failf(t, "not a sum or gauge", "metric %q is %T", name, d)
	}
	return total
}

// Count returns the number of values recorded in the histogram called
// name whose attributes hold every one of kv, and their sum.
func (r *Reader) Count(t testing.TB, name string, kv ...attribute.KeyValue) (uint64, float64) {
	t.Helper()
	d, ok := r.Find(t, name).Data.(metricdata.Histogram[float64])
	require.True(t, ok, "metric %q is not a float64 histogram", name)
	var n uint64
	var sum float64
	for _, p := range d.DataPoints {
		if matches(p.Attributes, kv) {
			n += p.Count
			sum += p.Sum
		}
	}
	return n, sum
}
