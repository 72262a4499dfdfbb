package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/shipshape-go/shipshape/internal/loadgen"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestWorkersShareThePort: four workers take connections from the one
// socket; over 2,000 requests on new connections each one answers some.
func TestWorkersShareThePort(t *testing.T) {
	c := startProgram(t, "", "serve", 4, "CLUSTER_TEST_WORKERS=4")
	counts, err := whoServes(c.url, 2000, 8)
	require.NoError(t, err)
	total := 0
	var spread []string
	for pid, n := range counts {
		total += n
		spread = append(spread, fmt.Sprintf("%d:%d", pid, n))
	}
	slices.Sort(spread)
	t.Logf("requests per worker pid: %s", strings.Join(spread, " "))
	assert.Equal(t, 2000, total, "answered requests")
	assert.Len(t, counts, 4, "workers that answered (pid:count %v)", spread)
	for pid, n := range counts {
		assert.Positive(t, n, "requests answered by pid %d", pid)
	}
}

// TestKillWorker: a worker killed with SIGKILL is replaced within a second
// and the service keeps answering.
func TestKillWorker(t *testing.T) {
	c := startProgram(t, "", "run", 2, "CLUSTER_TEST_WORKERS=2", "CLUSTER_TEST_BACKOFF=100ms")
	ready := c.waitReady(0, 2, 10*time.Second)

	load := startLoad(t, loadgen.Config{URL: c.url, Concurrency: 8, Rate: 400, Duration: 3 * time.Second})
	time.Sleep(time.Second) // let the load run before the kill
	victim := ready[0].PID
	from := c.mark()
	killed := time.Now()
	require.NoError(t, syscall.Kill(victim, syscall.SIGKILL))
	e := c.waitEvent(from, 5*time.Second, func(e event) bool {
		return e.Msg == "cluster: worker ready" && *e.Worker == 0
	})
	replacedIn := time.Since(killed)
	t.Logf("worker 0 (pid %d) killed; replacement pid %d ready after %v", victim, e.PID, replacedIn)
	assert.NotEqual(t, victim, e.PID, "replacement pid")
	assert.Less(t, replacedIn, time.Second, "time to replace a killed worker")
	exit := c.waitEvent(from, time.Second, func(e event) bool { return e.Msg == "cluster: worker crashed" })
	assert.Equal(t, "signal: killed", exit.Status, "logged exit status")

	res := load.wait()
	t.Logf("load during the kill: %v", res)
	// Requests that the killed worker was answering at that instant are
	// lost unless the client retries (Go's client retries idempotent
	// requests on reused connections); the others must all succeed.
	assert.LessOrEqual(t, res.Failed(), int64(8), "failed requests (%v)", res.ErrorSamples)
	assert.Greater(t, res.Status[200], int64(800), "answered requests")
}

// TestCrashLoop: workers that exit at start are restarted with a growing
// backoff until the supervisor gives up and exits non-zero.
func TestCrashLoop(t *testing.T) {
	c := startProgram(t, "", "serve", 0, "CLUSTER_TEST_WORKERS=1", "CLUSTER_TEST_BACKOFF=20ms",
		"CLUSTER_TEST_CRASHLOOP=4", "CLUSTER_TEST_BROKEN=exit")
	code := c.waitExit(20 * time.Second)
	assert.Equal(t, 1, code, "supervisor exit code")
	c.waitEvent(0, time.Second, func(e event) bool { return e.Msg == "cluster: crash loop; stopping all workers" })
	failed := c.eventsSince(0, func(e event) bool { return e.Msg == "cluster: worker failed to start" })
	require.Len(t, failed, 4, "restarts before giving up")
	for i := 1; i < len(failed); i++ {
		assert.Greater(t, failed[i].Backoff, failed[i-1].Backoff, "backoff after failure %d (want growing)", i+1)
	}
	assert.Contains(t, failed[0].Error, "exited before it was ready", "logged failure")
	assert.Contains(t, failed[0].Error, "exit status 3", "logged failure")
}

