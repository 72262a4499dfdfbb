package respwriter

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/synctest"
	"time"

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

func newRecorder(w http.ResponseWriter) *Recorder {
	r := new(Recorder)
	r.Reset(w)
	return r
}

// interfaces returns which of the four optional interfaces w has.
func interfaces(w http.ResponseWriter) [4]bool {
	_, fl := w.(http.Flusher)
	_, hj := w.(http.Hijacker)
	_, rf := w.(io.ReaderFrom)
	_, ps := w.(http.Pusher)
	return [4]bool{fl, hj, rf, ps}
}

// TestViewsKeepExactlyTheUnderlyingInterfaces goes through all 16
// combinations of the four optional interfaces, and checks each method
// reaches the writer and is recorded.
func TestViewsKeepExactlyTheUnderlyingInterfaces(t *testing.T) {
	for mask := range 16 {
		want := [4]bool{mask&canFlush != 0, mask&canHijack != 0, mask&canReadFrom != 0, mask&canPush != 0}
		t.Run(maskName(mask), func(t *testing.T) {
			full := newFull()
			under := maskedWriter(full, mask)
			require.Equal(t, want, interfaces(under), "test writer for mask %04b", mask)

			rec := newRecorder(under)
			w := rec.Wrap()
			assert.Equal(t, want, interfaces(w), "view for mask %04b", mask)
			u, ok := w.(interface{ Unwrap() http.ResponseWriter })
			require.True(t, ok, "every view has Unwrap")
			assert.Equal(t, under, u.Unwrap(), "Unwrap returns the wrapped writer")
			_, ok = w.(io.StringWriter)
			assert.True(t, ok, "every view has WriteString")

			// A view of a view has the same interfaces: the FlushError
			// every view has does not make the outer one a flusher.
			assert.Equal(t, want, interfaces(newRecorder(w).Wrap()), "view of the view for mask %04b", mask)

			if want[0] {
				w.(http.Flusher).Flush()
				assert.Equal(t, 1, full.flushes, "Flush reaches the writer")
				assert.Equal(t, http.StatusOK, rec.Status, "Flush sends the header")
			}
			if want[1] {
				_, _, err := w.(http.Hijacker).Hijack()
				require.NoError(t, err)
				assert.Equal(t, 1, full.hijacks, "Hijack reaches the writer")
				assert.True(t, rec.Hijacked, "a successful Hijack is recorded")
			}
			if want[2] {
				n, err := w.(io.ReaderFrom).ReadFrom(strings.NewReader("abc"))
				require.NoError(t, err)
				assert.EqualValues(t, 3, n, "bytes copied")
				assert.Equal(t, 1, full.readFroms, "ReadFrom reaches the writer")
				assert.Equal(t, http.StatusOK, rec.Status, "ReadFrom sends the header")
				assert.EqualValues(t, 3, rec.Bytes, "ReadFrom bytes counted")
			}
			if want[3] {
				require.NoError(t, w.(http.Pusher).Push("/x", nil))
				assert.Equal(t, 1, full.pushes, "Push reaches the writer")
			}
		})
	}
}

// maskName names a combination of optional interfaces: "F-R-" is a
// Flusher and an io.ReaderFrom.
func maskName(mask int) string {
	name := ""
	for i, c := range "FHRP" {
		if mask&(1<<i) != 0 {
			name += string(c)
		} else {
			name += "-"
		}
	}
	return name
}

