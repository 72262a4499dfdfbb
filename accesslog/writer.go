package accesslog

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"time"
)

// respWriter records what the handler sent: the final status, the body
// bytes and when the first byte (headers, or a 1xx response) went out.
//
// It is not exposed directly: wrap returns one of the rw* types below, each
// a single pointer (so storing it in an http.ResponseWriter does not
// allocate) whose method set is exactly the optional interfaces (Flusher,
// Hijacker, io.ReaderFrom, Pusher) of the writer it wraps, the way
// httpsnoop does it. A wrapper that claimed every interface would make
// callers believe they can, say, hijack an HTTP/2 stream; one that dropped
// interfaces would break sendfile, SSE or websockets. chi's
// NewWrapResponseWriter drops io.ReaderFrom and Pusher in some combinations
// and cannot tell when the first byte was written; httpsnoop can, but costs
// several allocations per request. Unwrap lets http.ResponseController
// reach the deadline and full-duplex methods of the writer underneath.
type respWriter struct {
	w         http.ResponseWriter
	head      bool // HEAD: the server discards the body, nginx logs 0 bytes
	status    int
	bytes     int64
	start     time.Time
	firstByte time.Duration // since start; 0 until the first byte
	hijacked  bool
}

func (w *respWriter) markFirstByte() {
	if w.firstByte == 0 {
		// Monotonic clock only: half the cost of time.Now.
		w.firstByte = max(time.Since(w.start), 1)
	}
}

// committed records an implicit 200, as net/http sends it on the first
// Write, Flush or ReadFrom before WriteHeader.
func (w *respWriter) committed() {
	if w.status == 0 {
		w.status = http.StatusOK
		w.markFirstByte()
	}
}

func (w *respWriter) Header() http.Header { return w.w.Header() }

func (w *respWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.markFirstByte()
		// 1xx informational responses (103 Early Hints) are not the final
		// status; 101 Switching Protocols is.
		if code >= 200 || code == http.StatusSwitchingProtocols {
			w.status = code
		}
	}
	w.w.WriteHeader(code)
}

func (w *respWriter) Write(p []byte) (int, error) {
	w.committed()
	n, err := w.w.Write(p)
	if !w.head {
		w.bytes += int64(n)
	}
	return n, err
}

// WriteString keeps io.WriteString from copying the string when the
// underlying writer can take it directly (net/http's can).
func (w *respWriter) WriteString(s string) (int, error) {
	w.committed()
	var n int
	var err error
	if sw, ok := w.w.(io.StringWriter); ok {
		n, err = sw.WriteString(s)
	} else {
		n, err = w.w.Write([]byte(s))
	}
	if !w.head {
		w.bytes += int64(n)
	}
	return n, err
}

// Unwrap returns the wrapped writer, for http.ResponseController.
func (w *respWriter) Unwrap() http.ResponseWriter { return w.w }

// FlushError lets http.ResponseController flush through the wrapper and get
// http.ErrNotSupported when the writer underneath cannot flush.
func (w *respWriter) FlushError() error {
	err := http.NewResponseController(w.w).Flush()
	if err == nil {
		w.committed()
	}
	return err
}

func (w *respWriter) flush() {
	w.committed()
	w.w.(http.Flusher).Flush()
}

func (w *respWriter) hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, rw, err := w.w.(http.Hijacker).Hijack()
	if err == nil {
		w.hijacked = true
		w.markFirstByte()
	}
	return c, rw, err
}

func (w *respWriter) readFrom(src io.Reader) (int64, error) {
	w.committed()
	n, err := w.w.(io.ReaderFrom).ReadFrom(src)
	if !w.head {
		w.bytes += n
	}
	return n, err
}

func (w *respWriter) push(target string, opts *http.PushOptions) error {
	return w.w.(http.Pusher).Push(target, opts)
}

// The variants: F Flusher, H Hijacker, R io.ReaderFrom, P Pusher.
type (
	rw     struct{ *respWriter }
	rwF    struct{ *respWriter }
	rwH    struct{ *respWriter }
	rwFH   struct{ *respWriter }
	rwR    struct{ *respWriter }
	rwFR   struct{ *respWriter }
	rwHR   struct{ *respWriter }
	rwFHR  struct{ *respWriter }
	rwP    struct{ *respWriter }
	rwFP   struct{ *respWriter }
	rwHP   struct{ *respWriter }
	rwFHP  struct{ *respWriter }
	rwRP   struct{ *respWriter }
	rwFRP  struct{ *respWriter }
	rwHRP  struct{ *respWriter }
	rwFHRP struct{ *respWriter }
)

