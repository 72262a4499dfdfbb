package slowdown

import (
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"

	"github.com/shipshape-go/shipshape/internal/instrument/metrictest"
)

func decision(d string) attribute.KeyValue {
	return attribute.String("shipshape.slowdown.decision", d)
}

// TestMetricsDelayedAndOverflow: with after 2 and one waiting place, 2
// requests pass undelayed, one waits (requests waiting: 1) and 3 more are
// refused for overflow meanwhile; then the waiting one is served after
// its 100ms.
func TestMetricsDelayedAndOverflow(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		mr := metrictest.New(t)
		d, err := New(2, time.Minute, WithMaxWaiting(1), WithMeterProvider(mr))
		require.NoError(t, err)
		h := d.Handler(&recorder{})
		for range 2 {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, newRequest())
			require.Equal(t, http.StatusOK, rec.Code)
		}
		var wg sync.WaitGroup
		wg.Go(func() { h.ServeHTTP(httptest.NewRecorder(), newRequest()) })
		synctest.Wait()
		assert.Equal(t, int64(1), mr.Value(t, "shipshape.slowdown.waiting"), "requests waiting while one is delayed")
		for range 3 {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, newRequest())
			require.Equal(t, http.StatusServiceUnavailable, rec.Code)
		}
		wg.Wait()

		tests := []struct {
			name     string
			decision string
			want     int64
		}{
			{"delayed", "delayed", 1},
			{"overflow", "overflow", 3},
			{"canceled", "canceled", 0},
		}
		for _, tt := range tests { // t.Run cannot be called in a synctest bubble
			assert.Equal(t, tt.want, mr.Value(t, "shipshape.slowdown.requests", decision(tt.decision)), tt.name)
		}
		assert.Equal(t, int64(0), mr.Value(t, "shipshape.slowdown.waiting"), "requests waiting after the wait")
		n, sum := mr.Count(t, "shipshape.slowdown.delay", attribute.String("shipshape.slowdown.policy", DefaultName))
		assert.Equal(t, uint64(1), n, "delays recorded")
		assert.InDelta(t, 0.1, sum, 1e-9, "the third request's delay, one step")
	})
}

func TestWithMeterProviderNil(t *testing.T) {
	_, err := New(1, time.Second, WithMeterProvider(nil))
	require.EqualError(t, err, "slowdown: WithMeterProvider: nil provider")
}
