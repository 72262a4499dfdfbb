//go:build unix

package cluster

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The crash outputs in testdata/crash were written by Go 1.26 programs of
// module example.com/pp (paths rewritten to /src/app): <name>.crash is
// what runtime/debug.SetCrashOutput received, <name>.stderr standard
// error.
const fixtureModule = "example.com/pp"

func fixture(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "crash", name))
	require.NoError(t, err)
	return string(b)
}

func TestParseCrash(t *testing.T) {
	tests := []struct {
		name       string
		message    string
		crashedID  int    // 0: none crashed
		culprit    string // innermost in-app function of the crashed goroutine
		createdBy  string
		goroutines int // at least
	}{
		{"goroutine", "panic: in goroutine", 19, "main.main.func3", "main.main", 1},
		{"nil", "panic: runtime error: invalid memory address or nil pointer dereference", 1, "main.main", "", 1},
		{"rec", "panic: first [recovered, repanicked]", 1, "main.main.func2", "", 1},
		{"multiline", "panic: line1", 1, "main.main", "", 1},
		{"struct", "panic: (main.T) 0x4d34c8", 1, "main.main", "", 1},
		{"generic", "panic: assignment to entry in nil map", 1, "main.gen[...]", "", 1},
		// The runtime writes a fatal error's message to stderr only.
		{"map", "", 20, "main.main.func1", "main.main", 1},
		{"stack", "", 1, "main.main.func5", "", 1},
		{"deadlock", "", 1, "main.main", "", 1},
		{"sigsegv", "SIGSEGV: segmentation violation", 1, "main.main", "", 2},
		{"quit", "SIGQUIT: quit", 0, "", "", 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := parseCrash(fixture(t, tt.name+".crash"), fixtureModule)
			assert.True(t, got.crashed, "crashed")
			assert.Equal(t, tt.message, got.message, "message")
			require.GreaterOrEqual(t, len(got.goroutines), tt.goroutines, "goroutines")
			c := Crash{Goroutines: got.goroutines}
			if tt.crashedID == 0 {
				for _, g := range got.goroutines {
					assert.False(t, g.Crashed, "goroutine %d crashed", g.ID)
				}
				return
			}
			g := got.goroutines[0]
			assert.True(t, g.Crashed, "the first goroutine crashed")
			assert.Equal(t, tt.crashedID, g.ID, "crashed goroutine id")
			for _, other := range got.goroutines[1:] {
				assert.False(t, other.Crashed, "goroutine %d crashed too", other.ID)
			}
			f, ok := c.Culprit()
			require.True(t, ok, "culprit of %+v", g.Frames)
			assert.Equal(t, tt.culprit, f.Function, "culprit")
			assert.Equal(t, "main", f.Package, "culprit package")
			assert.Equal(t, "/src/app/main.go", f.File, "culprit file")
			assert.Positive(t, f.Line, "culprit line")
			if tt.createdBy != "" {
				require.NotNil(t, g.CreatedBy, "created by")
				assert.Equal(t, tt.createdBy, g.CreatedBy.Function, "created by")
				assert.Equal(t, "/src/app/main.go", g.CreatedBy.File, "created by file")
			}
		})
	}
}

func TestParseCrashFrames(t *testing.T) {
	got := parseCrash(fixture(t, "map.crash"), fixtureModule)
	require.NotEmpty(t, got.goroutines)
	frames := got.goroutines[0].Frames
	require.Len(t, frames, 2)
	assert.Equal(t, Frame{Function: "internal/runtime/maps.fatal", Package: "internal/runtime/maps",
		File: "/usr/local/go/src/runtime/panic.go", Line: 1181}, frames[0], "runtime frame, not in app")
	assert.Equal(t, Frame{Function: "main.main.func1", Package: "main", File: "/src/app/main.go", Line: 49, InApp: true},
		frames[1], "the program's frame")

	// A stack overflow prints 100 frames of the recursion, then elides.
	st := parseCrash(fixture(t, "stack.crash"), fixtureModule)
	require.NotEmpty(t, st.goroutines)
	assert.True(t, st.goroutines[0].Elided, "elided frames")
	assert.Len(t, st.goroutines[0].Frames, 100, "frames printed")
	assert.Equal(t, 1, st.goroutines[0].ID, "the runtime stack section is no goroutine")
}