func (w rwF) Flush()    { w.flush() }
func (w rwFH) Flush()   { w.flush() }
func (w rwFR) Flush()   { w.flush() }
func (w rwFHR) Flush()  { w.flush() }
func (w rwFP) Flush()   { w.flush() }
func (w rwFHP) Flush()  { w.flush() }
func (w rwFRP) Flush()  { w.flush() }
func (w rwFHRP) Flush() { w.flush() }

func (w rwH) Hijack() (net.Conn, *bufio.ReadWriter, error)    { return w.hijack() }
func (w rwFH) Hijack() (net.Conn, *bufio.ReadWriter, error)   { return w.hijack() }
func (w rwHR) Hijack() (net.Conn, *bufio.ReadWriter, error)   { return w.hijack() }
func (w rwFHR) Hijack() (net.Conn, *bufio.ReadWriter, error)  { return w.hijack() }
func (w rwHP) Hijack() (net.Conn, *bufio.ReadWriter, error)   { return w.hijack() }
func (w rwFHP) Hijack() (net.Conn, *bufio.ReadWriter, error)  { return w.hijack() }
func (w rwHRP) Hijack() (net.Conn, *bufio.ReadWriter, error)  { return w.hijack() }
func (w rwFHRP) Hijack() (net.Conn, *bufio.ReadWriter, error) { return w.hijack() }

func (w rwR) ReadFrom(src io.Reader) (int64, error)    { return w.readFrom(src) }
func (w rwFR) ReadFrom(src io.Reader) (int64, error)   { return w.readFrom(src) }
func (w rwHR) ReadFrom(src io.Reader) (int64, error)   { return w.readFrom(src) }
func (w rwFHR) ReadFrom(src io.Reader) (int64, error)  { return w.readFrom(src) }
func (w rwRP) ReadFrom(src io.Reader) (int64, error)   { return w.readFrom(src) }
func (w rwFRP) ReadFrom(src io.Reader) (int64, error)  { return w.readFrom(src) }
func (w rwHRP) ReadFrom(src io.Reader) (int64, error)  { return w.readFrom(src) }
func (w rwFHRP) ReadFrom(src io.Reader) (int64, error) { return w.readFrom(src) }

func (w rwP) Push(t string, o *http.PushOptions) error    { return w.push(t, o) }
func (w rwFP) Push(t string, o *http.PushOptions) error   { return w.push(t, o) }
func (w rwHP) Push(t string, o *http.PushOptions) error   { return w.push(t, o) }
func (w rwFHP) Push(t string, o *http.PushOptions) error  { return w.push(t, o) }
func (w rwRP) Push(t string, o *http.PushOptions) error   { return w.push(t, o) }
func (w rwFRP) Push(t string, o *http.PushOptions) error  { return w.push(t, o) }
func (w rwHRP) Push(t string, o *http.PushOptions) error  { return w.push(t, o) }
func (w rwFHRP) Push(t string, o *http.PushOptions) error { return w.push(t, o) }

// wrap returns w as an http.ResponseWriter with exactly the optional
// interfaces of the writer it wraps.
func (w *respWriter) wrap() http.ResponseWriter {
	var set int
	if _, ok := w.w.(http.Flusher); ok {
		set |= 1
	}
	if _, ok := w.w.(http.Hijacker); ok {
		set |= 2
	}
	if _, ok := w.w.(io.ReaderFrom); ok {
		set |= 4
	}
	if _, ok := w.w.(http.Pusher); ok {
		set |= 8
	}
	switch set {
	case 1:
		return rwF{w}
	case 2:
		return rwH{w}
	case 3:
		return rwFH{w}
	case 4:
		return rwR{w}
	case 5:
		return rwFR{w}
	case 6:
		return rwHR{w}
	case 7:
		return rwFHR{w}
	case 8:
		return rwP{w}
	case 9:
		return rwFP{w}
	case 10:
		return rwHP{w}
	case 11:
		return rwFHP{w}
	case 12:
		return rwRP{w}
	case 13:
		return rwFRP{w}
	case 14:
		return rwHRP{w}
	case 15:
		return rwFHRP{w}
	}
	return rw{w}
}

// Compile-time checks that the variants carry what their names say.
var (
	_ interface {
		http.Flusher
		http.Hijacker
		io.ReaderFrom
		http.Pusher
		Unwrap() http.ResponseWriter
	} = rwFHRP{}
	_ interface {
		http.Flusher
		http.Hijacker
		io.ReaderFrom
	} = rwFHR{}
	_ interface {
		http.Flusher
		http.Pusher
	} = rwFP{}
)

// bodyCounter counts the request body bytes the handler read, for requests
// whose Content-Length is unknown (chunked uploads).
type bodyCounter struct {
	rc io.ReadCloser
	n  int64
}

func (b *bodyCounter) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	b.n += int64(n)
	return n, err
}

func (b *bodyCounter) Close() error { return b.rc.Close() }
