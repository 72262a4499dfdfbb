package static_test

import (
	"net/http"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"

	"github.com/shipshape-go/shipshape/internal/instrument/metrictest"
	"github.com/shipshape-go/shipshape/static"
)

// TestMetricsResponsesAndCache: 3 plain requests, 2 for br, 1 for gzip
// (both precompressed) and 2 revalidations that get 304 are counted by
// response; every one looks the file up in the cache, and only the first
// misses.
func TestMetricsResponsesAndCache(t *testing.T) {
	mr := metrictest.New(t)
	js := []byte(strings.Repeat("console.log('shipshape');\n", 40))
	fsys := fstest.MapFS{
		"app.js":    {Data: js},
		"app.js.br": {Data: []byte("br bytes")},
		"app.js.gz": {Data: []byte("gz bytes")},
	}
	s := newServer(t, fsys, static.WithMeterProvider(mr))
	etag := ""
	for range 3 {
		rec := do(s, http.MethodGet, "/app.js")
		require.Equal(t, http.StatusOK, rec.Code)
		etag = rec.Header().Get("ETag")
	}
	for range 2 {
		rec := do(s, http.MethodGet, "/app.js", "Accept-Encoding", "br")
		require.Equal(t, "br", rec.Header().Get("Content-Encoding"))
	}
	rec := do(s, http.MethodGet, "/app.js", "Accept-Encoding", "gzip")
	require.Equal(t, "gzip", rec.Header().Get("Content-Encoding"))
	for range 2 {
		rec := do(s, http.MethodGet, "/app.js", "If-None-Match", etag)
		require.Equal(t, http.StatusNotModified, rec.Code)
	}

	response := func(v string) attribute.KeyValue { return attribute.String("shipshape.static.response", v) }
	result := func(v string) attribute.KeyValue { return attribute.String("shipshape.static.cache.result", v) }
	tests := []struct {
		name   string
		metric string
		kv     attribute.KeyValue
		want   int64
	}{
		{"identity", "shipshape.static.responses", response("identity"), 3},
		{"br", "shipshape.static.responses", response("br"), 2},
		{"gzip", "shipshape.static.responses", response("gzip"), 1},
		{"zstd", "shipshape.static.responses", response("zstd"), 0},
		{"304", "shipshape.static.responses", response("not_modified"), 2},
		{"cache hits", "shipshape.static.cache.lookups", result("hit"), 7},
		{"cache misses", "shipshape.static.cache.lookups", result("miss"), 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, mr.Value(t, tt.metric, tt.kv))
		})
	}
}

func TestWithMeterProviderNil(t *testing.T) {
	_, err := static.New(fstest.MapFS{}, static.WithMeterProvider(nil))
	require.EqualError(t, err, "static: WithMeterProvider: nil provider")
}
