package sentryreport

import (
	"fmt"
	"net/http"
	"runtime"

	"github.com/getsentry/sentry-go"
)

// transactionName names the Sentry transaction after the method and the
// route, like Sentry's own HTTP integrations ("GET /items/{id}"); without a
// route, after the path.
func transactionName(r *http.Request, route string) string {
	if route == "" {
		route = r.URL.Path
	}
	return r.Method + " " + route
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
func setException(event *sentry.Event, p any, st *sentry.Stacktrace, maxDepth int) {
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
		// fmt recovers from a panicking Error or String method.
		event.Exception = []sentry.Exception{{Type: fmt.Sprintf("%T", p), Value: fmt.Sprint(p)}}
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
