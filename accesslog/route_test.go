package accesslog_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/shipshape-go/shipshape/accesslog"
	"github.com/shipshape-go/shipshape/reqlog"
)

// copying is a middleware between accesslog and the router that hands the
// router a copy of the request, as real ones do.
type copying struct {
	name   string
	prefix string // the path prefix the middleware strips, if any
	wrap   func(http.Handler) http.Handler
}

type userKey struct{}

var copyingMiddleware = []copying{
	{name: "none", wrap: func(h http.Handler) http.Handler { return h }},
	{name: "r.WithContext (authentication)", wrap: func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			h.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), userKey{}, "alice")))
		})
	}},
	{name: "http.MaxBytesHandler", wrap: func(h http.Handler) http.Handler { return http.MaxBytesHandler(h, 1<<20) }},
	{name: "http.StripPrefix", prefix: "/api", wrap: func(h http.Handler) http.Handler { return http.StripPrefix("/api", h) }},
	{name: "http.TimeoutHandler", wrap: func(h http.Handler) http.Handler { return http.TimeoutHandler(h, time.Minute, "timeout") }},
}

// routers build the application on a router, with accesslog outside it
// and mw between them, or, for chi, accesslog among the router's own
// middleware. Both routes are /items/{id} (GET) and /boom/{id}, which
// panics.
var routers = []struct {
	name  string
	build func(t *testing.T, access, mw func(http.Handler) http.Handler) http.Handler
}{
	{"ServeMux, RecordRoute around it", func(t *testing.T, access, mw func(http.Handler) http.Handler) http.Handler {
		mux := http.NewServeMux()
		mux.HandleFunc("GET /items/{id}", item)
		mux.HandleFunc("/boom/{id}", boom)
		return access(mw(reqlog.RecordRoute(mux)))
	}},
	{"chi, accesslog outside, RecordRoute as its middleware", func(t *testing.T, access, mw func(http.Handler) http.Handler) http.Handler {
		r := chi.NewRouter()
		r.Use(reqlog.RecordRoute)
		r.Get("/items/{id}", item)
		r.Handle("/boom/{id}", http.HandlerFunc(boom))
		return access(mw(r))
	}},
	{"chi, accesslog and the middleware inside it", func(t *testing.T, access, mw func(http.Handler) http.Handler) http.Handler {
		r := chi.NewRouter()
		r.Use(access, mw)
		r.Get("/items/{id}", item)
		r.Handle("/boom/{id}", http.HandlerFunc(boom))
		return r
	}},
}

func item(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "item") }

var errBoom = errors.New("boom")

func boom(http.ResponseWriter, *http.Request) { panic(errBoom) }

// jsonLines decodes every line slog.JSONHandler wrote.
func jsonLines(t *testing.T, buf *bytes.Buffer) []map[string]any {
	t.Helper()
	var out []map[string]any
	for line := range strings.Lines(buf.String()) {
		var m map[string]any
		require.NoError(t, json.Unmarshal([]byte(line), &m), "line %q", line)
		out = append(out, m)
	}
	return out
}

// TestRouteThroughRequestCopies is the route matrix: on ServeMux and chi,
// through each middleware that hands the router a copy of the request, the
// access line has http.route, for a request that is served and for one
// whose handler panics (the line is written while the panic unwinds
// through accesslog).
func TestRouteThroughRequestCopies(t *testing.T) {
	for _, rt := range routers {
		for _, mw := range copyingMiddleware {
			for _, tc := range []struct {
				path   string
				status float64
				panics bool
			}{
				{"/items/7", 200, false},
				{"/boom/7", 500, true},
			} {
				t.Run(rt.name+"/"+mw.name+tc.path, func(t *testing.T) {
					var buf bytes.Buffer
					h := rt.build(t, mustNew(t, slog.New(slog.NewJSONHandler(&buf, nil))), mw.wrap)
					var got any
					func() {
						defer func() { got = recover() }()
						h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, mw.prefix+tc.path, nil))
					}()
					if tc.panics {
						require.NotNil(t, got, "the panic goes on through accesslog")
					} else {
						require.Nil(t, got)
					}
					lines := jsonLines(t, &buf)
					require.Len(t, lines, 1)
					line := lines[0]
					want := strings.Replace(tc.path, "7", "{id}", 1)
					assert.Equal(t, want, line[reqlog.KeyRoute], "http.route in %v", line)
					assert.Equal(t, tc.status, line[reqlog.KeyStatus])
					if tc.panics {
						assert.Equal(t, accesslog.AbortedPanic, line[reqlog.KeyAborted])
					}
				})
			}
		}
	}
}

// TestRouteWhenTimeoutHandlerGivesUp: TimeoutHandler answers 503 while
// the ServeMux's handler still runs; the line is written then, and has the
// route, which the ServeMux is asked for again (RecordRoute records it
// only when the handler returns). No race with the handler's goroutine.
func TestRouteWhenTimeoutHandlerGivesUp(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		mux := http.NewServeMux()
		mux.HandleFunc("GET /slow/{id}", func(w http.ResponseWriter, r *http.Request) { <-release })
		var buf bytes.Buffer
		h := mustNew(t, slog.New(slog.NewJSONHandler(&buf, nil)))(
			http.TimeoutHandler(reqlog.RecordRoute(mux), time.Second, "timeout"))
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/slow/1", nil))
		assert.Equal(t, http.StatusServiceUnavailable, w.Code)
		lines := jsonLines(t, &buf)
		require.Len(t, lines, 1)
		assert.Equal(t, "/slow/{id}", lines[0][reqlog.KeyRoute])
		assert.EqualValues(t, 503, lines[0][reqlog.KeyStatus])
		close(release)
		synctest.Wait()
	})
}
