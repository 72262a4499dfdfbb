//go:build unix

package cluster

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Bounds of what the supervisor keeps of a worker's output.
const (
	// maxCrashOutput is how much crash output is kept per process; the
	// rest is read (so that the dying worker is not blocked) and counted.
	maxCrashOutput = 4 << 20
	// stderrTail is how much of the end of a worker's standard error is
	// kept: enough for a crash that happened before the worker could set
	// its crash output (a panic in an early package init).
	stderrTail = 64 << 10
	// crashStderr is how much of that a Crash carries in Stderr.
	crashStderr = 4 << 10
	// logStderr is how much of it the log record carries, when the crash
	// has no stack to show.
	logStderr = 1 << 10
)

// Waits of the crash monitor; none of them is on a request's path.
const (
	// crashOutputWait bounds the wait, after a worker was reaped, for the
	// end of its crash pipe, which only the worker held.
	crashOutputWait = 2 * time.Second
	// stderrWait bounds the wait for the end of its standard error, which
	// a child process of the worker may still hold.
	stderrWait = 250 * time.Millisecond
	// quitGrace is how long a worker that was not ready gets to print its
	// goroutines after SIGQUIT before it is killed.
	quitGrace = time.Second
	// handlerGrace is how long the supervisor, when it stops, waits for
	// the crash handler to finish the reports queued for it.
	handlerGrace = time.Second
	// handlerQueue is how many reports may wait for a slow handler; more
	// are dropped (and counted in the log).
	handlerQueue = 64
)

// lifelineMemoryDump is the byte the supervisor writes on a worker's
// lifeline to have it write a memory dump (heap profile and goroutines)
// to its crash pipe.
const lifelineMemoryDump = 'm'

// crashMonitor is the part of the supervisor that watches every worker
// for crashes: it hands each one a pipe for the runtime's crash output
// (inherited as "crash"), taps its standard error, and turns every
// abnormal end into one Crash: a log record, and a call of the crash
// handler (deduplicated, on a goroutine of its own).
type crashMonitor struct {
	c        *config
	ctx      context.Context // the supervisor's: done when it stops
	module   string
	stderrMu sync.Mutex // serializes the taps' writes to their destinations

	in      chan Crash // to the handler goroutine; nil without a handler
	done    chan struct{}
	closeMu sync.Mutex
	closed  bool
	dropped atomic.Int64
}

// mainModule is the main module's path, for Frame.InApp.
var mainModule = sync.OnceValue(func() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		return bi.Main.Path
	}
	return ""
})

func newCrashMonitor(ctx context.Context, c *config) *crashMonitor {
	m := &crashMonitor{c: c, ctx: ctx, module: mainModule(), done: make(chan struct{})}
	if c.crashHandler == nil {
		close(m.done)
		return m
	}
	m.in = make(chan Crash, handlerQueue)
	go m.run()
	return m
}

// crashWatch is the monitor's state for one worker process.
type crashWatch struct {
	m              *crashMonitor
	crashR, crashW *os.File
	errR, errW     *os.File
	output         capBuffer
	tap            *stderrTap
	crashDone      chan struct{}
	tapDone        chan struct{}
	running        bool // the readers were started
	oom            oomProbe

	notReady atomic.Bool  // the supervisor gave up waiting for readiness
	rss      atomic.Int64 // > 0: over the memory cap, being replaced

	oomEvidence string // set by exited
}

var _ procHook = (*crashWatch)(nil)

// prepare gives the worker its crash pipe and routes its standard error
// through a tap that passes it on to where it went before (the
// supervisor's standard error, or what another part put there).
func (m *crashMonitor) prepare(p *proc) ([]inheritedFile, error) {
	crashR, crashW, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("crash pipe: %w", err)
	}
	errR, errW, err := blockingPipe()
	if err != nil {
		crashR.Close()
		crashW.Close()
		return nil, fmt.Errorf("stderr pipe: %w", err)
	}
	w := &crashWatch{
		m: m, crashR: crashR, crashW: crashW, errR: errR, errW: errW,
		output:    capBuffer{max: maxCrashOutput},
		tap:       &stderrTap{dst: p.cmd.Stderr, mu: &m.stderrMu},
		crashDone: make(chan struct{}), tapDone: make(chan struct{}),
	}
	growPipe(errW, stderrPipe)
	p.cmd.Stderr = errW
	p.attach(w)
	return []inheritedFile{{"crash", crashW}}, nil
}

