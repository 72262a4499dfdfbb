package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/shipshape-go/shipshape/cluster"
	"github.com/shipshape-go/shipshape/internal/testenv"
	"github.com/shipshape-go/shipshape/sentryreport/sentrytest"
)

// TestClusterSharesLimit builds the example, runs it with two workers
// counting in the supervisor's shared table (no REDIS_URL) and then on one
// Redis, and checks that the rate limit holds for the cluster as a whole.
// Then one worker is killed with SIGKILL and SIGTERM stops the rest: the
// one access log of the service holds every request's line, the killed
// worker's included.
func TestClusterSharesLimit(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the example")
	}
	exe := buildExample(t)
	t.Run("shared table", func(t *testing.T) { testClusterSharesLimit(t, exe, "") })
	t.Run("redis", func(t *testing.T) {
		rds := testenv.StartRedis(t)
		testClusterSharesLimit(t, exe, "redis://"+rds.Addr+"/0")
	})
}

func testClusterSharesLimit(t *testing.T, exe, redisURL string) {

	logDir := t.TempDir()
	port := testenv.FreePort(t)
	cmd := exec.Command(exe, "-workers", "2", "-addr", testenv.Addr(port), "-log-dir", logDir,
		"-log-format", "none", "-rate-limit", "20", "-slow-after", "0", "-control", "")
	cmd.Env = append(os.Environ(), "REDIS_URL="+redisURL)
	stderr, err := cmd.StderrPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	exited := make(chan error, 1)
	var logMu sync.Mutex
	var logs strings.Builder
	ready := make(chan int, 4) // the pids of the workers that became ready
	readyPID := regexp.MustCompile(`msg="cluster: worker ready" .*cluster\.pid=(\d+)`)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			logMu.Lock()
			logs.WriteString(sc.Text() + "\n")
			logMu.Unlock()
			if m := readyPID.FindStringSubmatch(sc.Text()); m != nil {
				pid, _ := strconv.Atoi(m[1])
				ready <- pid
			}
		}
		exited <- cmd.Wait()
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		if t.Failed() {
			logMu.Lock()
			t.Logf("supervisor output:\n%s", logs.String())
			logMu.Unlock()
		}
	})
	var pids []int
	for range 2 {
		select {
		case pid := <-ready:
			pids = append(pids, pid)
		case <-time.After(30 * time.Second):
			t.Fatal("workers not ready")
		}
	}

	// 60 requests on new connections: exactly 20 admitted across both
	// workers, the rest 429.
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	codes := map[int]int{}
	for range 60 {
		resp, err := client.Get("http://" + testenv.Addr(port) + "/api/hello")
		require.NoError(t, err)
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		codes[resp.StatusCode]++
	}
	assert.Equal(t, map[int]int{200: 20, 429: 40}, codes, "the limit holds for the cluster, not per worker")

	// A worker dies without a chance to flush anything; its replacement
	// starts.
	require.NoError(t, syscall.Kill(pids[0], syscall.SIGKILL))
	select {
	case <-ready:
	case <-time.After(30 * time.Second):
		t.Fatal("no replacement for the killed worker")
	}
	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	select {
	case err := <-exited:
		require.NoError(t, err, "exit status after SIGTERM")
	case <-time.After(30 * time.Second):
		t.Fatal("supervisor did not exit after SIGTERM")
	}

	// One access log for the service, with every request once.
	files, err := filepath.Glob(filepath.Join(logDir, "*"))
	require.NoError(t, err)
	require.Equal(t, []string{filepath.Join(logDir, "access.log")}, files, "one access log, written by the supervisor")
	data, err := os.ReadFile(files[0])
	require.NoError(t, err)
	line := regexp.MustCompile(`^127\.0\.0\.1 - - \[[^]]+\] "GET /api/hello HTTP/1\.1" (200|429) \d+ "-" "Go-http-client/1\.1"$`)
	lines := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
	for _, l := range lines {
		assert.Regexp(t, line, l)
	}
	assert.Len(t, lines, 60, "every request logged once, the killed worker's too")
}

func TestExitCodes(t *testing.T) {
	none := func(string) string { return "" }
	assert.Equal(t, 0, run([]string{"-h"}, none))
	assert.Equal(t, 2, run([]string{"-workers", "x"}, none))
	assert.Equal(t, 1, run([]string{"-healthcheck", "http://127.0.0.1:1/"}, none))
}

// buildExample builds the example into a temporary directory.
func buildExample(t *testing.T) string {
	t.Helper()
	goBin, err := exec.LookPath("go")
	require.NoError(t, err)
	exe := filepath.Join(t.TempDir(), "cluster")
	out, err := exec.Command(goBin, "build", "-o", exe, ".").CombinedOutput()
	require.NoError(t, err, "go build: %s", out)
	return exe
}

