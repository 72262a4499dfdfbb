package recoverer

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"runtime"
	"strconv"
	"strings"

	"github.com/go-chi/chi/v5/middleware"

	"github.com/shipshape-go/shipshape/reqlog"
)

// Keys of the attributes recoverer writes, in its own record and on the
// access log line, beside reqlog's HTTP keys.
const (
	keyPanic   = "panic"           // the panic value, formatted with %v
	keyStack   = "stack"           // one "function\n\tfile:line" pair per frame, innermost first
	keyEventID = "sentry.event_id" // the Reporter's event id; absent when nothing was sent
)

const (
	msgPanic          = "panic recovered"
	msgPanicGoroutine = "panic recovered in goroutine"
	maxFrames         = 64
)

// callers returns the program counters of the panicking goroutine. It must
// be called from the deferred function (or one it calls directly) while the
// panic is being handled, when the frames of the panic are still on the stack.
func callers() []uintptr {
	pcs := make([]uintptr, maxFrames+16)
	return pcs[:runtime.Callers(1, pcs)]
}

// panicFrames returns the frames of the code that panicked, innermost first:
// everything above runtime.gopanic (the recovery machinery, this package's
// deferred function) is dropped, and so is every runtime frame below it
// (runtime.sigpanic, runtime.panicmem, runtime.goexit…), which say nothing
// about the bug.
func panicFrames(pcs []uintptr) []runtime.Frame {
	frames := runtime.CallersFrames(pcs)
	var out []runtime.Frame
	seenPanic := false
	for {
		f, more := frames.Next()
		if f.Function == "runtime.gopanic" {
			seenPanic = true
			out = out[:0]
		} else if !strings.HasPrefix(f.Function, "runtime.") {
			out = append(out, f)
		}
		if !more {
			break
		}
	}
	if !seenPanic {
		// Not called during a panic (cannot happen from this package): keep
		// what there is rather than nothing.
		return out
	}
	if len(out) > maxFrames {
		out = out[:maxFrames]
	}
	return out
}

// formatStack renders frames the way runtime/debug.Stack does, without the
// goroutine header: "function\n\tfile:line\n" per frame.
func formatStack(frames []runtime.Frame) string {
	var b strings.Builder
	for _, f := range frames {
		b.WriteString(f.Function)
		b.WriteString("\n\t")
		b.WriteString(f.File)
		b.WriteByte(':')
		b.WriteString(strconv.Itoa(f.Line))
		b.WriteByte('\n')
	}
	return b.String()
}

// panicString formats a panic value. fmt recovers from a panicking Error or
// String method, so this never panics itself.
func panicString(p any) string { return fmt.Sprint(p) }

// report logs p, hands it to the Reporter and annotates the access log
// line. r is nil for a panic in a goroutine started by NewGo or Go. It
// returns the event id, "" when nothing was sent. A panic inside reporting
// (a broken slog handler, a Reporter's BeforeSend callback) is swallowed: it
// must not hide the original one, nor stop the response.
func (c *config) report(ctx context.Context, r *http.Request, p any, pcs []uintptr) (eventID string) {
	pn := Panic{Value: p, Frames: panicFrames(pcs), Request: r}
	if r != nil {
		pn.Route = reqlog.Route(r)
	}
	value := panicString(p)

	if c.reporter != nil {
		func() {
			defer func() { _ = recover() }()
			eventID = c.reporter.ReportPanic(ctx, pn)
		}()
	}
	c.recorded(ctx, r != nil, c.reporter != nil, eventID)

	attrs := make([]slog.Attr, 0, 8)
	attrs = append(attrs, slog.String(keyPanic, value), slog.String(keyStack, formatStack(pn.Frames)))
	msg := msgPanicGoroutine
	if r != nil {
		msg = msgPanic
		attrs = append(attrs, slog.String(reqlog.KeyMethod, r.Method), slog.String(reqlog.KeyPath, r.URL.Path))
		if pn.Route != "" {
			attrs = append(attrs, slog.String(reqlog.KeyRoute, pn.Route))
		}
	}
	if id := middleware.GetReqID(ctx); id != "" {
		attrs = append(attrs, slog.String(reqlog.KeyRequestID, id))
	}
	if eventID != "" {
		attrs = append(attrs, slog.String(keyEventID, eventID))
	}
	func() {
		defer func() { _ = recover() }()
		c.log().LogAttrs(ctx, slog.LevelError, msg, attrs...)
	}()

	if r != nil {
		line := []slog.Attr{slog.String(keyPanic, value)}
		if eventID != "" {
			line = append(line, slog.String(keyEventID, eventID))
		}
		reqlog.AddAttrs(ctx, line...)
	}
	return eventID
}

// log returns the logger of the records: WithLogger's, else slog.Default
// now.
func (c *config) log() *slog.Logger {
	if c.logger != nil {
		return c.logger
	}
	return slog.Default()
}
