package reqlog

import (
	"context"
	"errors"
	"log/slog"
	"slices"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"

	"github.com/shipshape-go/shipshape/internal/nilcheck"
)

// NewHandler returns a slog.Handler that passes every record to h with
// what identifies the request it was logged in, taken from the record's
// context, so that an application's records can be found next to the
// request's access line (the habit of pino-http's req.log, or a winston
// child logger):
//
//	http.request.id  the request id, as chi's middleware.GetReqID reads it (accesslog.WithRequestID, chi's RequestID)
//	client.address   chi's client IP (ClientIPFrom…), else the TCP peer accesslog saw
//	http.route       the request's route, as [Route] finds it: recorded by [RecordRoute], or chi's
//	trace_id         the OpenTelemetry trace, when a span is in the context (see [AppendTrace])
//	span_id          and its span
//
// Each is added only when known, and only when the record, or the logger
// it came through (logger.With), does not have that key already: the
// access line, which carries them all, passes through unchanged. Records
// logged without a context (slog.Info rather than slog.InfoContext), or
// with one that carries none of these, pass through as they are.
//
//	h, err := reqlog.NewHandler(slog.NewJSONHandler(os.Stdout, nil))
//	if err != nil {
//		return err
//	}
//	slog.SetDefault(slog.New(h))
//	…
//	slog.InfoContext(r.Context(), "cart updated", "items", 3) // in a handler
//
// The attributes follow the record's own. Under a logger with groups
// (logger.WithGroup("db")) they stay at the top level, outside the
// groups, where log queries look for them; that costs the handler's
// WithAttrs and WithGroup once per such record. Otherwise the record is
// passed on with the attributes added. A record with nothing to add costs
// five context lookups and no allocation. One with something to add costs
// one allocation for the trace ids (both share it), one for a chi client
// IP's string, and one when the record has no room left for the
// attributes (slog keeps five in the record itself); the request id,
// route and peer are strings that exist already.
//
// A nil h is an error.
func NewHandler(h slog.Handler) (slog.Handler, error) {
	if nilcheck.Is(h) {
		return nil, errors.New("reqlog: handler is nil")
	}
	return &handler{inner: h}, nil
}

// handler is NewHandler's handler.
type handler struct {
	inner slog.Handler // h with every WithAttrs and WithGroup applied
	root  slog.Handler // h before the first WithGroup; nil while no group is open
	after []groupOrAttrs
	has   keySet // keys given to WithAttrs before any group: not added again
}

// groupOrAttrs is one WithGroup or WithAttrs call after the first group,
// replayed on root for a record whose request attributes go outside the
// groups.
type groupOrAttrs struct {
	group string
	attrs []slog.Attr
}

// keySet is a set of the keys NewHandler adds.
type keySet uint8

const (
	hasRequestID keySet = 1 << iota
	hasClient
	hasRoute
	hasTraceID
	hasSpanID
)

func keyBit(key string) keySet {
	switch key {
	case KeyRequestID:
		return hasRequestID
	case KeyClient:
		return hasClient
	case KeyRoute:
		return hasRoute
	case KeyTraceID:
		return hasTraceID
	case KeySpanID:
		return hasSpanID
	}
	return 0
}

// keysOf returns the keys of attrs, looking into groups with an empty key,
// which handlers inline.
func keysOf(attrs []slog.Attr) keySet {
	var s keySet
	for _, a := range attrs {
		s |= keyOf(a)
	}
	return s
}

func keyOf(a slog.Attr) keySet {
	if a.Key == "" && a.Value.Kind() == slog.KindGroup {
		return keysOf(a.Value.Group())
	}
	return keyBit(a.Key)
}

func (h *handler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.inner.Enabled(ctx, l)
}

func (h *handler) Handle(ctx context.Context, r slog.Record) error {
	var buf [5]slog.Attr
	add := requestAttrs(ctx, buf[:0], h.has)
	if len(add) == 0 {
		return h.inner.Handle(ctx, r)
	}
	if h.root == nil {
		var present keySet
		r.Attrs(func(a slog.Attr) bool {
			present |= keyOf(a)
			return true
		})
		add = slices.DeleteFunc(add, func(a slog.Attr) bool { return present&keyBit(a.Key) != 0 })
		if len(add) == 0 {
			return h.inner.Handle(ctx, r)
		}
		// Clone: the caller's copy of the record must not see the
		// attributes appended here.
		r = r.Clone()
		r.AddAttrs(add...)
		return h.inner.Handle(ctx, r)
	}
	// Groups are open: give the attributes to the handler as the logger
	// had them before its first group, then replay the groups. A record
	// attribute with the same key is inside a group, so nothing repeats.
	out := h.root.WithAttrs(slices.Clone(add))
	for _, g := range h.after {
		if g.group != "" {
			out = out.WithGroup(g.group)
		} else {
			out = out.WithAttrs(g.attrs)
		}
	}
	return out.Handle(ctx, r)
}

// requestAttrs appends the request's attributes in ctx whose keys are not
// in skip.
func requestAttrs(ctx context.Context, dst []slog.Attr, skip keySet) []slog.Attr {
	if ctx == nil {
		return dst
	}
	e := FromContext(ctx)
	if skip&hasRequestID == 0 {
		if id := middleware.GetReqID(ctx); id != "" {
			dst = append(dst, slog.String(KeyRequestID, id))
		}
	}
	if skip&hasClient == 0 {
		if ip := middleware.GetClientIPAddr(ctx); ip.IsValid() {
			dst = append(dst, slog.String(KeyClient, ip.String()))
		} else if e != nil {
			if peer := e.Peer(); peer != "" {
				dst = append(dst, slog.String(KeyClient, peer))
			}
		}
	}
	if skip&hasRoute == 0 {
		rt := ""
		if e != nil {
			rt = e.Route()
		}
		if rt == "" {
			if rc := chi.RouteContext(ctx); rc != nil {
				rt = rc.RoutePattern()
			}
		}
		if rt != "" {
			dst = append(dst, slog.String(KeyRoute, rt))
		}
	}
	if skip&(hasTraceID|hasSpanID) != hasTraceID|hasSpanID {
		n := len(dst)
		dst = AppendTrace(dst, ctx)
		if skip&(hasTraceID|hasSpanID) != 0 {
			// A logger that has one of the two keys keeps it; the other
			// is still added.
			kept := slices.DeleteFunc(dst[n:], func(a slog.Attr) bool { return skip&keyBit(a.Key) != 0 })
			dst = dst[:n+len(kept)]
		}
	}
	return dst
}

func (h *handler) WithAttrs(attrs []slog.Attr) slog.Handler {
	if len(attrs) == 0 {
		return h
	}
	h2 := *h
	h2.inner = h.inner.WithAttrs(attrs)
	if h.root == nil {
		h2.has |= keysOf(attrs)
	} else {
		h2.after = append(h.after[:len(h.after):len(h.after)], groupOrAttrs{attrs: attrs})
	}
	return &h2
}

func (h *handler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	h2 := *h
	if h.root == nil {
		h2.root = h.inner
	}
	h2.inner = h.inner.WithGroup(name)
	h2.after = append(h.after[:len(h.after):len(h.after)], groupOrAttrs{group: name})
	return &h2
}
