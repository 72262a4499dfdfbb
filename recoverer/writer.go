package recoverer

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"sync"
)

// tracker records what the handler did with the response, so that the
// recovery path knows whether a status line may still be written (wrote) and
// whether the connection was taken over (hijacked). It is the only state the
// happy path needs, and it comes from a sync.Pool: a request that does not
// panic costs no allocation.
//
// The handler never sees a *tracker with more methods than the writer it
// wraps: wrap returns one of 16 thin views (every combination of
// http.Flusher, http.Hijacker, io.ReaderFrom and http.Pusher), each a struct
// holding only the *tracker, so converting it to an http.ResponseWriter does
// not allocate either. Every view has Unwrap, so http.ResponseController
// reaches the interfaces the underlying writer has beyond these four.
//
// A tracker goes back to the pool only when the handler returned normally;
// like the http.ResponseWriter it wraps, it must not be used after
// ServeHTTP returned.
type tracker struct {
	rw       http.ResponseWriter
	wrote    bool // a final status line has been written (or implied by Write/Flush/ReadFrom)
	hijacked bool // Hijack succeeded: the connection is no longer ours to write to
}

var trackerPool = sync.Pool{New: func() any { return new(tracker) }}

func acquireTracker(w http.ResponseWriter) *tracker {
	t := trackerPool.Get().(*tracker)
	t.rw = w
	return t
}

// release returns t to the pool. Only call it when nothing can still hold a
// view of t: after the handler returned without panicking.
func (t *tracker) release() {
	*t = tracker{}
	trackerPool.Put(t)
}

func (t *tracker) Header() http.Header { return t.rw.Header() }

func (t *tracker) Write(b []byte) (int, error) {
	t.wrote = true
	return t.rw.Write(b)
}

// WriteString keeps io.WriteString free of a []byte copy when the
// underlying writer has it (net/http's does).
func (t *tracker) WriteString(s string) (int, error) {
	t.wrote = true
	return io.WriteString(t.rw, s)
}

func (t *tracker) WriteHeader(code int) {
	t.rw.WriteHeader(code)
	// 1xx responses other than 101 are informational: the final status is
	// still to come. Marked after the call so that an invalid code, which
	// net/http refuses with a panic, leaves the response unwritten.
	if code < 100 || code > 199 || code == http.StatusSwitchingProtocols {
		t.wrote = true
	}
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (t *tracker) Unwrap() http.ResponseWriter { return t.rw }

// flushErrorer is the flush method http.ResponseController prefers; a
// writer that has only it still counts as a flusher.
type flushErrorer interface{ FlushError() error }

func (t *tracker) flush() error {
	t.wrote = true
	if f, ok := t.rw.(flushErrorer); ok {
		return f.FlushError()
	}
	t.rw.(http.Flusher).Flush()
	return nil
}

func (t *tracker) hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, brw, err := t.rw.(http.Hijacker).Hijack()
	if err == nil {
		t.hijacked = true
	}
	return c, brw, err
}

func (t *tracker) readFrom(r io.Reader) (int64, error) {
	t.wrote = true
	return t.rw.(io.ReaderFrom).ReadFrom(r)
}

func (t *tracker) push(target string, opts *http.PushOptions) error {
	return t.rw.(http.Pusher).Push(target, opts)
}

const (
	canFlush = 1 << iota
	canHijack
	canReadFrom
	canPush
)

// wrap returns the view of t that has exactly the optional interfaces of the
// wrapped writer.
func (t *tracker) wrap() http.ResponseWriter {
	var c int
	switch t.rw.(type) {
	case http.Flusher, flushErrorer:
		c |= canFlush
	}
	if _, ok := t.rw.(http.Hijacker); ok {
		c |= canHijack
	}
	if _, ok := t.rw.(io.ReaderFrom); ok {
		c |= canReadFrom
	}
	if _, ok := t.rw.(http.Pusher); ok {
		c |= canPush
	}
	switch c {
	case canFlush:
		return viewF{t}
	case canHijack:
		return viewH{t}
	case canFlush | canHijack:
		return viewFH{t}
	case canReadFrom:
		return viewR{t}
	case canFlush | canReadFrom:
		return viewFR{t}
	case canHijack | canReadFrom:
		return viewHR{t}
	case canFlush | canHijack | canReadFrom:
		return viewFHR{t}
	case canPush:
		return viewP{t}
	case canFlush | canPush:
		return viewFP{t}
	case canHijack | canPush:
		return viewHP{t}
	case canFlush | canHijack | canPush:
		return viewFHP{t}
	case canReadFrom | canPush:
		return viewRP{t}
	case canFlush | canReadFrom | canPush:
		return viewFRP{t}
	case canHijack | canReadFrom | canPush:
		return viewHRP{t}
	case canFlush | canHijack | canReadFrom | canPush:
		return viewFHRP{t}
	default:
		return t
	}
}

