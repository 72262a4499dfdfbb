package cluster

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/shipshape-go/shipshape/internal/loadgen"
)

// controlStatus asks the supervisor for its status.
func controlStatus(t *testing.T, path string) *Status {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := Control(path).Status(ctx)
	require.NoError(t, err)
	return st
}

// byWorker returns the status's processes by worker id; it fails on two
// processes of one id (none is draining in these checks).
func byWorker(t *testing.T, st *Status) map[int]WorkerStatus {
	t.Helper()
	out := map[int]WorkerStatus{}
	for _, p := range st.Processes {
		_, dup := out[p.Worker]
		require.False(t, dup, "two processes for worker %d: %+v", p.Worker, st.Processes)
		out[p.Worker] = p
	}
	return out
}

// assertMatches checks that st lists exactly the workers of ready, with
// their pids and incarnations, all ready.
func assertMatches(t *testing.T, st *Status, ready map[int]event) {
	t.Helper()
	got := byWorker(t, st)
	require.Len(t, got, len(ready), "processes: %+v", st.Processes)
	for id, e := range ready {
		p := got[id]
		assert.Equal(t, e.PID, p.PID, "worker %d pid", id)
		assert.Equal(t, e.Incarnation, p.Incarnation, "worker %d incarnation", id)
		assert.Equal(t, StateReady, p.State, "worker %d state", id)
		assert.Positive(t, p.RSS, "worker %d RSS", id)
		assert.Positive(t, p.Uptime, "worker %d uptime", id)
	}
}

// TestControlStatus: the status lists every worker with the pid the
// supervisor logged, after a kill -9 (the replacement, one restart, the
// last exit) and after a SIGHUP (every pid new); reload and stop do what
// SIGHUP and SIGTERM do, and wait until it is done.
func TestControlStatus(t *testing.T) {
	path := filepath.Join(t.TempDir(), "run", "control.sock")
	c := startProgram(t, "", "serve", 2, "CLUSTER_TEST_WORKERS=2", "CLUSTER_TEST_CONTROL="+path)
	ready := c.waitReady(0, 2, 10*time.Second)

	fi, err := os.Stat(path)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm(), "socket mode")
	assert.NotZero(t, fi.Mode()&os.ModeSocket, "a socket")
	di, err := os.Stat(filepath.Dir(path))
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o700), di.Mode().Perm(), "directory created 0700")

	st := controlStatus(t, path)
	assert.Equal(t, c.cmd.Process.Pid, st.PID, "supervisor pid")
	assert.Equal(t, c.addr, st.Addr)
	assert.Equal(t, 2, st.Workers)
	assertMatches(t, st, ready)
	for _, p := range st.Processes {
		assert.Zero(t, p.Restarts)
		assert.Nil(t, p.LastExit)
	}

	t.Run("after kill -9", func(t *testing.T) {
		from := c.mark()
		killed := ready[0].PID
		require.NoError(t, syscall.Kill(killed, syscall.SIGKILL))
		replaced := c.waitReady(from, 1, 20*time.Second)
		ready[0] = replaced[0]
		st := controlStatus(t, path)
		assertMatches(t, st, ready)
		w := byWorker(t, st)
		assert.Equal(t, 1, w[0].Restarts, "worker 0 restarts")
		require.NotNil(t, w[0].LastExit)
		assert.Equal(t, killed, w[0].LastExit.PID)
		assert.Equal(t, "crash", w[0].LastExit.Cause)
		assert.Equal(t, "signal: killed", w[0].LastExit.Status)
		assert.Zero(t, w[1].Restarts, "worker 1 restarts")
	})

	t.Run("after SIGHUP", func(t *testing.T) {
		from := c.mark()
		c.signal(syscall.SIGHUP)
		c.waitEvent(from, 30*time.Second, func(e event) bool { return e.Msg == "cluster: rolling restart done" })
		ready = c.waitReady(from, 2, time.Second)
		st := controlStatus(t, path)
		assertMatches(t, st, ready)
		w := byWorker(t, st)
		assert.Equal(t, 1, w[0].Restarts, "a rolling restart is not counted")
		for id, p := range w {
			require.NotNil(t, p.LastExit, "worker %d", id)
			assert.Equal(t, "rolling restart", p.LastExit.Cause, "worker %d", id)
		}
	})

	t.Run("reload", func(t *testing.T) {
		from := c.mark()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		require.NoError(t, Control(path).Reload(ctx))
		// Reload returned: the restart is done, and the status says so.
		ready = c.waitReady(from, 2, time.Second)
		assertMatches(t, controlStatus(t, path), ready)
	})

	t.Run("table and JSON", func(t *testing.T) {
		for _, args := range []string{"status", "status -json"} {
			var out bytes.Buffer
			require.NoError(t, ControlCommand(context.Background(), path, strings.Fields(args), &out))
			for _, e := range ready {
				assert.Contains(t, out.String(), " "+strconv.Itoa(e.PID), "%s lists pid %d", args, e.PID)
			}
		}
		var out bytes.Buffer
		err := ControlCommand(context.Background(), path, []string{"scale", "zero"}, &out)
		assert.ErrorContains(t, err, `cluster: control: scale "zero": want a number of workers >= 1`)
		err = ControlCommand(context.Background(), path, []string{"restart"}, &out)
		assert.ErrorContains(t, err, "cluster: control: usage: status [-json] | reload | stop | scale N")
	})

	t.Run("stop", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		require.NoError(t, Control(path).Stop(ctx))
		assert.Equal(t, 0, c.waitExit(30*time.Second), "exit code")
		_, err := os.Lstat(path)
		assert.ErrorIs(t, err, os.ErrNotExist, "socket removed")
	})
}