func TestParseCrashMemoryDump(t *testing.T) {
	text := "" +
		memoryDumpBegin + "\n" +
		"allocation [262144000 bytes in use, 1 objects]:\n" +
		"example.com/pp.grow(...)\n\t/src/app/grow.go:12\n" +
		"main.main(...)\n\t/src/app/main.go:30\n\n" +
		"allocation [1048576 bytes in use, 16 objects]:\n" +
		"bytes.growSlice(...)\n\t/usr/local/go/src/bytes/buffer.go:250\n\n" +
		"goroutine 1 [sleep]:\ntime.Sleep(0x3b9aca00)\n\t/usr/local/go/src/runtime/time.go:363 +0x165\n" +
		"main.main()\n\t/src/app/main.go:31 +0x265\n\n" +
		memoryDumpEnd + "\n"
	got := parseCrash(text, fixtureModule)
	assert.False(t, got.crashed, "a dump alone is no crash")
	assert.Empty(t, got.message, "message")
	require.Len(t, got.heap, 2, "allocation sites")
	assert.Equal(t, int64(262144000), got.heap[0].Bytes)
	assert.Equal(t, int64(1), got.heap[0].Objects)
	require.Len(t, got.heap[0].Frames, 2)
	assert.Equal(t, "example.com/pp.grow", got.heap[0].Frames[0].Function)
	assert.True(t, got.heap[0].Frames[0].InApp, "in app")
	require.Len(t, got.goroutines, 1)
	assert.False(t, got.goroutines[0].Crashed, "a dumped goroutine did not crash")

	c := Crash{Reason: ReasonMemoryCap, Heap: got.heap, Goroutines: got.goroutines}
	f, ok := c.Culprit()
	require.True(t, ok)
	assert.Equal(t, "example.com/pp.grow", f.Function, "culprit of a memory cap: the largest allocation")
	nr := Crash{Reason: ReasonNotReady, Goroutines: got.goroutines}
	f, ok = nr.Culprit()
	require.True(t, ok)
	assert.Equal(t, "main.main", f.Function, "culprit of a worker not ready: the main goroutine")

	// The dump, then a crash: the crash is the crash.
	both := parseCrash(text+fixture(t, "goroutine.crash"), fixtureModule)
	assert.True(t, both.crashed)
	assert.Equal(t, "panic: in goroutine", both.message)
	require.Len(t, both.goroutines, 2)
	assert.False(t, both.goroutines[0].Crashed)
	assert.True(t, both.goroutines[1].Crashed)
}

// TestParseCrashCut: crash output cut at any byte (the supervisor's cap)
// still parses, into frames that are whole.
func TestParseCrashCut(t *testing.T) {
	text := fixture(t, "sigsegv.crash")
	for n := 0; n <= len(text); n += 7 {
		got := parseCrash(text[:n], fixtureModule)
		for _, g := range got.goroutines {
			for _, f := range g.Frames {
				assert.NotEmpty(t, f.Function, "function of a frame cut at %d", n)
				assert.GreaterOrEqual(t, f.Line, 0)
			}
		}
	}
}

func FuzzParseCrash(f *testing.F) {
	for _, name := range []string{"goroutine", "map", "stack", "quit", "rec"} {
		b, err := os.ReadFile(filepath.Join("testdata", "crash", name+".crash"))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(string(b))
	}
	f.Add("goroutine 1 [\n(\n\t:\ncreated by \n\t\nallocation [1 bytes in use, 1 objects]:\n")
	f.Fuzz(func(t *testing.T, text string) {
		got := parseCrash(text, fixtureModule)
		if len(got.goroutines) > maxGoroutines {
			t.Fatalf("%d goroutines", len(got.goroutines))
		}
		crashed := 0
		for _, g := range got.goroutines {
			if len(g.Frames) > maxFrames {
				t.Fatalf("%d frames", len(g.Frames))
			}
			if g.Crashed {
				crashed++
			}
		}
		if crashed > 1 {
			t.Fatalf("%d goroutines crashed", crashed)
		}
		_ = Crash{Goroutines: got.goroutines, Heap: got.heap, Message: got.message}.signature()
	})
}

