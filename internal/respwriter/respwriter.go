// Package respwriter records what a handler does with its
// http.ResponseWriter — the final status, the body bytes, when the first
// byte went out, whether the connection was hijacked — without hiding any
// optional interface of the writer and without allocating. accesslog (the
// access line) and recoverer (may a 500 still be written?) share it.
//
//	var rec respwriter.Recorder // in a per-request struct, or pooled
//	rec.Reset(w)
//	rec.Start = time.Now() // only to time the first byte
//	next.ServeHTTP(rec.Wrap(), r)
//	… rec.Status, rec.Bytes, rec.FirstByte, rec.Hijacked …
//
// [Recorder.Wrap] returns one of 16 views, each a struct holding only the
// *Recorder (so storing it in an http.ResponseWriter does not allocate),
// whose method set has exactly the optional interfaces of the wrapped writer
// among http.Flusher, http.Hijacker, io.ReaderFrom and http.Pusher — the
// way httpsnoop does it. A view that claimed every interface would make
// callers believe they can, say, hijack an HTTP/2 stream; one that dropped
// some would break SSE, websockets or sendfile. chi's NewWrapResponseWriter
// drops io.ReaderFrom and Pusher in some combinations and allocates;
// httpsnoop keeps them all but costs several allocations per request.
// Every view also has io.StringWriter, FlushError and Unwrap, so
// http.ResponseController reaches the flush, deadline and full-duplex
// methods of the writers underneath.
package respwriter

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"time"
)

// Recorder records what the handler did with the response it wraps. The
// zero value is not usable: call Reset first. Like the http.ResponseWriter
// it wraps, it is not safe for concurrent use, and neither it nor its views
// may be used after the handler returned.
type Recorder struct {
	w http.ResponseWriter

	// Start is the time FirstByte is measured from. Set it after Reset,
	// before the handler runs; left zero, the first byte is not timed and
	// no clock is read.
	Start time.Time

	// Status is the final status: the first WriteHeader that is not a 1xx
	// informational response (101 Switching Protocols is final), or 200
	// once Write, WriteString, ReadFrom or a flush implied it. 0 until then.
	Status int
	// Bytes counts the body bytes the wrapped writer accepted (including
	// those net/http discards for HEAD).
	Bytes int64
	// FirstByte is the time from Start to the first byte sent (a status
	// line, 1xx included, body or flush, or the hijack); 0 until then, or
	// when Start is zero.
	FirstByte time.Duration
	// Hijacked is set once Hijack succeeded: the connection is no longer
	// the server's to write to.
	Hijacked bool
}

// Reset makes r record a new response written to w, forgetting everything
// else.
func (r *Recorder) Reset(w http.ResponseWriter) { *r = Recorder{w: w} }

func (r *Recorder) markFirstByte() {
	if r.FirstByte == 0 && !r.Start.IsZero() {
		// Monotonic clock only: half the cost of time.Now.
		r.FirstByte = max(time.Since(r.Start), 1)
	}
}

// committed records an implicit 200, as net/http sends it on the first
// Write, flush or ReadFrom before WriteHeader.
func (r *Recorder) committed() {
	if r.Status == 0 {
		r.Status = http.StatusOK
		r.markFirstByte()
	}
}

// Header returns the wrapped writer's header map.
func (r *Recorder) Header() http.Header { return r.w.Header() }

// WriteHeader writes the status line. The status is recorded after the
// wrapped writer accepted it, so that an invalid code, which net/http
// refuses with a panic, leaves the response unwritten (and a recoverer free
// to answer 500).
func (r *Recorder) WriteHeader(code int) {
	r.w.WriteHeader(code)
	if r.Status == 0 {
		r.markFirstByte()
		if code < 100 || code > 199 || code == http.StatusSwitchingProtocols {
			r.Status = code
		}
	}
}

// Write writes body bytes.
func (r *Recorder) Write(p []byte) (int, error) {
	r.committed()
	n, err := r.w.Write(p)
	r.Bytes += int64(n)
	return n, err
}

// WriteString keeps io.WriteString from copying s when the wrapped writer
// can take a string (net/http's can).
func (r *Recorder) WriteString(s string) (int, error) {
	r.committed()
	n, err := io.WriteString(r.w, s)
	r.Bytes += int64(n)
	return n, err
}

// Unwrap returns the wrapped writer, for http.ResponseController.
func (r *Recorder) Unwrap() http.ResponseWriter { return r.w }

// FlushError flushes the wrapped writer, or the first writer down its
// Unwrap chain that can flush, and returns http.ErrNotSupported when none
// can. http.ResponseController prefers it to Flush, so a flush through
// it is seen even on a view without Flush. A flush commits the status line
// unless it was not supported: net/http's writers commit before they write,
// so a failed flush may still have sent the header.
func (r *Recorder) FlushError() error {
	err := http.NewResponseController(r.w).Flush()
	if !errors.Is(err, http.ErrNotSupported) {
		r.committed()
	}
	return err
}

func (r *Recorder) flush() { _ = r.FlushError() }

func (r *Recorder) hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, brw, err := r.w.(http.Hijacker).Hijack()
	if err == nil {
		r.Hijacked = true
		r.markFirstByte()
	}
	return c, brw, err
}

func (r *Recorder) readFrom(src io.Reader) (int64, error) {
	r.committed()
	n, err := r.w.(io.ReaderFrom).ReadFrom(src)
	r.Bytes += n
	return n, err
}

func (r *Recorder) push(target string, opts *http.PushOptions) error {
	return r.w.(http.Pusher).Push(target, opts)
}

// Bits of the optional interfaces, the index of a view.
const (
	canFlush = 1 << iota
	canHijack
	canReadFrom
	canPush
)