// TestControlScale: scale 2→4→1 under ~1,000 requests a second, each on
// a new connection, without one failed request; the status follows.
func TestControlScale(t *testing.T) {
	path := filepath.Join(t.TempDir(), "control.sock")
	c := startProgram(t, "", "serve", 2, "CLUSTER_TEST_WORKERS=2", "CLUSTER_TEST_CONTROL="+path)
	load := startLoad(t, loadgen.Config{URL: c.url, Concurrency: 16, Rate: 1000, Duration: 4 * time.Second,
		Transport: &http.Transport{DisableKeepAlives: true}})
	time.Sleep(300 * time.Millisecond) // liveness only: the load is running
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cc := Control(path)
	for _, n := range []int{4, 1} {
		require.NoError(t, cc.Scale(ctx, n), "scale to %d", n)
		st := controlStatus(t, path)
		assert.Equal(t, n, st.Workers, "workers after scale %d", n)
		w := byWorker(t, st)
		require.Len(t, w, n, "processes after scale %d: %+v", n, st.Processes)
		for id := range n {
			assert.Equal(t, StateReady, w[id].State, "worker %d after scale %d", id, n)
		}
	}
	res := load.wait()
	t.Logf("load during the scaling: %v", res)
	assert.Zero(t, res.Failed(), "failed requests (%v)", res.ErrorSamples)
	assert.Greater(t, res.Status[200], int64(2000), "answered requests")

	w := byWorker(t, controlStatus(t, path))
	counts, err := whoServes(c.url, 50, 4)
	require.NoError(t, err)
	assert.Equal(t, map[int]int{w[0].PID: 50}, counts, "the one worker left answers everything")
	// A bad count is refused by the supervisor too, not only the client.
	resp := rawControl(t, path, `{"cmd":"scale","workers":0}`)
	assert.Contains(t, resp, `"error":"scale: 0 workers, want >= 1"`)
	resp = rawControl(t, path, `{"cmd":"restart"}`)
	assert.Contains(t, resp, `"error":"unknown command \"restart\""`)
}