func (w *crashWatch) started(p *proc) {
	w.crashW.Close()
	w.errW.Close()
	if p.cmd.Process == nil {
		return
	}
	w.running = true
	go func() {
		defer close(w.crashDone)
		_, _ = io.Copy(&w.output, w.crashR)
		w.crashR.Close()
	}()
	go func() {
		defer close(w.tapDone)
		w.tap.run(w.errR)
		w.errR.Close()
	}()
	pid := p.cmd.Process.Pid
	if dir := w.m.c.workerCgroup; dir != "" {
		if err := os.WriteFile(dir+"/cgroup.procs", []byte(strconv.Itoa(pid)), 0); err != nil {
			w.m.c.log().Warn("cluster: cannot move the worker into its cgroup", "pid", pid, "error", err)
		}
	}
	w.oom = startOOMProbe(pid)
}

// exited waits for what the worker wrote before it died and, for a
// SIGKILL the supervisor did not send, looks for the OOM killer's trace.
func (w *crashWatch) exited(p *proc) {
	if !w.running {
		w.crashR.Close()
		w.errR.Close()
		if p.cmd.Process == nil { // abandoned before started ran
			w.crashW.Close()
			w.errW.Close()
		}
		return
	}
	wait := func(done chan struct{}, d time.Duration) {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-done:
		case <-t.C:
		}
	}
	wait(w.crashDone, crashOutputWait)
	wait(w.tapDone, stderrWait)
	if st := p.cmd.ProcessState; st != nil && !p.killed.Load() {
		if ws, ok := st.Sys().(syscall.WaitStatus); ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL {
			w.oomEvidence = w.oom.evidence(p.cmd.Process.Pid)
		}
	}
}

// watchOf returns the monitor's state for p, nil when it has none.
func watchOf(p *proc) *crashWatch {
	for _, h := range p.hooks {
		if w, ok := h.(*crashWatch); ok {
			return w
		}
	}
	return nil
}

// quit ends a worker that did not become ready in time: SIGQUIT, so that
// the runtime prints where every goroutine is, then SIGKILL after
// quitGrace.
func (m *crashMonitor) quit(p *proc) {
	if w := watchOf(p); w != nil {
		w.notReady.Store(true)
	}
	_ = p.cmd.Process.Signal(syscall.SIGQUIT)
	t := time.NewTimer(quitGrace)
	defer t.Stop()
	select {
	case <-p.done:
	case <-t.C:
		p.kill()
	}
}

// overCap records that p is being replaced for its resident set size and
// asks it for a memory dump, which it writes to its crash pipe while the
// replacement starts.
func (m *crashMonitor) overCap(p *proc, rss int64) {
	w := watchOf(p)
	if w == nil || !w.rss.CompareAndSwap(0, rss) {
		return
	}
	_, _ = p.life.Write([]byte{lifelineMemoryDump})
}

// How the supervisor had ended a process, for its report.
type crashEnd int

const (
	endUnexpected  crashEnd = iota // it ended by itself
	endStopped                     // the supervisor drained or killed it
	endStartFailed                 // it failed readiness: exited first, or not ready in time
)

// reportExit reports a worker that ended while serving. loop is set when
// the supervisor gives up after it.
func (m *crashMonitor) reportExit(p *proc, loop bool) { m.report(p, endUnexpected, loop) }

// reportStopped reports a worker the supervisor stopped, if it has
// something to report: the memory cap, or a crash during its drain.
func (m *crashMonitor) reportStopped(p *proc) { m.report(p, endStopped, false) }

// startFailed reports a worker that failed to start: p is nil when no
// process ran (err says why).
func (m *crashMonitor) startFailed(id int, p *proc, err error, loop bool) {
	if p != nil {
		m.report(p, endStartFailed, loop)
		return
	}
	now := time.Now()
	m.emit(Crash{Worker: id, Reason: ReasonStartFailed, Message: err.Error(), ExitCode: -1,
		Start: now, Time: now, CrashLoop: loop})
}

func (m *crashMonitor) report(p *proc, end crashEnd, loop bool) {
	c, ok := m.build(p, end, loop)
	if ok {
		m.emit(c)
	}
}

