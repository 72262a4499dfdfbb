package sentryreport

import (
	"context"
	"runtime"
	"strconv"
	"strings"

	"github.com/getsentry/sentry-go"

	"github.com/shipshape-go/shipshape/cluster"
)

// maxThreads is how many goroutines besides the crashing one an event
// carries as threads; the whole crash output is attached anyway.
const maxThreads = 100

// ReportCrash sends one event for the crash of a cluster worker. It is
// made for cluster.WithCrashHandler, which calls it in the supervisor,
// off every request's path, with identical crashes already counted:
//
//	cluster.Serve(ctx, srv, cluster.WithCrashHandler(rep.ReportCrash))
//
// The event: level fatal (error for a worker the supervisor replaced or
// gave up on: memory cap, not ready, start failed), logger "cluster"; the
// exception's type and value from the runtime's first line
// ("runtime.Error" and "index out of range [5] with length 3" for "panic:
// runtime error: index out of range [5] with length 3"; "fatal error" and
// "concurrent map writes"; "SIGSEGV" and "segmentation violation"; for
// the other reasons the reason and the message, "exit code" and "exit
// status 3"), mechanism "cluster", unhandled; the stack trace of
// cluster.Crash.Stack, outermost first, with the go statement that
// started the goroutine as its first frame and in_app from the main
// module; the other goroutines as threads (the first 100; the crashing one
// marked crashed); the crash output, which holds every goroutine the
// runtime printed, as the attachment crash.txt; tags worker, pid,
// incarnation (unique per process, see cluster.WorkerIncarnation) and
// reason, and repeats (the count of identical crashes it stands for, see
// cluster.WithCrashHandler) and crash_loop when they apply; the rest
// (status, exit code, signal, uptime, start, RSS, bytes truncated, heap
// sites) in the context "cluster". Release, environment and server name
// are the client's, as for every event. The event carries nothing of the
// worker's environment, command line or standard error: only what the
// runtime printed about the crash.
//
// The hub is [WithHub]'s, else [sentry.CurrentHub] at the time of the
// report (there is no request context); each report uses a clone. The
// event goes through the client's asynchronous transport: call
// sentry.Flush (or Flush on your hub) after cluster.Serve returns.
func (rep *Reporter) ReportCrash(c cluster.Crash) {
	hub := rep.hubFor(context.Background())
	if hub == nil {
		return
	}
	hub.Clone().CaptureEvent(crashEvent(c))
}

func crashEvent(c cluster.Crash) *sentry.Event {
	event := sentry.NewEvent()
	event.Level = sentry.LevelFatal
	switch c.Reason {
	case cluster.ReasonMemoryCap, cluster.ReasonNotReady, cluster.ReasonStartFailed:
		event.Level = sentry.LevelError
	}
	event.Logger = "cluster"
	if !c.Time.IsZero() {
		event.Timestamp = c.Time
	}

	var crashed *cluster.Goroutine
	for i := range c.Goroutines {
		if c.Goroutines[i].Crashed {
			crashed = &c.Goroutines[i]
			break
		}
	}
	typ, value := exceptionOf(c)
	ex := sentry.Exception{Type: typ, Value: value, Mechanism: &sentry.Mechanism{Type: "cluster"}}
	ex.Mechanism.SetUnhandled()
	var createdBy *cluster.Frame
	if crashed != nil && c.Reason != cluster.ReasonMemoryCap && c.Reason != cluster.ReasonNotReady {
		createdBy = crashed.CreatedBy
		ex.ThreadID = uint64(crashed.ID)
	}
	ex.Stacktrace = crashStacktrace(c.Stack(), createdBy)
	event.Exception = []sentry.Exception{ex}

	omitted := 0
	for _, g := range c.Goroutines {
		th := sentry.Thread{ID: strconv.Itoa(g.ID), Name: "goroutine " + strconv.Itoa(g.ID) + " [" + g.State + "]"}
		switch {
		case g.Crashed && ex.ThreadID != 0:
			th.Crashed, th.Current = true, true // its stack is the exception's
		case len(event.Threads) >= maxThreads:
			omitted++
			continue
		default:
			th.Stacktrace = crashStacktrace(g.Frames, g.CreatedBy)
		}
		event.Threads = append(event.Threads, th)
	}

	event.Tags["worker"] = strconv.Itoa(c.Worker)
	event.Tags["pid"] = strconv.Itoa(c.PID)
	event.Tags["reason"] = string(c.Reason)
	if c.Incarnation > 0 { // unique per process, where the pid may be reused
		event.Tags["incarnation"] = strconv.FormatUint(c.Incarnation, 10)
	}
	if c.Repeats > 0 {
		event.Tags["repeats"] = strconv.Itoa(c.Repeats)
	}
	if c.CrashLoop {
		event.Tags["crash_loop"] = "true"
	}

	ctx := sentry.Context{
		"worker":  c.Worker,
		"pid":     c.PID,
		"reason":  string(c.Reason),
		"message": c.Message,
		"status":  c.Status,
		"uptime":  c.Uptime.String(),
	}
	if !c.Start.IsZero() {
		ctx["start"] = c.Start
	}
	if c.ExitCode >= 0 {
		ctx["exit_code"] = c.ExitCode
	}
	if c.Signal != "" {
		ctx["signal"] = c.Signal
	}
	if c.RSS > 0 {
		ctx["rss_bytes"] = c.RSS
	}
	if c.Repeats > 0 {
		ctx["repeats"] = c.Repeats
	}
	if c.CrashLoop {
		ctx["crash_loop"] = true
	}
	if c.Truncated > 0 {
		ctx["output_truncated_bytes"] = c.Truncated
	}
	ctx["goroutines"] = len(c.Goroutines)
	if omitted > 0 {
		ctx["goroutines_not_in_threads"] = omitted
	}
	if len(c.Heap) > 0 {
		sites := make([]map[string]any, 0, len(c.Heap))
		for _, a := range c.Heap {
			site := map[string]any{"bytes": a.Bytes, "objects": a.Objects}
			if len(a.Frames) > 0 {
				site["function"] = a.Frames[0].Function
			}
			for _, f := range a.Frames {
				if f.InApp {
					site["in_app_function"] = f.Function
					break
				}
			}
			sites = append(sites, site)
		}
		ctx["heap"] = sites
	}
	event.Contexts["cluster"] = ctx

	if c.Output != "" {
		event.Attachments = append(event.Attachments, &sentry.Attachment{
			Filename: "crash.txt", ContentType: "text/plain", Payload: []byte(c.Output),
		})
	}
	return event
}

