package cluster

import (
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// openFiles returns the paths pid's descriptors point to.
func openFiles(t *testing.T, pid int) []string {
	t.Helper()
	dir := "/proc/" + strconv.Itoa(pid) + "/fd"
	ents, err := os.ReadDir(dir)
	require.NoError(t, err)
	var out []string
	for _, e := range ents {
		if target, err := os.Readlink(filepath.Join(dir, e.Name())); err == nil {
			out = append(out, target)
		}
	}
	return out
}

// markerPIDs returns the pids that opened the marker file (each writes
// its pid as it opens it).
func markerPIDs(t *testing.T, path string) []int {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	var pids []int
	for _, f := range strings.Fields(string(b)) {
		pid, err := strconv.Atoi(f)
		require.NoError(t, err)
		pids = append(pids, pid)
	}
	return pids
}

// TestServeFuncBuildsOnlyInWorkers: a file the ServeFunc builder opens is
// open in every worker and never in the supervisor, through the first
// starts, a kill -9 replacement and a rolling restart. The Serve case,
// which opens the file before Serve as a program must there, is the
// control: the same checks see the file in the supervisor.
func TestServeFuncBuildsOnlyInWorkers(t *testing.T) {
	tests := []struct {
		name         string
		mode         string
		inSupervisor bool
	}{
		{"ServeFunc", "service", false},
		{"Serve, opened before it", "serve", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			marker := filepath.Join(t.TempDir(), "service.log")
			c := startProgram(t, "", tt.mode, 2, "CLUSTER_TEST_WORKERS=2", "CLUSTER_TEST_OPEN_FILE="+marker)
			sup := c.cmd.Process.Pid
			check := func(ready map[int]event) {
				t.Helper()
				assert.Equal(t, tt.inSupervisor, contains(openFiles(t, sup), marker), "file open in the supervisor")
				assert.Equal(t, tt.inSupervisor, containsInt(markerPIDs(t, marker), sup), "supervisor opened the file")
				for id, e := range ready {
					assert.Contains(t, openFiles(t, e.PID), marker, "file open in worker %d", id)
				}
			}
			ready := c.waitReady(0, 2, 10*time.Second)
			check(ready)

			from := c.mark()
			require.NoError(t, syscall.Kill(ready[0].PID, syscall.SIGKILL))
			replaced := c.waitReady(from, 1, 20*time.Second)
			ready[0] = replaced[0]
			check(ready)

			from = c.mark()
			c.signal(syscall.SIGHUP)
			c.waitEvent(from, 30*time.Second, func(e event) bool { return e.Msg == "cluster: rolling restart done" })
			check(c.waitReady(from, 2, time.Second))

			c.signal(syscall.SIGTERM)
			assert.Equal(t, 0, c.waitExit(30*time.Second), "exit code")
		})
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func containsInt(list []int, n int) bool {
	for _, x := range list {
		if x == n {
			return true
		}
	}
	return false
}

// TestWorkerIncarnation: every worker process gets a new incarnation
// (1, 2, … in start order), while the slot id stays: a replacement has the
// id of the worker it replaces and an incarnation of its own. The worker
// sees both (WorkerID, WorkerIncarnation), and the supervisor logs both.
func TestWorkerIncarnation(t *testing.T) {
	c := startProgram(t, "", "serve", 2, "CLUSTER_TEST_WORKERS=2")
	ready := c.waitReady(0, 2, 10*time.Second)
	seen := map[uint64]int{} // incarnation → pid
	record := func(ready map[int]event) {
		t.Helper()
		for id, e := range ready {
			require.NotZero(t, e.Incarnation, "worker %d incarnation", id)
			_, dup := seen[e.Incarnation]
			assert.False(t, dup, "incarnation %d given twice", e.Incarnation)
			seen[e.Incarnation] = e.PID
		}
	}
	record(ready)
	assert.ElementsMatch(t, []uint64{1, 2}, []uint64{ready[0].Incarnation, ready[1].Incarnation}, "first incarnations")

	from := c.mark()
	require.NoError(t, syscall.Kill(ready[1].PID, syscall.SIGKILL))
	replaced := c.waitReady(from, 1, 20*time.Second)
	require.Contains(t, replaced, 1, "the replacement keeps id 1")
	assert.Equal(t, uint64(3), replaced[1].Incarnation, "the replacement's incarnation")
	crashed := c.waitEvent(from, 10*time.Second, func(e event) bool { return e.Msg == "cluster: worker crashed" })
	assert.Equal(t, ready[1].PID, crashed.PID, "crashed pid")
	assert.Equal(t, ready[1].Incarnation, crashed.Incarnation, "the crash report names the killed process's incarnation")
	record(replaced)

	from = c.mark()
	c.signal(syscall.SIGHUP)
	c.waitEvent(from, 30*time.Second, func(e event) bool { return e.Msg == "cluster: rolling restart done" })
	renewed := c.waitReady(from, 2, time.Second)
	record(renewed)
	assert.ElementsMatch(t, []uint64{4, 5}, []uint64{renewed[0].Incarnation, renewed[1].Incarnation}, "incarnations after SIGHUP")
	stopped := c.eventsSince(from, func(e event) bool { return e.Msg == "cluster: worker stopped" })
	for _, e := range stopped {
		assert.Equal(t, e.PID, seen[e.Incarnation], "stopped worker's incarnation is the one it started with")
	}

	// What each worker reports of itself matches what the supervisor gave.
	client := fresh()
	got := map[int]string{}
	for i := 0; i < 200 && len(got) < 2; i++ {
		resp, err := client.Get(c.url)
		require.NoError(t, err)
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		f := strings.Fields(string(b))
		require.Len(t, f, 4)
		pid, _ := strconv.Atoi(f[0])
		got[pid] = f[1] + " " + f[2]
	}
	for id, e := range renewed {
		assert.Equal(t, strconv.Itoa(id)+" "+strconv.FormatUint(e.Incarnation, 10), got[e.PID], "worker %d's own WorkerID and WorkerIncarnation", id)
	}
}

// TestTwoAddresses: with WithNamedAddr the same workers serve a second
// address (an admin port) with a server of its own, and a rolling restart
// moves both to the new workers.
func TestTwoAddresses(t *testing.T) {
	c := startProgram(t, "", "service", 2, "CLUSTER_TEST_WORKERS=2", "CLUSTER_TEST_ADMIN_ADDR=127.0.0.1:0")
	e := c.waitEvent(0, time.Second, func(e event) bool { return e.Msg == "cluster: supervisor started" })
	require.NotEmpty(t, e.AddrAdmin, "admin address logged")
	require.NotEqual(t, c.addr, e.AddrAdmin)
	admin := "http://" + e.AddrAdmin + "/"

	both := func(ready map[int]event) {
		t.Helper()
		for _, tc := range []struct{ url, suffix string }{{c.url, "HTTP/1.1"}, {admin, "admin"}} {
			pids := map[int]int{}
			client := fresh()
			for i := 0; i < 200 && len(pids) < 2; i++ {
				resp, err := client.Get(tc.url)
				require.NoError(t, err)
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				require.Equal(t, http.StatusOK, resp.StatusCode)
				require.True(t, strings.HasSuffix(strings.TrimSpace(string(b)), tc.suffix), "body %q from %s", b, tc.url)
				pid, _ := strconv.Atoi(strings.Fields(string(b))[0])
				pids[pid]++
			}
			assert.ElementsMatch(t, pidsOf(ready), keys(pids), "workers answering %s", tc.url)
		}
	}
	both(c.waitReady(0, 2, 10*time.Second))

	from := c.mark()
	c.signal(syscall.SIGHUP)
	c.waitEvent(from, 30*time.Second, func(e event) bool { return e.Msg == "cluster: rolling restart done" })
	both(c.waitReady(from, 2, time.Second))
	c.signal(syscall.SIGTERM)
	assert.Equal(t, 0, c.waitExit(30*time.Second), "exit code")
}
