package sentryreport_test

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/getsentry/sentry-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/shipshape-go/shipshape/cluster"
	"github.com/shipshape-go/shipshape/sentryreport"
	"github.com/shipshape-go/shipshape/sentryreport/sentrytest"
)

const crashModule = "github.com/shipshape-go/shipshape/sentryreport_test"

// sampleCrash is a panic in a goroutine of example.com/app, as the
// supervisor reports it.
func sampleCrash() cluster.Crash {
	start := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	app := func(fn string, line int) cluster.Frame {
		return cluster.Frame{Function: "example.com/app." + fn, Package: "example.com/app", File: "/src/app/app.go", Line: line, InApp: true}
	}
	return cluster.Crash{
		Worker: 2, PID: 4242, Reason: cluster.ReasonPanic,
		Message: "panic: runtime error: index out of range [5] with length 3",
		Status:  "exit status 2", ExitCode: 2, Start: start, Time: start.Add(90 * time.Second), Uptime: 90 * time.Second,
		Goroutines: []cluster.Goroutine{
			{ID: 7, State: "running", Crashed: true, Frames: []cluster.Frame{
				{Function: "runtime.goPanicIndex", Package: "runtime", File: "/usr/local/go/src/runtime/panic.go", Line: 115},
				app("(*Cache).get", 42),
				app("refresh", 17),
			}, CreatedBy: ptr(app("Start", 9))},
			{ID: 1, State: "chan receive", Frames: []cluster.Frame{
				{Function: "net/http.(*Server).Serve", Package: "net/http", File: "/usr/local/go/src/net/http/server.go", Line: 3360},
				app("main", 30),
			}},
		},
		Output: "panic: runtime error: index out of range [5] with length 3\n\ngoroutine 7 [running]:\n…",
	}
}

func ptr[T any](v T) *T { return &v }

// reportCrash reports c through a Reporter on a real client and returns
// the one event and the envelope that carried it.
func reportCrash(t *testing.T, c cluster.Crash) (*sentry.Event, sentrytest.Envelope) {
	t.Helper()
	srv := sentrytest.NewServer(t)
	client := sentrytest.NewClient(t, srv.DSN(), sentry.ClientOptions{
		Release: programRelease, Environment: programEnvironment, ServerName: programServerName})
	rep := mustReporter(t, sentryreport.WithHub(sentry.NewHub(client, sentry.NewScope())))
	rep.ReportCrash(c)
	require.True(t, client.Flush(flushTimeout), "flush")
	events := srv.Events()
	require.Len(t, events, 1, "events")
	envs := srv.Envelopes()
	require.Len(t, envs, 1, "envelopes")
	return events[0], envs[0]
}

func TestCrashEvent(t *testing.T) {
	c := sampleCrash()
	ev, env := reportCrash(t, c)

	assert.Equal(t, sentry.LevelFatal, ev.Level, "level")
	assert.Equal(t, "cluster", ev.Logger, "logger")
	assert.Equal(t, programRelease, ev.Release, "release")
	assert.Equal(t, programEnvironment, ev.Environment, "environment")
	assert.Equal(t, programServerName, ev.ServerName, "server name")
	assert.True(t, c.Time.Equal(ev.Timestamp), "timestamp %v, want the crash's %v", ev.Timestamp, c.Time)
	assert.Equal(t, map[string]string{"worker": "2", "pid": "4242", "reason": "panic"}, ev.Tags, "tags")

	require.Len(t, ev.Exception, 1, "exceptions")
	ex := ev.Exception[0]
	assert.Equal(t, "runtime.Error", ex.Type, "exception type")
	assert.Equal(t, "runtime error: index out of range [5] with length 3", ex.Value, "exception value")
	require.NotNil(t, ex.Mechanism)
	assert.Equal(t, "cluster", ex.Mechanism.Type, "mechanism")
	require.NotNil(t, ex.Mechanism.Handled)
	assert.False(t, *ex.Mechanism.Handled, "handled")
	assert.Equal(t, uint64(7), ex.ThreadID, "thread of the exception")
	require.NotNil(t, ex.Stacktrace)
	type frame struct {
		Module, Function string
		Line             int
		InApp            bool
	}
	var frames []frame
	for _, f := range ex.Stacktrace.Frames {
		frames = append(frames, frame{f.Module, f.Function, f.Lineno, f.InApp})
	}
	assert.Equal(t, []frame{
		{"example.com/app", "Start", 9, true}, // created by: the outermost
		{"example.com/app", "refresh", 17, true},
		{"example.com/app", "(*Cache).get", 42, true},
		{"runtime", "goPanicIndex", 115, false}, // innermost last, as Sentry wants
	}, frames, "stack trace")
	assert.Equal(t, "/src/app/app.go", ex.Stacktrace.Frames[1].AbsPath, "abs_path")

	require.Len(t, ev.Threads, 2, "threads")
	assert.Equal(t, "7", ev.Threads[0].ID)
	assert.True(t, ev.Threads[0].Crashed, "the crashing goroutine is the crashed thread")
	assert.Nil(t, ev.Threads[0].Stacktrace, "its stack is the exception's")
	assert.Equal(t, "1", ev.Threads[1].ID)
	assert.Equal(t, "goroutine 1 [chan receive]", ev.Threads[1].Name)
	assert.False(t, ev.Threads[1].Crashed)
	require.NotNil(t, ev.Threads[1].Stacktrace)
	require.Len(t, ev.Threads[1].Stacktrace.Frames, 2)
	assert.Equal(t, "main", ev.Threads[1].Stacktrace.Frames[0].Function, "outermost first")
	assert.True(t, ev.Threads[1].Stacktrace.Frames[0].InApp)
	assert.False(t, ev.Threads[1].Stacktrace.Frames[1].InApp)

	ctx := ev.Contexts["cluster"]
	assert.Equal(t, "exit status 2", ctx["status"])
	assert.Equal(t, "1m30s", ctx["uptime"])
	assert.EqualValues(t, 2, ctx["exit_code"])

	var attachment []byte
	for _, it := range env.Items {
		if it.Type == "attachment" {
			attachment = it.Payload
		}
	}
	assert.Equal(t, c.Output, string(attachment), "crash.txt attachment")
}