// TestClusterControl runs the example with a control socket and steers it
// with the same binary's -ctl: the status table and JSON list the
// workers, scale changes their number, stop ends the supervisor.
func TestClusterControl(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the example")
	}
	exe := buildExample(t)
	sock := filepath.Join(t.TempDir(), "run", "control.sock")
	port := testenv.FreePort(t)
	cmd := exec.Command(exe, "-workers", "2", "-addr", testenv.Addr(port), "-log-dir", "",
		"-log-format", "none", "-control", sock)
	var logs syncBuffer
	cmd.Stderr = &logs
	require.NoError(t, cmd.Start())
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		if t.Failed() {
			t.Logf("supervisor output:\n%s", logs.String())
		}
	})
	ctl := func(args string) string {
		t.Helper()
		out, err := exec.Command(exe, "-control", sock, "-ctl", args).CombinedOutput()
		require.NoError(t, err, "-ctl %s: %s", args, out)
		return string(out)
	}
	status := func() cluster.Status {
		t.Helper()
		var st cluster.Status
		require.NoError(t, json.Unmarshal([]byte(ctl("status -json")), &st))
		return st
	}
	ready := func(n int) cluster.Status {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			if _, err := os.Stat(sock); err == nil {
				st := status()
				up := 0
				for _, p := range st.Processes {
					if p.State == cluster.StateReady {
						up++
					}
				}
				if up == n && len(st.Processes) == n {
					return st
				}
			}
			require.True(t, time.Now().Before(deadline), "%d workers not ready within 30s", n)
			time.Sleep(50 * time.Millisecond) // polling for liveness, not timing
		}
	}

	st := ready(2)
	assert.Equal(t, cmd.Process.Pid, st.PID, "supervisor pid")
	table := ctl("status")
	for _, p := range st.Processes {
		assert.Regexp(t, fmt.Sprintf(`(?m)^%d\s+%d\s+%d\s+ready\s`, p.Worker, p.Incarnation, p.PID), table, "table line of worker %d", p.Worker)
	}

	assert.Equal(t, "3 workers\n", ctl("scale 3"))
	st = status()
	assert.Equal(t, 3, st.Workers)
	assert.Len(t, st.Processes, 3)
	resp, err := http.Get("http://" + testenv.Addr(port) + "/healthz")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)

	assert.Equal(t, "stopped\n", ctl("stop"))
	select {
	case err := <-exited:
		require.NoError(t, err, "exit status after -ctl stop")
	case <-time.After(30 * time.Second):
		t.Fatal("supervisor still running after -ctl stop returned")
	}
}

// syncBuffer is a bytes.Buffer safe for the process's writes and the
// test's reads.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// TestClusterReportsCrashesToSentry runs the example with SENTRY_DSN
// pointing at a loopback envelope server, kills a worker with SIGKILL and
// checks that the supervisor sent exactly one event for it, naming the
// worker, its pid and the reason; the SIGTERM drain sends none.
func TestClusterReportsCrashesToSentry(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the example")
	}
	srv := sentrytest.NewServer(t)
	exe := buildExample(t)
	port := testenv.FreePort(t)
	cmd := exec.Command(exe, "-workers", "2", "-addr", testenv.Addr(port), "-log-dir", "",
		"-log-format", "none", "-control", "")
	cmd.Env = append(os.Environ(), "SENTRY_DSN="+srv.DSN())
	var logs syncBuffer
	cmd.Stderr = &logs
	require.NoError(t, cmd.Start())
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		if t.Failed() {
			t.Logf("supervisor output:\n%s", logs.String())
		}
	})
	readyPID := regexp.MustCompile(`msg="cluster: worker ready" .*cluster\.pid=(\d+)`)
	var pids []int
	deadline := time.Now().Add(30 * time.Second)
	for len(pids) < 2 {
		require.True(t, time.Now().Before(deadline), "workers not ready within 30s")
		pids = pids[:0]
		for _, m := range readyPID.FindAllStringSubmatch(logs.String(), -1) {
			pid, _ := strconv.Atoi(m[1])
			pids = append(pids, pid)
		}
		time.Sleep(50 * time.Millisecond) // polling for liveness, not timing
	}

	require.NoError(t, syscall.Kill(pids[0], syscall.SIGKILL))
	for len(srv.Events()) == 0 {
		require.True(t, time.Now().Before(deadline.Add(30*time.Second)), "no Sentry event for the killed worker")
		time.Sleep(50 * time.Millisecond) // polling for liveness, not timing
	}
	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	select {
	case err := <-exited:
		require.NoError(t, err, "exit status after SIGTERM")
	case <-time.After(30 * time.Second):
		t.Fatal("supervisor did not exit after SIGTERM")
	}
	events := srv.Events()
	require.Len(t, events, 1, "one event for the kill, none for the drain")
	ev := events[0]
	assert.Equal(t, "signal", ev.Tags["reason"])
	assert.Equal(t, strconv.Itoa(pids[0]), ev.Tags["pid"])
	assert.Contains(t, []string{"0", "1"}, ev.Tags["worker"])
	require.Len(t, ev.Exception, 1)
	assert.Equal(t, "SIGKILL", ev.Exception[0].Type)
}