func TestCallName(t *testing.T) {
	tests := []struct{ line, want string }{
		{"main.main()", "main.main"},
		{"main.(*T).M(0xc000010000, {0x1, 0x2})", "main.(*T).M"},
		{"panic({0x4ab760?, 0x4d1898?})", "panic"},
		{"github.com/a/b.F[...](...)", "github.com/a/b.F[...]"},
		{"runtime.goexit({})", "runtime.goexit"},
		{"no parentheses", "no parentheses"},
		{"(unbalanced))", "(unbalanced))"},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, callName(tt.line), "callName(%q)", tt.line)
	}
}

func TestPackageAndInApp(t *testing.T) {
	const mod = "github.com/acme/app"
	tests := []struct {
		function, pkg string
		inApp         bool
	}{
		{"github.com/acme/app.(*Server).handle.func1", "github.com/acme/app", true},
		{"github.com/acme/app/internal/db.Query", "github.com/acme/app/internal/db", true},
		{"github.com/acme/app_test.TestX", "github.com/acme/app_test", true},
		{"github.com/acme/app/db_test.TestX", "github.com/acme/app/db_test", true},
		{"github.com/acme/appendix.F", "github.com/acme/appendix", false},
		{"main.main", "main", true},
		{"runtime.gopanic", "runtime", false},
		{"net/http.(*conn).serve", "net/http", false},
		{"github.com/go-chi/chi/v5.(*Mux).ServeHTTP", "github.com/go-chi/chi/v5", false},
		{"github.com/acme/app.F[go.shape.struct { X *example.com/y.T }]", "github.com/acme/app", true},
		{"panic", "", false},
	}
	for _, tt := range tests {
		f := newFrame(tt.function, "x.go", 1, mod)
		assert.Equal(t, tt.pkg, f.Package, "package of %s", tt.function)
		assert.Equal(t, tt.inApp, f.InApp, "in app: %s", tt.function)
	}
}

func TestLocation(t *testing.T) {
	tests := []struct {
		line string
		file string
		n    int
	}{
		{"\t/src/app/main.go:42 +0x1d", "/src/app/main.go", 42},
		{"\t/src/app/main.go:42 +0x1d fp=0x1 sp=0x2 pc=0x3", "/src/app/main.go", 42},
		{"\t/src/app/main.go:11", "/src/app/main.go", 11},
		{"\texample.com/app@v1.2.3/main.go:7 +0x2", "example.com/app@v1.2.3/main.go", 7},
		{"\tC:/src/app/main.go:9 +0x2", "C:/src/app/main.go", 9},
		{"\t?:0", "?", 0},
		{"\tnothing", "nothing", 0},
	}
	for _, tt := range tests {
		file, n := location(tt.line)
		assert.Equal(t, tt.file, file, "file of %q", tt.line)
		assert.Equal(t, tt.n, n, "line of %q", tt.line)
	}
}

func TestSignature(t *testing.T) {
	frames := []Frame{{Function: "runtime.gopanic"}, {Function: "main.crash", Line: 12, InApp: true}}
	base := Crash{Reason: ReasonPanic, Message: "panic: (*main.T) 0xc000012345",
		Goroutines: []Goroutine{{ID: 7, Crashed: true, Frames: frames}}, Worker: 1, PID: 100}
	same := base
	same.Worker, same.PID, same.Message = 2, 200, "panic: (*main.T) 0xc000099999"
	same.Goroutines = []Goroutine{{ID: 9, Crashed: true, Frames: frames}}
	assert.Equal(t, base.signature(), same.signature(), "another worker, pid, goroutine and address")

	otherLine := base
	otherLine.Goroutines = []Goroutine{{ID: 7, Crashed: true, Frames: []Frame{{Function: "main.crash", Line: 13, InApp: true}}}}
	otherMsg := base
	otherMsg.Message = "panic: boom"
	otherReason := base
	otherReason.Reason = ReasonFatalError
	for name, c := range map[string]Crash{"line": otherLine, "message": otherMsg, "reason": otherReason} {
		assert.NotEqual(t, base.signature(), c.signature(), "another %s", name)
	}
	assert.Equal(t, "panic: x 0x and 0x, 0xg", withoutHex("panic: x 0xDEADbeef and 0x12, 0xg"))
}

