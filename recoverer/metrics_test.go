package recoverer

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"

	"github.com/shipshape-go/shipshape/internal/instrument/metrictest"
)

// TestMetricsPanicsAndReports: 3 panics in a handler, of which the
// Reporter sends 2, and one in a goroutine of NewGo, which it sends: 4
// panics by source, 3 sent and 1 not; requests that do not panic record
// nothing.
func TestMetricsPanicsAndReports(t *testing.T) {
	mr := metrictest.New(t)
	var mu sync.Mutex
	n := 0
	rep := reporterFunc(func(context.Context, Panic) string {
		mu.Lock()
		defer mu.Unlock()
		n++
		if n == 2 {
			return "" // sampled out
		}
		return "event"
	})
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	opts := []Option{WithMeterProvider(mr), WithReporter(rep), WithLogger(logger)}
	mw, err := New(opts...)
	require.NoError(t, err)
	h := mw(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/boom" {
			panic("boom")
		}
	}))
	for range 3 {
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/boom", nil))
	}
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/fine", nil))
	goSafe, err := NewGo(opts...)
	require.NoError(t, err)
	done := make(chan struct{})
	goSafe(context.Background(), func(context.Context) {
		defer close(done) // runs before the recovery: wait for the count below
		panic("in a goroutine")
	})
	<-done
	require.Eventually(t, func() bool {
		return mr.Value(t, "shipshape.recoverer.panics", attribute.String("shipshape.recoverer.source", "goroutine")) == 1
	}, 10*time.Second, time.Millisecond, "the goroutine's panic is counted")

	tests := []struct {
		name   string
		metric string
		kv     attribute.KeyValue
		want   int64
	}{
		{"in handlers", "shipshape.recoverer.panics", attribute.String("shipshape.recoverer.source", "handler"), 3},
		{"sent", "shipshape.recoverer.reports", attribute.String("shipshape.recoverer.result", "sent"), 3},
		{"not sent", "shipshape.recoverer.reports", attribute.String("shipshape.recoverer.result", "not_sent"), 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, mr.Value(t, tt.metric, tt.kv))
		})
	}
}

func TestWithMeterProviderNil(t *testing.T) {
	_, err := New(WithMeterProvider(nil))
	require.EqualError(t, err, "recoverer: WithMeterProvider: nil provider")
}
