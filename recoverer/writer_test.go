package recoverer

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/shipshape-go/shipshape/internal/respwriter"
)

// The views themselves are tested in internal/respwriter; these tests cover
// the pool recoverer keeps them in.

func TestReleaseClearsTheRecorder(t *testing.T) {
	rec := acquireRecorder(httptest.NewRecorder())
	rec.Wrap().WriteHeader(http.StatusTeapot)
	rec.Hijacked = true
	releaseRecorder(rec)
	assert.Equal(t, respwriter.Recorder{}, *rec, "a released recorder holds nothing of its request")
}

func TestHappyPathDoesNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector makes sync.Pool drop items; run without -race")
	}
	h := New()(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	}))
	w := httptest.NewRecorder()
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	allocs := testing.AllocsPerRun(100, func() { h.ServeHTTP(w, r) })
	assert.Zero(t, allocs, "allocations per request that does not panic")
}