// TestRollingRestart: SIGHUP under ~1,000 requests/s, each on a new
// connection, replaces every worker without one failed request.
func TestRollingRestart(t *testing.T) {
	c := startProgram(t, "", "serve", 3, "CLUSTER_TEST_WORKERS=3")
	old := c.waitReady(0, 3, 10*time.Second)

	load := startLoad(t, loadgen.Config{URL: c.url, Concurrency: 16, Rate: 1000, Duration: 4 * time.Second,
		Transport: &http.Transport{DisableKeepAlives: true}})
	time.Sleep(500 * time.Millisecond)
	from := c.mark()
	c.signal(syscall.SIGHUP)
	c.waitEvent(from, 20*time.Second, func(e event) bool { return e.Msg == "cluster: rolling restart done" })
	renewed := c.waitReady(from, 3, time.Second)
	res := load.wait()
	t.Logf("load during the rolling restart: %v", res)
	assert.Zero(t, res.Failed(), "failed requests (%v)", res.ErrorSamples)
	assert.Greater(t, res.Status[200], int64(3000), "answered requests")

	for id, e := range renewed {
		assert.NotContains(t, pidsOf(old), e.PID, "worker %d pid after the restart", id)
		assert.Equal(t, "rolling restart", e.Reason, "worker %d start reason", id)
	}
	stopped := c.eventsSince(from, func(e event) bool { return e.Msg == "cluster: worker stopped" })
	assert.Len(t, stopped, 3, "old workers drained")
	counts, err := whoServes(c.url, 100, 4)
	require.NoError(t, err)
	for pid := range counts {
		assert.Contains(t, pidsOf(renewed), pid, "pid answering after the restart")
	}
}

// TestBrokenRelease: when the binary on disk is replaced by one that never
// becomes ready, SIGHUP keeps the old workers serving.
func TestBrokenRelease(t *testing.T) {
	self, err := os.Executable()
	require.NoError(t, err)
	dir := t.TempDir()
	exe := filepath.Join(dir, "app")
	require.NoError(t, os.Symlink(self, exe))
	c := startProgram(t, exe, "serve", 2, "CLUSTER_TEST_WORKERS=2", "CLUSTER_TEST_READY=1s")
	old := c.waitReady(0, 2, 10*time.Second)

	// Deploy a release that hangs at start, the way a deploy should: write
	// it beside and rename it over the old path.
	script := filepath.Join(dir, "app.new")
	require.NoError(t, os.WriteFile(script, []byte("#!/bin/sh\nCLUSTER_TEST_BROKEN=hang exec "+self+" \"$@\"\n"), 0o755))
	require.NoError(t, os.Rename(script, exe))

	load := startLoad(t, loadgen.Config{URL: c.url, Concurrency: 4, Rate: 200, Duration: 2 * time.Second})
	from := c.mark()
	c.signal(syscall.SIGHUP)
	e := c.waitEvent(from, 10*time.Second, func(e event) bool {
		return e.Msg == "cluster: replacement failed; the old worker keeps serving"
	})
	assert.Contains(t, e.Error, "not ready within 1s", "logged failure")
	c.waitEvent(from, time.Second, func(e event) bool {
		return strings.HasPrefix(e.Msg, "cluster: rolling restart abandoned")
	})
	res := load.wait()
	t.Logf("load during the failed release: %v", res)
	assert.Zero(t, res.Failed(), "failed requests (%v)", res.ErrorSamples)
	assert.Empty(t, c.eventsSince(from, func(e event) bool { return e.Msg == "cluster: worker stopped" }),
		"old workers stopped")
	counts, err := whoServes(c.url, 50, 4)
	require.NoError(t, err)
	for pid := range counts {
		assert.Contains(t, pidsOf(old), pid, "pid answering after the failed release")
	}
}

// TestStopDrainsInFlight: on SIGTERM, requests in flight (2s) complete and
// the supervisor exits 0 within the shutdown timeout.
func TestStopDrainsInFlight(t *testing.T) {
	c := startProgram(t, "", "serve", 2, "CLUSTER_TEST_WORKERS=2", "CLUSTER_TEST_SHUTDOWN=5s")
	client := fresh()
	type result struct {
		body string
		err  error
	}
	results := make(chan result, 4)
	var started sync.WaitGroup
	for range 4 {
		started.Add(1)
		go func() {
			resp, err := client.Get(c.url + "/slow?d=2s")
			started.Done()
			if err != nil {
				results <- result{err: err}
				return
			}
			defer resp.Body.Close()
			b, err := io.ReadAll(resp.Body)
			results <- result{string(b), err}
		}()
	}
	started.Wait() // every request has its headers: it is in flight
	sent := time.Now()
	c.signal(syscall.SIGTERM)
	code := c.waitExit(10 * time.Second)
	took := time.Since(sent)
	for range 4 {
		r := <-results
		if assert.NoError(t, r.err, "slow request") {
			assert.Contains(t, r.body, "done", "slow request body")
		}
	}
	assert.Equal(t, 0, code, "supervisor exit code")
	assert.Less(t, took, 5*time.Second, "time from SIGTERM to exit")
	assert.GreaterOrEqual(t, took, 1500*time.Millisecond, "time from SIGTERM to exit (the slow requests take 2s)")
	assert.Len(t, c.eventsSince(0, func(e event) bool { return e.Msg == "cluster: worker stopped" }), 2, "workers stopped")
}

