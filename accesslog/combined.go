package accesslog

import (
	"context"
	"io"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shipshape-go/shipshape/reqlog"
)

// clfTime is the layout of %t in the Common Log Format ($time_local in
// nginx): [10/Oct/2000:13:55:36 -0700].
const clfTime = "02/Jan/2006:15:04:05 -0700"

type format int

const (
	formatCommon format = iota
	formatCombined
	formatDev
	formatDevColor
)

// NewCombinedHandler returns a slog.Handler that writes access records
// (those the middleware of [New] produces) in the combined log format of
// Apache and nginx,
//
//	%h - %u [%d/%b/%Y:%H:%M:%S %z] "%r" %>s %b "%{Referer}i" "%{User-agent}i"
//
// byte for byte as nginx's predefined "combined" format writes them, so
// that GoAccess, awk scripts and log shippers read the file unchanged:
//
//   - %h is client.address (network.peer.address when absent), %u is
//     user.name (the middleware sets it only with [WithBasicAuthUser] or
//     [reqlog.AddAttrs]), "-" for a missing value; a missing Referer or
//     User-Agent header is "-", an empty one is "".
//   - %r is the request line as the client sent it (method, path and query
//     still percent-encoded, protocol), with sensitive query values
//     redacted; HTTP/2 is written "HTTP/2.0" as nginx does.
//   - %b is the body size; 0 is written "0", as nginx's $body_bytes_sent
//     does, where Apache writes "-".
//   - the time is the record's time (the end of the request, like nginx's
//     $time_local) in the record time's zone.
//   - in every string, '"', '\' and bytes below 0x20 or from 0x7f up are
//     written \xHH, as nginx escapes them: a client cannot break the line
//     or the quoting, and UTF-8 in a User-Agent appears as \xE2\x98\x83.
//
// Records without the access attributes (other log calls on the same
// logger) are written as slog.TextHandler lines (time=… level=… msg=…),
// not dropped. opts.Level filters records; opts.ReplaceAttr is applied to
// the attributes of access records (not to time, level and message) and
// to fallback lines; groups are ignored on access records. Each record is
// one Write call, under a lock shared by the handler and the handlers
// derived from it.
func NewCombinedHandler(w io.Writer, opts *slog.HandlerOptions) slog.Handler {
	return newTextHandler(w, opts, formatCombined)
}

// NewCommonHandler returns a slog.Handler that writes access records in the
// Common Log Format,
//
//	%h %l %u [%d/%b/%Y:%H:%M:%S %z] "%r" %>s %b
//
// with the same fields, escaping and fallback as [NewCombinedHandler].
func NewCommonHandler(w io.Writer, opts *slog.HandlerOptions) slog.Handler {
	return newTextHandler(w, opts, formatCommon)
}

func newTextHandler(w io.Writer, opts *slog.HandlerOptions, f format) *textHandler {
	if opts == nil {
		opts = &slog.HandlerOptions{}
	}
	o := &output{w: w, level: opts.Level, replace: opts.ReplaceAttr}
	return &textHandler{
		out:      o,
		format:   f,
		fallback: slog.NewTextHandler(lockedWriter{o}, opts),
	}
}

// output is what a handler and the handlers derived from it share.
type output struct {
	mu      sync.Mutex
	w       io.Writer
	level   slog.Leveler
	replace func(groups []string, a slog.Attr) slog.Attr
	stamp   atomic.Pointer[stamp]
}

// stamp caches the formatted time of one second in one location: the
// formatting is a fifth of the cost of a line.
type stamp struct {
	sec int64
	loc *time.Location
	b   []byte
}

func (o *output) appendTime(b []byte, t time.Time) []byte {
	sec, loc := t.Unix(), t.Location()
	if s := o.stamp.Load(); s != nil && s.sec == sec && s.loc == loc {
		return append(b, s.b...)
	}
	s := &stamp{sec: sec, loc: loc, b: t.AppendFormat(make([]byte, 0, len(clfTime)), clfTime)}
	o.stamp.Store(s)
	return append(b, s.b...)
}

// lockedWriter lets the fallback slog.TextHandler write under the same lock
// as the access lines.
type lockedWriter struct{ o *output }

func (l lockedWriter) Write(p []byte) (int, error) {
	l.o.mu.Lock()
	defer l.o.mu.Unlock()
	return l.o.w.Write(p)
}

type textHandler struct {
	out      *output
	format   format
	fallback slog.Handler
	pre      []slog.Attr // from WithAttrs: may carry access fields (user.name)
}

func (h *textHandler) Enabled(_ context.Context, l slog.Level) bool {
	minLevel := slog.LevelInfo
	if h.out.level != nil {
		minLevel = h.out.level.Level()
	}
	return l >= minLevel
}

