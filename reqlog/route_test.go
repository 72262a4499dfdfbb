package reqlog_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/go-chi/chi/v5"
	"github.com/stretchr/testify/assert"

	"github.com/shipshape-go/shipshape/reqlog"
)

// TestRecordRouteThroughACopy: the ServeMux sets Pattern on the copy
// StripPrefix hands it; the route still reaches the Entry of the outer
// request, also when the handler panics.
func TestRecordRouteThroughACopy(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /items/{id}", func(http.ResponseWriter, *http.Request) {})
	mux.HandleFunc("GET /boom/{id}", func(http.ResponseWriter, *http.Request) { panic("boom") })
	h := http.StripPrefix("/api", reqlog.RecordRoute(mux))

	for _, tt := range []struct{ path, want string }{
		{"/api/items/7", "/items/{id}"},
		{"/api/boom/7", "/boom/{id}"},
		{"/api/nothing", ""},
	} {
		e := &reqlog.Entry{}
		r := httptest.NewRequest(http.MethodGet, tt.path, nil)
		r = r.WithContext(reqlog.NewContext(r.Context(), e))
		func() {
			defer func() { _ = recover() }()
			h.ServeHTTP(httptest.NewRecorder(), r)
		}()
		assert.Empty(t, r.Pattern, "the outer request never sees the pattern")
		assert.Equal(t, tt.want, e.Route(), tt.path)
		assert.Equal(t, tt.want, reqlog.Route(r), tt.path)
	}
}

// TestRouteWhileServing: inside the handler of a ServeMux that
// RecordRoute wraps, the route is known already (records logged there
// carry it), through a copy of the request, and is the same afterwards.
func TestRouteWhileServing(t *testing.T) {
	var during []string
	mux := http.NewServeMux()
	mux.HandleFunc("GET /items/{id}", func(_ http.ResponseWriter, r *http.Request) {
		e := reqlog.FromContext(r.Context())
		during = append(during, e.Route(), e.Route()) // the second from the first's answer
	})
	h := http.StripPrefix("/api", reqlog.RecordRoute(mux))
	for _, tt := range []struct{ path, want string }{
		{"/api/items/7", "/items/{id}"},
		{"/api/nothing", ""},
	} {
		during = nil
		e := &reqlog.Entry{}
		r := httptest.NewRequest(http.MethodGet, tt.path, nil)
		h.ServeHTTP(httptest.NewRecorder(), r.WithContext(reqlog.NewContext(r.Context(), e)))
		if tt.want != "" {
			assert.Equal(t, []string{tt.want, tt.want}, during, tt.path)
		}
		assert.Equal(t, tt.want, e.Route(), tt.path)
	}
}

// TestRecordRouteInnermostWins: a ServeMux mounted in a chi router, both
// marked with RecordRoute: the ServeMux's route is the more specific, and
// wins, during the request and after it.
func TestRecordRouteInnermostWins(t *testing.T) {
	var during string
	inner := http.NewServeMux()
	inner.HandleFunc("GET /items/{id}", func(_ http.ResponseWriter, r *http.Request) {
		during = reqlog.FromContext(r.Context()).Route()
	})
	outer := chi.NewRouter()
	outer.Use(reqlog.RecordRoute)
	outer.Mount("/api", http.StripPrefix("/api", reqlog.RecordRoute(inner)))

	e := &reqlog.Entry{}
	r := httptest.NewRequest(http.MethodGet, "/api/items/7", nil)
	outer.ServeHTTP(httptest.NewRecorder(), r.WithContext(reqlog.NewContext(r.Context(), e)))
	assert.Equal(t, "/items/{id}", during)
	assert.Equal(t, "/items/{id}", e.Route())
}

func TestRecordRouteWithoutEntry(t *testing.T) {
	served := false
	mux := http.NewServeMux()
	mux.HandleFunc("GET /x", func(http.ResponseWriter, *http.Request) { served = true })
	r := httptest.NewRequest(http.MethodGet, "/x", nil)
	reqlog.RecordRoute(mux).ServeHTTP(httptest.NewRecorder(), r)
	assert.True(t, served)
	assert.Equal(t, "/x", reqlog.Route(r), "r.Pattern, set by the mux on the request it got")
}
