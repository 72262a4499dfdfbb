package reqlog

import (
	"net/http"
	"strings"

	"github.com/go-chi/chi/v5"
)

// Route returns the route of r, the path template of the pattern that
// matched it (OpenTelemetry's http.route: "/items/{id}"), or "" when no
// router matched it. accesslog, recoverer and the metrics take the route
// from here, so that they agree:
//
//   - the route [RecordRoute] recorded for the request, which survives
//     middleware that copies the request (r.WithContext, StripPrefix,
//     MaxBytesHandler, TimeoutHandler) between the caller and the router;
//   - else r.Pattern, the pattern a net/http ServeMux matched, without its
//     method and host ("GET example.com/items/{id}" → "/items/{id}"), when
//     r is the request the ServeMux saw;
//   - else chi's route pattern, when r's context carries chi's routing
//     context (r passed through a chi router, inside it).
func Route(r *http.Request) string {
	ctx := r.Context()
	if e := FromContext(ctx); e != nil {
		if rt := e.Route(); rt != "" {
			return rt
		}
	}
	if p := patternRoute(r.Pattern); p != "" {
		return p
	}
	if rc := chi.RouteContext(ctx); rc != nil {
		return rc.RoutePattern()
	}
	return ""
}

// patternRoute turns a ServeMux pattern ("GET example.com/items/{id}")
// into an http.route ("/items/{id}"): neither the method nor the host can
// contain a '/', so the path starts at the first one.
func patternRoute(p string) string {
	if i := strings.IndexByte(p, '/'); i > 0 {
		return p[i:]
	}
	return p
}

// RecordRoute records, in the request's [Entry], the route that the router
// next matched, so that the access line, the panic report, the metrics and
// the records logged within the request (see [NewHandler]) have it even
// when middleware between them and the router copies the request. Wrap the
// router with it, inside every such middleware:
//
//	var h http.Handler = reqlog.RecordRoute(mux)
//	h = authenticate(h) // calls next with r.WithContext(…)
//	h = http.TimeoutHandler(h, 10*time.Second, "")
//	h = accesslog.New(…)(h)
//
// or, on chi, make it a middleware of the router that has accesslog
// outside it: r.Use(reqlog.RecordRoute). A chi router with accesslog among
// its own middleware (r.Use(accesslog.New(…))) needs none: chi's routing
// context is shared by the copies.
//
// The route is recorded when next returns or panics, so that chi's route
// pattern is complete. While a [http.ServeMux] is still serving the request
// (a record logged by its handler, a TimeoutHandler that gave up on it),
// the route is what the ServeMux's Handler method answers for the request
// RecordRoute passed it: the same pattern, found again (about 250ns, once
// per request). With nested routers marked by RecordRoute, the innermost
// one's route wins. Without an Entry in the context (no accesslog outside)
// RecordRoute does nothing.
func RecordRoute(next http.Handler) http.Handler {
	mux, _ := next.(*http.ServeMux)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e := FromContext(r.Context())
		if e == nil {
			next.ServeHTTP(w, r)
			return
		}
		if mux != nil {
			e.serving(mux, r)
		}
		defer e.recordRoute(r)
		next.ServeHTTP(w, r)
	})
}

// serving notes that mux serves r, so that the route can be asked for
// before it returns.
func (e *Entry) serving(mux *http.ServeMux, r *http.Request) {
	e.mu.Lock()
	if e.route == "" || e.routeLazy {
		e.mux, e.req, e.route, e.routeLazy = mux, r, "", false
	}
	e.mu.Unlock()
}

// recordRoute keeps the route r reached, once its router is done with it.
// It runs on the goroutine that served r, after the router set r.Pattern
// or completed chi's routing context, so it reads them without a race.
func (e *Entry) recordRoute(r *http.Request) {
	rt := patternRoute(r.Pattern)
	if rt == "" {
		if rc := chi.RouteContext(r.Context()); rc != nil {
			rt = rc.RoutePattern()
		}
	}
	e.mu.Lock()
	if e.req == r {
		e.mux, e.req = nil, nil
	}
	if e.route == "" || e.routeLazy {
		e.route, e.routeLazy = rt, false
	}
	e.mu.Unlock()
}

// Route is the route [RecordRoute] recorded or, while a ServeMux it wraps
// is still serving the request, the pattern that ServeMux matches; "" when
// there is none.
func (e *Entry) Route() string {
	e.mu.Lock()
	rt, mux, req := e.route, e.mux, e.req
	e.mu.Unlock()
	if rt != "" || mux == nil {
		return rt
	}
	// The ServeMux reads only the method, host and URL of req, which
	// nobody writes once the request is being served (net/http's rule
	// for handlers), and which were set before serving stored req under
	// e.mu: no race with the goroutine serving it, wherever this runs.
	_, p := mux.Handler(req)
	rt = patternRoute(p)
	e.mu.Lock()
	if e.req == req && e.route == "" {
		e.route, e.routeLazy = rt, true
	}
	e.mu.Unlock()
	return rt
}