// maskedWriter returns a writer with exactly the optional interfaces of
// mask, all delegating to full.
func maskedWriter(full *fullWriter, mask int) http.ResponseWriter {
	type (
		fl = http.Flusher
		hj = http.Hijacker
		rf = io.ReaderFrom
		ps = http.Pusher
		rw = http.ResponseWriter
	)
	switch mask {
	case 0:
		return struct{ rw }{full}
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
	return full
}

func TestRecorded(t *testing.T) {
	tests := []struct {
		name         string
		do           func(w http.ResponseWriter)
		wantStatus   int
		wantBytes    int64
		wantHijacked bool
	}{
		{"nothing", func(http.ResponseWriter) {}, 0, 0, false},
		{"header only", func(w http.ResponseWriter) { w.Header().Set("X", "1") }, 0, 0, false},
		{"WriteHeader 201", func(w http.ResponseWriter) { w.WriteHeader(http.StatusCreated) }, 201, 0, false},
		{"WriteHeader 500", func(w http.ResponseWriter) { w.WriteHeader(http.StatusInternalServerError) }, 500, 0, false},
		{"the first final status counts", func(w http.ResponseWriter) {
			w.WriteHeader(http.StatusAccepted)
			w.WriteHeader(http.StatusTeapot) // superfluous, as net/http says
		}, 202, 0, false},
		{"103 Early Hints is informational", func(w http.ResponseWriter) { w.WriteHeader(http.StatusEarlyHints) }, 0, 0, false},
		{"100 Continue is informational", func(w http.ResponseWriter) { w.WriteHeader(http.StatusContinue) }, 0, 0, false},
		{"1xx then the final status", func(w http.ResponseWriter) {
			w.WriteHeader(http.StatusEarlyHints)
			w.WriteHeader(http.StatusNotFound)
		}, 404, 0, false},
		{"101 Switching Protocols is final", func(w http.ResponseWriter) { w.WriteHeader(http.StatusSwitchingProtocols) }, 101, 0, false},
		{"Write implies 200", func(w http.ResponseWriter) { _, _ = w.Write([]byte("abc")) }, 200, 3, false},
		{"WriteString", func(w http.ResponseWriter) { _, _ = io.WriteString(w, "abcd") }, 200, 4, false},
		{"status then body", func(w http.ResponseWriter) {
			w.WriteHeader(http.StatusPartialContent)
			_, _ = w.Write([]byte("ab"))
			_, _ = io.WriteString(w, "cd")
		}, 206, 4, false},
		{"Flush", func(w http.ResponseWriter) { w.(http.Flusher).Flush() }, 200, 0, false},
		{"ResponseController Flush", func(w http.ResponseWriter) { _ = http.NewResponseController(w).Flush() }, 200, 0, false},
		{"ReadFrom", func(w http.ResponseWriter) { _, _ = io.Copy(w, strings.NewReader("xyz")) }, 200, 3, false},
		{"Hijack", func(w http.ResponseWriter) { _, _, _ = w.(http.Hijacker).Hijack() }, 0, 0, true},
		{"ResponseController Hijack", func(w http.ResponseWriter) { _, _, _ = http.NewResponseController(w).Hijack() }, 0, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := newRecorder(newFull())
			tt.do(rec.Wrap())
			assert.Equal(t, tt.wantStatus, rec.Status, "status")
			assert.Equal(t, tt.wantBytes, rec.Bytes, "bytes")
			assert.Equal(t, tt.wantHijacked, rec.Hijacked, "hijacked")
		})
	}
}

func TestInvalidStatusLeavesTheResponseUnwritten(t *testing.T) {
	rec := newRecorder(httptest.NewRecorder())
	w := rec.Wrap()
	assert.Panics(t, func() { w.WriteHeader(1000) }, "net/http refuses the code with a panic")
	assert.Zero(t, rec.Status, "a refused status is not recorded: a 500 may still be written")
	w.WriteHeader(http.StatusInternalServerError)
	assert.Equal(t, http.StatusInternalServerError, rec.Status)
}

func TestFailedHijackIsNotRecorded(t *testing.T) {
	full := newFull()
	full.hijackErr = errors.New("no")
	rec := newRecorder(full)
	_, _, err := rec.Wrap().(http.Hijacker).Hijack()
	require.Error(t, err, "the writer's error comes back")
	assert.False(t, rec.Hijacked, "a failed hijack leaves the connection the server's")
}