// Wrap returns the view of r to pass to the handler: an
// http.ResponseWriter with exactly the optional interfaces of the wrapped
// writer. Only Flush makes a flusher: every view has FlushError, so a
// FlushError alone says nothing about the writers underneath (a view
// wrapping a view would otherwise claim Flush for a writer that cannot).
func (r *Recorder) Wrap() http.ResponseWriter {
	var c int
	if _, ok := r.w.(http.Flusher); ok {
		c |= canFlush
	}
	if _, ok := r.w.(http.Hijacker); ok {
		c |= canHijack
	}
	if _, ok := r.w.(io.ReaderFrom); ok {
		c |= canReadFrom
	}
	if _, ok := r.w.(http.Pusher); ok {
		c |= canPush
	}
	switch c {
	case canFlush:
		return viewF{r}
	case canHijack:
		return viewH{r}
	case canFlush | canHijack:
		return viewFH{r}
	case canReadFrom:
		return viewR{r}
	case canFlush | canReadFrom:
		return viewFR{r}
	case canHijack | canReadFrom:
		return viewHR{r}
	case canFlush | canHijack | canReadFrom:
		return viewFHR{r}
	case canPush:
		return viewP{r}
	case canFlush | canPush:
		return viewFP{r}
	case canHijack | canPush:
		return viewHP{r}
	case canFlush | canHijack | canPush:
		return viewFHP{r}
	case canReadFrom | canPush:
		return viewRP{r}
	case canFlush | canReadFrom | canPush:
		return viewFRP{r}
	case canHijack | canReadFrom | canPush:
		return viewHRP{r}
	case canFlush | canHijack | canReadFrom | canPush:
		return viewFHRP{r}
	}
	return r
}

// The views: F http.Flusher, H http.Hijacker, R io.ReaderFrom, P
// http.Pusher.
type (
	viewF    struct{ *Recorder }
	viewH    struct{ *Recorder }
	viewFH   struct{ *Recorder }
	viewR    struct{ *Recorder }
	viewFR   struct{ *Recorder }
	viewHR   struct{ *Recorder }
	viewFHR  struct{ *Recorder }
	viewP    struct{ *Recorder }
	viewFP   struct{ *Recorder }
	viewHP   struct{ *Recorder }
	viewFHP  struct{ *Recorder }
	viewRP   struct{ *Recorder }
	viewFRP  struct{ *Recorder }
	viewHRP  struct{ *Recorder }
	viewFHRP struct{ *Recorder }
)

func (v viewF) Flush()    { v.flush() }
func (v viewFH) Flush()   { v.flush() }
func (v viewFR) Flush()   { v.flush() }
func (v viewFHR) Flush()  { v.flush() }
func (v viewFP) Flush()   { v.flush() }
func (v viewFHP) Flush()  { v.flush() }
func (v viewFRP) Flush()  { v.flush() }
func (v viewFHRP) Flush() { v.flush() }

func (v viewH) Hijack() (net.Conn, *bufio.ReadWriter, error)    { return v.hijack() }
func (v viewFH) Hijack() (net.Conn, *bufio.ReadWriter, error)   { return v.hijack() }
func (v viewHR) Hijack() (net.Conn, *bufio.ReadWriter, error)   { return v.hijack() }
func (v viewFHR) Hijack() (net.Conn, *bufio.ReadWriter, error)  { return v.hijack() }
func (v viewHP) Hijack() (net.Conn, *bufio.ReadWriter, error)   { return v.hijack() }
func (v viewFHP) Hijack() (net.Conn, *bufio.ReadWriter, error)  { return v.hijack() }
func (v viewHRP) Hijack() (net.Conn, *bufio.ReadWriter, error)  { return v.hijack() }
func (v viewFHRP) Hijack() (net.Conn, *bufio.ReadWriter, error) { return v.hijack() }

func (v viewR) ReadFrom(src io.Reader) (int64, error)    { return v.readFrom(src) }
func (v viewFR) ReadFrom(src io.Reader) (int64, error)   { return v.readFrom(src) }
func (v viewHR) ReadFrom(src io.Reader) (int64, error)   { return v.readFrom(src) }
func (v viewFHR) ReadFrom(src io.Reader) (int64, error)  { return v.readFrom(src) }
func (v viewRP) ReadFrom(src io.Reader) (int64, error)   { return v.readFrom(src) }
func (v viewFRP) ReadFrom(src io.Reader) (int64, error)  { return v.readFrom(src) }
func (v viewHRP) ReadFrom(src io.Reader) (int64, error)  { return v.readFrom(src) }
func (v viewFHRP) ReadFrom(src io.Reader) (int64, error) { return v.readFrom(src) }

func (v viewP) Push(t string, o *http.PushOptions) error    { return v.push(t, o) }
func (v viewFP) Push(t string, o *http.PushOptions) error   { return v.push(t, o) }
func (v viewHP) Push(t string, o *http.PushOptions) error   { return v.push(t, o) }
func (v viewFHP) Push(t string, o *http.PushOptions) error  { return v.push(t, o) }
func (v viewRP) Push(t string, o *http.PushOptions) error   { return v.push(t, o) }
func (v viewFRP) Push(t string, o *http.PushOptions) error  { return v.push(t, o) }
func (v viewHRP) Push(t string, o *http.PushOptions) error  { return v.push(t, o) }
func (v viewFHRP) Push(t string, o *http.PushOptions) error { return v.push(t, o) }

var _ interface {
	http.Flusher
	http.Hijacker
	io.ReaderFrom
	http.Pusher
	io.StringWriter
	FlushError() error
	Unwrap() http.ResponseWriter
} = viewFHRP{}
