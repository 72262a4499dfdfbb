package cluster

import (
	"encoding/json"
	"errors"
	"fmt"
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

const (
	msgCrashed = "cluster: worker crashed"
	msgHandler = "test program: crash handler"
	testPkg    = "github.com/shipshape-go/shipshape/cluster"
)

// raceLog keeps the race detector's reports of the program in a file:
// the concurrent map writes are a data race on purpose.
func raceLog(t *testing.T) string {
	return "GORACE=atexit_sleep_ms=0 log_path=" + filepath.Join(t.TempDir(), "race")
}

// crashesSince returns the supervisor's crash records and the handler's
// calls since from.
func crashesSince(t *testing.T, c *testCluster, from int) (records, handled []crashEvent) {
	t.Helper()
	for _, e := range c.eventsSince(from, func(e event) bool { return e.Msg == msgCrashed || e.Msg == msgHandler }) {
		ce, err := decodeCrash(e)
		require.NoError(t, err, "decode %s", e.line)
		if e.Msg == msgCrashed {
			records = append(records, ce)
		} else {
			require.NotNil(t, ce.Crash, "crash in %s", e.line)
			handled = append(handled, ce)
		}
	}
	return records, handled
}

// TestCrashReports: a worker that panics in a plain goroutine, one with
// concurrent map writes, one that calls os.Exit(3), one killed with
// SIGKILL and one over the memory cap each produce exactly one crash
// report, logged and handed to the crash handler, with the right reason
// and, where the process could say where, the function that crashed as
// culprit. A rolling restart and the SIGTERM drain report nothing.
func TestCrashReports(t *testing.T) {
	const limit = 200 << 20
	c := startProgram(t, "", "crash", 1, "CLUSTER_TEST_WORKERS=1", "CLUSTER_TEST_CRASHLOOP=20",
		fmt.Sprintf("CLUSTER_TEST_MEMORY=%d", limit), raceLog(t))
	worker := c.waitReady(0, 1, time.Second)[0].PID

	get := func(kind string) func() {
		return func() { _, _ = getPID(fresh(), c.url+"/crash?kind="+kind) } // the worker may die before it answers
	}
	steps := []struct {
		name     string
		trigger  func()
		reason   Reason
		culprit  string // "": no stack to tell
		message  string // prefix
		exitCode int
		signal   string
	}{
		{"panic in a plain goroutine", get("goroutine"), ReasonPanic, testPkg + ".crashPanicGoroutine",
			"panic: test program: a plain goroutine panics", 2, ""},
		{"concurrent map writes", get("mapwrites"), ReasonFatalError, testPkg + ".crashMapWriter",
			"fatal error: concurrent map writes", 2, ""},
		{"os.Exit(3)", get("exit"), ReasonExitCode, "", "exit status 3", 3, ""},
		{"SIGKILL from outside", func() { require.NoError(t, syscall.Kill(worker, syscall.SIGKILL)) },
			ReasonSignal, "", "signal: killed", -1, "SIGKILL"},
		{"over the memory cap", get("alloc&mb=250"), ReasonMemoryCap, testPkg + ".crashAlloc",
			"resident set of", -1, ""},
	}
	for _, st := range steps {
		from := c.mark()
		victim := worker
		st.trigger()
		c.waitEvent(from, 20*time.Second, func(e event) bool { return e.Msg == msgHandler })
		next := c.waitEvent(from, 20*time.Second, func(e event) bool { return e.Msg == "cluster: worker ready" })
		if st.reason == ReasonMemoryCap { // the replacement is ready before the old worker drains
			c.waitEvent(from, 10*time.Second, func(e event) bool { return e.Msg == "cluster: worker stopped" && e.PID == victim })
		}
		worker = next.PID
		records, handled := crashesSince(t, c, from)
		require.Len(t, records, 1, "%s: crash records", st.name)
		require.Len(t, handled, 1, "%s: handler calls", st.name)
		rec, got := records[0].Cluster, *handled[0].Crash
		t.Logf("%s: %s %q culprit=%q", st.name, got.Reason, got.Message, rec.Culprit)

		assert.Equal(t, victim, got.PID, "%s: pid", st.name)
		assert.Equal(t, 0, got.Worker, "%s: worker", st.name)
		assert.Equal(t, st.reason, got.Reason, "%s: reason", st.name)
		assert.True(t, strings.HasPrefix(got.Message, st.message), "%s: message %q, want %q…", st.name, got.Message, st.message)
		assert.Equal(t, st.signal, got.Signal, "%s: signal", st.name)
		if st.reason != ReasonMemoryCap { // drained: whatever its exit was
			assert.Equal(t, st.exitCode, got.ExitCode, "%s: exit code", st.name)
		}
		assert.Positive(t, got.Uptime, "%s: uptime", st.name)
		assert.Zero(t, got.Repeats, "%s: repeats", st.name)
		assert.False(t, got.CrashLoop, "%s: crash loop", st.name)

		assert.Equal(t, string(got.Reason), rec.Reason, "%s: logged reason", st.name)
		assert.Equal(t, got.Message, rec.Message, "%s: logged message", st.name)
		assert.Equal(t, victim, rec.PID, "%s: logged pid", st.name)
		assert.Equal(t, got.Status, rec.Status, "%s: logged status", st.name)

		culprit, ok := got.Culprit()
		if st.culprit == "" {
			assert.False(t, ok, "%s: culprit %+v of a process that said nothing", st.name, culprit)
			assert.Empty(t, rec.Stack, "%s: logged stack", st.name)
			continue
		}
		require.True(t, ok, "%s: a culprit in %+v", st.name, got.Stack())
		assert.Equal(t, st.culprit, culprit.Function, "%s: culprit", st.name)
		assert.True(t, strings.HasSuffix(culprit.File, "cluster/crash_program_test.go"), "%s: culprit file %s", st.name, culprit.File)
		assert.Equal(t, testPkg, culprit.Package, "%s: culprit package", st.name)
		assert.Contains(t, rec.Culprit, st.culprit+" (", "%s: logged culprit", st.name)
		assert.Contains(t, rec.Stack, st.culprit+"\n\t", "%s: logged stack", st.name)
		for _, f := range got.Stack() {
			if strings.HasPrefix(f.Function, "runtime.") || strings.HasPrefix(f.Function, "internal/") || strings.HasPrefix(f.Function, "net/http.") {
				assert.False(t, f.InApp, "%s: %s in app", st.name, f.Function)
			}
		}
		switch st.reason {
		case ReasonMemoryCap:
			assert.Greater(t, got.RSS, int64(limit), "%s: rss", st.name)
			require.NotEmpty(t, got.Heap, "%s: heap sites", st.name)
			// The dump is taken once the resident set is over the cap, which
			// may be while crashAlloc is still allocating: its site holds most
			// of the cap, not necessarily all 250 MiB.
			assert.Greater(t, got.Heap[0].Bytes, int64(limit/2), "%s: bytes held by the largest site", st.name)
			assert.NotEmpty(t, got.Goroutines, "%s: goroutines of the dump", st.name)
		default:
			require.NotEmpty(t, got.Goroutines, "%s: goroutines", st.name)
			assert.True(t, got.Goroutines[0].Crashed, "%s: the crashing goroutine comes first", st.name)
			assert.Equal(t, got.Goroutines[0].ID, rec.Goroutine, "%s: logged goroutine", st.name)
		}
	}

	from := c.mark()
	c.signal(syscall.SIGHUP)
	c.waitEvent(from, 20*time.Second, func(e event) bool { return e.Msg == "cluster: rolling restart done" })
	c.signal(syscall.SIGTERM)
	assert.Equal(t, 0, c.waitExit(20*time.Second), "supervisor exit code")
	c.waitEvent(from, 5*time.Second, func(e event) bool { return e.Msg == "cluster: supervisor stopped" })
	records, handled := crashesSince(t, c, from)
	assert.Empty(t, records, "crash records of the rolling restart and the drain")
	assert.Empty(t, handled, "handler calls of the rolling restart and the drain")
}

// TestCrashReportNotReady: a worker that never becomes ready is sent
// SIGQUIT, so that its report shows where it hung; the crash loop that
// follows stops the supervisor, and its last report says so.
func TestCrashReportNotReady(t *testing.T) {
	c := startProgram(t, "", "crash", 0, "CLUSTER_TEST_WORKERS=1", "CLUSTER_TEST_CRASHLOOP=1",
		"CLUSTER_TEST_READY=300ms", "CLUSTER_TEST_CRASH_AT_START=hang")
	assert.Equal(t, 1, c.waitExit(20*time.Second), "supervisor exit code")
	c.waitEvent(0, 5*time.Second, func(e event) bool { return e.Msg == "test program: exiting" })
	records, handled := crashesSince(t, c, 0)
	require.Len(t, records, 2, "crash records")
	require.Len(t, handled, 2, "handler calls (two: the last is the crash loop's)")
	for i, h := range handled {
		got := *h.Crash
		assert.Equal(t, ReasonNotReady, got.Reason, "reason %d", i)
		assert.Equal(t, "not ready within 300ms", got.Message, "message %d", i)
		assert.Equal(t, i == 1, got.CrashLoop, "crash loop %d", i)
		assert.Equal(t, i == 1, records[i].Cluster.CrashLoop, "logged crash loop %d", i)
		culprit, ok := got.Culprit()
		require.True(t, ok, "a culprit among %d goroutines", len(got.Goroutines))
		assert.Equal(t, testPkg+".crashHang", culprit.Function, "culprit: where the main goroutine hung")
	}
}

// TestCrashHandlerCountsRepeats: 20 identical crashes within a minute
// reach the handler as one report plus a count (given when the
// supervisor stops, here), while the log has every one.
func TestCrashHandlerCountsRepeats(t *testing.T) {
	c := startProgram(t, "", "crash", 0, "CLUSTER_TEST_WORKERS=2", "CLUSTER_TEST_CRASHLOOP=40",
		"CLUSTER_TEST_CRASH_AT_START=panic")
	deadline := time.Now().Add(30 * time.Second)
	for {
		records, _ := crashesSince(t, c, 0)
		if len(records) >= 20 {
			break
		}
		require.True(t, time.Now().Before(deadline), "20 crashes within 30s; got %d", len(records))
		_, _ = c.findEvent(c.mark(), time.Second, func(e event) bool { return e.Msg == msgCrashed })
	}
	c.signal(syscall.SIGTERM)
	assert.Equal(t, 0, c.waitExit(20*time.Second), "supervisor exit code")
	records, handled := crashesSince(t, c, 0)
	require.Len(t, handled, 2, "handler calls: the first crash, then the count")
	assert.Zero(t, handled[0].Crash.Repeats, "the first is handed on at once")
	assert.Equal(t, len(records)-1, handled[1].Crash.Repeats, "the count covers every other crash of %d", len(records))
	for _, h := range handled {
		assert.Equal(t, ReasonPanic, h.Crash.Reason)
		assert.Equal(t, "panic: test program: crash at start", h.Crash.Message)
		culprit, _ := h.Crash.Culprit()
		assert.Equal(t, testPkg+".crashAtStart", culprit.Function, "culprit")
	}
}

// TestCrashReportOOMKill: a worker in a memory cgroup that allocates past
// its limit is killed by the kernel's OOM killer, and reported as such.
// It needs root and a cgroup memory controller (v1 or v2).
func TestCrashReportOOMKill(t *testing.T) {
	dir := memoryCgroup(t, 128<<20)
	c := startProgram(t, "", "crash", 1, "CLUSTER_TEST_WORKERS=1", "CLUSTER_TEST_CGROUP="+dir)
	victim := c.waitReady(0, 1, time.Second)[0].PID
	from := c.mark()
	_, err := getPID(fresh(), c.url+"/crash?kind=alloc&mb=512")
	require.Error(t, err, "a request that allocates 512 MiB in a cgroup of 128 MiB")
	c.waitEvent(from, 20*time.Second, func(e event) bool { return e.Msg == msgHandler })
	records, handled := crashesSince(t, c, from)
	require.Len(t, records, 1, "crash records")
	require.Len(t, handled, 1, "handler calls")
	got := *handled[0].Crash
	t.Logf("OOM kill: %q", got.Message)
	assert.Equal(t, victim, got.PID, "pid")
	assert.Equal(t, ReasonOOMKill, got.Reason, "reason")
	assert.Equal(t, "SIGKILL", got.Signal, "signal")
	assert.True(t, strings.Contains(got.Message, "Killed process "+strconv.Itoa(victim)+" (") ||
		strings.Contains(got.Message, "oom_kill of "), "message %q: the kernel's record or the cgroup's count", got.Message)
	assert.Equal(t, "OOM kill", records[0].Cluster.Reason, "logged reason")
}

// memoryCgroup creates a memory cgroup limited to limit bytes for the
// test, removed when it ends. It skips the test, saying why, where the
// machine has none to give; where it should (root, a memory controller)
// but fails, it fails the test under CI=true.
func memoryCgroup(t *testing.T, limit int64) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("an OOM kill in a cgroup of its own needs root to create the cgroup")
	}
	m := mounts()
	var parent, limitFile string
	switch {
	case m.v1Dir != "":
		parent, limitFile = m.v1Dir, "memory.limit_in_bytes"
	case m.v2Dir != "":
		ctl, err := os.ReadFile(filepath.Join(m.v2Dir, "cgroup.subtree_control"))
		if err != nil || !hasController(strings.Join(strings.Fields(string(ctl)), ","), "memory") {
			t.Skipf("cgroup v2 at %s does not delegate the memory controller to children (cgroup.subtree_control %q)", m.v2Dir, ctl)
		}
		parent, limitFile = m.v2Dir, "memory.max"
	default:
		t.Skip("no cgroup memory controller is mounted (/proc/self/mountinfo)")
	}
	fail := t.Skipf
	if os.Getenv("CI") == "true" {
		fail = t.Fatalf
	}
	dir := filepath.Join(parent, fmt.Sprintf("shipshape-test-%d", os.Getpid()))
	if err := os.Mkdir(dir, 0o755); err != nil {
		fail("create a memory cgroup: %v", err)
	}
	t.Cleanup(func() {
		// Runs after the program's cleanup, which killed the workers; the
		// kernel empties the cgroup soon after.
		deadline := time.Now().Add(10 * time.Second)
		for {
			err := os.Remove(dir)
			if err == nil || errors.Is(err, os.ErrNotExist) || time.Now().After(deadline) {
				if err != nil && !errors.Is(err, os.ErrNotExist) {
					t.Errorf("remove the test cgroup %s: %v", dir, err)
				}
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
	})
	if err := os.WriteFile(filepath.Join(dir, limitFile), []byte(strconv.FormatInt(limit, 10)), 0); err != nil {
		fail("limit the memory cgroup: %v", err)
	}
	return dir
}

// crashEvent is a crash record of the supervisor ("cluster: worker
// crashed") or the test program's handler ("test program: crash
// handler"), decoded from its line.
type crashEvent struct {
	Msg     string `json:"msg"`
	Cluster struct {
		Worker    int
		PID       int
		Reason    string
		Message   string
		Status    string
		Uptime    time.Duration
		Goroutine int
		Culprit   string
		Stack     string
		Stderr    string
		RSS       int64
		Truncated int64
		CrashLoop bool `json:"crash_loop"`
	} `json:"cluster"`
	Crash *Crash `json:"crash"`
}

func decodeCrash(e event) (crashEvent, error) {
	var ce crashEvent
	err := json.Unmarshal([]byte(e.line), &ce)
	return ce, err
}