func TestDedup(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	crash := func(pid int, msg string) Crash { return Crash{Reason: ReasonPanic, Message: msg, PID: pid} }
	d := newDedup(time.Minute)

	c, ok := d.add(t0, crash(1, "panic: a"))
	require.True(t, ok, "the first is handed on at once")
	assert.Zero(t, c.Repeats)
	for i := range 19 {
		_, ok := d.add(t0.Add(time.Duration(i+1)*time.Second), crash(2+i, "panic: a"))
		assert.False(t, ok, "repeat %d is counted", i+1)
	}
	_, ok = d.add(t0.Add(30*time.Second), crash(50, "panic: b"))
	assert.True(t, ok, "another crash is handed on")

	at, ok := d.next()
	require.True(t, ok)
	assert.Equal(t, t0.Add(time.Minute), at, "the first window ends")
	assert.Empty(t, d.expire(t0.Add(59*time.Second)), "nothing before the minute")
	sum := d.expire(t0.Add(time.Minute))
	require.Len(t, sum, 1, "one summary")
	assert.Equal(t, 19, sum[0].Repeats, "the count")
	assert.Equal(t, 20, sum[0].PID, "the last repeat's details")

	// The summary opened the next window: repeats are still counted…
	_, ok = d.add(t0.Add(61*time.Second), crash(60, "panic: a"))
	assert.False(t, ok, "a repeat after the summary")
	// …and a crash loop's last crash goes at once, with the count.
	c, ok = d.add(t0.Add(62*time.Second), Crash{Reason: ReasonPanic, Message: "panic: a", PID: 61, CrashLoop: true})
	require.True(t, ok, "the crash loop's crash")
	assert.Equal(t, 1, c.Repeats, "its count")

	// panic: b's window ends without repeats and closes.
	assert.Empty(t, d.expire(t0.Add(91*time.Second)))
	_, ok = d.next()
	assert.False(t, ok, "no window open")

	// At the stop, open counts are handed on.
	d.add(t0.Add(100*time.Second), crash(70, "panic: c"))
	d.add(t0.Add(101*time.Second), crash(71, "panic: c"))
	d.add(t0.Add(102*time.Second), crash(72, "panic: c"))
	fl := d.flush()
	require.Len(t, fl, 1)
	assert.Equal(t, 2, fl[0].Repeats)
	assert.Equal(t, 72, fl[0].PID)
	assert.Empty(t, d.flush(), "flushed once")
}

func TestStderrTap(t *testing.T) {
	r, w, err := os.Pipe()
	require.NoError(t, err)
	var dst strings.Builder
	tap := &stderrTap{dst: &dst, mu: new(sync.Mutex)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		tap.run(r)
	}()
	long := strings.Repeat("x", 3000)
	for _, s := range []string{"app: starting\n", "runtime: goroutine stack exceeds 1000000000-byte limit\n",
		"runtime: sp=0x1 stack=[0x2, 0x3]\n", "fatal error: stack overflow\n", "\nruntime stack:\n",
		long + "\n" + long + "\n", "no newline at the end"} {
		_, err := w.WriteString(s)
		require.NoError(t, err)
	}
	require.NoError(t, w.Close())
	<-done
	want := "app: starting\nruntime: goroutine stack exceeds 1000000000-byte limit\nruntime: sp=0x1 stack=[0x2, 0x3]\n" +
		"fatal error: stack overflow\n\nruntime stack:\n" + long + "\n" + long + "\nno newline at the end"
	assert.Equal(t, want, dst.String(), "passed on unchanged")
	tail, fatal := tap.snapshot()
	assert.Equal(t, want, tail, "tail")
	assert.Equal(t, []string{"runtime: goroutine stack exceeds 1000000000-byte limit", "runtime: sp=0x1 stack=[0x2, 0x3]",
		"fatal error: stack overflow"}, fatal, "the fatal error's lines")
	assert.Equal(t, "no newline at the end", lastLines(tail, 30))
	assert.Equal(t, "fatal error: stack overflow\n\nruntime stack:", lastLines("x\nfatal error: stack overflow\n\nruntime stack:\n", 44))
}

// TestStderrTapKeepsTheEnd: the tap's memory is bounded whatever the
// worker writes, and what it keeps is the end, in whole lines.
func TestStderrTapKeepsTheEnd(t *testing.T) {
	tap := &stderrTap{mu: new(sync.Mutex)}
	line := strings.Repeat("y", 99) + "\n"
	for range 10000 {
		tap.pass([]byte(line))
	}
	tap.pass([]byte("last\n"))
	tail, _ := tap.snapshot()
	assert.LessOrEqual(t, len(tail), stderrTail)
	assert.Greater(t, len(tail), stderrTail/2)
	assert.True(t, strings.HasSuffix(tail, "last\n"), "ends with the last line")
	assert.LessOrEqual(t, cap(tap.tail), 4*stderrTail, "memory held")
}

