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
		name := ""
		for i, c := range "FHRP" {
			if want[i] {
				name += string(c)
			} else {
				name += "-"
			}
		}
		t.Run(name, func(t *testing.T) {
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
	assert.Equal(t, Recorder{w: under}, *rec)
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