// build turns what is known of p's end into a Crash, and reports whether
// there is anything to report.
func (m *crashMonitor) build(p *proc, end crashEnd, loop bool) (Crash, bool) {
	c := Crash{Worker: p.id, Incarnation: p.inc, PID: p.pid, ExitCode: -1, Start: p.start, Time: p.end,
		Uptime: p.end.Sub(p.start), CrashLoop: loop}
	if st := p.cmd.ProcessState; st != nil {
		c.Status = st.String()
		if ws, ok := st.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			c.Signal = unix.SignalName(ws.Signal())
		} else {
			c.ExitCode = st.ExitCode()
		}
	}
	w := watchOf(p)
	if w == nil { // not prepared by the monitor: only the exit status is known
		w = &crashWatch{tap: &stderrTap{}}
	}
	out, truncated := w.output.snapshot()
	tail, fatal := w.tap.snapshot()
	c.Truncated = truncated
	c.Stderr = lastLines(tail, crashStderr)

	text := string(out)
	if text == "" && c.ExitCode == 2 {
		// Exit status 2 without crash output: a crash before the worker
		// had set its crash output (in an early package init), which only
		// standard error holds.
		text = crashInStderr(tail)
	}
	parsed := parseCrash(text, m.module)
	if parsed.crashed && parsed.message == "" && len(fatal) > 0 {
		// A fatal error: the runtime writes its "fatal error:" line to
		// standard error only, before the crash output.
		parsed.message = fatal[len(fatal)-1]
		text = strings.Join(fatal, "\n") + "\n" + text
	}
	c.Output = text
	c.Goroutines, c.Heap = parsed.goroutines, parsed.heap

	stopping := m.ctx.Err() != nil && !loop
	rss := w.rss.Load()
	switch {
	case rss > 0 && !stopping && end != endStartFailed:
		c.Reason, c.RSS = ReasonMemoryCap, rss
		c.Message = fmt.Sprintf("resident set of %d MiB over the memory cap of %d MiB", rss>>20, m.c.memoryLimit>>20)
	case w.notReady.Load():
		c.Reason = ReasonNotReady
		c.Message = fmt.Sprintf("not ready within %v", m.c.readyTimeout)
	case parsed.crashed:
		c.Message = parsed.message
		switch {
		case strings.HasPrefix(c.Message, "panic: "):
			c.Reason = ReasonPanic
		case isSignalLine(c.Message):
			c.Reason = ReasonSignal
		default:
			c.Reason = ReasonFatalError
			if c.Message == "" {
				c.Message = "fatal error (the runtime's message was not captured)"
			}
		}
	case w.oomEvidence != "":
		c.Reason, c.Message = ReasonOOMKill, w.oomEvidence
	case c.Signal != "":
		c.Reason, c.Message = ReasonSignal, c.Status
	default:
		c.Reason, c.Message = ReasonExitCode, c.Status
	}
	switch {
	case stopping || end == endStopped:
		// The supervisor ended it: only a crash during the drain, or the
		// memory cap, is worth a report.
		return c, parsed.crashed || c.Reason == ReasonMemoryCap
	}
	return c, true
}

// emit logs c and queues it for the handler, never blocking.
func (m *crashMonitor) emit(c Crash) {
	m.c.log().Error("cluster: worker crashed", crashAttrs(c)...)
	if m.in == nil {
		return
	}
	m.closeMu.Lock()
	defer m.closeMu.Unlock()
	if m.closed {
		return
	}
	select {
	case m.in <- c:
	default:
		n := m.dropped.Add(1)
		m.c.log().Warn("cluster: crash handler is behind; report dropped", "worker", c.Worker,
			"pid", c.PID, "dropped", n)
	}
}

// crashAttrs are the attributes of the "cluster: worker crashed" record.
func crashAttrs(c Crash) []any {
	attrs := []any{"worker", c.Worker, "incarnation", c.Incarnation, "pid", c.PID, "reason", string(c.Reason),
		"message", c.Message, "status", c.Status, "uptime", c.Uptime.Round(time.Millisecond)}
	for _, g := range c.Goroutines {
		if g.Crashed {
			attrs = append(attrs, "goroutine", g.ID)
			break
		}
	}
	if f, ok := c.Culprit(); ok {
		attrs = append(attrs, "culprit", f.Function+" ("+f.File+":"+strconv.Itoa(f.Line)+")")
	}
	if st := c.Stack(); len(st) > 0 {
		var createdBy *Frame
		for _, g := range c.Goroutines {
			if g.Crashed {
				createdBy = g.CreatedBy
			}
		}
		attrs = append(attrs, "stack", stackText(st, createdBy))
	} else if c.Stderr != "" {
		attrs = append(attrs, "stderr", lastLines(c.Stderr, logStderr))
	}
	if c.RSS > 0 {
		attrs = append(attrs, "rss", c.RSS)
	}
	if c.Truncated > 0 {
		attrs = append(attrs, "truncated", c.Truncated)
	}
	if c.CrashLoop {
		attrs = append(attrs, "crash_loop", true)
	}
	return attrs
}

