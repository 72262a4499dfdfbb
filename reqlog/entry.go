package reqlog

import (
	"context"
	"log/slog"
	"net/http"
	"sync"
)

// contextKey is the type of [ContextKey].
type contextKey struct{}

// ContextKey is the context key under which a request's *[Entry] is
// stored. [NewContext] stores it; a middleware that implements
// context.Context itself, to save an allocation per request (accesslog
// does), answers Value(ContextKey) with its Entry.
var ContextKey any = contextKey{}

// Entry collects what middleware and handlers add to one request's log
// line. Once the line is written ([Entry.Finish]), further additions are
// ignored, so a goroutine that outlives its request cannot race with the
// record that was already handed to the slog handler. The zero value is
// ready to use; an Entry is safe for concurrent use.
type Entry struct {
	mu        sync.Mutex
	done      bool
	routeLazy bool // route is what mux answered, not what RecordRoute recorded
	attrs     []slog.Attr
	peer      string // see SetPeer

	// The route (see RecordRoute): recorded when the router returned, the
	// innermost router's winning; or, while mux still serves req, what mux
	// answers for it.
	route string
	mux   *http.ServeMux
	req   *http.Request
}

// NewContext returns a copy of parent that carries e.
func NewContext(parent context.Context, e *Entry) context.Context {
	return context.WithValue(parent, ContextKey, e)
}

// FromContext returns the Entry that ctx carries, or nil.
func FromContext(ctx context.Context) *Entry {
	if ctx == nil {
		return nil
	}
	e, _ := ctx.Value(ContextKey).(*Entry)
	return e
}

// AddAttrs adds attributes to the log line of the request whose context is
// ctx (accesslog's access line). It is a no-op when no Entry is in ctx, so
// packages can call it unconditionally. It is safe for concurrent use (a
// handler's goroutines may call it).
//
// An added attribute whose key is one the access log writes itself (for
// example "http.route" or "user.name") replaces that value instead of
// repeating the key. Attributes added after the line was written (from a
// goroutine that outlived the request) are ignored.
func AddAttrs(ctx context.Context, attrs ...slog.Attr) {
	if len(attrs) == 0 {
		return
	}
	if e := FromContext(ctx); e != nil {
		e.Add(attrs...)
	}
}

// Add adds attributes to the line, unless it was already written.
func (e *Entry) Add(attrs ...slog.Attr) {
	e.mu.Lock()
	if !e.done {
		e.attrs = append(e.attrs, attrs...)
	}
	e.mu.Unlock()
}

// Finish marks the line as written and returns what was added. The slice
// is not modified afterwards.
func (e *Entry) Finish() []slog.Attr {
	e.mu.Lock()
	e.done = true
	a := e.attrs
	e.mu.Unlock()
	return a
}

// SetPeer records the address of the request's TCP peer, without the port
// (network.peer.address: "203.0.113.7"), so that records logged within the
// request carry it as client.address when no chi ClientIPFrom… middleware
// set a client IP (see [NewHandler]). accesslog calls it before it serves
// the request.
func (e *Entry) SetPeer(host string) {
	e.mu.Lock()
	e.peer = host
	e.mu.Unlock()
}

// Peer returns the address [Entry.SetPeer] recorded, or "".
func (e *Entry) Peer() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.peer
}
