package reqlog_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

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
