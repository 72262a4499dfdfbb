package ratelimit

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"

	"github.com/shipshape-go/shipshape/internal/instrument/metrictest"
)

func outcome(policy, o string) []attribute.KeyValue {
	return []attribute.KeyValue{
		attribute.String("shipshape.ratelimit.policy", policy),
		attribute.String("shipshape.ratelimit.outcome", o),
	}
}

// TestMetricsCountDecisions: after 7 allowed, 3 denied, 2 keyless and 1
// store failure, the decisions counter holds exactly those, and every
// take's latency is in the histogram.
func TestMetricsCountDecisions(t *testing.T) {
	mr := metrictest.New(t)
	l, err := New(7, time.Hour, WithMeterProvider(mr), WithKey(KeyByHeader("X-Client")))
	require.NoError(t, err)
	h := l.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	serve := func(client string) int {
		req := httptest.NewRequest(http.MethodGet, "/", nil)
		if client != "" {
			req.Header.Set("X-Client", client)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec.Code
	}
	for i := range 10 {
		want := http.StatusOK
		if i >= 7 {
			want = http.StatusTooManyRequests
		}
		require.Equal(t, want, serve("a"), "request %d", i+1)
	}
	require.Equal(t, http.StatusBadRequest, serve(""))
	require.Equal(t, http.StatusBadRequest, serve(""))

	failing, err := New(7, time.Hour, WithMeterProvider(mr), WithName("failing"), WithStore(&failingStore{}))
	require.NoError(t, err)
	rec := httptest.NewRecorder()
	failing.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
	require.Equal(t, http.StatusOK, rec.Code, "fails open")

	tests := []struct {
		name           string
		policy, result string
		want           int64
	}{
		{"allowed", "default", "allowed", 7},
		{"denied", "default", "denied", 3},
		{"no key", "default", "key_error", 2},
		{"store failed", "failing", "store_error", 1},
		{"nothing else", "default", "store_error", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, mr.Value(t, "shipshape.ratelimit.decisions", outcome(tt.policy, tt.result)...))
		})
	}
	n, sum := mr.Count(t, "shipshape.ratelimit.store.duration")
	assert.Equal(t, uint64(11), n, "one store latency per take (10 + the failed one)")
	assert.Greater(t, sum, 0.0)
}

// TestMetricsMultiPolicy: a refusal is counted under the policy that
// refused, an allowed request under the one closest to refusing.
func TestMetricsMultiPolicy(t *testing.T) {
	mr := metrictest.New(t)
	l, err := New(100, time.Hour, WithName("hour"), WithPolicy("burst", 2, time.Minute), WithMeterProvider(mr))
	require.NoError(t, err)
	h := l.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	for range 5 {
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/", nil))
	}
	assert.Equal(t, int64(2), mr.Value(t, "shipshape.ratelimit.decisions", outcome("burst", "allowed")...))
	assert.Equal(t, int64(3), mr.Value(t, "shipshape.ratelimit.decisions", outcome("burst", "denied")...))
	assert.Equal(t, int64(0), mr.Value(t, "shipshape.ratelimit.decisions", outcome("hour", "denied")...))
}

func TestWithMeterProviderNil(t *testing.T) {
	_, err := New(1, time.Second, WithMeterProvider(nil))
	require.EqualError(t, err, "ratelimit: WithMeterProvider: nil provider")
}
