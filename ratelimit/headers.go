package ratelimit

import (
	"net/http"
	"strconv"
	"time"
	"unsafe"
)

// HeaderStyle selects the rate-limit headers a [Limiter] sends.
type HeaderStyle int

const (
	// HeadersIETF sends RateLimit-Policy and RateLimit in the structured
	// field syntax of draft-ietf-httpapi-ratelimit-headers-10:
	//
	//	RateLimit-Policy: "default";q=100;w=60
	//	RateLimit: "default";r=42;t=17
	//
	// q is the limit, w the window in seconds (rounded up), r the requests
	// remaining and t the seconds until the quota is fully available again
	// (rounded up).
	HeadersIETF HeaderStyle = iota
	// HeadersLegacy sends the X-RateLimit-Limit, X-RateLimit-Remaining and
	// X-RateLimit-Reset headers that GitHub popularised; Reset is the Unix
	// time in seconds (rounded up) when the quota is fully available.
	HeadersLegacy
	// HeadersBoth sends both sets.
	HeadersBoth
	// HeadersNone sends no rate-limit headers (Retry-After is still sent
	// on 429).
	HeadersNone
)

// String returns the style's name.
func (s HeaderStyle) String() string {
	switch s {
	case HeadersIETF:
		return "ietf"
	case HeadersLegacy:
		return "legacy"
	case HeadersBoth:
		return "both"
	case HeadersNone:
		return "none"
	}
	return "HeaderStyle(" + strconv.Itoa(int(s)) + ")"
}

// Canonical header keys, so that the map writes below match Header.Get.
const (
	hPolicy    = "Ratelimit-Policy"
	hRateLimit = "Ratelimit"
	hLimit     = "X-Ratelimit-Limit"
	hRemaining = "X-Ratelimit-Remaining"
	hReset     = "X-Ratelimit-Reset"
)

// headerVals holds the per-response header values in one allocation: the
// value slices point into vals and the dynamic strings into buf, which is
// written once, before any string refers to it, and never again. The IETF
// style, the common case, uses the smaller ietfVals.
type headerVals struct {
	vals [5]string
	buf  [96]byte
}

type ietfVals struct {
	vals [2]string
	buf  [80]byte
}

// setHeaders writes the rate-limit headers for d, decided at now. The IETF
// headers are lists: items already present (another policy's) are kept.
// The X-RateLimit headers describe one policy and are replaced. Each
// response gets its own value slices, so a handler that edits them in
// place cannot change another response's headers.
func (l *Limiter) setHeaders(h http.Header, d Decision, now time.Time) {
	switch l.headers {
	case HeadersNone:
		return
	case HeadersIETF:
		if len(l.policy.Name) <= 40 { // the item fits in ietfVals.buf
			hv := new(ietfVals)
			b := l.appendIETF(hv.buf[:0], d)
			hv.vals[0] = unsafe.String(&hv.buf[0], len(b))
			hv.vals[1] = l.policyHeader
			addValue(h, hPolicy, hv.vals[1:2:2])
			addValue(h, hRateLimit, hv.vals[0:1:1])
			return
		}
	}
	hv := new(headerVals)
	b := hv.buf[:0]
	var ietf, rem, reset [2]int // start, end of each value in buf
	if l.headers != HeadersLegacy {
		ietf[0] = len(b)
		b = l.appendIETF(b, d)
		ietf[1] = len(b)
	}
	if l.headers != HeadersIETF {
		rem[0] = len(b)
		b = strconv.AppendInt(b, int64(d.Remaining), 10)
		rem[1] = len(b)
		reset[0] = len(b)
		at := now.Add(d.Reset)
		b = strconv.AppendInt(b, at.Unix()+boolInt(at.Nanosecond() != 0), 10)
		reset[1] = len(b)
	}
	var s string
	if len(b) > 0 && &b[0] == &hv.buf[0] {
		s = unsafe.String(&hv.buf[0], len(b))
	} else {
		s = string(b) // a name long enough to outgrow buf
	}
	if l.headers != HeadersLegacy {
		hv.vals[0] = s[ietf[0]:ietf[1]]
		hv.vals[3] = l.policyHeader
		addValue(h, hPolicy, hv.vals[3:4:4])
		addValue(h, hRateLimit, hv.vals[0:1:1])
	}
	if l.headers != HeadersIETF {
		hv.vals[1] = s[rem[0]:rem[1]]
		hv.vals[2] = s[reset[0]:reset[1]]
		hv.vals[4] = l.limitHeader
		h[hLimit] = hv.vals[4:5:5]
		h[hRemaining] = hv.vals[1:2:2]
		h[hReset] = hv.vals[2:3:3]
	}
}

// appendIETF appends the RateLimit item for d: "name";r=42;t=17.
func (l *Limiter) appendIETF(b []byte, d Decision) []byte {
	b = append(b, '"')
	b = append(b, l.policy.Name...)
	b = append(b, `";r=`...)
	b = strconv.AppendInt(b, int64(d.Remaining), 10)
	b = append(b, ";t="...)
	return strconv.AppendInt(b, ceilSeconds(d.Reset), 10)
}

// addValue adds the one value in v to h[key]: as the whole slice when the
// header is not set yet (no allocation), else appended, so that the items
// of another policy (a slowdown.Delayer's) stay in the structured-field
// list beside this one.
func addValue(h http.Header, key string, v []string) {
	if old := h[key]; len(old) > 0 {
		h[key] = append(old, v[0])
		return
	}
	h[key] = v
}

func boolInt(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
