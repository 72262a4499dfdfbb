package accesslog

import (
	"context"
	"log/slog"
	"sync"
)

// entryKey is the context key of the request's *entry.
type entryKey struct{}

// entry collects what other middleware and handlers add to one request's
// access log line. Once the line is written (done), further additions are
// ignored, so a goroutine that outlives its request cannot race with the
// record that was already handed to the slog handler.
type entry struct {
	mu    sync.Mutex
	done  bool
	attrs []slog.Attr
}

// AddAttrs adds attributes to the access log line of the request whose
// context is ctx. It is a no-op when the request does not pass through the
// access log middleware, so packages can call it unconditionally. It is safe
// for concurrent use (a handler's goroutines may call it).
//
// An added attribute whose key is one the middleware writes itself (for
// example "http.route" or "user.name") replaces the middleware's value
// instead of repeating the key. Attributes added after the line was written
// (from a goroutine that outlived the request) are ignored.
func AddAttrs(ctx context.Context, attrs ...slog.Attr) {
	if len(attrs) == 0 || ctx == nil {
		return
	}
	e, ok := ctx.Value(entryKey{}).(*entry)
	if !ok {
		return
	}
	e.mu.Lock()
	if !e.done {
		e.attrs = append(e.attrs, attrs...)
	}
	e.mu.Unlock()
}

// finish marks the entry as written and returns what was added. The slice
// is no longer modified once finish returned.
func (e *entry) finish() []slog.Attr {
	e.mu.Lock()
	e.done = true
	a := e.attrs
	e.mu.Unlock()
	return a
}
