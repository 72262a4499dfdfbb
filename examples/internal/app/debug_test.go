package app

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestDebugRoutesAreOffByDefault(t *testing.T) {
	srv := start(t, testConfig(t, "-log-format", "none"))
	for _, path := range []string{"/debug/hang", "/debug/alloc?mib=1", "/debug/panic"} {
		resp, _ := get(t, srv.base+path)
		assert.Equal(t, http.StatusNotFound, resp.StatusCode, "GET %s without its flag", path)
	}
	resp, _ := get(t, srv.base+"/healthz")
	assert.Equal(t, http.StatusOK, resp.StatusCode, "/healthz after GET /debug/hang without -debug-hang")
}

func TestDebugHangStopsHealthz(t *testing.T) {
	srv := start(t, testConfig(t, "-log-format", "none", "-debug-hang"))
	assert.Equal(t, 0, HealthCheck(srv.base+"/healthz"), "health check before the hang")
	resp, _ := get(t, srv.base+"/debug/hang")
	require.Equal(t, http.StatusOK, resp.StatusCode)

	// The health check's own client gives up (3s) and reports failure;
	// the rest of the service still answers.
	start := time.Now()
	assert.Equal(t, 1, HealthCheck(srv.base+"/healthz"), "health check once /healthz hangs")
	assert.GreaterOrEqual(t, time.Since(start), 2*time.Second, "the check failed by its timeout, not by an answer")
	resp, _ = get(t, srv.base+"/api/hello")
	assert.Equal(t, http.StatusOK, resp.StatusCode, "the API while /healthz hangs")

	// A hung /healthz does not hold up the graceful shutdown past the
	// client's leaving: start one and let its client go.
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.base+"/healthz", nil)
	require.NoError(t, err)
	_, err = http.DefaultClient.Do(req)
	assert.ErrorIs(t, err, context.DeadlineExceeded, "a hung /healthz never answers")
}

func TestDebugAllocHoldsMemory(t *testing.T) {
	srv := start(t, testConfig(t, "-log-format", "none", "-debug-alloc"))
	held := func() int {
		resp, body := get(t, srv.base+"/debug/alloc?mib=2")
		require.Equal(t, http.StatusOK, resp.StatusCode, body)
		var v struct {
			Held int `json:"held_mib"`
		}
		require.NoError(t, json.Unmarshal([]byte(body), &v), body)
		return v.Held
	}
	first := held()
	assert.GreaterOrEqual(t, first, 2, "MiB held after one call")
	assert.Equal(t, first+2, held(), "the second call adds to what the first holds")

	for _, bad := range []string{"", "?mib=0", "?mib=-1", "?mib=x", "?mib=65537"} {
		resp, body := get(t, srv.base+"/debug/alloc"+bad)
		assert.Equal(t, http.StatusBadRequest, resp.StatusCode, "GET /debug/alloc%s: %s", bad, body)
	}
}

func TestParseSize(t *testing.T) {
	tests := []struct {
		in   string
		want int64
	}{
		{"65536", 65536},
		{"64KiB", 64 << 10},
		{"8MiB", 8 << 20},
		{"512M", 512 << 20},
		{"1G", 1 << 30},
		{"2GiB", 2 << 30},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := parseSize(tt.in)
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
	for _, bad := range []string{"", "0", "-1MiB", "MiB", "8 MiB", "8mb", "1.5G", "9999999999999G"} {
		_, err := parseSize(bad)
		assert.Error(t, err, "parseSize(%q)", bad)
	}
}

func TestLogRotationFlags(t *testing.T) {
	cfg, err := ParseConfig("test", nil, func(k string) string {
		return map[string]string{"LOG_MAX_SIZE": "8MiB", "LOG_MAX_BACKUPS": "2"}[k]
	}, io.Discard)
	require.NoError(t, err)
	assert.Equal(t, int64(8<<20), cfg.LogMaxSize, "LOG_MAX_SIZE")
	assert.Equal(t, 2, cfg.LogMaxBackups, "LOG_MAX_BACKUPS")

	cfg, err = ParseConfig("test", nil, func(string) string { return "" }, io.Discard)
	require.NoError(t, err)
	assert.Equal(t, int64(100<<20), cfg.LogMaxSize, "default rotation size")
	assert.Equal(t, 14, cfg.LogMaxBackups, "default backups")

	for _, bad := range [][]string{{"-log-max-size", "0"}, {"-log-max-size", "big"}, {"-log-max-backups", "-1"}} {
		_, err := ParseConfig("test", bad, func(string) string { return "" }, io.Discard)
		assert.Error(t, err, "%v", bad)
	}
}

// TestFullLogDiskKeepsServing: when the access log cannot be written (its
// directory is a file's place now, as good as a full disk for the
// writer), requests are still answered, and the lines lost are reported
// through the application log, with their count at shutdown.
func TestFullLogDiskKeepsServing(t *testing.T) {
	cfg := testConfig(t, "-log-format", "json")
	srv := start(t, cfg)
	resp, _ := get(t, srv.base+"/api/hello")
	require.Equal(t, http.StatusOK, resp.StatusCode)

	// Take the directory away for good: the file is gone and the path
	// cannot be opened again.
	require.NoError(t, os.RemoveAll(cfg.LogDir))
	require.NoError(t, os.WriteFile(cfg.LogDir, []byte("in the way\n"), 0o644))
	for range 5 {
		resp, _ := get(t, srv.base+"/api/hello")
		require.Equal(t, http.StatusOK, resp.StatusCode, "served while the log cannot be written")
	}
	srv.stop()

	var dropped int64 = -1
	var reported bool
	for _, line := range strings.Split(srv.stdout.String(), "\n") {
		var rec map[string]any
		if json.Unmarshal([]byte(line), &rec) != nil {
			continue
		}
		switch rec["msg"] {
		case "logfile: buffered write failed", "logfile: log lines lost":
			reported = true
		case "access log lines dropped":
			dropped = int64(rec["lines"].(float64)) + int64(rec["file_batches"].(float64))
			assert.Equal(t, filepath.Join(cfg.LogDir, cfg.LogName), rec["path"], "path in the record")
		}
	}
	assert.True(t, reported, "the failed writes are reported through the application log:\n%s", srv.stdout)
	assert.GreaterOrEqual(t, dropped, int64(1), "the dropped lines are counted at shutdown:\n%s", srv.stdout)
}
