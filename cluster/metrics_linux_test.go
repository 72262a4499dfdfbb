package cluster

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

// envMetricsProgram makes the test binary a program that runs a cluster
// with WithMetrics (see metricsProgram), before TestMain.
const envMetricsProgram = "CLUSTER_TEST_METRICS_PROGRAM"

func init() {
	if os.Getenv(envMetricsProgram) != "" {
		os.Exit(metricsProgram())
	}
}

// metricsProgram serves 200 on its shared socket and counts the requests
// in an SDK meter provider; every process exports what its provider holds
// in the Prometheus text format (textExport), the supervisor its own
// instruments through WithMeterProvider.
func metricsProgram() int {
	logger := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	requests, _ := mp.Meter("test").Int64Counter("test.requests")
	pid := attribute.Int("pid", os.Getpid())
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(r.Context(), 1, metric.WithAttributes(pid))
		fmt.Fprintln(w, os.Getpid())
	})
	n, _ := strconv.Atoi(os.Getenv("CLUSTER_TEST_WORKERS"))
	err := Run(context.Background(), func(ctx context.Context, ln net.Listener) error {
		srv := &http.Server{Handler: handler}
		go func() { <-ctx.Done(); srv.Close() }()
		return srv.Serve(ln)
	}, WithAddr("tcp", "127.0.0.1:0"), WithWorkers(n), WithLogger(logger),
		WithMetrics("127.0.0.1:0", textExport(reader)), WithMeterProvider(mp))
	if err != nil {
		logger.Error("test program: exiting", "error", err.Error())
		return 1
	}
	return 0
}

// textExport writes the int64 sums and gauges of reader in the Prometheus
// text format, as an exporter would (names with '_' for '.').
func textExport(reader *sdkmetric.ManualReader) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var rm metricdata.ResourceMetrics
		if err := reader.Collect(r.Context(), &rm); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		for _, sm := range rm.ScopeMetrics {
			for _, m := range sm.Metrics {
				name := strings.ReplaceAll(m.Name, ".", "_")
				var points []metricdata.DataPoint[int64]
				kind := "gauge"
				switch d := m.Data.(type) {
				case metricdata.Sum[int64]:
					points, kind = d.DataPoints, "counter"
					if d.IsMonotonic {
						name += "_total"
					}
				case metricdata.Gauge[int64]:
					points = d.DataPoints
				default:
					continue
				}
				fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s %s\n", name, m.Description, name, kind)
				for _, p := range points {
					var labels []string
					for _, kv := range p.Attributes.ToSlice() {
						labels = append(labels, fmt.Sprintf("%s=%q", strings.ReplaceAll(string(kv.Key), ".", "_"), kv.Value.String()))
					}
					sort.Strings(labels)
					fmt.Fprintf(w, "%s{%s} %d\n", name, strings.Join(labels, ","), p.Value)
				}
			}
		}
	})
}

// TestOneScrapeForTheService: a cluster of 2 workers under load, scraped
// once at the supervisor's metrics address: each worker's request count
// with its worker label and its pid, whose sum is the requests served,
// and the supervisor's own series (2 serving workers, 2 starts).
func TestOneScrapeForTheService(t *testing.T) {
	c := startProgram(t, "", "metrics", 2, envMetricsProgram+"=1", "CLUSTER_TEST_WORKERS=2")
	e := c.waitEvent(0, 10*time.Second, func(e event) bool { return e.Msg == "cluster: serving metrics" })
	metricsURL := "http://" + e.Addr + "/metrics"

	const requests = 200
	pids := map[string]int{}
	client := fresh()
	for range requests {
		resp, err := client.Get(c.url)
		require.NoError(t, err)
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.NoError(t, err)
		pids[strings.TrimSpace(string(b))]++
		client.CloseIdleConnections() // a new connection: the kernel picks the worker
	}

	resp, err := http.Get(metricsURL)
	require.NoError(t, err)
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	text := string(body)
	t.Logf("one scrape:\n%s", text)

	assert.Equal(t, 1, strings.Count(text, "# TYPE test_requests_total counter"), "one TYPE line for the family of every worker")
	var total int
	workers := map[string]bool{}
	for _, line := range strings.Split(text, "\n") {
		if !strings.HasPrefix(line, "test_requests_total{") {
			continue
		}
		labels, value, ok := strings.Cut(strings.TrimPrefix(line, "test_requests_total{"), "} ")
		require.True(t, ok, "sample line %q", line)
		require.True(t, strings.HasPrefix(labels, `worker="`), "the worker label comes first: %q", line)
		w := strings.TrimSuffix(strings.TrimPrefix(strings.Split(labels, ",")[0], `worker="`), `"`)
		workers[w] = true
		pid := strings.TrimSuffix(strings.TrimPrefix(strings.Split(labels, ",")[1], `pid="`), `"`)
		n, err := strconv.Atoi(value)
		require.NoError(t, err)
		assert.Equal(t, pids[pid], n, "requests of worker %s (pid %s): the count it served", w, pid)
		total += n
	}
	assert.Equal(t, map[string]bool{"0": true, "1": true}, workers, "both workers' series in one scrape")
	assert.Equal(t, requests, total, "every request counted once")
	assert.Contains(t, text, `shipshape_cluster_workers{shipshape_cluster_worker_state="serving"} 2`, "the supervisor's own series")
	assert.Contains(t, text, `shipshape_cluster_worker_starts_total{shipshape_cluster_reason="start"} 2`)
	assert.Regexp(t, `shipshape_cluster_worker_memory_rss\{worker="0"\} [1-9]`, text, "each worker's RSS")

	// A worker killed: one crash by signal, one start by restart.
	var victim int
	for pid := range pids {
		victim, _ = strconv.Atoi(pid)
		break
	}
	from := c.mark()
	require.NoError(t, syscall.Kill(victim, syscall.SIGKILL))
	c.waitReady(from, 1, 20*time.Second)
	require.Eventually(t, func() bool {
		text = scrape(t, metricsURL)
		return strings.Contains(text, `shipshape_cluster_worker_crashes_total{shipshape_cluster_crash_reason="signal"} 1`)
	}, 10*time.Second, 10*time.Millisecond, "the crash is counted by reason (the crash monitor reports it just after the restart is scheduled)")
	assert.Contains(t, text, `shipshape_cluster_worker_starts_total{shipshape_cluster_reason="restart"} 1`, "the restart is counted by reason:\n%s", text)
}

func scrape(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	return string(body)
}