// TestCrashEventTypes: the exception's type and value, and the level, for
// each kind of crash.
func TestCrashEventTypes(t *testing.T) {
	tests := []struct {
		name    string
		reason  cluster.Reason
		message string
		signal  string
		typ     string
		value   string
		level   sentry.Level
	}{
		{"string panic", cluster.ReasonPanic, "panic: boom", "", "panic", "boom", sentry.LevelFatal},
		{"error panic", cluster.ReasonPanic, "panic: open config.yaml: no such file or directory", "", "panic", "open config.yaml: no such file or directory", sentry.LevelFatal},
		{"struct panic", cluster.ReasonPanic, "panic: (*main.T) 0xc000012345", "", "*main.T", "(*main.T) 0xc000012345", sentry.LevelFatal},
		{"named basic type", cluster.ReasonPanic, "panic: main.Code(5)", "", "main.Code", "main.Code(5)", sentry.LevelFatal},
		{"sentence in parentheses", cluster.ReasonPanic, "panic: failed (again) today", "", "panic", "failed (again) today", sentry.LevelFatal},
		{"type assertion", cluster.ReasonPanic, "panic: interface conversion: interface {} is string, not int", "", "*runtime.TypeAssertionError", "interface conversion: interface {} is string, not int", sentry.LevelFatal},
		{"panic(nil)", cluster.ReasonPanic, "panic: panic called with nil argument", "", "*runtime.PanicNilError", "panic called with nil argument", sentry.LevelFatal},
		{"fatal error", cluster.ReasonFatalError, "fatal error: concurrent map writes", "", "fatal error", "concurrent map writes", sentry.LevelFatal},
		{"fatal signal", cluster.ReasonSignal, "SIGSEGV: segmentation violation", "", "SIGSEGV", "segmentation violation", sentry.LevelFatal},
		{"silent kill", cluster.ReasonSignal, "signal: killed", "SIGKILL", "SIGKILL", "signal: killed", sentry.LevelFatal},
		{"OOM kill", cluster.ReasonOOMKill, "Memory cgroup out of memory: Killed process 7 (app)", "SIGKILL", "OOM kill", "Memory cgroup out of memory: Killed process 7 (app)", sentry.LevelFatal},
		{"exit code", cluster.ReasonExitCode, "exit status 3", "", "exit code", "exit status 3", sentry.LevelFatal},
		{"memory cap", cluster.ReasonMemoryCap, "resident set of 530 MiB over the memory cap of 512 MiB", "", "memory cap", "resident set of 530 MiB over the memory cap of 512 MiB", sentry.LevelError},
		{"not ready", cluster.ReasonNotReady, "not ready within 20s", "", "not ready", "not ready within 20s", sentry.LevelError},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev, _ := reportCrash(t, cluster.Crash{Reason: tt.reason, Message: tt.message, Signal: tt.signal, PID: 7})
			require.Len(t, ev.Exception, 1)
			assert.Equal(t, tt.typ, ev.Exception[0].Type, "type")
			assert.Equal(t, tt.value, ev.Exception[0].Value, "value")
			assert.Equal(t, tt.level, ev.Level, "level")
			assert.Nil(t, ev.Exception[0].Stacktrace, "no stack without frames")
		})
	}
}