func (h *textHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	if len(attrs) == 0 {
		return h
	}
	h2 := *h
	h2.pre = append(h.pre[:len(h.pre):len(h.pre)], attrs...)
	h2.fallback = h.fallback.WithAttrs(attrs)
	return &h2
}

func (h *textHandler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	h2 := *h
	h2.fallback = h.fallback.WithGroup(name)
	return &h2
}

var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

func (h *textHandler) Handle(ctx context.Context, r slog.Record) error {
	var f accessFields
	for _, a := range h.pre {
		f.add(a, h.out.replace)
	}
	r.Attrs(func(a slog.Attr) bool {
		f.add(a, h.out.replace)
		return true
	})
	if !f.isAccess() {
		return h.fallback.Handle(ctx, r)
	}
	return h.write(&f, r.Time)
}

// handleFields writes the middleware's line from its fields, without a
// slog.Record and its attributes, when the logger's handler is a
// textHandler without ReplaceAttr: attributes from WithAttrs come first,
// the middleware's fields override them and what AddAttrs added overrides
// both, as they would in a record.
func (h *textHandler) handleFields(mw *accessFields, extra []slog.Attr, t time.Time) error {
	var f accessFields
	for _, a := range h.pre {
		f.add(a, nil)
	}
	f.merge(mw)
	for _, a := range extra {
		f.add(a, nil)
	}
	return h.write(&f, t)
}

// write formats an access line and writes it in one call.
func (h *textHandler) write(f *accessFields, t time.Time) error {
	if t.IsZero() {
		t = time.Now()
	}
	bp := bufPool.Get().(*[]byte)
	b := (*bp)[:0]
	switch h.format {
	case formatDev, formatDevColor:
		b = f.appendDev(b, h.format == formatDevColor)
	default:
		b = f.appendCLF(b, h.out, t, h.format == formatCombined)
	}
	h.out.mu.Lock()
	_, err := h.out.w.Write(b)
	h.out.mu.Unlock()
	if cap(b) <= 64<<10 {
		*bp = b
		bufPool.Put(bp)
	}
	return err
}

// Indexes of accessFields.vals, in the order of the record's attributes.
const (
	fMethod = iota
	fPath
	fQuery
	fRoute
	fProto
	fStatus
	fRequestSize
	fResponseSize
	fClient
	fPeer
	fUserAgent
	fReferer
	fUser
	fRequestID
	fDuration
	fTTFB
	fAborted
	numFields
)

var fieldKeys = [numFields]string{
	reqlog.KeyMethod, reqlog.KeyPath, reqlog.KeyQuery, reqlog.KeyRoute, reqlog.KeyProtocol, reqlog.KeyStatus, reqlog.KeyRequestSize,
	reqlog.KeyResponseSize, reqlog.KeyClient, reqlog.KeyPeer, reqlog.KeyUserAgent, reqlog.KeyReferer, reqlog.KeyUser,
	reqlog.KeyRequestID, reqlog.KeyDuration, reqlog.KeyTTFB, reqlog.KeyAborted,
}

func fieldIndex(key string) int {
	switch key {
	case reqlog.KeyMethod:
		return fMethod
	case reqlog.KeyPath:
		return fPath
	case reqlog.KeyQuery:
		return fQuery
	case reqlog.KeyRoute:
		return fRoute
	case reqlog.KeyProtocol:
		return fProto
	case reqlog.KeyStatus:
		return fStatus
	case reqlog.KeyRequestSize:
		return fRequestSize
	case reqlog.KeyResponseSize:
		return fResponseSize
	case reqlog.KeyClient:
		return fClient
	case reqlog.KeyPeer:
		return fPeer
	case reqlog.KeyUserAgent:
		return fUserAgent
	case reqlog.KeyReferer:
		return fReferer
	case reqlog.KeyUser:
		return fUser
	case reqlog.KeyRequestID:
		return fRequestID
	case reqlog.KeyDuration:
		return fDuration
	case reqlog.KeyTTFB:
		return fTTFB
	case reqlog.KeyAborted:
		return fAborted
	}
	return -1
}

// accessFields are the built-in attributes of an access record: what the
// middleware measured, and what the text formats print.
type accessFields struct {
	has  uint32 // bit i: vals[i] is set
	vals [numFields]slog.Value
}

func (f *accessFields) set(i int, v slog.Value) {
	f.vals[i] = v
	f.has |= 1 << i
}

func (f *accessFields) isSet(i int) bool { return f.has&(1<<i) != 0 }

func (f *accessFields) isAccess() bool { return f.isSet(fMethod) && f.isSet(fStatus) }

