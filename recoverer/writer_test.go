package recoverer

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fullWriter has every optional interface and records what reached it.
type fullWriter struct {
	*httptest.ResponseRecorder
	flushes, hijacks, readFroms, pushes int
	hijackErr                           error
}

func (f *fullWriter) Flush() { f.flushes++; f.ResponseRecorder.Flush() }
func (f *fullWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	f.hijacks++
	return nil, nil, f.hijackErr
}
func (f *fullWriter) ReadFrom(r io.Reader) (int64, error) {
	f.readFroms++
	return io.Copy(f.ResponseRecorder, r)
}
func (f *fullWriter) Push(string, *http.PushOptions) error { f.pushes++; return nil }

func newFull() *fullWriter { return &fullWriter{ResponseRecorder: httptest.NewRecorder()} }

// interfaces returns which of the four optional interfaces w has.
func interfaces(w http.ResponseWriter) (fl, hj, rf, ps bool) {
	_, fl = w.(http.Flusher)
	_, hj = w.(http.Hijacker)
	_, rf = w.(io.ReaderFrom)
	_, ps = w.(http.Pusher)
	return
}

// TestViewsKeepExactlyTheUnderlyingInterfaces goes through all 16
// combinations of the four optional interfaces.
func TestViewsKeepExactlyTheUnderlyingInterfaces(t *testing.T) {
	for mask := range 16 {
		wantF, wantH, wantR, wantP := mask&canFlush != 0, mask&canHijack != 0, mask&canReadFrom != 0, mask&canPush != 0
		name := strings.Join([]string{
			map[bool]string{true: "F", false: "-"}[wantF],
			map[bool]string{true: "H", false: "-"}[wantH],
			map[bool]string{true: "R", false: "-"}[wantR],
			map[bool]string{true: "P", false: "-"}[wantP],
		}, "")
		t.Run(name, func(t *testing.T) {
			full := newFull()
			under := maskedWriter(full, mask)
			f, h, r, p := interfaces(under)
			require.Equal(t, []bool{wantF, wantH, wantR, wantP}, []bool{f, h, r, p}, "test writer for mask %04b", mask)

			outer := acquireTracker(under)
			w := outer.wrap()
			f, h, r, p = interfaces(w)
			assert.Equal(t, []bool{wantF, wantH, wantR, wantP}, []bool{f, h, r, p}, "view for mask %04b", mask)
			u, ok := w.(interface{ Unwrap() http.ResponseWriter })
			require.True(t, ok, "every view has Unwrap")
			assert.Equal(t, under, u.Unwrap(), "Unwrap returns the wrapped writer")

			if wantF {
				w.(http.Flusher).Flush()
				assert.Equal(t, 1, full.flushes, "Flush reaches the writer")
				assert.True(t, outer.wrote, "Flush sends the header")
			}
			if wantH {
				_, _, err := w.(http.Hijacker).Hijack()
				require.NoError(t, err)
				assert.Equal(t, 1, full.hijacks, "Hijack reaches the writer")
				assert.True(t, outer.hijacked, "a successful Hijack is tracked")
			}
			if wantR {
				n, err := w.(io.ReaderFrom).ReadFrom(strings.NewReader("abc"))
				require.NoError(t, err)
				assert.EqualValues(t, 3, n, "bytes copied")
				assert.True(t, outer.wrote, "ReadFrom sends the header")
			}
			if wantP {
				require.NoError(t, w.(http.Pusher).Push("/x", nil))
				assert.Equal(t, 1, full.pushes, "Push reaches the writer")
			}
			outer.release()
		})
	}
}

// maskedWriter returns a writer with exactly the optional interfaces of
// mask, all delegating to full.
func maskedWriter(full *fullWriter, mask int) http.ResponseWriter {
	switch mask {
	case 0:
		return struct{ http.ResponseWriter }{full}
	case canFlush | canHijack | canReadFrom | canPush:
		return full
	}
	type (
		fl = http.Flusher
		hj = http.Hijacker
		rf = io.ReaderFrom
		ps = http.Pusher
		rw = http.ResponseWriter
	)
	switch mask {
	case canFlush:
		return struct {
			rw
			fl
		}{full, full}
	case canHijack:
		return struct {
			rw
			hj
		}{full, full}
	case canFlush | canHijack:
		return struct {
			rw
			fl
			hj
		}{full, full, full}
	case canReadFrom:
		return struct {
			rw
			rf
		}{full, full}
	case canFlush | canReadFrom:
		return struct {
			rw
			fl
			rf
		}{full, full, full}
	case canHijack | canReadFrom:
		return struct {
			rw
			hj
			rf
		}{full, full, full}
	case canFlush | canHijack | canReadFrom:
		return struct {
			rw
			fl
			hj
			rf
		}{full, full, full, full}
	case canPush:
		return struct {
			rw
			ps
		}{full, full}
	case canFlush | canPush:
		return struct {
			rw
			fl
			ps
		}{full, full, full}
	case canHijack | canPush:
		return struct {
			rw
			hj
			ps
		}{full, full, full}
	case canFlush | canHijack | canPush:
		return struct {
			rw
			fl
			hj
			ps
		}{full, full, full, full}
	case canReadFrom | canPush:
		return struct {
			rw
			rf
			ps
		}{full, full, full}
	case canFlush | canReadFrom | canPush:
		return struct {
			rw
			fl
			rf
			ps
		}{full, full, full, full}
	case canHijack | canReadFrom | canPush:
		return struct {
			rw
			hj
			rf
			ps
		}{full, full, full, full}
	}
	panic("maskedWriter: mask out of range")
}