// The views: F = http.Flusher (with FlushError), H = http.Hijacker,
// R = io.ReaderFrom, P = http.Pusher.

type viewF struct{ *tracker }

func (v viewF) Flush()            { _ = v.flush() }
func (v viewF) FlushError() error { return v.flush() }

type viewH struct{ *tracker }

func (v viewH) Hijack() (net.Conn, *bufio.ReadWriter, error) { return v.hijack() }

type viewFH struct{ *tracker }

func (v viewFH) Flush()                                       { _ = v.flush() }
func (v viewFH) FlushError() error                            { return v.flush() }
func (v viewFH) Hijack() (net.Conn, *bufio.ReadWriter, error) { return v.hijack() }

type viewR struct{ *tracker }

func (v viewR) ReadFrom(r io.Reader) (int64, error) { return v.readFrom(r) }

type viewFR struct{ *tracker }

func (v viewFR) Flush()                              { _ = v.flush() }
func (v viewFR) FlushError() error                   { return v.flush() }
func (v viewFR) ReadFrom(r io.Reader) (int64, error) { return v.readFrom(r) }

type viewHR struct{ *tracker }

func (v viewHR) Hijack() (net.Conn, *bufio.ReadWriter, error) { return v.hijack() }
func (v viewHR) ReadFrom(r io.Reader) (int64, error)          { return v.readFrom(r) }

type viewFHR struct{ *tracker }

func (v viewFHR) Flush()                                       { _ = v.flush() }
func (v viewFHR) FlushError() error                            { return v.flush() }
func (v viewFHR) Hijack() (net.Conn, *bufio.ReadWriter, error) { return v.hijack() }
func (v viewFHR) ReadFrom(r io.Reader) (int64, error)          { return v.readFrom(r) }

type viewP struct{ *tracker }

func (v viewP) Push(target string, opts *http.PushOptions) error { return v.push(target, opts) }

type viewFP struct{ *tracker }

func (v viewFP) Flush()                                           { _ = v.flush() }
func (v viewFP) FlushError() error                                { return v.flush() }
func (v viewFP) Push(target string, opts *http.PushOptions) error { return v.push(target, opts) }

type viewHP struct{ *tracker }

func (v viewHP) Hijack() (net.Conn, *bufio.ReadWriter, error)     { return v.hijack() }
func (v viewHP) Push(target string, opts *http.PushOptions) error { return v.push(target, opts) }

type viewFHP struct{ *tracker }

func (v viewFHP) Flush()                                           { _ = v.flush() }
func (v viewFHP) FlushError() error                                { return v.flush() }
func (v viewFHP) Hijack() (net.Conn, *bufio.ReadWriter, error)     { return v.hijack() }
func (v viewFHP) Push(target string, opts *http.PushOptions) error { return v.push(target, opts) }

type viewRP struct{ *tracker }

func (v viewRP) ReadFrom(r io.Reader) (int64, error)              { return v.readFrom(r) }
func (v viewRP) Push(target string, opts *http.PushOptions) error { return v.push(target, opts) }

type viewFRP struct{ *tracker }

func (v viewFRP) Flush()                                           { _ = v.flush() }
func (v viewFRP) FlushError() error                                { return v.flush() }
func (v viewFRP) ReadFrom(r io.Reader) (int64, error)              { return v.readFrom(r) }
func (v viewFRP) Push(target string, opts *http.PushOptions) error { return v.push(target, opts) }

type viewHRP struct{ *tracker }

func (v viewHRP) Hijack() (net.Conn, *bufio.ReadWriter, error)     { return v.hijack() }
func (v viewHRP) ReadFrom(r io.Reader) (int64, error)              { return v.readFrom(r) }
func (v viewHRP) Push(target string, opts *http.PushOptions) error { return v.push(target, opts) }

type viewFHRP struct{ *tracker }

func (v viewFHRP) Flush()                                           { _ = v.flush() }
func (v viewFHRP) FlushError() error                                { return v.flush() }
func (v viewFHRP) Hijack() (net.Conn, *bufio.ReadWriter, error)     { return v.hijack() }
func (v viewFHRP) ReadFrom(r io.Reader) (int64, error)              { return v.readFrom(r) }
func (v viewFHRP) Push(target string, opts *http.PushOptions) error { return v.push(target, opts) }

var (
	_ http.Flusher                              = viewFHRP{}
	_ flushErrorer                              = viewFHRP{}
	_ http.Hijacker                             = viewFHRP{}
	_ io.ReaderFrom                             = viewFHRP{}
	_ http.Pusher                               = viewFHRP{}
	_ interface{ Unwrap() http.ResponseWriter } = viewFHRP{}
)
