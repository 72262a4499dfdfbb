package cluster

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/shipshape-go/shipshape/internal/loadgen"
	"github.com/stretchr/testify/require"
)

// BenchmarkCrashMonitor measures what crash monitoring costs while a
// worker serves: the supervisor's CPU per request (it is on no request's
// path: it reads pipes that carry nothing while the worker runs), the
// worker's, and the resident sets, for one plain process and for a
// supervisor with one worker; then with a worker that logs every request
// to stderr, which the supervisor passes on. 64 keep-alive connections
// for 5s per case, the load generator in this process:
//
//	go test -run '^$' -bench CrashMonitor -benchtime 1x ./cluster/
//
// Build without -race.
func BenchmarkCrashMonitor(b *testing.B) {
	cases := []struct {
		name string
		mode string
		env  []string
	}{
		{"1proc", "single", nil},
		{"1worker", "crash", []string{"CLUSTER_TEST_WORKERS=1"}},
		{"1worker-stderr-line-per-request", "crash", []string{"CLUSTER_TEST_WORKERS=1", "CLUSTER_TEST_STDERR_LINES=1"}},
	}
	for _, bc := range cases {
		b.Run(bc.name, func(b *testing.B) {
			want := 0
			if bc.mode != "single" {
				want = 1
			}
			c := startProgram(b, "", bc.mode, want, bc.env...)
			sup := c.cmd.Process.Pid
			var workers []int
			if want > 0 {
				workers = pidsOf(c.waitReady(0, want, time.Second))
			}
			sup0, w0 := cpuTime(b, []int{sup}), cpuTime(b, workers)
			var res loadgen.Result
			for b.Loop() {
				var err error
				res, err = loadgen.Run(context.Background(), loadgen.Config{URL: c.url + "/hello", Concurrency: 64, Duration: 5 * time.Second})
				require.NoError(b, err)
			}
			supCPU, wCPU := cpuTime(b, []int{sup})-sup0, cpuTime(b, workers)-w0
			require.Zero(b, res.Failed(), "failed requests")
			perReq := func(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e3 / float64(res.Requests) }
			b.ReportMetric(res.Throughput, "req/s")
			b.ReportMetric(perReq(supCPU), "supervisor-cpu-µs/req")
			b.ReportMetric(perReq(wCPU), "worker-cpu-µs/req")
			b.ReportMetric(float64(rssKB(b, sup)), "supervisor-rss-kB")
			if len(workers) > 0 {
				b.ReportMetric(float64(rssKB(b, workers[0])), "worker-rss-kB")
			}
			b.ReportMetric(0, "ns/op")
			b.Logf("%s: %v; supervisor (or the one process) CPU %v, worker CPU %v", bc.name, res, supCPU, wCPU)
		})
	}
}

// rssKB is the resident set of pid in kB (VmRSS of /proc/<pid>/status).
func rssKB(tb testing.TB, pid int) int64 {
	tb.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	require.NoError(tb, err)
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			n, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			require.NoError(tb, err)
			return n
		}
	}
	tb.Fatalf("no VmRSS for pid %d", pid)
	return 0
}