// flushErrorOnly has FlushError but not Flush.
type flushErrorOnly struct {
	http.ResponseWriter
	err error
}

func (f flushErrorOnly) FlushError() error { return f.err }

// unwrapOnly has no flush method of its own, but unwraps to a writer that
// has one, as a middleware wrapper outside may.
type unwrapOnly struct{ w http.ResponseWriter }

func (u unwrapOnly) Header() http.Header         { return u.w.Header() }
func (u unwrapOnly) Write(p []byte) (int, error) { return u.w.Write(p) }
func (u unwrapOnly) WriteHeader(code int)        { u.w.WriteHeader(code) }
func (u unwrapOnly) Unwrap() http.ResponseWriter { return u.w }

func TestFlushThroughResponseController(t *testing.T) {
	t.Run("FlushError of the writer: its error comes back, the header counts as sent", func(t *testing.T) {
		want := errors.New("flush failed")
		rec := newRecorder(flushErrorOnly{ResponseWriter: httptest.NewRecorder(), err: want})
		w := rec.Wrap()
		_, ok := w.(http.Flusher)
		assert.False(t, ok, "a writer without Flush gives a view without Flush")
		assert.ErrorIs(t, http.NewResponseController(w).Flush(), want)
		assert.Equal(t, http.StatusOK, rec.Status, "the flush is recorded")
	})
	t.Run("a flusher further down the Unwrap chain", func(t *testing.T) {
		full := newFull()
		rec := newRecorder(unwrapOnly{full})
		require.NoError(t, http.NewResponseController(rec.Wrap()).Flush())
		assert.Equal(t, 1, full.flushes, "the flush reaches the writer underneath")
		assert.Equal(t, http.StatusOK, rec.Status, "and is recorded")
	})
	t.Run("no flusher anywhere: ErrNotSupported, nothing sent", func(t *testing.T) {
		rec := newRecorder(struct{ http.ResponseWriter }{httptest.NewRecorder()})
		assert.ErrorIs(t, http.NewResponseController(rec.Wrap()).Flush(), http.ErrNotSupported)
		assert.Zero(t, rec.Status, "an unsupported flush sends nothing")
	})
}

func TestFirstByte(t *testing.T) {
	tests := []struct {
		name string
		do   func(w http.ResponseWriter)
	}{
		{"WriteHeader", func(w http.ResponseWriter) { w.WriteHeader(http.StatusOK) }},
		{"1xx", func(w http.ResponseWriter) { w.WriteHeader(http.StatusEarlyHints) }},
		{"Write", func(w http.ResponseWriter) { _, _ = w.Write([]byte("x")) }},
		{"Flush", func(w http.ResponseWriter) { w.(http.Flusher).Flush() }},
		{"Hijack", func(w http.ResponseWriter) { _, _, _ = w.(http.Hijacker).Hijack() }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				rec := newRecorder(newFull())
				rec.Start = time.Now()
				w := rec.Wrap()
				time.Sleep(7 * time.Millisecond)
				tt.do(w)
				time.Sleep(5 * time.Millisecond)
				_, _ = w.Write([]byte("later"))
				assert.Equal(t, 7*time.Millisecond, rec.FirstByte, "time to the first byte")
			})
		})
	}
	t.Run("not timed without Start", func(t *testing.T) {
		rec := newRecorder(newFull())
		_, _ = rec.Wrap().Write([]byte("x"))
		assert.Zero(t, rec.FirstByte)
	})
}

func TestResetForgetsTheLastResponse(t *testing.T) {
	rec := newRecorder(newFull())
	rec.Start = time.Now()
	_, _ = rec.Wrap().Write([]byte("x"))
	rec.Hijacked = true
	under := newFull()
	rec.Reset(under)
	assert.Equal(t, http.ResponseWriter(under), rec.w, "wrapped writer")
	assert.Zero(t, rec.Start, "start")
	assert.Zero(t, rec.Status, "status")
	assert.Zero(t, rec.Bytes, "bytes")
	assert.Zero(t, rec.FirstByte, "first byte")
	assert.False(t, rec.Hijacked, "hijacked")
}