// TestMemoryLimit: a worker that grows past the cap is replaced, ready
// first and drained after, without one failed request.
func TestMemoryLimit(t *testing.T) {
	const limit = 200 << 20
	c := startProgram(t, "", "serve", 2, "CLUSTER_TEST_WORKERS=2", fmt.Sprintf("CLUSTER_TEST_MEMORY=%d", limit))
	load := startLoad(t, loadgen.Config{URL: c.url, Concurrency: 4, Rate: 300, Duration: 4 * time.Second})
	from := c.mark()
	pid, err := getPID(fresh(), c.url+"/alloc?mb=250")
	require.NoError(t, err)
	over := c.waitEvent(from, 5*time.Second, func(e event) bool {
		return e.Msg == "cluster: worker over the memory limit; replacing it"
	})
	assert.Equal(t, pid, over.PID, "worker over the limit")
	repl := c.waitEvent(from, 5*time.Second, func(e event) bool {
		return e.Msg == "cluster: worker ready" && e.Reason == "memory limit"
	})
	stopped := c.waitEvent(from, 5*time.Second, func(e event) bool {
		return e.Msg == "cluster: worker stopped" && e.PID == pid
	})
	assert.Less(t, c.indexOf(repl), c.indexOf(stopped), "replacement ready before the old worker stopped")
	res := load.wait()
	t.Logf("load during the replacement: %v", res)
	assert.Zero(t, res.Failed(), "failed requests (%v)", res.ErrorSamples)
}

// TestSupervisorKilled: SIGKILL on the supervisor takes every worker with
// it.
func TestSupervisorKilled(t *testing.T) {
	c := startProgram(t, "", "run", 2, "CLUSTER_TEST_WORKERS=2")
	pids := pidsOf(c.waitReady(0, 2, 10*time.Second))
	c.signal(syscall.SIGKILL)
	c.waitExit(5 * time.Second)
	deadline := time.Now().Add(5 * time.Second)
	for _, pid := range pids {
		for alive(pid) && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		assert.False(t, alive(pid), "worker %d alive after the supervisor was killed", pid)
	}
}

// TestListenTwoProcesses: this process and another one Listen on the same
// port and both get connections.
func TestListenTwoProcesses(t *testing.T) {
	ln, err := Listen(context.Background(), "tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := &http.Server{Handler: testHandler()}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })

	self, err := os.Executable()
	require.NoError(t, err)
	cmd := exec.Command(self)
	cmd.Env = append(os.Environ(), envProgram+"=listen", "CLUSTER_TEST_ADDR="+ln.Addr().String())
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	cmd.Stderr = os.Stderr
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	line := make([]byte, len("listening\n"))
	_, err = io.ReadFull(out, line)
	require.NoError(t, err, "child did not start listening")

	counts, err := whoServes("http://"+ln.Addr().String(), 200, 4)
	require.NoError(t, err)
	t.Logf("requests per pid: %v", counts)
	assert.Positive(t, counts[os.Getpid()], "requests this process answered")
	assert.Positive(t, counts[cmd.Process.Pid], "requests the other process answered")
}

// runningLoad is a load run in the background.
type runningLoad struct {
	t    *testing.T
	done chan struct{}
	res  loadgen.Result
	err  error
}

func startLoad(t *testing.T, cfg loadgen.Config) *runningLoad {
	l := &runningLoad{t: t, done: make(chan struct{})}
	go func() {
		defer close(l.done)
		l.res, l.err = loadgen.Run(context.Background(), cfg)
	}()
	t.Cleanup(func() { <-l.done })
	return l
}

func (l *runningLoad) wait() loadgen.Result {
	l.t.Helper()
	<-l.done
	require.NoError(l.t, l.err)
	return l.res
}

// TestUnixSocket: the supervisor can share a unix socket too; it survives
// a rolling restart (a worker's drain does not remove the path) and is
// removed when the supervisor stops.
func TestUnixSocket(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "app.sock")
	c := startProgram(t, "", "serve", 2, "CLUSTER_TEST_WORKERS=2", "CLUSTER_TEST_NETWORK=unix", "CLUSTER_TEST_ADDR="+sock)
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		DisableKeepAlives: true,
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		},
	}}
	_, err := getPID(client, "http://app/")
	require.NoError(t, err, "request over the unix socket")

	from := c.mark()
	c.signal(syscall.SIGHUP)
	c.waitEvent(from, 20*time.Second, func(e event) bool { return e.Msg == "cluster: rolling restart done" })
	renewed := c.waitReady(from, 2, time.Second)
	pid, err := getPID(client, "http://app/")
	require.NoError(t, err, "request after the rolling restart")
	assert.Contains(t, pidsOf(renewed), pid, "pid answering after the rolling restart")

	c.signal(syscall.SIGTERM)
	assert.Equal(t, 0, c.waitExit(10*time.Second), "supervisor exit code")
	assert.NoFileExists(t, sock, "socket path after the supervisor stopped")
}

