package app

import (
	"net/http"
	"net/netip"

	"github.com/go-chi/chi/v5/middleware"

	"github.com/shipshape-go/shipshape/problem"
)

// RequireClientIP answers 400 to a request that a trusted proxy forwarded
// without a usable client address, instead of letting it be counted and
// logged under the proxy's own address.
//
// chi's ClientIPFromXFF leaves no client IP in the context when the peer
// is a trusted proxy and X-Forwarded-For cannot be used: an entry that is
// not an address (garbage, or "ip:port"), or a chain of trusted addresses
// only. ratelimit.KeyByIP then falls back to the peer, the proxy, so every
// such request would share one quota with every other client of the proxy
// (a self-inflicted denial of service for them, and a way around a
// per-client limit for the sender). A request from a trusted proxy without
// X-Forwarded-For at all is the proxy's own (a health check, or a local
// client talking to the server directly) and keeps the peer as its client.
//
// It must come after ClientIPFromXFF(trusted...) in the chain, with the
// same prefixes.
func RequireClientIP(trusted []netip.Prefix) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if _, forwarded := r.Header["X-Forwarded-For"]; forwarded &&
				middleware.GetClientIP(r.Context()) == "" && fromTrusted(r, trusted) {
				problem.Write(w, r, problem.Details{Status: http.StatusBadRequest, Detail: "The proxy did not forward a usable client address (X-Forwarded-For)."})
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

// fromTrusted reports whether the TCP peer of r is in one of the prefixes.
func fromTrusted(r *http.Request, trusted []netip.Prefix) bool {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return false
	}
	ip := ap.Addr().Unmap().WithZone("")
	for _, p := range trusted {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}
