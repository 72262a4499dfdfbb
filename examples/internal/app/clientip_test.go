package app

import (
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestUnusableForwardedForIs400 runs the whole stack on loopback, where the
// client's address, 127.0.0.1, is a trusted proxy: a forwarded request whose
// X-Forwarded-For names no usable client is refused instead of being keyed
// and logged as the proxy, and each refusal is logged.
func TestUnusableForwardedForIs400(t *testing.T) {
	cfg := testConfig(t, "-rate-limit", "100", "-slow-after", "0")
	srv := start(t, cfg)

	tests := []struct {
		name   string
		xff    []string // nil: no header
		status int
		hello  string
	}{
		{"no header: the proxy's own request", nil, http.StatusOK, "127.0.0.1"},
		{"a client behind the proxy", []string{"203.0.113.7"}, http.StatusOK, "203.0.113.7"},
		{"client, then the trusted proxy", []string{"203.0.113.8, 127.0.0.1"}, http.StatusOK, "203.0.113.8"},
		{"garbage", []string{"not-an-ip"}, http.StatusBadRequest, ""},
		{"ip:port", []string{"203.0.113.9:4711"}, http.StatusBadRequest, ""},
		{"garbage right of a client", []string{"203.0.113.7, bogus"}, http.StatusBadRequest, ""},
		{"only trusted hops", []string{"127.0.0.1"}, http.StatusBadRequest, ""},
		{"empty value", []string{""}, http.StatusBadRequest, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequest(http.MethodGet, srv.base+"/api/hello", nil)
			require.NoError(t, err)
			if tt.xff != nil {
				req.Header["X-Forwarded-For"] = tt.xff
			}
			resp, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			defer resp.Body.Close()
			require.Equal(t, tt.status, resp.StatusCode)
			if tt.status == http.StatusBadRequest {
				assert.Equal(t, "application/problem+json", resp.Header.Get("Content-Type"))
				assert.Empty(t, resp.Header.Get("RateLimit"), "refused before the limiter counts it")
				return
			}
			body, err := io.ReadAll(resp.Body)
			require.NoError(t, err)
			assert.JSONEq(t, `{"hello":"`+tt.hello+`"}`, string(body))
		})
	}

	srv.stop()
	data, err := os.ReadFile(filepath.Join(cfg.LogDir, cfg.LogName))
	require.NoError(t, err)
	assert.Equal(t, 5, strings.Count(string(data), `"GET /api/hello HTTP/1.1" 400 `), "every refusal is logged:\n%s", data)
}

// TestUntrustedPeerKeepsItsAddress: X-Forwarded-For from a peer that is not
// a trusted proxy is ignored, garbage or not; the peer is the client.
func TestUntrustedPeerKeepsItsAddress(t *testing.T) {
	cfg := testConfig(t, "-trusted-proxies", "10.0.0.0/8")
	srv := start(t, cfg)
	for _, xff := range []string{"not-an-ip", "203.0.113.7"} {
		resp, body := get(t, srv.base+"/api/hello", "X-Forwarded-For", xff)
		assert.Equal(t, http.StatusOK, resp.StatusCode, xff)
		assert.JSONEq(t, `{"hello":"127.0.0.1"}`, body, xff)
	}
}