// TestEndRefusesEveryMethod: after End, no method of any of the 16 views
// reaches the wrapped writer or changes what was recorded, and each one
// that can return an error returns ErrHandlerReturned, also through
// http.ResponseController.
func TestEndRefusesEveryMethod(t *testing.T) {
	for mask := range 16 {
		t.Run(maskName(mask), func(t *testing.T) {
			full := newFull()
			full.Header().Set("X-Before", "1")
			rec := newRecorder(maskedWriter(full, mask))
			w := rec.Wrap()
			w.WriteHeader(http.StatusAccepted)
			_, err := io.WriteString(w, "before")
			require.NoError(t, err)
			rec.End()
			assert.True(t, rec.Ended(), "Ended")

			w.Header().Set("X-After", "1")
			w.WriteHeader(http.StatusTeapot)
			n, err := w.Write([]byte("after"))
			assert.Zero(t, n, "Write bytes")
			assert.ErrorIs(t, err, ErrHandlerReturned, "Write")
			n, err = io.WriteString(w, "after")
			assert.Zero(t, n, "WriteString bytes")
			assert.ErrorIs(t, err, ErrHandlerReturned, "WriteString")
			rc := http.NewResponseController(w)
			assert.ErrorIs(t, rc.Flush(), ErrHandlerReturned, "ResponseController.Flush")
			assert.ErrorIs(t, rc.SetWriteDeadline(time.Now()), ErrHandlerReturned, "ResponseController.SetWriteDeadline")
			assert.ErrorIs(t, rc.SetReadDeadline(time.Now()), ErrHandlerReturned, "ResponseController.SetReadDeadline")
			assert.ErrorIs(t, rc.EnableFullDuplex(), ErrHandlerReturned, "ResponseController.EnableFullDuplex")
			_, _, err = rc.Hijack()
			assert.Error(t, err, "ResponseController.Hijack")
			u := w.(interface{ Unwrap() http.ResponseWriter }).Unwrap()
			_, err = u.Write([]byte("after"))
			assert.ErrorIs(t, err, ErrHandlerReturned, "Write on what Unwrap returns")
			u.Header().Set("X-After", "1")
			u.WriteHeader(http.StatusTeapot)
			if f, ok := w.(http.Flusher); ok {
				f.Flush()
			}
			if h, ok := w.(http.Hijacker); ok {
				_, _, err := h.Hijack()
				assert.ErrorIs(t, err, ErrHandlerReturned, "Hijack")
			}
			if rf, ok := w.(io.ReaderFrom); ok {
				n, err := rf.ReadFrom(strings.NewReader("after"))
				assert.Zero(t, n, "ReadFrom bytes")
				assert.ErrorIs(t, err, ErrHandlerReturned, "ReadFrom")
			}
			if p, ok := w.(http.Pusher); ok {
				assert.ErrorIs(t, p.Push("/x", nil), ErrHandlerReturned, "Push")
			}

			assert.Equal(t, "before", full.Body.String(), "nothing reached the body after End")
			assert.Equal(t, http.StatusAccepted, full.Code, "status sent")
			assert.Empty(t, full.Header().Get("X-After"), "nothing reached the header after End")
			assert.Equal(t, "1", full.Header().Get("X-Before"), "the header before End")
			assert.Zero(t, full.flushes+full.hijacks+full.readFroms+full.pushes, "no optional method reached the writer")
			assert.Equal(t, http.StatusAccepted, rec.Status, "recorded status kept")
			assert.EqualValues(t, len("before"), rec.Bytes, "recorded bytes kept")
			assert.False(t, rec.Hijacked, "not hijacked")
		})
	}
}