// rawControl sends one line to the control socket and returns the answer.
func rawControl(t *testing.T, path, line string) string {
	t.Helper()
	conn, err := net.Dial("unix", path)
	require.NoError(t, err)
	defer conn.Close()
	require.NoError(t, conn.SetDeadline(time.Now().Add(10*time.Second)))
	_, err = io.WriteString(conn, line+"\n")
	require.NoError(t, err)
	b := make([]byte, 4096)
	n, err := conn.Read(b)
	require.NoError(t, err)
	return string(b[:n])
}

// TestControlRefusesOtherUsers: a process of another user (nobody) cannot
// reach the socket (0600), and when the socket's mode is opened up by
// mistake the supervisor still refuses it (SO_PEERCRED), logs the refusal
// and keeps answering its own user.
func TestControlRefusesOtherUsers(t *testing.T) {
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("needs root to start a process as another user")
		}
		t.Skip("needs root to start a process as another user")
	}
	// A directory nobody may enter, holding a copy of this test binary
	// that nobody may run (the build directory is 0700).
	dir, err := os.MkdirTemp("", "cluster-ctl-")
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(dir) })
	require.NoError(t, os.Chmod(dir, 0o755))
	exe, err := os.Executable()
	require.NoError(t, err)
	b, err := os.ReadFile(exe)
	require.NoError(t, err)
	client := filepath.Join(dir, "cluster.test")
	require.NoError(t, os.WriteFile(client, b, 0o755))
	path := filepath.Join(dir, "control.sock")

	c := startProgram(t, "", "serve", 1, "CLUSTER_TEST_WORKERS=1", "CLUSTER_TEST_CONTROL="+path)
	asNobody := func() (string, error) {
		cmd := exec.Command(client)
		cmd.Env = []string{envProgram + "=ctl", "CLUSTER_TEST_CONTROL=" + path, "CLUSTER_TEST_CTL=status -json"}
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
		out, err := cmd.CombinedOutput()
		return string(out), err
	}

	out, err := asNobody()
	require.Error(t, err, "nobody's client succeeded: %s", out)
	assert.Contains(t, out, "permission denied", "the 0600 socket keeps nobody out")

	from := c.mark()
	require.NoError(t, os.Chmod(path, 0o666))
	out, err = asNobody()
	require.Error(t, err, "nobody's client succeeded: %s", out)
	assert.Contains(t, out, "refused: only the supervisor's user or root may connect", "the peer check")
	e := c.waitEvent(from, 10*time.Second, func(e event) bool { return e.Msg == "cluster: control: connection refused" })
	assert.Contains(t, e.line, `"uid":65534`, "the refusal names the user")

	assert.Len(t, controlStatus(t, path).Processes, 1, "root is still answered")
}

// TestListenControl: what the supervisor refuses to create its socket in,
// and the stale socket it replaces.
func TestListenControl(t *testing.T) {
	t.Run("directory writable by others", func(t *testing.T) {
		dir := t.TempDir()
		require.NoError(t, os.Chmod(dir, 0o777))
		_, err := listenControl(filepath.Join(dir, "c.sock"))
		assert.ErrorContains(t, err, "is writable by others")
	})
	t.Run("not a socket", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "c.sock")
		require.NoError(t, os.WriteFile(path, nil, 0o600))
		_, err := listenControl(path)
		assert.ErrorContains(t, err, "exists and is not a socket")
	})
	t.Run("a live supervisor's socket", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "c.sock")
		ln, err := listenControl(path)
		require.NoError(t, err)
		defer ln.Close()
		_, err = listenControl(path)
		assert.ErrorContains(t, err, "another supervisor is listening on it")
	})
	t.Run("stale socket", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "c.sock")
		ln, err := listenControl(path)
		require.NoError(t, err)
		ln.SetUnlinkOnClose(false) // as a killed supervisor leaves it
		ln.Close()
		ln, err = listenControl(path)
		require.NoError(t, err, "a socket nobody answers on is replaced")
		ln.Close()
	})
	t.Run("empty path", func(t *testing.T) {
		_, err := newConfig([]Option{WithControl("")})
		assert.EqualError(t, err, "cluster: WithControl: empty path")
	})
}
