// Package respwriter records what a handler does with its
// http.ResponseWriter — the final status, the body bytes, when the first
// byte went out, whether the connection was hijacked — without hiding any
// optional interface of the writer and without allocating. accesslog (the
// access line) and recoverer (may a 500 still be written?) share it.
//
//	rec := respwriter.New(w) // or a Recorder in a per-request struct, Reset(w)
//	rec.Start = time.Now()   // only to time the first byte
//	next.ServeHTTP(rec.Wrap(), r)
//	rec.End()                // also when next panicked
//	… rec.Status, rec.Bytes, rec.FirstByte, rec.Hijacked …
//
// Never put a Recorder in a sync.Pool: see "After the handler returned".
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
//
// # After the handler returned
//
// A handler may leak its ResponseWriter to a goroutine that uses it after
// the handler returned. In net/http a late HTTP/1 write fails with
// ErrContentLength when the response had a known length, and otherwise goes
// into a buffer net/http has given back to its pool, which may be another
// response's by then; a late HTTP/2 write panics. A pooled wrapper would
// hand the late write to whichever request got the wrapper next. A Recorder
// refuses instead: once the middleware that owns it calls [Recorder.End],
// every method of the Recorder and of its views refuses — writes, ReadFrom, FlushError, Hijack and Push return
// [ErrHandlerReturned], WriteHeader and Flush do nothing, Header returns a
// map of its own and Unwrap a writer that refuses the same way — and
// nothing reaches the wrapped writer or the recorded fields. [New] hands
// out Recorders that are never reused, so that a view kept past End can
// only ever reach its own request: a call that races with End (already
// past the check when End runs) completes on the writer of its own
// request, never on another's.
package respwriter

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shipshape-go/shipshape/reqlog"
)

// ErrHandlerReturned is returned by the methods of a Recorder and its views
// after [Recorder.End]: the handler that got the writer has returned, and
// its response is no longer its to write.
var ErrHandlerReturned = errors.New("shipshape: response used after its handler returned")

// Recorder records what the handler did with the response it wraps. The
// zero value is not usable: call Reset first, or get one from [New]. Like
// the http.ResponseWriter it wraps, it is not safe for concurrent use;
// [Recorder.End] is the exception, and makes every later use refuse.
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

	// ended is set by End. Atomic so that a late call on another goroutine
	// that sees it also sees everything before End, and so that the race
	// detector does not blame the check itself. Last, where it fits in the
	// padding after Hijacked: a Recorder is no bigger than before.
	ended atomic.Bool
}

// Reset makes r record a new response written to w, forgetting what it
// recorded. End is final, and Reset does not undo it: views of the ended
// response may still be held, and a Recorder that came back to life would
// hand them the new one (a Recorder per response is what [New] is for).
func (r *Recorder) Reset(w http.ResponseWriter) {
	r.w = w
	r.Start, r.Status, r.Bytes, r.FirstByte, r.Hijacked = time.Time{}, 0, 0, 0, false
}

// blockSize is how many Recorders [New] carves from one allocation: one
// allocation per 16 requests, and a view kept past its request keeps at
// most 15 other finished Recorders (and the writers they wrapped) from
// being collected.
const blockSize = 16

type block struct {
	recs [blockSize]Recorder
	next int
}

// blocks hold the Recorders New has not handed out yet; a block leaves the
// pool once its last Recorder is taken and is collected when none of its
// Recorders is referenced any more. No Recorder goes back.
var blocks = sync.Pool{New: func() any { return new(block) }}

// New returns a Recorder for w that was never used before and will never be
// used for another response, without an allocation for most calls: it is
// what a middleware that keeps no per-request struct uses instead of a pool
// of Recorders, which would hand a view kept past its request to the next
// one. Call [Recorder.End] when the handler returned; drop the Recorder
// afterwards.
func New(w http.ResponseWriter) *Recorder {
	b := blocks.Get().(*block)
	r := &b.recs[b.next]
	b.next++
	if b.next < blockSize {
		blocks.Put(b)
	}
	r.w = w
	return r
}

// End records that the handler returned: from now on r and its views refuse
// every use (see "After the handler returned" in the package
// documentation). The recorded fields keep their values. End may be called
// while a leaked goroutine uses a view; calling it again does nothing.
func (r *Recorder) End() { r.ended.Store(true) }

// Ended reports whether End was called.
func (r *Recorder) Ended() bool { return r.ended.Load() }

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

// Header returns the wrapped writer's header map; after End, a new empty
// map, so that what a late caller sets goes nowhere.
func (r *Recorder) Header() http.Header {
	if r.ended.Load() {
		return http.Header{}
	}
	return r.w.Header()
}

