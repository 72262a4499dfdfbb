package cluster

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/shipshape-go/shipshape/internal/loadgen"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// BenchmarkHelloWorld compares, in one run, hello-world throughput on
// loopback of one plain process with GOMAXPROCS=2 against a supervised
// cluster of two workers (each with the default GOMAXPROCS, then with
// GOMAXPROCS=1). The load generator runs in this process on the same
// machine, closed loop over 64 keep-alive connections for 5s per case:
//
//	go test -run '^$' -bench HelloWorld -benchtime 1x ./cluster/
//
// Build without -race: the figures of a race-enabled build are
// meaningless.
func BenchmarkHelloWorld(b *testing.B) {
	cases := []struct {
		name string
		mode string
		env  []string
	}{
		{"1proc-GOMAXPROCS2", "single", []string{"GOMAXPROCS=2"}},
		{"2workers", "serve", []string{"CLUSTER_TEST_WORKERS=2"}},
		{"2workers-GOMAXPROCS1", "serve", []string{"CLUSTER_TEST_WORKERS=2", "GOMAXPROCS=1"}},
	}
	for _, bc := range cases {
		b.Run(bc.name, func(b *testing.B) {
			want := 0
			if bc.mode == "serve" {
				want = 2
			}
			c := startProgram(b, "", bc.mode, want, bc.env...)
			pids := []int{c.cmd.Process.Pid}
			if want > 0 {
				pids = append(pids, pidsOf(c.waitReady(0, want, time.Second))...)
			}
			cpu0 := cpuTime(b, pids)
			var res loadgen.Result
			for b.Loop() {
				var err error
				res, err = loadgen.Run(context.Background(), loadgen.Config{URL: c.url + "/hello", Concurrency: 64, Duration: 5 * time.Second})
				require.NoError(b, err)
			}
			cpu := cpuTime(b, pids) - cpu0
			require.Zero(b, res.Failed(), "failed requests")
			b.ReportMetric(res.Throughput, "req/s")
			b.ReportMetric(float64(res.P50.Microseconds()), "p50-µs")
			b.ReportMetric(float64(res.P99.Microseconds()), "p99-µs")
			b.ReportMetric(float64(cpu.Microseconds())/float64(res.Requests), "server-cpu-µs/req")
			b.ReportMetric(0, "ns/op")
			b.Logf("%s: %v; server CPU %v", bc.name, res, cpu)
		})
	}
}

// cpuTime is the user and system CPU time used so far by the processes,
// from /proc/<pid>/stat (in clock ticks of 10ms, Linux's USER_HZ).
func cpuTime(tb testing.TB, pids []int) time.Duration {
	tb.Helper()
	var ticks int64
	for _, pid := range pids {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		require.NoError(tb, err)
		s := string(b)
		// Fields after the command name: state is field 3; utime and
		// stime are fields 14 and 15.
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
		for _, v := range f[11:13] {
			n, err := strconv.ParseInt(v, 10, 64)
			require.NoError(tb, err)
			ticks += n
		}
	}
	return time.Duration(ticks) * 10 * time.Millisecond
}

// stress reports whether the long load experiments should run
// (CLUSTER_STRESS=1); they take about a minute.
func stress(t *testing.T) {
	if os.Getenv("CLUSTER_STRESS") == "" {
		t.Skip("set CLUSTER_STRESS=1 to run the long load experiments")
	}
}

// TestStressRollingRestarts: ten rolling restarts of four workers in 20s
// under load on new connections and on keep-alive connections at once:
// not one failed request.
//
//	CLUSTER_STRESS=1 go test -run StressRollingRestarts -v ./cluster/
func TestStressRollingRestarts(t *testing.T) {
	stress(t)
	c := startProgram(t, "", "serve", 4, "CLUSTER_TEST_WORKERS=4")
	const d = 21 * time.Second
	fresh := startLoad(t, loadgen.Config{URL: c.url, Concurrency: 16, Rate: 800, Duration: d,
		Transport: &http.Transport{DisableKeepAlives: true}})
	kept := startLoad(t, loadgen.Config{URL: c.url, Concurrency: 16, Rate: 800, Duration: d})
	for range 10 {
		time.Sleep(time.Second)
		from := c.mark()
		c.signal(syscall.SIGHUP)
		c.waitEvent(from, 20*time.Second, func(e event) bool { return e.Msg == "cluster: rolling restart done" })
	}
	rf, rk := fresh.wait(), kept.wait()
	t.Logf("new connection per request: %v", rf)
	t.Logf("keep-alive connections:     %v", rk)
	assert.Zero(t, rf.Failed(), "failed requests on new connections (%v)", rf.ErrorSamples)
	assert.Zero(t, rk.Failed(), "failed requests on keep-alive connections (%v)", rk.ErrorSamples)
	assert.Len(t, c.eventsSince(0, func(e event) bool { return e.Msg == "cluster: worker stopped" }), 40, "workers replaced")
}

// TestStressReuseportStop measures what the supervisor's shared socket
// avoids: two independent processes on one port through Listen
// (SO_REUSEPORT, one accept queue each); one of them drains and stops
// under load on new connections, ten times. Connections already queued on
// the stopping socket are reset by the kernel unless
// net.ipv4.tcp_migrate_req is 1. The test reports the failures it saw; it
// fails only when the load itself could not run.
//
//	CLUSTER_STRESS=1 go test -run StressReuseportStop -v ./cluster/
func TestStressReuseportStop(t *testing.T) {
	stress(t)
	ln, err := Listen(context.Background(), "tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := &http.Server{Handler: testHandler()}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	self, err := os.Executable()
	require.NoError(t, err)
	migrate := "absent (Linux < 5.14)"
	if b, err := os.ReadFile("/proc/sys/net/ipv4/tcp_migrate_req"); err == nil {
		migrate = strings.TrimSpace(string(b))
	}

	load := startLoad(t, loadgen.Config{URL: "http://" + ln.Addr().String(), Concurrency: 32, Duration: 12 * time.Second,
		Transport: &http.Transport{DisableKeepAlives: true}})
	for range 10 {
		cmd := exec.Command(self)
		cmd.Env = append(os.Environ(), envProgram+"=listen", "CLUSTER_TEST_ADDR="+ln.Addr().String())
		out, err := cmd.StdoutPipe()
		require.NoError(t, err)
		require.NoError(t, cmd.Start())
		_, err = io.ReadFull(out, make([]byte, len("listening\n")))
		require.NoError(t, err)
		time.Sleep(time.Second)
		require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
		require.NoError(t, cmd.Wait())
	}
	res := load.wait()
	t.Logf("tcp_migrate_req=%s; 10 graceful stops of one of two Listen processes: %v; failed %d %v",
		migrate, res, res.Failed(), res.ErrorSamples)
}
