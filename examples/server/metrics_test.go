package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/shipshape-go/shipshape/internal/testenv"
)

// TestPrometheusScrapesTheServer: the server with -metrics-addr under a
// short load (10 requests within the limit, 5 past it), scraped every
// second by a real Prometheus server, whose HTTP API then reports 10
// responses of 200 and 5 of 429 under /api/, and the same decisions of
// the rate limiter. The public port does not serve /metrics.
func TestPrometheusScrapesTheServer(t *testing.T) {
	promBin := testenv.LookPath(t, "prometheus", "prometheus")
	exe, err := os.Executable()
	require.NoError(t, err)
	addr, metricsAddr := testenv.Addr(testenv.FreePort(t)), testenv.Addr(testenv.FreePort(t))
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), "SERVER_TEST_ARGS=-addr "+addr+" -metrics-addr "+metricsAddr+
		" -log-dir "+t.TempDir()+" -log-format none -rate-limit 10 -rate-window 1h -slow-after 0")
	srv := testenv.Start(t, "server", cmd, addr, metricsAddr)
	defer srv.Stop(10 * time.Second)

	const allowed, refused = 10, 5
	codes := map[int]int{}
	for range allowed + refused {
		resp, err := http.Get("http://" + addr + "/api/hello")
		require.NoError(t, err)
		resp.Body.Close()
		codes[resp.StatusCode]++
	}
	require.Equal(t, map[int]int{200: allowed, 429: refused}, codes, "the traffic")
	resp, err := http.Get("http://" + addr + "/metrics")
	require.NoError(t, err)
	resp.Body.Close()
	assert.NotEqual(t, http.StatusOK, resp.StatusCode, "/metrics on the public port")

	prom := startPrometheus(t, promBin, metricsAddr)
	// A request the limiter refuses never reaches the route below it: its
	// http.route is the pattern the limiter is mounted on, /api/.
	route := `http_route=~"/api/.*"`
	tests := []struct {
		name  string
		query string
		want  int
	}{
		{"200 responses", `sum(http_server_request_duration_seconds_count{` + route + `,http_response_status_code="200"})`, allowed},
		{"429 responses", `sum(http_server_request_duration_seconds_count{` + route + `,http_response_status_code="429"})`, refused},
		{"allowed by the limiter", `sum(shipshape_ratelimit_decisions_total{shipshape_ratelimit_policy="api",shipshape_ratelimit_outcome="allowed"})`, allowed},
		{"refused by the limiter", `sum(shipshape_ratelimit_decisions_total{shipshape_ratelimit_policy="api",shipshape_ratelimit_outcome="denied"})`, refused},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got float64
			var ok bool
			// Liveness bound: the first scrape comes within a second or two.
			require.Eventually(t, func() bool {
				got, ok = prom.query(t, tt.query)
				return ok && got == float64(tt.want)
			}, 30*time.Second, 200*time.Millisecond, "%s: got %v (a result: %v), want %d", tt.query, got, ok, tt.want)
		})
	}
}

// prometheus is a Prometheus server started by a test.
type prometheus struct{ url string }

// startPrometheus runs Prometheus on a loopback port chosen now, with a
// config that scrapes target every second, and waits until it is ready.
func startPrometheus(t *testing.T, bin, target string) *prometheus {
	t.Helper()
	dir := t.TempDir()
	config := fmt.Sprintf("global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"+
		"scrape_configs:\n  - job_name: shipshape\n    static_configs:\n      - targets: [%q]\n", target)
	cfgPath := filepath.Join(dir, "prometheus.yml")
	require.NoError(t, os.WriteFile(cfgPath, []byte(config), 0o644))
	listen := testenv.Addr(testenv.FreePort(t))
	cmd := exec.Command(bin, "--config.file="+cfgPath, "--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+listen, "--log.level=warn")
	p := testenv.Start(t, "prometheus", cmd, listen)
	t.Cleanup(func() { p.Stop(10 * time.Second) })
	prom := &prometheus{url: "http://" + listen}
	require.Eventually(t, func() bool {
		resp, err := http.Get(prom.url + "/-/ready")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, 30*time.Second, 100*time.Millisecond, "prometheus ready; output:\n%s", p.Output())
	return prom
}

// query runs an instant query whose result is one number; ok is false
// while it has no result (nothing scraped yet).
func (p *prometheus) query(t *testing.T, q string) (float64, bool) {
	t.Helper()
	resp, err := http.Get(p.url + "/api/v1/query?query=" + url.QueryEscape(q))
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	var r struct {
		Status string `json:"status"`
		Data   struct {
			Result []struct {
				Value [2]any `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	require.NoError(t, json.Unmarshal(body, &r), "answer %s", body)
	require.Equal(t, "success", r.Status, "answer %s", body)
	if len(r.Data.Result) != 1 {
		return 0, false
	}
	s, _ := r.Data.Result[0].Value[1].(string)
	v, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	require.NoError(t, err, "value %q", s)
	return v, true
}