// run calls the handler, one report at a time, with identical crashes
// counted (see dedup).
func (m *crashMonitor) run() {
	defer close(m.done)
	d := newDedup(dedupWindow)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	for {
		select {
		case c, ok := <-m.in:
			if !ok {
				for _, s := range d.flush() {
					m.call(s)
				}
				return
			}
			if c, ok := d.add(time.Now(), c); ok {
				m.call(c)
			}
		case <-timer.C:
			for _, s := range d.expire(time.Now()) {
				m.call(s)
			}
		}
		timer.Stop()
		if at, ok := d.next(); ok {
			timer.Reset(time.Until(at))
		}
	}
}

// call runs the handler; a panic in it is logged, not fatal to the
// supervisor.
func (m *crashMonitor) call(c Crash) {
	defer func() {
		if v := recover(); v != nil {
			m.c.log().Error("cluster: crash handler panicked", "worker", c.Worker, "pid", c.PID,
				"panic", fmt.Sprint(v))
		}
	}()
	m.c.crashHandler(c)
}

// close hands the counted repeats on and waits, up to handlerGrace, for
// the handler to finish; the supervisor calls it once every worker is
// gone.
func (m *crashMonitor) close() {
	if m.in == nil {
		return
	}
	m.closeMu.Lock()
	if !m.closed {
		m.closed = true
		close(m.in)
	}
	m.closeMu.Unlock()
	t := time.NewTimer(handlerGrace)
	defer t.Stop()
	select {
	case <-m.done:
	case <-t.C:
		m.c.log().Warn("cluster: crash handler still busy; not waiting for it", "waited", handlerGrace)
	}
}

// blockingPipe returns a pipe in blocking mode, which os.Pipe's is not:
// the tap reads it with plain read calls, so that a worker's writes never
// wake the supervisor's network poller, and it wakes only to drain what
// gathered (see stderrTap.run).
func blockingPipe() (r, w *os.File, err error) {
	var p [2]int
	syscall.ForkLock.RLock()
	err = syscall.Pipe(p[:])
	if err == nil {
		syscall.CloseOnExec(p[0])
		syscall.CloseOnExec(p[1])
	}
	syscall.ForkLock.RUnlock()
	if err != nil {
		return nil, nil, err
	}
	return os.NewFile(uintptr(p[0]), "|0"), os.NewFile(uintptr(p[1]), "|1"), nil
}

// capBuffer keeps the first max bytes written to it and counts the rest.
type capBuffer struct {
	mu      sync.Mutex
	max     int
	b       []byte
	dropped int64
}

func (b *capBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	keep := min(len(p), b.max-len(b.b))
	b.b = append(b.b, p[:keep]...)
	b.dropped += int64(len(p) - keep)
	return len(p), nil
}

func (b *capBuffer) snapshot() ([]byte, int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return bytes.Clone(b.b), b.dropped
}

// stderrTap passes a worker's standard error on to dst (nil: nowhere) in
// whole lines, so that the lines of workers and the supervisor's own
// records do not interleave mid-line, and keeps its end for the crash
// report: the last stderrTail bytes, and the runtime's last "fatal
// error:" line with the "runtime:" lines just before it.
type stderrTap struct {
	dst io.Writer
	mu  *sync.Mutex // shared by every tap of the supervisor

	tailMu sync.Mutex
	tail   []byte
	fatal  []string
	pre    []string // "runtime: …" lines since the last other line
}

// Bounds of the runtime lines the tap keeps.
const (
	maxFatalLines = 8
	maxFatalLine  = 1 << 10
	// maxPending is the longest partial line held back before it is
	// passed on anyway.
	maxPending = 64 << 10
	// pipeAtomic is the largest write a pipe keeps whole (PIPE_BUF on
	// Linux): the tap writes in chunks of whole lines up to this size.
	pipeAtomic = 4096
	// tapCoalesce is how long the tap lets a worker's lines gather before
	// it reads them: the delay of a stderr line through the supervisor.
	tapCoalesce = 2 * time.Millisecond
	// stderrPipe is the capacity the tap asks for its pipe, so that a
	// worker that writes in bursts does not wait for the supervisor.
	stderrPipe = 1 << 20
)

