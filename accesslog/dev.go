package accesslog

import (
	"io"
	"log/slog"
	"strconv"
	"time"
)

// NewDevHandler returns a slog.Handler for reading access records in a
// terminal while developing, in the short form of morgan's "dev" format:
//
//	GET /items/42?page=2 200 1.234 ms - 512
//
// (method, target, status, duration in milliseconds, response body bytes),
// followed by " aborted=…" for aborted requests. It writes no colour; see
// [NewColorDevHandler]. Strings are escaped as in [NewCombinedHandler], so
// a request cannot write ANSI escapes to the terminal. Other records and
// options behave as in [NewCombinedHandler].
func NewDevHandler(w io.Writer, opts *slog.HandlerOptions) slog.Handler {
	return newTextHandler(w, opts, formatDev)
}

// NewColorDevHandler is [NewDevHandler] with the status coloured by class
// with ANSI escapes (2xx green, 3xx cyan, 4xx yellow, 5xx red), for a
// terminal that shows them.
func NewColorDevHandler(w io.Writer, opts *slog.HandlerOptions) slog.Handler {
	return newTextHandler(w, opts, formatDevColor)
}

func (f *accessFields) appendDev(b []byte, color bool) []byte {
	b = appendValue(b, f.vals[fMethod])
	b = append(b, ' ')
	b = f.appendOpt(b, fPath)
	if f.isSet(fQuery) {
		b = append(b, '?')
		b = appendValue(b, f.vals[fQuery])
	}
	b = append(b, ' ')
	code := ""
	status := f.vals[fStatus]
	if color && status.Kind() == slog.KindInt64 {
		switch s := status.Int64(); {
		case s >= 500:
			code = "\x1b[31m"
		case s >= 400:
			code = "\x1b[33m"
		case s >= 300:
			code = "\x1b[36m"
		case s >= 200:
			code = "\x1b[32m"
		}
	}
	b = append(b, code...)
	b = appendValue(b, status)
	if code != "" {
		b = append(b, "\x1b[0m"...)
	}
	b = append(b, ' ')
	if dur := f.vals[fDuration]; f.isSet(fDuration) && dur.Kind() == slog.KindDuration {
		ms := float64(dur.Duration()) / float64(time.Millisecond)
		b = strconv.AppendFloat(b, ms, 'f', 3, 64)
	} else {
		b = append(b, '-')
	}
	b = append(b, " ms - "...)
	b = f.appendOpt(b, fResponseSize)
	if f.isSet(fAborted) {
		b = append(b, " aborted="...)
		b = appendValue(b, f.vals[fAborted])
	}
	return append(b, '\n')
}
