package recoverer

import (
	"context"
	"net/http"
	"runtime"
)

// Panic is a recovered panic, as a [Reporter] gets it.
type Panic struct {
	// Value is what was passed to panic: an error, a string, a
	// runtime.Error for a nil dereference, a *runtime.PanicNilError for
	// panic(nil)… Never http.ErrAbortHandler, which is not reported.
	Value any
	// Frames are the frames of the code that panicked, innermost first:
	// without the recovery machinery and without runtime frames
	// (runtime.gopanic, runtime.sigpanic, runtime.goexit…), at most 64.
	// The slice is the reporter's to keep.
	Frames []runtime.Frame
	// Request is the request whose handler panicked, nil for a panic in a
	// goroutine started by [NewGo] or [Go]. A reporter must not read its
	// body: the handler may have consumed it, and reading more would block.
	Request *http.Request
	// Route is the route of Request ([reqlog.Route]: "/items/{id}"), "" when
	// no router matched it or there is no request.
	Route string
}

// Reporter sends recovered panics to an error tracker (the Sentry one is
// github.com/shipshape-go/shipshape/sentryreport). Its methods must be safe
// for concurrent use: panics of concurrent requests are reported at once.
type Reporter interface {
	// ReportPanic reports p and returns the id of the tracker's event, ""
	// when nothing was sent (no client configured, sampled out, dropped by
	// a filter). recoverer logs the id, adds it to the access line and
	// gives it to the problem writer ([EventID]). ctx is the request's
	// context, or the one given to the goroutine. It runs on the goroutine
	// that panicked, before the response is written: it must hand the
	// event to an asynchronous transport rather than wait for the network.
	// A panic in it is recovered and ignored, so that it never hides the
	// one being reported.
	ReportPanic(ctx context.Context, p Panic) (eventID string)
}

// WithReporter sets where panics are reported besides the log. The default
// is none: panics are only logged. A nil Reporter is an error; given more
// than once, the last one is used.
func WithReporter(rep Reporter) Option {
	return func(c *config) { c.reporter, c.repSet = rep, true }
}
