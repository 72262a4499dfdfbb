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
	// same response (a slowdown.Delayer's) are kept beside these. With
	// several policies (see [WithPolicy]) RateLimit-Policy lists each and
	// RateLimit has the item of the one closest to refusing:
	//
	//	RateLimit-Policy: "burst";q=10;w=1, "hour";q=1000;w=3600
	//	RateLimit: "burst";r=2;t=1
	//
	// This is the style to pick unless clients were written for another:
	// it is the current IETF draft, names each policy, and carries several
	// policies and a Delayer's beside a Limiter's on one response.
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
	// HeadersDraft6 sends the fields of express-rate-limit's "draft-6"
	// (draft-ietf-httpapi-ratelimit-headers-06), for clients written for
	// it:
	//
	//	RateLimit-Policy: 100;w=60
	//	RateLimit-Limit: 100
	//	RateLimit-Remaining: 42
	//	RateLimit-Reset: 17
	//
	// Reset is in seconds from now (rounded up). With several policies
	// (see [WithPolicy]) RateLimit-Policy lists them all and the other
	// fields describe the one closest to refusing.
	HeadersDraft6
	// HeadersDraft7 sends the fields of express-rate-limit's "draft-7":
	//
	//	RateLimit-Policy: 100;w=60
	//	RateLimit: limit=100, remaining=42, reset=17
	//
	// with several policies as in HeadersDraft6.
	HeadersDraft7
)

// The styles are internal/ratelimitheader's values, which slowdown and
// the Limiter convert to directly: this fails to compile if they differ.
func _() {
	var x [1]struct{}
	_ = x[HeadersIETF-HeaderStyle(ratelimitheader.IETF)]
	_ = x[HeadersLegacy-HeaderStyle(ratelimitheader.Legacy)]
	_ = x[HeadersBoth-HeaderStyle(ratelimitheader.Both)]
	_ = x[HeadersNone-HeaderStyle(ratelimitheader.None)]
	_ = x[HeadersDraft6-HeaderStyle(ratelimitheader.Draft6)]
	_ = x[HeadersDraft7-HeaderStyle(ratelimitheader.Draft7)]
}

// String returns the style's name: ietf, legacy, both, none, draft-6 or
// draft-7.
func (s HeaderStyle) String() string {
	if st := ratelimitheader.Style(s); st.Valid() {
		return st.String()
	}
	return "HeaderStyle(" + strconv.Itoa(int(s)) + ")"
}
