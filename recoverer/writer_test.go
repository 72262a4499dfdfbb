package recoverer

import (
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/shipshape-go/shipshape/accesslog"
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
			mw, err := New(WithLogger(slog.New(slog.DiscardHandler)))
			require.NoError(t, err)
			h := mw(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				kept = w
				tt.handler(w, r)
			}))
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
			require.NotNil(t, kept, "the handler ran")
			before := rec.Body.String()
			_, err = kept.Write([]byte("late"))
			assert.ErrorIs(t, err, ErrHandlerReturned, "a write after the handler returned")
			assert.Equal(t, before, rec.Body.String(), "the late write reached nothing")
		})
	}
}

func TestWriterIsEndedWhenThePanicGoesOn(t *testing.T) {
	var kept http.ResponseWriter
	mw, err := New(WithLogger(slog.New(slog.DiscardHandler)))
	require.NoError(t, err)
	h := mw(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		kept = w
		panic(http.ErrAbortHandler)
	}))
	assert.PanicsWithValue(t, http.ErrAbortHandler, func() {
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/", nil))
	}, "ErrAbortHandler goes on")
	_, err = kept.Write([]byte("late"))
	assert.ErrorIs(t, err, ErrHandlerReturned, "a write after the handler aborted")
}

// TestHappyPathAllocatesOncePerBlock: a request that does not panic
// allocates nothing but its share of a block of writers (one allocation per
// 16 requests).
func TestHappyPathAllocatesOncePerBlock(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector makes sync.Pool drop items; run without -race")
	}
	mw, err := New()
	require.NoError(t, err)
	h := mw(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
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

// TestInsideAccesslogUsesItsWriter: inside accesslog, recoverer passes
// accesslog's writer down as it is instead of a view of its own (so the
// stack allocates exactly what accesslog alone does), and that writer still
// refuses once the stack returned, with and without a panic.
func TestInsideAccesslogUsesItsWriter(t *testing.T) {
	quiet := slog.New(slog.DiscardHandler)
	tests := []struct {
		name    string
		handler http.HandlerFunc
	}{
		{"no panic", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) }},
		{"panic before writing", func(w http.ResponseWriter, r *http.Request) { panic("boom") }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var outer, inner http.ResponseWriter
			mw, err := New(WithLogger(quiet))
			require.NoError(t, err)
			access, err := accesslog.New(quiet)
			require.NoError(t, err)
			h := access(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				outer = w
				mw(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					inner = w
					tt.handler(w, r)
				})).ServeHTTP(w, r)
			}))
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
			require.NotNil(t, inner, "the handler ran")
			assert.Equal(t, outer, inner, "the handler gets accesslog's writer itself")
			before := rec.Body.String()
			_, err = inner.Write([]byte("late"))
			assert.ErrorIs(t, err, ErrHandlerReturned, "a write after the stack returned")
			assert.Equal(t, before, rec.Body.String(), "the late write reached nothing")
		})
	}
}

// TestInsideAccesslogAllocatesNothingMore: accesslog with recoverer inside
// allocates what accesslog alone does.
func TestInsideAccesslogAllocatesNothingMore(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector makes sync.Pool drop items; run without -race")
	}
	quiet := slog.New(slog.DiscardHandler)
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })
	mw, err := New()
	require.NoError(t, err)
	w := httptest.NewRecorder()
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	const n = 1024
	// The fewest of 5 runs: a collection during a run empties sync.Pools
	// and costs a few allocations that are not the handler's (2 runs in 40
	// saw one).
	perRun := func(h http.Handler) float64 {
		fewest := math.Inf(1)
		for range 5 {
			fewest = min(fewest, testing.AllocsPerRun(1, func() {
				for range n {
					h.ServeHTTP(w, r)
				}
			}))
		}
		return fewest
	}
	access, err := accesslog.New(quiet)
	require.NoError(t, err)
	alone := perRun(access(ok))
	stacked := perRun(access(mw(ok)))
	assert.Equal(t, alone, stacked, "allocations for %d requests: accesslog alone, and with recoverer inside", n)
}
