package accesslog

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"

	"github.com/shipshape-go/shipshape/internal/instrument/metrictest"
)

// TestMetricsRequestDuration: 7 requests to a route answered 200, 3 to
// another answered 500 and one with an invented method: each is one value
// of http.server.request.duration in the series of its method, route and
// status; skipped requests are not measured.
func TestMetricsRequestDuration(t *testing.T) {
	mr := metrictest.New(t)
	mux := http.NewServeMux()
	mux.HandleFunc("/items/{id}", func(w http.ResponseWriter, r *http.Request) {})
	mux.HandleFunc("/boom", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusInternalServerError) })
	mw, err := New(slog.New(slog.NewTextHandler(io.Discard, nil)), WithMeterProvider(mr),
		WithSkip(func(r *http.Request) bool { return r.URL.Path == "/healthz" }))
	require.NoError(t, err)
	h := mw(mux)
	do := func(method, path string) {
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(method, path, nil))
	}
	for range 7 {
		do(http.MethodGet, "/items/42")
	}
	for range 3 {
		do(http.MethodPost, "/boom")
	}
	do("BREW", "/items/1")
	do(http.MethodGet, "/healthz")

	tests := []struct {
		name string
		kv   []attribute.KeyValue
		want uint64
	}{
		{"200 on the route", []attribute.KeyValue{attribute.String("http.request.method", "GET"),
			attribute.String("http.route", "/items/{id}"), attribute.Int("http.response.status_code", 200),
			attribute.String("url.scheme", "http")}, 7},
		{"500 with its error.type", []attribute.KeyValue{attribute.String("http.request.method", "POST"),
			attribute.String("http.route", "/boom"), attribute.Int("http.response.status_code", 500),
			attribute.String("error.type", "500")}, 3},
		{"unknown method", []attribute.KeyValue{attribute.String("http.request.method", "_OTHER")}, 1},
		{"every request but the skipped one", nil, 11},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, _ := mr.Count(t, "http.server.request.duration", tt.kv...)
			assert.Equal(t, tt.want, n)
		})
	}
}

func TestWithMeterProviderNil(t *testing.T) {
	_, err := New(nil, WithMeterProvider(nil))
	require.EqualError(t, err, "accesslog: WithMeterProvider: nil provider")
}
