package accesslog

import (
	"net/http"
	"strings"
)

// Redacted replaces the value of a sensitive query parameter.
const Redacted = "REDACTED"

// splitTarget returns the path and raw query of the request target as the
// client sent it (so that the combined format matches what nginx logs as
// $request, and /a%2Fb is not confused with /a/b), and whether it had a '?'.
//
// An absolute-form target (a proxy request, "http://user:pass@host/p") is
// reduced to its escaped path: it may carry credentials in its userinfo.
func splitTarget(r *http.Request) (path, query string, hasQuery bool) {
	t := r.RequestURI
	switch {
	case t != "" && (t[0] == '/' || t == "*"):
		return strings.Cut(t, "?")
	case t != "" && r.Method == http.MethodConnect:
		return t, "", false
	case r.URL == nil:
		return t, "", false
	}
	return r.URL.EscapedPath(), r.URL.RawQuery, r.URL.ForceQuery || r.URL.RawQuery != ""
}

// protoVersion returns network.protocol.version ("1.1", "2") without
// allocating for the usual versions.
func protoVersion(r *http.Request) string {
	switch {
	case r.ProtoMajor == 1 && r.ProtoMinor == 1:
		return "1.1"
	case r.ProtoMajor == 1 && r.ProtoMinor == 0:
		return "1.0"
	case r.ProtoMajor == 2:
		return "2"
	case r.ProtoMajor == 3:
		return "3"
	}
	return strings.TrimPrefix(r.Proto, "HTTP/")
}

// peerHost returns the host part of a RemoteAddr ("1.2.3.4:5",
// "[::1]:5"), a substring, without allocating.
func peerHost(addr string) string {
	if strings.HasPrefix(addr, "[") {
		if end := strings.IndexByte(addr, ']'); end > 0 {
			return addr[1:end]
		}
		return addr
	}
	if i := strings.LastIndexByte(addr, ':'); i >= 0 && strings.IndexByte(addr, ':') == i {
		return addr[:i]
	}
	return addr
}