// TestCrashEventMemoryCap: the stack of a memory cap is its largest
// allocation site; the goroutines of the dump are threads, none crashed;
// the sites are in the context.
func TestCrashEventMemoryCap(t *testing.T) {
	site := []cluster.Frame{
		{Function: "runtime.makeslice", Package: "runtime", File: "/usr/local/go/src/runtime/slice.go", Line: 116},
		{Function: "example.com/app.grow", Package: "example.com/app", File: "/src/app/grow.go", Line: 12, InApp: true},
	}
	c := cluster.Crash{Reason: cluster.ReasonMemoryCap, Message: "resident set of 530 MiB over the memory cap of 512 MiB",
		RSS: 530 << 20, Heap: []cluster.Allocation{{Bytes: 500 << 20, Objects: 500, Frames: site}},
		Goroutines: []cluster.Goroutine{{ID: 1, State: "select", Frames: site[1:]}}, Repeats: 3}
	ev, _ := reportCrash(t, c)
	require.Len(t, ev.Exception, 1)
	st := ev.Exception[0].Stacktrace
	require.NotNil(t, st)
	require.Len(t, st.Frames, 2)
	assert.Equal(t, "grow", st.Frames[0].Function)
	assert.True(t, st.Frames[0].InApp)
	assert.Zero(t, ev.Exception[0].ThreadID, "no thread crashed")
	require.Len(t, ev.Threads, 1)
	assert.False(t, ev.Threads[0].Crashed)
	assert.NotNil(t, ev.Threads[0].Stacktrace)
	assert.Equal(t, "3", ev.Tags["repeats"], "repeats tag")
	raw, err := json.Marshal(ev.Contexts["cluster"]["heap"])
	require.NoError(t, err)
	assert.JSONEq(t, `[{"bytes":524288000,"objects":500,"function":"runtime.makeslice","in_app_function":"example.com/app.grow"}]`, string(raw))
}

