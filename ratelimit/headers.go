package ratelimit

import (
	"strconv"

	"github.com/shipshape-go/shipshape/internal/ratelimitheader"
)

// HeaderStyle selects the rate-limit headers a [Limiter] sends (and a
// slowdown.Delayer: see slowdown.WithHeaders).
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
	// (rounded up). Both are lists: the items of other policies on the
	// same response (a slowdown.Delayer's) are kept beside these.
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

// The styles are internal/ratelimitheader's values, which slowdown and
// the Limiter convert to directly: this fails to compile if they differ.
func _() {
	var x [1]struct{}
	_ = x[HeadersIETF-HeaderStyle(ratelimitheader.IETF)]
	_ = x[HeadersLegacy-HeaderStyle(ratelimitheader.Legacy)]
	_ = x[HeadersBoth-HeaderStyle(ratelimitheader.Both)]
	_ = x[HeadersNone-HeaderStyle(ratelimitheader.None)]
}

// String returns the style's name: ietf, legacy, both or none.
func (s HeaderStyle) String() string {
	if st := ratelimitheader.Style(s); st.Valid() {
		return st.String()
	}
	return "HeaderStyle(" + strconv.Itoa(int(s)) + ")"
}
