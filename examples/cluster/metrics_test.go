package main

import (
	"io"
	"net/http"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/shipshape-go/shipshape/internal/testenv"
)

// TestOneScrapeShowsBothWorkers: the example with 2 workers and
// -metrics-addr, under load: one scrape of the supervisor's address has
// the request durations of both workers (worker="0" and worker="1"), whose
// counts add up to the requests sent, and the supervisor's own series.
func TestOneScrapeShowsBothWorkers(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the example")
	}
	exe := buildExample(t)
	addr, metricsAddr := testenv.Addr(testenv.FreePort(t)), testenv.Addr(testenv.FreePort(t))
	cmd := exec.Command(exe, "-workers", "2", "-addr", addr, "-metrics-addr", metricsAddr, "-log-dir", "",
		"-log-format", "none", "-rate-limit", "100000", "-slow-after", "0", "-control", "")
	p := testenv.Start(t, "cluster", cmd, addr, metricsAddr)
	defer p.Stop(20 * time.Second)

	const requests = 100
	seen := map[string]bool{}
	require.Eventually(t, func() bool {
		for range requests {
			// A new connection each time: the kernel picks the worker.
			c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
			resp, err := c.Get("http://" + addr + "/api/hello")
			require.NoError(t, err)
			resp.Body.Close()
		}
		text := scrapeText(t, "http://"+metricsAddr+"/metrics")
		for _, w := range []string{"0", "1"} {
			if strings.Contains(text, `http_server_request_duration_seconds_count{worker="`+w+`"`) {
				seen[w] = true
			}
		}
		return len(seen) == 2
	}, 30*time.Second, 10*time.Millisecond, "both workers' series in one scrape")

	text := scrapeText(t, "http://"+metricsAddr+"/metrics")
	count := regexp.MustCompile(`(?m)^http_server_request_duration_seconds_count\{worker="([01])",[^}]*http_route="/api/hello"[^}]*\} (\d+)$`)
	total := 0
	for _, m := range count.FindAllStringSubmatch(text, -1) {
		n, err := strconv.Atoi(m[2])
		require.NoError(t, err)
		total += n
	}
	assert.Zero(t, total%requests, "every request counted once, by the worker that served it: %d", total)
	assert.Positive(t, total)
	assert.Equal(t, 1, strings.Count(text, "# TYPE http_server_request_duration_seconds histogram"), "one family for every worker")
	assert.Regexp(t, `shipshape_cluster_workers\{[^}]*shipshape_cluster_worker_state="serving"[^}]*\} 2`, text, "the supervisor's own series")
	assert.Regexp(t, `shipshape_cluster_worker_memory_rss_bytes\{[^}]*worker="1"[^}]*\} [1-9]`, text, "each worker's RSS")
	resp, err := http.Get("http://" + addr + "/metrics")
	require.NoError(t, err)
	resp.Body.Close()
	assert.NotEqual(t, http.StatusOK, resp.StatusCode, "/metrics on the public port")
}

func scrapeText(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode, "%s", b)
	return string(b)
}