// TestSecondSignalKills: a second stop signal during the drain kills the
// workers instead of waiting for their requests; a burst of them (signals
// queued before the supervisor handled the second) does the same.
func TestSecondSignalKills(t *testing.T) {
	tests := []struct {
		name  string
		burst bool // send every signal at once, without waiting for the drain
	}{
		{"after the drain began", false},
		{"burst of four", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := startProgram(t, "", "serve", 1, "CLUSTER_TEST_WORKERS=1", "CLUSTER_TEST_SHUTDOWN=30s")
			resp, err := fresh().Get(c.url + "/slow?d=30s")
			require.NoError(t, err)
			defer resp.Body.Close()
			from := c.mark()
			if tt.burst {
				// Two kinds of signal, so that the kernel cannot merge
				// them into one pending signal.
				for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT, syscall.SIGTERM, syscall.SIGINT} {
					c.signal(sig)
				}
			} else {
				c.signal(syscall.SIGTERM)
				c.waitEvent(from, 5*time.Second, func(e event) bool { return e.Msg == "cluster: stopping; draining workers" })
				c.signal(syscall.SIGTERM)
			}
			assert.Equal(t, 0, c.waitExit(10*time.Second), "supervisor exit code")
			_, err = io.ReadAll(resp.Body)
			assert.Error(t, err, "the slow request is cut off")
			stopped := c.waitEvent(from, time.Second, func(e event) bool { return e.Msg == "cluster: worker stopped" })
			assert.Equal(t, "signal: killed", stopped.Status, "worker exit status")
		})
	}
}

// TestWorkerSurvivesSIGHUP: a SIGHUP sent to every process of the program
// (pkill -HUP) does not kill the workers.
func TestWorkerSurvivesSIGHUP(t *testing.T) {
	c := startProgram(t, "", "serve", 1, "CLUSTER_TEST_WORKERS=1")
	worker := c.waitReady(0, 1, time.Second)[0].PID
	require.NoError(t, syscall.Kill(worker, syscall.SIGHUP))
	_, err := whoServes(c.url, 20, 2)
	require.NoError(t, err)
	c.signal(syscall.SIGTERM)
	assert.Equal(t, 0, c.waitExit(10*time.Second), "supervisor exit code")
	stopped := c.waitEvent(0, time.Second, func(e event) bool { return e.Msg == "cluster: worker stopped" })
	assert.Equal(t, worker, stopped.PID, "worker drained at the stop (not killed by SIGHUP before)")
	assert.Equal(t, "exit status 0", stopped.Status, "worker exit status")
}