func TestEndIsFinal(t *testing.T) {
	rec := newRecorder(newFull())
	old := rec.Wrap()
	rec.End()
	rec.End()
	next := newFull()
	rec.Reset(next)
	_, err := old.Write([]byte("late"))
	assert.ErrorIs(t, err, ErrHandlerReturned, "a view of the ended response stays refused after Reset")
	assert.Zero(t, next.Body.Len(), "nothing reached the writer Reset gave")
}

// TestNewNeverReusesARecorder: New hands out a distinct Recorder each time,
// across several blocks, and a view of an ended one stays refused while
// later requests get theirs.
func TestNewNeverReusesARecorder(t *testing.T) {
	first := newFull()
	rec := New(first)
	held := rec.Wrap()
	rec.End()
	seen := map[*Recorder]bool{rec: true}
	for range 5 * blockSize {
		w := newFull()
		r := New(w)
		require.False(t, seen[r], "New returned a Recorder it had handed out before")
		seen[r] = true
		assert.Zero(t, r.Status, "a fresh Recorder records nothing")
		assert.False(t, r.Ended(), "a fresh Recorder is not ended")
		_, err := held.Write([]byte("late"))
		assert.ErrorIs(t, err, ErrHandlerReturned, "late write")
		_, err = r.Wrap().Write([]byte("own"))
		require.NoError(t, err)
		assert.Equal(t, "own", w.Body.String(), "each request's writes reach its own writer only")
		r.End()
	}
	assert.Zero(t, first.Body.Len(), "the ended request's writer got nothing")
}

func TestNewAllocatesOncePerBlock(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector makes sync.Pool drop items; run without -race")
	}
	full := newFull()
	const n = 64 * blockSize
	allocs := testing.AllocsPerRun(1, func() {
		for range n {
			New(full).End()
		}
	})
	assert.LessOrEqual(t, allocs, float64(n/blockSize+2), "allocations for %d Recorders", n)
}

// TestEndWhileAViewIsInUse: End may run while a leaked goroutine is still
// writing (a bug, but one that must not corrupt memory): the goroutine's
// writes start failing, and the race detector finds nothing in the
// Recorder.
func TestEndWhileAViewIsInUse(t *testing.T) {
	rec := New(struct{ http.ResponseWriter }{newFull()})
	w := rec.Wrap()
	failed := make(chan error, 1)
	go func() {
		for {
			if _, err := w.Write([]byte("x")); err != nil {
				failed <- err
				return
			}
		}
	}()
	rec.End()
	select {
	case err := <-failed:
		assert.ErrorIs(t, err, ErrHandlerReturned, "the writer's error once End ran")
	case <-time.After(10 * time.Second): // liveness only
		t.Fatal("writes still succeed after End")
	}
}

func TestWrapDoesNotAllocate(t *testing.T) {
	var rec Recorder
	full := newFull()
	allocs := testing.AllocsPerRun(100, func() {
		rec.Reset(full)
		w := rec.Wrap()
		w.WriteHeader(http.StatusNoContent)
		_ = http.NewResponseController(w).Flush()
	})
	assert.Zero(t, allocs, "allocations per Reset, Wrap, WriteHeader and flush")
}

// TestFrom: every view, and the Recorder itself, leads back to the
// Recorder; a writer that only wraps a view does not.
func TestFrom(t *testing.T) {
	for mask := range 16 {
		t.Run(maskName(mask), func(t *testing.T) {
			rec := newRecorder(maskedWriter(newFull(), mask))
			assert.Same(t, rec, From(rec.Wrap()), "view for mask %04b", mask)
		})
	}
	rec := newRecorder(newFull())
	assert.Same(t, rec, From(rec), "the Recorder itself")
	assert.Nil(t, From(httptest.NewRecorder()), "a writer that is no view")
	wrapped := struct{ http.ResponseWriter }{rec.Wrap()}
	assert.Nil(t, From(wrapped), "a writer that embeds a view")
	assert.Zero(t, testing.AllocsPerRun(100, func() { _ = From(rec.Wrap()) }), "allocations of From")
}
