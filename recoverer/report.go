package recoverer

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"runtime"
	"strconv"
	"strings"

	"github.com/getsentry/sentry-go"
	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"
	"github.com/shipshape-go/shipshape/reqlog"
)

// Keys of the attributes recoverer writes, in its own record and on the
// access log line, beside reqlog's HTTP keys.
const (
	keyPanic   = "panic"           // the panic value, formatted with %v
	keyStack   = "stack"           // one "function\n\tfile:line" pair per frame, innermost first
	keyEventID = "sentry.event_id" // absent when nothing was sent to Sentry
)

const (
	msgPanic          = "panic recovered"
	msgPanicGoroutine = "panic recovered in goroutine"
	msgHeaderRefused  = "recoverer: WithSentryHeaders: header refused, not sent to Sentry"
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

// route returns the path template of the matched route, the OpenTelemetry
// http.route: from ServeMux's r.Pattern without its method and host ("GET
// example.com/items/{id}" → "/items/{id}"), else chi's, else "".
func route(r *http.Request) string {
	if p := r.Pattern; p != "" {
		if i := strings.IndexByte(p, '/'); i >= 0 {
			return p[i:]
		}
		return p
	}
	if rc := chi.RouteContext(r.Context()); rc != nil {
		return rc.RoutePattern()
	}
	return ""
}

// transactionName names the Sentry transaction after the method and the
// route, like Sentry's own HTTP integrations ("GET /items/{id}"); without a
// route, after the path.
func transactionName(r *http.Request, rt string) string {
	if rt == "" {
		rt = r.URL.Path
	}
	return r.Method + " " + rt
}

// report logs p, sends it to Sentry and annotates the access log line. r is
// nil for a panic in a goroutine started by Go. It returns the Sentry event
// id, "" when nothing was sent. A panic inside reporting (a broken slog
// handler, a BeforeSend callback) is swallowed: it must not hide the
// original one, nor stop the response.
func (c *config) report(ctx context.Context, r *http.Request, p any, pcs []uintptr) (eventID string) {
	frames := panicFrames(pcs)
	value := panicString(p)

	func() {
		defer func() { _ = recover() }()
		eventID = c.capture(ctx, r, p, value, frames)
	}()

	attrs := make([]slog.Attr, 0, 8)
	attrs = append(attrs, slog.String(keyPanic, value), slog.String(keyStack, formatStack(frames)))
	msg := msgPanicGoroutine
	if r != nil {
		msg = msgPanic
		attrs = append(attrs, slog.String(reqlog.KeyMethod, r.Method), slog.String(reqlog.KeyPath, r.URL.Path))
		if rt := route(r); rt != "" {
			attrs = append(attrs, slog.String(reqlog.KeyRoute, rt))
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
		logger := c.logger
		if logger == nil {
			logger = slog.Default()
		}
		logger.LogAttrs(ctx, slog.LevelError, msg, attrs...)
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

// sentryHub returns the hub to report to, or nil when none can deliver events.
func (c *config) sentryHub(ctx context.Context) *sentry.Hub {
	hub := c.hub
	if hub == nil {
		hub = sentry.GetHubFromContext(ctx)
	}
	if hub == nil {
		hub = sentry.CurrentHub()
	}
	client := hub.Client()
	if !client.IsEnabled() || client.Options().Dsn == "" {
		return nil
	}
	return hub
}

// capture sends one event for p and returns its id.
func (c *config) capture(ctx context.Context, r *http.Request, p any, value string, frames []runtime.Frame) string {
	hub := c.sentryHub(ctx)
	if hub == nil {
		return ""
	}
	hub = hub.Clone()
	client := hub.Client()

	event := sentry.NewEvent()
	event.Level = sentry.LevelFatal
	event.Logger = "recoverer"
	setException(event, p, value, sentryStacktrace(frames), client.Options().MaxErrorDepth)

	hint := &sentry.EventHint{RecoveredException: p, Context: ctx}
	if r != nil {
		hint.Request = r
		event.Request = c.sentryRequest(r)
		event.Transaction = transactionName(r, route(r))
	}
	if id := middleware.GetReqID(ctx); id != "" {
		event.Tags["request_id"] = id
	}
	id := hub.CaptureEventWithHint(event, hint)
	if id == nil {
		return "" // sampled out, dropped by BeforeSend or an event processor
	}
	return string(*id)
}

// sentryStacktrace converts innermost-first frames to Sentry's order
// (outermost first, the frame that panicked last).
func sentryStacktrace(frames []runtime.Frame) *sentry.Stacktrace {
	if len(frames) == 0 {
		return nil
	}
	out := make([]sentry.Frame, 0, len(frames))
	for i := len(frames) - 1; i >= 0; i-- {
		out = append(out, sentry.NewFrame(frames[i]))
	}
	return &sentry.Stacktrace{Frames: out}
}

// setException fills event.Exception: an error's chain the way the SDK
// unwraps it, anything else as one exception named after its type; the last
// (outermost) exception gets the stack of the panic, unless the error carries
// its own (pkg/errors and the like), and is marked unhandled.
func setException(event *sentry.Event, p any, value string, st *sentry.Stacktrace, maxDepth int) {
	ownStack := false
	if err, ok := p.(error); ok && err != nil {
		// A nil pointer in an error interface may panic in Error() or in the
		// SDK's reflection; fall back to the formatted value then.
		func() {
			defer func() {
				if recover() != nil {
					event.Exception, ownStack = nil, false
				}
			}()
			event.SetException(err, maxDepth)
			ownStack = sentry.ExtractStacktrace(err) != nil
		}()
	}
	if len(event.Exception) == 0 {
		event.Exception = []sentry.Exception{{Type: fmt.Sprintf("%T", p), Value: value}}
	}
	top := &event.Exception[len(event.Exception)-1]
	if !ownStack {
		top.Stacktrace = st
	}
	if top.Mechanism == nil {
		top.Mechanism = &sentry.Mechanism{}
	}
	top.Mechanism.Type = "panic"
	top.Mechanism.SetUnhandled()
}