func TestCrashInStderr(t *testing.T) {
	assert.Equal(t, "", crashInStderr("app: listening\napp: exiting\n"))
	assert.Equal(t, "panic: boom\n\ngoroutine 1 [running]:\n", crashInStderr("app: secret=1\npanic: boom\n\ngoroutine 1 [running]:\n"))
	assert.Equal(t, "panic: at the start\n", crashInStderr("panic: at the start\n"))
	assert.Equal(t, "fatal error: x\n", crashInStderr("panic: old\nfatal error: x\n"))
}

func TestCapBuffer(t *testing.T) {
	b := capBuffer{max: 10}
	for _, s := range []string{"12345", "6789", "abcdef"} {
		n, err := b.Write([]byte(s))
		require.NoError(t, err)
		assert.Equal(t, len(s), n, "every byte is taken")
	}
	got, dropped := b.snapshot()
	assert.Equal(t, "123456789a", string(got))
	assert.Equal(t, int64(5), dropped)
}

// TestStderrFixtures: what the tap keeps of a real fatal error's stderr,
// and a crash parsed from stderr alone (one before the crash output was
// set).
func TestStderrFixtures(t *testing.T) {
	tests := []struct {
		name  string
		fatal []string
	}{
		{"map", []string{"fatal error: concurrent map writes"}},
		{"stack", []string{"runtime: goroutine stack exceeds 1000000000-byte limit",
			"runtime: sp=0x39f0185e0398 stack=[0x39f0185e0000, 0x39f0385e0000]", "fatal error: stack overflow"}},
		{"deadlock", []string{"fatal error: all goroutines are asleep - deadlock!"}},
		{"goroutine", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tap := &stderrTap{mu: new(sync.Mutex)}
			tap.pass([]byte(fixture(t, tt.name+".stderr")))
			_, fatal := tap.snapshot()
			assert.Equal(t, tt.fatal, fatal, "fatal error lines")
		})
	}
	got := parseCrash(crashInStderr("app: starting\n"+fixture(t, "goroutine.stderr")), fixtureModule)
	assert.Equal(t, "panic: in goroutine", got.message)
	require.NotEmpty(t, got.goroutines)
	assert.True(t, got.goroutines[0].Crashed)
}

// TestCrashHandlerLoop: the handler goroutine hands the first crash on at
// once, the count when the minute is over, survives a panicking handler,
// and hands open counts on at the stop.
func TestCrashHandlerLoop(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		var got []Crash
		var logs strings.Builder
		c := &config{logger: slog.New(slog.NewTextHandler(&logs, nil)), crashHandler: func(c Crash) {
			mu.Lock()
			got = append(got, c)
			mu.Unlock()
			if c.Message == "panic: handler trouble" {
				panic("the handler itself")
			}
		}}
		handled := func() []Crash {
			synctest.Wait()
			mu.Lock()
			defer mu.Unlock()
			return append([]Crash(nil), got...)
		}
		m := newCrashMonitor(context.Background(), c)
		crash := func(pid int, msg string) Crash { return Crash{Reason: ReasonPanic, Message: msg, PID: pid} }

		for pid := range 3 {
			m.emit(crash(pid+1, "panic: a"))
		}
		require.Len(t, handled(), 1, "the first at once, the others counted")
		time.Sleep(dedupWindow)
		h := handled()
		require.Len(t, h, 2, "the count when the minute is over")
		assert.Equal(t, 2, h[1].Repeats)
		assert.Equal(t, 3, h[1].PID, "the last one's details")

		m.emit(crash(10, "panic: handler trouble"))
		m.emit(crash(11, "panic: b"))
		require.Len(t, handled(), 4, "a handler that panics does not stop the reports")
		m.emit(crash(12, "panic: b"))
		m.close()
		h = handled()
		require.Len(t, h, 5, "the open count at the stop")
		assert.Equal(t, 1, h[4].Repeats)
		m.emit(crash(13, "panic: c")) // after close: logged only
		assert.Len(t, handled(), 5)
		assert.Contains(t, logs.String(), `msg="cluster: crash handler panicked"`)
		assert.Equal(t, 7, strings.Count(logs.String(), `msg="cluster: worker crashed"`), "a record per crash")
	})
}