func (t *stderrTap) run(r io.Reader) {
	buf := make([]byte, 32<<10)
	var pending []byte
	for first := true; ; first = false {
		if !first {
			// Let lines gather: a worker that logs every request to stderr
			// would otherwise cost a read, a write and a wake-up per line.
			// The pipe holds what arrives meanwhile (see growPipe); an idle
			// worker costs nothing, the read blocks.
			time.Sleep(tapCoalesce)
		}
		n, err := r.Read(buf)
		pending = append(pending, buf[:n]...)
		if end := bytes.LastIndexByte(pending, '\n'); end >= 0 {
			t.pass(pending[:end+1])
			pending = append(pending[:0], pending[end+1:]...)
		} else if len(pending) > maxPending {
			t.pass(pending)
			pending = pending[:0]
		}
		if err != nil {
			if len(pending) > 0 {
				t.pass(pending)
			}
			return
		}
	}
}

// pass writes whole lines to dst and keeps them.
func (t *stderrTap) pass(p []byte) {
	if t.dst != nil {
		t.mu.Lock()
		for rest := p; len(rest) > 0; {
			chunk := rest
			if len(chunk) > pipeAtomic {
				if end := bytes.LastIndexByte(chunk[:pipeAtomic], '\n'); end >= 0 {
					chunk = chunk[:end+1]
				} else if end := bytes.IndexByte(chunk, '\n'); end >= 0 {
					chunk = chunk[:end+1] // one long line, alone
				}
			}
			if _, err := t.dst.Write(chunk); err != nil {
				break // where it went is gone; keep the tail regardless
			}
			rest = rest[len(chunk):]
		}
		t.mu.Unlock()
	}
	t.keep(p)
}

func (t *stderrTap) keep(p []byte) {
	t.tailMu.Lock()
	defer t.tailMu.Unlock()
	t.tail = append(t.tail, p...)
	if len(t.tail) > 2*stderrTail {
		cut := len(t.tail) - stderrTail
		if nl := bytes.IndexByte(t.tail[cut:], '\n'); nl >= 0 {
			cut += nl + 1
		}
		t.tail = append(t.tail[:0], t.tail[cut:]...)
	}
	for len(p) > 0 {
		var line []byte
		line, p, _ = bytes.Cut(p, []byte("\n"))
		switch {
		case bytes.HasPrefix(line, []byte("fatal error: ")):
			t.fatal = append(append(t.fatal[:0], t.pre...), clip(line))
			t.pre = t.pre[:0]
		case bytes.HasPrefix(line, []byte("runtime: ")), bytes.HasPrefix(line, []byte("unexpected fault address")):
			if len(t.pre) < maxFatalLines-1 {
				t.pre = append(t.pre, clip(line))
			}
		default:
			t.pre = t.pre[:0]
		}
	}
}

func clip(line []byte) string {
	if len(line) > maxFatalLine {
		line = line[:maxFatalLine]
	}
	return string(line)
}

// snapshot returns the kept end of stderr and the last fatal error lines.
func (t *stderrTap) snapshot() (string, []string) {
	t.tailMu.Lock()
	defer t.tailMu.Unlock()
	tail := t.tail
	if len(tail) > stderrTail {
		tail = tail[len(tail)-stderrTail:]
	}
	return string(tail), append([]string(nil), t.fatal...)
}

// crashInStderr returns the runtime's report at the end of a worker's
// standard error: from its last line that starts with "panic: " or "fatal
// error: " on, or "" when there is none. What the program wrote before is
// left out: it is no crash output, and may hold anything.
func crashInStderr(tail string) string {
	start := -1
	for _, prefix := range []string{"panic: ", "fatal error: "} {
		at := strings.LastIndex("\n"+tail, "\n"+prefix)
		if at > start {
			start = at
		}
	}
	if start < 0 {
		return ""
	}
	return tail[start:]
}

// lastLines returns the end of s, at most max bytes, starting at a line.
func lastLines(s string, max int) string {
	s = strings.TrimRight(s, "\n")
	if len(s) <= max {
		return s
	}
	s = s[len(s)-max:]
	if nl := strings.IndexByte(s, '\n'); nl >= 0 {
		s = s[nl+1:]
	}
	return s
}