// WriteHeader writes the status line. The status is recorded after the
// wrapped writer accepted it, so that an invalid code, which net/http
// refuses with a panic, leaves the response unwritten (and a recoverer free
// to answer 500).
func (r *Recorder) WriteHeader(code int) {
	if r.ended.Load() {
		return
	}
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
	if r.ended.Load() {
		return 0, ErrHandlerReturned
	}
	r.committed()
	n, err := r.w.Write(p)
	r.Bytes += int64(n)
	return n, err
}

// WriteString keeps io.WriteString from copying s when the wrapped writer
// can take a string (net/http's can).
func (r *Recorder) WriteString(s string) (int, error) {
	if r.ended.Load() {
		return 0, ErrHandlerReturned
	}
	r.committed()
	n, err := io.WriteString(r.w, s)
	r.Bytes += int64(n)
	return n, err
}

// Unwrap returns the wrapped writer, for http.ResponseController; after
// End, a writer that refuses like r, so that a late SetWriteDeadline or
// EnableFullDuplex cannot reach a connection that may be serving another
// request by now.
func (r *Recorder) Unwrap() http.ResponseWriter {
	if r.ended.Load() {
		return endedWriter{}
	}
	return r.w
}

// FlushError flushes the wrapped writer, or the first writer down its
// Unwrap chain that can flush, and returns http.ErrNotSupported when none
// can. http.ResponseController prefers it to Flush, so a flush through
// it is seen even on a view without Flush. A flush commits the status line
// unless it was not supported: net/http's writers commit before they write,
// so a failed flush may still have sent the header.
func (r *Recorder) FlushError() error {
	if r.ended.Load() {
		return ErrHandlerReturned
	}
	err := http.NewResponseController(r.w).Flush()
	if !errors.Is(err, http.ErrNotSupported) {
		r.committed()
	}
	return err
}

func (r *Recorder) flush() { _ = r.FlushError() }

func (r *Recorder) hijack() (net.Conn, *bufio.ReadWriter, error) {
	if r.ended.Load() {
		return nil, nil, ErrHandlerReturned
	}
	c, brw, err := r.w.(http.Hijacker).Hijack()
	if err == nil {
		r.Hijacked = true
		r.markFirstByte()
	}
	return c, brw, err
}

func (r *Recorder) readFrom(src io.Reader) (int64, error) {
	if r.ended.Load() {
		return 0, ErrHandlerReturned
	}
	r.committed()
	n, err := r.w.(io.ReaderFrom).ReadFrom(src)
	r.Bytes += n
	return n, err
}

func (r *Recorder) push(target string, opts *http.PushOptions) error {
	if r.ended.Load() {
		return ErrHandlerReturned
	}
	return r.w.(http.Pusher).Push(target, opts)
}

// endedWriter is what Unwrap returns after End: every method refuses,
// including the ones http.ResponseController looks for.
type endedWriter struct{}

func (endedWriter) Header() http.Header              { return http.Header{} }
func (endedWriter) Write([]byte) (int, error)        { return 0, ErrHandlerReturned }
func (endedWriter) WriteString(string) (int, error)  { return 0, ErrHandlerReturned }
func (endedWriter) WriteHeader(int)                  {}
func (endedWriter) FlushError() error                { return ErrHandlerReturned }
func (endedWriter) SetReadDeadline(time.Time) error  { return ErrHandlerReturned }
func (endedWriter) SetWriteDeadline(time.Time) error { return ErrHandlerReturned }
func (endedWriter) EnableFullDuplex() error          { return ErrHandlerReturned }

// From returns the Recorder that w is, or is a view of, and nil for any
// other writer (one that wraps a view included: its writes may not reach
// the Recorder at all). A middleware inside another that owns a Recorder
// (recoverer inside accesslog) reads what it needs from the owner's instead
// of recording the same response twice. The Recorder stays its owner's to
// End: it refuses every use once the owner's handler returned.
func From(w http.ResponseWriter) *Recorder {
	if v, ok := w.(interface{ recorder() *Recorder }); ok {
		return v.recorder()
	}
	return nil
}

// recorder is promoted to every view, for From; unexported, so that the
// method set a handler sees is exactly the wrapped writer's.
func (r *Recorder) recorder() *Recorder { return r }

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

// ServeJudged serves r with next through a new Recorder on w and then
// calls judge with the status the request is judged by, also when next
// panicked (the panic goes on unwinding afterwards): 500 for a panic, 499
// ([reqlog.StatusClientClosedRequest]) when r's context is done, else the
// status written, 200 when none was. It is the rule of ratelimit's and
// slowdown's WithCountOnly.
func ServeJudged(next http.Handler, w http.ResponseWriter, r *http.Request, judge func(status int)) {
	rec := New(w)
	returned := false
	defer func() {
		rec.End()
		switch {
		case !returned:
			judge(http.StatusInternalServerError)
		case r.Context().Err() != nil:
			judge(reqlog.StatusClientClosedRequest)
		case rec.Status == 0:
			judge(http.StatusOK)
		default:
			judge(rec.Status)
		}
	}()
	next.ServeHTTP(rec.Wrap(), r)
	returned = true
}
