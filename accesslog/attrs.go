package accesslog

import (
	"context"
	"log/slog"
	"sync"
)

// entryKey is the context key of the request's *entry.
type entryKey struct{}

// entry collects what other middleware and handlers add to one request's
// access log line.
type entry struct {
	mu    sync.Mutex
	attrs []slog.Attr
}

// AddAttrs adds attributes to the access log line of the request whose
// context is ctx. It is a no-op when the request does not pass through the
// access log middleware, so packages can call it unconditionally. It is safe
// for concurrent use (a handler's goroutines may call it).
func AddAttrs(ctx context.Context, attrs ...slog.Attr) {
	e, ok := ctx.Value(entryKey{}).(*entry)
	if !ok || len(attrs) == 0 {
		return
	}
	e.mu.Lock()
	e.attrs = append(e.attrs, attrs...)
	e.mu.Unlock()
}