// exceptionOf returns the exception's type and value.
func exceptionOf(c cluster.Crash) (string, string) {
	switch c.Reason {
	case cluster.ReasonPanic:
		v := strings.TrimPrefix(c.Message, "panic: ")
		return panicType(v), v
	case cluster.ReasonFatalError:
		return "fatal error", strings.TrimPrefix(c.Message, "fatal error: ")
	case cluster.ReasonSignal:
		if name, desc, ok := strings.Cut(c.Message, ": "); ok && strings.HasPrefix(name, "SIG") {
			return name, desc // the runtime's "SIGSEGV: segmentation violation"
		}
		if c.Signal != "" {
			return c.Signal, c.Message
		}
	}
	return string(c.Reason), c.Message
}

// panicType infers the panic value's type from what the runtime printed:
// a runtime error's type, the type the runtime puts in parentheses for
// values it cannot print ("(main.T) 0xc000…"), or a named basic type
// ("main.Code(5)"). For a string or an error the runtime prints only the
// text, so the type is "panic".
func panicType(v string) string {
	switch {
	case strings.HasPrefix(v, "runtime error: "):
		return "runtime.Error"
	case strings.HasPrefix(v, "interface conversion: "):
		return "*runtime.TypeAssertionError"
	case strings.HasPrefix(v, "panic called with nil argument"):
		return "*runtime.PanicNilError"
	case strings.HasPrefix(v, "("):
		if end := strings.Index(v, ") "); end > 1 && !strings.ContainsAny(v[1:end], " ()") {
			return v[1:end]
		}
	case strings.HasSuffix(v, ")"):
		if open := strings.IndexByte(v, '('); open > 0 {
			name := v[:open]
			if strings.Contains(name, ".") && !strings.ContainsAny(name, " \t\"'") {
				return name
			}
		}
	}
	return "panic"
}

// crashStacktrace converts innermost-first frames to a Sentry stack trace
// (outermost first), with the go statement's frame first when there is
// one.
func crashStacktrace(frames []cluster.Frame, createdBy *cluster.Frame) *sentry.Stacktrace {
	if len(frames) == 0 && createdBy == nil {
		return nil
	}
	out := make([]sentry.Frame, 0, len(frames)+1)
	if createdBy != nil {
		out = append(out, crashFrame(*createdBy))
	}
	for i := len(frames) - 1; i >= 0; i-- {
		out = append(out, crashFrame(frames[i]))
	}
	return &sentry.Stacktrace{Frames: out}
}

// crashFrame is sentry.NewFrame with the crash report's in-app decision,
// which counts the main module only, where the SDK's counts everything
// outside GOROOT.
func crashFrame(f cluster.Frame) sentry.Frame {
	sf := sentry.NewFrame(runtime.Frame{Function: f.Function, File: f.File, Line: f.Line})
	if sf.Module == "" {
		sf.Function = f.Function // "panic" and the like: no package
	}
	sf.InApp = f.InApp
	return sf
}
