package cluster

import (
	"strconv"
	"strings"
	"time"
)

// Crash is the supervisor's report of a worker process that ended
// abnormally: one per process, built once the process was reaped from its
// exit status, the crash output the Go runtime wrote (the supervisor hands
// every worker a pipe for it, see runtime/debug.SetCrashOutput), the
// worker's standard error and, for a SIGKILL, the kernel's OOM records.
// The supervisor logs each one ("cluster: worker crashed") and hands it to
// the [WithCrashHandler] function.
//
// Nothing is reported for a worker the supervisor stopped on purpose (a
// SIGTERM drain, a rolling restart, the supervisor's own stop) unless it
// crashed while draining, and nothing for a worker replaced because it was
// over [WithMemoryLimit] other than its [ReasonMemoryCap] report.
type Crash struct {
	// Worker is the worker id ([WorkerID]).
	Worker int
	// Incarnation is the process's incarnation ([WorkerIncarnation]); 0
	// for [ReasonStartFailed] when no process ran.
	Incarnation uint64
	// PID is the process id; 0 for [ReasonStartFailed].
	PID int
	// Reason classifies the end; see [Reason].
	Reason Reason
	// Message is the first line of the runtime's report for a crash
	// ("panic: runtime error: index out of range [5] with length 3",
	// "fatal error: concurrent map writes", "SIGSEGV: segmentation
	// violation"); for the other reasons, a description ("exit status 3",
	// the kernel's line for an OOM kill).
	Message string
	// Status is the exit status as os.ProcessState prints it ("exit status
	// 2", "signal: killed"); empty when no process ran.
	Status string
	// ExitCode is the process's exit code, -1 when a signal ended it or no
	// process ran.
	ExitCode int
	// Signal names the signal that ended the process ("SIGKILL"); empty
	// when it exited.
	Signal string
	// Start is when the process was started; Time when it ended; Uptime is
	// the difference.
	Start, Time time.Time
	Uptime      time.Duration
	// RSS is, for [ReasonMemoryCap], the resident set size in bytes that
	// was over the cap.
	RSS int64
	// Goroutines are the goroutine stacks of the crash output, in the order
	// the runtime printed them: the crashing goroutine (Crashed) first. For
	// [ReasonMemoryCap] and [ReasonNotReady] they are a dump of the live
	// process taken before it was stopped, with no goroutine crashed. At
	// most 10,000 are kept.
	Goroutines []Goroutine
	// Heap is, for [ReasonMemoryCap], the allocation sites that held the
	// most memory when the cap was exceeded (from the runtime's sampled
	// heap profile), largest first.
	Heap []Allocation
	// Output is the crash output as the runtime wrote it, including the
	// "fatal error:" lines it writes to standard error only, at most 4 MiB;
	// Truncated counts the bytes beyond that which were dropped (a dump of
	// 100,000 goroutines runs to tens of megabytes).
	Output    string
	Truncated int64
	// Stderr is the end of what the worker wrote to standard error: at most
	// its last 4 KiB, in whole lines. The supervisor passes the worker's
	// standard error on to its own, unchanged, as before.
	Stderr string
	// Repeats is, in a report handed to the [WithCrashHandler] function,
	// the number of crashes identical to this one (same reason, message and
	// culprit) that were not handed on since the last report of the same
	// crash. See [WithCrashHandler].
	Repeats int
	// CrashLoop is set on the crash after which the supervisor gave up
	// (see [WithCrashLoop]): it stops every worker and [Run] returns an
	// error wrapping [ErrCrashLoop].
	CrashLoop bool
}

// Reason says how a worker ended.
type Reason string

// The reasons of a [Crash].
const (
	// ReasonPanic: an unrecovered panic, in any goroutine.
	ReasonPanic Reason = "panic"
	// ReasonFatalError: a fatal error of the runtime, which no recover can
	// catch: concurrent map writes, out of memory, stack overflow, all
	// goroutines asleep, an unexpected signal in runtime code.
	ReasonFatalError Reason = "fatal error"
	// ReasonSignal: a signal ended the process. Either the runtime reported
	// it (a SIGSEGV in C code, an external SIGQUIT or SIGABRT: Message is
	// the runtime's "SIGSEGV: segmentation violation"), or the process died
	// of it without a word (a SIGKILL from an operator).
	ReasonSignal Reason = "signal"
	// ReasonOOMKill: the kernel's out-of-memory killer sent the SIGKILL.
	// The supervisor knows it from the oom_kill count of the worker's
	// memory cgroup (cgroup v2 memory.events or v1 memory.oom_control),
	// which rose during the worker's life, or from the kernel log
	// (/dev/kmsg, readable by root), which names the process; on Linux
	// only.
	ReasonOOMKill Reason = "OOM kill"
	// ReasonMemoryCap: the supervisor replaced the worker because its
	// resident set was over [WithMemoryLimit]. The report comes once the
	// worker has drained; Heap and Goroutines show what held the memory.
	ReasonMemoryCap Reason = "memory cap"
	// ReasonNotReady: the worker did not become ready within
	// [WithReadyTimeout]. The supervisor sends it SIGQUIT first, so that
	// Goroutines show where it was stuck, and SIGKILL a second later. A
	// worker that exited before it was ready is reported for what ended it
	// (a panic, an exit code).
	ReasonNotReady Reason = "not ready"
	// ReasonExitCode: the process exited by itself, without a crash
	// report of the runtime: os.Exit, log.Fatal, or main returning (exit
	// status 0) without the supervisor having asked it to stop.
	ReasonExitCode Reason = "exit code"
	// ReasonStartFailed: the program could not be started at all (the
	// binary is missing, say); PID is 0 and Message is the error.
	ReasonStartFailed Reason = "start failed"
)

