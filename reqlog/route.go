package reqlog

import (
	"net/http"
	"strings"

	"github.com/go-chi/chi/v5"
)

// Route returns the route of r, the path template of the pattern that
// matched it (OpenTelemetry's http.route: "/items/{id}"), or "" when no
// router matched it:
//
//   - r.Pattern, the pattern a net/http ServeMux matched, without its
//     method and host ("GET example.com/items/{id}" → "/items/{id}"), when
//     r is the request the ServeMux saw;
//   - else the route [RecordRoute] recorded for the request, which
//     survives middleware that copies the request (r.WithContext, StripPrefix,
//     MaxBytesHandler, TimeoutHandler) between the caller and the router;
//   - else chi's route pattern, when r's context carries chi's routing
//     context (r passed through a chi router, inside it).
func Route(r *http.Request) string {
	if p := patternRoute(r.Pattern); p != "" {
		return p
	}
	ctx := r.Context()
	if e := FromContext(ctx); e != nil {
		if rt := e.Route(); rt != "" {
			return rt
		}
	}
	if rc := chi.RouteContext(ctx); rc != nil {
		return rc.RoutePattern()
	}
	return ""
}

// patternRoute is the path of a ServeMux pattern: from its first '/'.
func patternRoute(p string) string {
	if p == "" {
		return ""
	}
	if i := strings.IndexByte(p, '/'); i >= 0 {
		return p[i:]
	}
	return p
}

// RecordRoute records, in the request's [Entry], the route that the router
// next matched, so that the access line, the Sentry event and the metrics
// of the request have it even when middleware between them and the router
// copies the request. Use it around a ServeMux, or as a chi middleware
// (r.Use(reqlog.RecordRoute)), the innermost one:
//
//	var h http.Handler = reqlog.RecordRoute(mux)
//	h = authenticate(h) // calls next with r.WithContext(…)
//	h = accesslog.New(…)(h)
//
// The route is recorded when next returns or panics. Without an Entry in
// the context (no accesslog outside) it does nothing.
func RecordRoute(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e := FromContext(r.Context())
		if e == nil {
			next.ServeHTTP(w, r)
			return
		}
		defer e.recordRoute(r)
		next.ServeHTTP(w, r)
	})
}

// recordRoute keeps the route r reached, once its router is done with it.
func (e *Entry) recordRoute(r *http.Request) {
	rt := patternRoute(r.Pattern)
	if rt == "" {
		if rc := chi.RouteContext(r.Context()); rc != nil {
			rt = rc.RoutePattern()
		}
	}
	if rt != "" {
		e.mu.Lock()
		e.route = rt
		e.mu.Unlock()
	}
}

// Route is the route [RecordRoute] recorded, or "".
func (e *Entry) Route() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.route
}