// TestChildBeforeServe: a child process that the worker's main starts
// before it calls Serve inherits neither the supervisor's descriptors
// (the listening socket would outlive the worker in it) nor the variables
// that would make it a worker.
func TestChildBeforeServe(t *testing.T) {
	c := startProgram(t, "", "serve", 1, "CLUSTER_TEST_WORKERS=1", "CLUSTER_TEST_CHILD=1")
	e := c.waitEvent(0, time.Second, func(e event) bool { return e.Msg == "test program: child" })
	require.Empty(t, e.ProgError, "starting the child")
	own := strings.Fields(e.Own)
	require.Len(t, own, 3, "the worker's descriptors 3-5")
	require.True(t, strings.HasPrefix(own[0], "socket:"), "the worker's descriptor 3 is %q, want the listening socket", own[0])
	for _, target := range own {
		assert.NotContains(t, strings.Fields(e.FDs), target, "the child's descriptors")
	}
	assert.Empty(t, e.Vars, "cluster variables in the child's environment")
}

// TestWithListener: the wrapper (here connlimit.New, one
// connection per IP) sits between the shared socket and http.Server in
// each worker: a second connection from the same address is refused while
// the first is open, and accepted again once it is closed.
func TestWithListener(t *testing.T) {
	c := startProgram(t, "", "serve", 1, "CLUSTER_TEST_WORKERS=1", "CLUSTER_TEST_ONE_CONN_PER_IP=1")
	keepAlive := &http.Transport{}
	first := &http.Client{Timeout: 10 * time.Second, Transport: keepAlive}
	_, err := getPID(first, c.url)
	require.NoError(t, err, "the first connection is served, and stays open")

	second := fresh()
	_, err = getPID(second, c.url)
	require.Error(t, err, "a second connection from 127.0.0.1 while the first is open")

	keepAlive.CloseIdleConnections()
	require.Eventually(t, func() bool {
		_, err := getPID(fresh(), c.url)
		return err == nil
	}, 5*time.Second, 50*time.Millisecond, "served again once the first connection closed")
}

// TestWithListenerFails: a WithListener function that returns an error,
// or a nil listener without one, ends the worker with an error that says
// so, before it is ready; the supervisor sees a worker that failed to
// start and, restarts exhausted, gives up.
func TestWithListenerFails(t *testing.T) {
	tests := []struct {
		mode    string
		wantErr string
	}{
		{"error", "cluster: WithListener: test program: no listener for you"},
		{"nil", "cluster: WithListener: nil listener without an error"},
	}
	for _, tt := range tests {
		t.Run(tt.mode, func(t *testing.T) {
			c := startProgram(t, "", "serve", 0, "CLUSTER_TEST_WORKERS=1", "CLUSTER_TEST_BACKOFF=20ms",
				"CLUSTER_TEST_CRASHLOOP=1", "CLUSTER_TEST_LISTENER="+tt.mode)
			assert.Equal(t, 1, c.waitExit(20*time.Second), "supervisor exit code")
			c.waitEvent(0, 5*time.Second, func(e event) bool { // the worker's
				return e.Msg == "test program: exiting" && e.ProgError == tt.wantErr
			})
			failed := c.waitEvent(0, time.Second, func(e event) bool { return e.Msg == "cluster: worker failed to start" })
			assert.Contains(t, failed.Error, "exited before it was ready", "the supervisor's view")
			assert.Empty(t, c.eventsSince(0, func(e event) bool { return e.Msg == "cluster: worker ready" }), "no worker was ready")
		})
	}
}

// TestLogKeysAreNamespaced: the supervisor logs its attributes in a
// "cluster" group, so that a program whose logger carries an attribute of
// the same name (logger.With("pid", …)) keeps its own, and the worker's
// pid is cluster.pid.
func TestLogKeysAreNamespaced(t *testing.T) {
	c := startProgram(t, "", "serve", 2, "CLUSTER_TEST_WORKERS=2", "CLUSTER_TEST_LOG_PID=from-the-program")
	ready := c.waitReady(0, 2, 20*time.Second)
	counts, err := whoServes(c.url, 40, 4)
	require.NoError(t, err)
	for id, e := range ready {
		var rec map[string]any
		require.NoError(t, json.Unmarshal([]byte(e.line), &rec), "worker %d ready: %s", id, e.line)
		assert.Equal(t, "from-the-program", rec["pid"], "the program's own pid attribute, in %s", e.line)
		group, ok := rec["cluster"].(map[string]any)
		require.True(t, ok, "a cluster group in %s", e.line)
		assert.Equal(t, float64(id), group["worker"], "cluster.worker")
		assert.Equal(t, float64(e.PID), group["pid"], "cluster.pid")
	}
	for pid := range counts {
		assert.Contains(t, pidsOf(ready), pid, "a pid that answered is a cluster.pid of a ready worker")
	}
}
