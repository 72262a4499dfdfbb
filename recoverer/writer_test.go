package recoverer

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The views and the blocks they come from are tested in internal/respwriter;
// these tests cover how recoverer uses them.

func TestWriterIsEndedWhenTheHandlerReturns(t *testing.T) {
	tests := []struct {
		name    string
		handler http.HandlerFunc
	}{
		{"no panic", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) }},
		{"panic before writing", func(w http.ResponseWriter, r *http.Request) { panic("boom") }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var kept http.ResponseWriter
			h := New(WithLogger(slog.New(slog.DiscardHandler)))(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				kept = w
				tt.handler(w, r)
			}))
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
			require.NotNil(t, kept, "the handler ran")
			before := rec.Body.String()
			_, err := kept.Write([]byte("late"))
			assert.ErrorIs(t, err, ErrHandlerReturned, "a write after the handler returned")
			assert.Equal(t, before, rec.Body.String(), "the late write reached nothing")
		})
	}
}

func TestWriterIsEndedWhenThePanicGoesOn(t *testing.T) {
	var kept http.ResponseWriter
	h := New(WithLogger(slog.New(slog.DiscardHandler)))(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		kept = w
		panic(http.ErrAbortHandler)
	}))
	assert.PanicsWithValue(t, http.ErrAbortHandler, func() {
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/", nil))
	}, "ErrAbortHandler goes on")
	_, err := kept.Write([]byte("late"))
	assert.ErrorIs(t, err, ErrHandlerReturned, "a write after the handler aborted")
}

// TestHappyPathAllocatesOncePerBlock: a request that does not panic
// allocates nothing but its share of a block of writers (one allocation per
// 16 requests).
func TestHappyPathAllocatesOncePerBlock(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector makes sync.Pool drop items; run without -race")
	}
	h := New()(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	}))
	w := httptest.NewRecorder()
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	const n = 1024
	allocs := testing.AllocsPerRun(1, func() {
		for range n {
			h.ServeHTTP(w, r)
		}
	})
	assert.LessOrEqual(t, allocs, float64(n/16+2), "allocations for %d requests that do not panic", n)
}
