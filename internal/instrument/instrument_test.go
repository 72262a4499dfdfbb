package instrument

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

// TestGateFollowsTheGlobalProvider: instruments made from the global
// provider before the application sets one are gated shut (nothing could
// be recorded) and open once a provider is set, recording into it; a
// Meter of an explicit provider is never gated. (It sets the global
// provider of this test binary, as a program does once.)
func TestGateFollowsTheGlobalProvider(t *testing.T) {
	early := New(nil, "test")
	c := early.Counter("test.count", "{thing}", "")
	explicit := New(sdkmetric.NewMeterProvider(), "test")
	require.NoError(t, early.Err())
	assert.False(t, early.Gate().Open(), "global provider, none set yet")
	assert.True(t, explicit.Gate().Open(), "an explicit provider")

	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	otel.SetMeterProvider(mp)
	require.True(t, early.Gate().Open(), "the global provider was set")
	c.Inc(context.Background(), NewAttrs())

	var rm metricdata.ResourceMetrics
	require.NoError(t, reader.Collect(context.Background(), &rm))
	require.Len(t, rm.ScopeMetrics, 1)
	sum, ok := rm.ScopeMetrics[0].Metrics[0].Data.(metricdata.Sum[int64])
	require.True(t, ok)
	assert.Equal(t, int64(1), sum.DataPoints[0].Value, "recorded through the instrument made before the provider was set")
	assert.True(t, New(nil, "later").Gate().Open(), "a Meter made after the provider was set")
}