// merge sets the fields that o has.
func (f *accessFields) merge(o *accessFields) {
	for i := range numFields {
		if o.isSet(i) {
			f.vals[i] = o.vals[i]
		}
	}
	f.has |= o.has
}

// appendAttrs appends the fields as attributes, in order.
func (f *accessFields) appendAttrs(dst []slog.Attr) []slog.Attr {
	for i := range numFields {
		if f.isSet(i) {
			dst = append(dst, slog.Attr{Key: fieldKeys[i], Value: f.vals[i]})
		}
	}
	return dst
}

func (f *accessFields) add(a slog.Attr, replace func([]string, slog.Attr) slog.Attr) {
	if a.Key == "" {
		// An empty-key group is inlined (slog.Handler contract).
		if a.Value.Kind() == slog.KindGroup {
			for _, g := range a.Value.Group() {
				f.add(g, replace)
			}
		}
		return
	}
	if replace != nil && a.Value.Kind() != slog.KindGroup {
		a.Value = a.Value.Resolve()
		a = replace(nil, a)
		if a.Key == "" {
			return
		}
	}
	if i := fieldIndex(a.Key); i >= 0 {
		f.set(i, a.Value)
	}
}

// appendCLF appends a common or combined line.
func (f *accessFields) appendCLF(b []byte, o *output, t time.Time, combined bool) []byte {
	if f.isSet(fClient) {
		b = appendValue(b, f.vals[fClient])
	} else {
		b = f.appendOpt(b, fPeer)
	}
	b = append(b, " - "...)
	b = f.appendOpt(b, fUser)
	b = append(b, " ["...)
	b = o.appendTime(b, t)
	b = append(b, "] \""...)
	b = f.appendRequestLine(b)
	b = append(b, "\" "...)
	b = appendValue(b, f.vals[fStatus])
	b = append(b, ' ')
	b = f.appendOpt(b, fResponseSize)
	if combined {
		b = append(b, " \""...)
		b = f.appendOpt(b, fReferer)
		b = append(b, "\" \""...)
		b = f.appendOpt(b, fUserAgent)
		b = append(b, '"')
	}
	return append(b, '\n')
}

// appendOpt appends field i, or "-" when it is not set.
func (f *accessFields) appendOpt(b []byte, i int) []byte {
	if !f.isSet(i) {
		return append(b, '-')
	}
	return appendValue(b, f.vals[i])
}

// appendRequestLine appends %r: method, target and protocol, as nginx's
// $request.
func (f *accessFields) appendRequestLine(b []byte) []byte {
	b = appendValue(b, f.vals[fMethod])
	b = append(b, ' ')
	b = f.appendOpt(b, fPath)
	if f.isSet(fQuery) {
		b = append(b, '?')
		b = appendValue(b, f.vals[fQuery])
	}
	if f.isSet(fProto) {
		b = append(b, " HTTP/"...)
		n := len(b)
		b = appendValue(b, f.vals[fProto])
		major := true
		for _, c := range b[n:] {
			if c == '.' {
				major = false
			}
		}
		if major && len(b) > n {
			b = append(b, ".0"...) // HTTP/2.0, as nginx writes it
		}
	}
	return b
}

// appendValue appends v, strings escaped as nginx escapes log variables.
func appendValue(b []byte, v slog.Value) []byte {
	switch v.Kind() {
	case slog.KindString:
		return appendEscaped(b, v.String())
	case slog.KindInt64:
		return strconv.AppendInt(b, v.Int64(), 10)
	case slog.KindUint64:
		return strconv.AppendUint(b, v.Uint64(), 10)
	case slog.KindLogValuer:
		if c, ok := v.LogValuer().(clientAddr); ok {
			return c.ip().AppendTo(b)
		}
		v = v.Resolve()
		if v.Kind() == slog.KindLogValuer {
			return appendEscaped(b, v.String())
		}
		return appendValue(b, v)
	}
	return appendEscaped(b, v.String())
}

const hexDigits = "0123456789ABCDEF"

// plain marks the bytes nginx writes as they are: printable ASCII except
// '"' and '\'.
var plain = func() (t [256]bool) {
	for c := 0x20; c < 0x7f; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// appendEscaped appends s with '"', '\', bytes below 0x20 and bytes from
// 0x7f up written as \xHH (upper-case hex), exactly as nginx's
// ngx_http_log_escape does for log_format variables. The result is one
// line of printable ASCII, whatever s holds.
func appendEscaped(b []byte, s string) []byte {
	for {
		i := 0
		for i < len(s) && plain[s[i]] {
			i++
		}
		b = append(b, s[:i]...)
		if i == len(s) {
			return b
		}
		c := s[i]
		b = append(b, '\\', 'x', hexDigits[c>>4], hexDigits[c&0xf])
		s = s[i+1:]
	}
}