// Goroutine is one goroutine's stack in a crash report.
type Goroutine struct {
	// ID is the goroutine's id as the runtime prints it.
	ID int
	// State is what the runtime printed in brackets: "running", "chan
	// receive, 2 minutes", "select".
	State string
	// Crashed marks the goroutine that panicked or hit the fatal error.
	Crashed bool
	// Frames are the calls, innermost first, as the runtime printed them.
	Frames []Frame
	// CreatedBy is the go statement that started the goroutine; nil for
	// the main goroutine and when the runtime printed none.
	CreatedBy *Frame
	// Elided reports that the runtime left frames out of a deep stack.
	Elided bool
}

// Frame is one call in a stack.
type Frame struct {
	// Function is the qualified function name as the runtime prints it
	// ("github.com/acme/app.(*Server).handle.func1").
	Function string
	// Package is the import path of Function's package
	// ("github.com/acme/app"); empty for runtime pseudo-frames such as
	// "panic".
	Package string
	// File and Line locate the call.
	File string
	Line int
	// InApp reports whether Package belongs to the program's main module
	// (runtime/debug.ReadBuildInfo), rather than to the runtime, the
	// standard library or a dependency.
	InApp bool
}

// Allocation is one allocation site of the heap profile.
type Allocation struct {
	// Bytes and Objects are the memory and objects allocated there and
	// still in use, estimated from the runtime's sampled profile.
	Bytes, Objects int64
	// Frames are the calls that allocated, innermost first.
	Frames []Frame
}

// Stack returns the stack that explains the crash, innermost first: the
// crashing goroutine's frames; for [ReasonMemoryCap], the largest
// allocation site's; for [ReasonNotReady], those of the main goroutine,
// which never got to serve. It returns nil when there is none (an exit
// code, a SIGKILL).
func (c Crash) Stack() []Frame {
	switch c.Reason {
	case ReasonMemoryCap:
		if len(c.Heap) > 0 {
			return c.Heap[0].Frames
		}
		return nil
	case ReasonNotReady:
		for _, g := range c.Goroutines {
			if g.ID == 1 {
				return g.Frames
			}
		}
		return nil
	}
	for _, g := range c.Goroutines {
		if g.Crashed {
			return g.Frames
		}
	}
	return nil
}

// Culprit returns the innermost in-app frame of [Crash.Stack]: the
// program's own function that crashed (below it may be runtime or library
// frames, internal/runtime/maps.fatal for concurrent map writes, say).
func (c Crash) Culprit() (Frame, bool) {
	for _, f := range c.Stack() {
		if f.InApp {
			return f, true
		}
	}
	return Frame{}, false
}

// signature identifies a crash for deduplication: the reason, the message
// without hexadecimal numbers (addresses differ from process to process)
// and the culprit's function and line.
func (c Crash) signature() string {
	var b strings.Builder
	b.WriteString(string(c.Reason))
	b.WriteByte(0)
	b.WriteString(withoutHex(c.Message))
	b.WriteByte(0)
	if f, ok := c.Culprit(); ok {
		b.WriteString(f.Function)
		b.WriteByte(':')
		b.WriteString(strconv.Itoa(f.Line))
	}
	return b.String()
}

// withoutHex replaces every 0x-prefixed hexadecimal number in s by "0x".
func withoutHex(s string) string {
	if !strings.Contains(s, "0x") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '0' && i+1 < len(s) && s[i+1] == 'x' {
			b.WriteString("0x")
			i += 2
			for i < len(s) && isHex(s[i]) {
				i++
			}
			i--
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// stackText formats frames the way the runtime does, for the log record.
func stackText(frames []Frame, createdBy *Frame) string {
	var b strings.Builder
	for _, f := range frames {
		writeFrame(&b, "", f)
	}
	if createdBy != nil {
		writeFrame(&b, "created by ", *createdBy)
	}
	return strings.TrimSuffix(b.String(), "\n")
}

func writeFrame(b *strings.Builder, prefix string, f Frame) {
	b.WriteString(prefix)
	b.WriteString(f.Function)
	b.WriteString("\n\t")
	b.WriteString(f.File)
	b.WriteByte(':')
	b.WriteString(strconv.Itoa(f.Line))
	b.WriteByte('\n')
}