func TestTrackerStates(t *testing.T) {
	tests := []struct {
		name         string
		do           func(w http.ResponseWriter)
		wantWrote    bool
		wantHijacked bool
	}{
		{"nothing", func(http.ResponseWriter) {}, false, false},
		{"header only", func(w http.ResponseWriter) { w.Header().Set("X", "1") }, false, false},
		{"WriteHeader 200", func(w http.ResponseWriter) { w.WriteHeader(http.StatusOK) }, true, false},
		{"WriteHeader 500", func(w http.ResponseWriter) { w.WriteHeader(http.StatusInternalServerError) }, true, false},
		{"103 Early Hints is informational", func(w http.ResponseWriter) { w.WriteHeader(http.StatusEarlyHints) }, false, false},
		{"100 Continue is informational", func(w http.ResponseWriter) { w.WriteHeader(http.StatusContinue) }, false, false},
		{"101 Switching Protocols is final", func(w http.ResponseWriter) { w.WriteHeader(http.StatusSwitchingProtocols) }, true, false},
		{"Write", func(w http.ResponseWriter) { _, _ = w.Write([]byte("x")) }, true, false},
		{"WriteString", func(w http.ResponseWriter) { _, _ = io.WriteString(w, "x") }, true, false},
		{"Flush", func(w http.ResponseWriter) { w.(http.Flusher).Flush() }, true, false},
		{"ResponseController Flush", func(w http.ResponseWriter) { _ = http.NewResponseController(w).Flush() }, true, false},
		{"ReadFrom", func(w http.ResponseWriter) { _, _ = io.Copy(w, strings.NewReader("x")) }, true, false},
		{"Hijack", func(w http.ResponseWriter) { _, _, _ = w.(http.Hijacker).Hijack() }, false, true},
		{"ResponseController Hijack", func(w http.ResponseWriter) { _, _, _ = http.NewResponseController(w).Hijack() }, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := acquireTracker(newFull())
			tt.do(tr.wrap())
			assert.Equal(t, tt.wantWrote, tr.wrote, "wrote")
			assert.Equal(t, tt.wantHijacked, tr.hijacked, "hijacked")
			tr.release()
		})
	}
}

func TestFailedHijackIsNotTracked(t *testing.T) {
	full := newFull()
	full.hijackErr = errors.New("no")
	tr := acquireTracker(full)
	_, _, err := tr.wrap().(http.Hijacker).Hijack()
	require.Error(t, err, "the writer's error comes back")
	assert.False(t, tr.hijacked, "a failed hijack leaves the connection ours")
}

// flushErrorOnly has FlushError but not Flush.
type flushErrorOnly struct {
	http.ResponseWriter
	err error
}

func (f flushErrorOnly) FlushError() error { return f.err }

func TestFlushErrorIsKept(t *testing.T) {
	want := errors.New("flush failed")
	tr := acquireTracker(flushErrorOnly{ResponseWriter: httptest.NewRecorder(), err: want})
	w := tr.wrap()
	_, ok := w.(http.Flusher)
	require.True(t, ok, "a FlushError writer is a flusher")
	assert.ErrorIs(t, http.NewResponseController(w).Flush(), want, "the flush error reaches the caller")
	assert.True(t, tr.wrote, "flush tracked")
}

func TestReleaseClearsTheTracker(t *testing.T) {
	tr := acquireTracker(newFull())
	tr.wrote, tr.hijacked = true, true
	tr.release()
	assert.Equal(t, tracker{}, *tr, "a released tracker holds nothing of its request")
}

func TestWrapDoesNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector makes sync.Pool drop items; run without -race")
	}
	full := newFull()
	allocs := testing.AllocsPerRun(100, func() {
		tr := acquireTracker(full)
		_ = tr.wrap()
		tr.release()
	})
	assert.Zero(t, allocs, "allocations per acquire/wrap/release")
}