// TestCrashEventsOfWorkers: a real supervisor with a real sentry-go
// client sends exactly one event for each kind of crash of its worker,
// with the stack of the function that crashed where the worker could say,
// and none for a rolling restart or a SIGTERM drain; nothing of the
// program's environment or command line is in them.
func TestCrashEventsOfWorkers(t *testing.T) {
	srv := sentrytest.NewServer(t)
	const secretEnv, secretArg = "env-secret-4cd1", "arg-secret-93fe"
	p := startProgram(t, srv.DSN(), []string{"--token=" + secretArg}, "SHOP_API_TOKEN="+secretEnv)
	worker := p.wait(0, 20*time.Second, "cluster: worker ready").Cluster.PID

	steps := []struct {
		name    string
		trigger func()
		reason  string
		typ     string
		culprit string // "": no stack
	}{
		{"panic in a plain goroutine", func() { get(p.url + "/crash?kind=goroutine") }, "panic", "panic", "crashPanicGoroutine"},
		{"concurrent map writes", func() { get(p.url + "/crash?kind=mapwrites") }, "fatal error", "fatal error", "crashMapWriter"},
		{"os.Exit(3)", func() { get(p.url + "/crash?kind=exit") }, "exit code", "exit code", ""},
		{"SIGKILL", func() { require.NoError(t, syscall.Kill(worker, syscall.SIGKILL)) }, "signal", "SIGKILL", ""},
		{"memory cap", func() { get(p.url + "/crash?kind=alloc") }, "memory cap", "memory cap", "crashAlloc"},
	}
	for _, st := range steps {
		from := p.mark()
		st.trigger()
		p.wait(from, 20*time.Second, "cluster: worker crashed")
		worker = p.wait(from, 20*time.Second, "cluster: worker ready").Cluster.PID
	}
	from := p.mark()
	p.signal(syscall.SIGHUP)
	p.wait(from, 20*time.Second, "cluster: rolling restart done")
	p.signal(syscall.SIGTERM)
	require.Equal(t, 0, p.waitExit(30*time.Second), "supervisor exit code")
	assert.Zero(t, p.count(from, "cluster: worker crashed"), "crashes logged for the rolling restart and the drain")

	events := srv.Events()
	require.Len(t, events, len(steps), "one event per crash, none for the rolling restart or the drain")
	for i, st := range steps {
		ev := events[i]
		assert.Equal(t, st.reason, ev.Tags["reason"], "%s: reason tag", st.name)
		assert.Equal(t, "0", ev.Tags["worker"], "%s: worker tag", st.name)
		assert.NotEmpty(t, ev.Tags["pid"], "%s: pid tag", st.name)
		assert.Equal(t, strconv.Itoa(i+1), ev.Tags["incarnation"], "%s: incarnation tag (the i-th process of the run crashed)", st.name)
		assert.Equal(t, programRelease, ev.Release, "%s: release", st.name)
		assert.Equal(t, programEnvironment, ev.Environment, "%s: environment", st.name)
		assert.Equal(t, programServerName, ev.ServerName, "%s: server name", st.name)
		require.Len(t, ev.Exception, 1, "%s: exception", st.name)
		ex := ev.Exception[0]
		assert.Equal(t, st.typ, ex.Type, "%s: exception type", st.name)
		if st.culprit == "" {
			assert.Nil(t, ex.Stacktrace, "%s: stack of a process that said nothing", st.name)
			continue
		}
		require.NotNil(t, ex.Stacktrace, "%s: stack", st.name)
		// The innermost in-app frame (Sentry's order: outermost first) is
		// the function that crashed; runtime frames are not in app.
		var culprit *sentry.Frame
		for j := len(ex.Stacktrace.Frames) - 1; j >= 0; j-- {
			f := &ex.Stacktrace.Frames[j]
			if strings.HasPrefix(f.Module, "runtime") || strings.HasPrefix(f.Module, "internal/") {
				assert.False(t, f.InApp, "%s: %s.%s in app", st.name, f.Module, f.Function)
			}
			if f.InApp && culprit == nil {
				culprit = f
			}
		}
		require.NotNil(t, culprit, "%s: an in-app frame in %+v", st.name, ex.Stacktrace.Frames)
		assert.Equal(t, crashModule, culprit.Module, "%s: culprit module", st.name)
		assert.Equal(t, st.culprit, culprit.Function, "%s: culprit", st.name)
		assert.True(t, strings.HasSuffix(culprit.AbsPath, "sentryreport/crash_program_test.go"), "%s: culprit file %s", st.name, culprit.AbsPath)
	}
	for i, raw := range srv.RawEvents() {
		assert.False(t, bytes.Contains(raw, []byte(secretEnv)), "event %d holds an environment variable", i)
		assert.False(t, bytes.Contains(raw, []byte(secretArg)), "event %d holds a command-line argument", i)
	}
	for _, env := range srv.Envelopes() {
		assert.False(t, bytes.Contains(env.Raw, []byte(secretEnv)) || bytes.Contains(env.Raw, []byte(secretArg)),
			"an envelope holds the environment or the command line")
	}
}

// TestCrashEventsCountRepeats: 20 identical crashes within a minute are
// one event at once, plus one that carries the count of the others.
func TestCrashEventsCountRepeats(t *testing.T) {
	srv := sentrytest.NewServer(t)
	p := startProgram(t, srv.DSN(), nil, "SENTRYREPORT_TEST_CRASH_AT_START=1", "SENTRYREPORT_TEST_CRASHLOOP=40")
	deadline := time.Now().Add(30 * time.Second)
	for p.count(0, "cluster: worker crashed") < 20 {
		require.True(t, time.Now().Before(deadline), "20 crashes within 30s")
		time.Sleep(20 * time.Millisecond) // polling the log: no timing is asserted
	}
	p.signal(syscall.SIGTERM)
	require.Equal(t, 0, p.waitExit(30*time.Second), "supervisor exit code")
	crashes := p.count(0, "cluster: worker crashed")
	events := srv.Events()
	require.Len(t, events, 2, "events for %d identical crashes", crashes)
	assert.Empty(t, events[0].Tags["repeats"], "the first event")
	assert.Equal(t, strconv.Itoa(crashes-1), events[1].Tags["repeats"], "the count of the others")
	for _, ev := range events {
		require.Len(t, ev.Exception, 1)
		assert.Equal(t, "test program: crash at start", ev.Exception[0].Value)
	}
}
