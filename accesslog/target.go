package accesslog

import (
	"net/http"
	"net/url"
	"strings"
)

// Redacted replaces the value of a sensitive query parameter.
const Redacted = "REDACTED"

// defaultRedact are matched, ASCII case-insensitively, as substrings of
// query parameter names: "access_token", "api_key", "client_secret",
// "X-Amz-Signature" and "sessionid" are all caught. Over-redaction (a
// "keyword" parameter) is the price of not leaking the ones nobody listed.
var defaultRedact = []string{
	"password", "passwd", "pwd", "token", "secret", "key", "code",
	"session", "auth", "signature", "credential",
}

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

// redactor replaces the values of query parameters whose names contain one
// of its (lower-case ASCII) names.
type redactor struct {
	names []string
	first [256]bool // first bytes of names, both cases: where a match can start
}

// prepare computes first; call it after the last change to names.
func (rd *redactor) prepare() {
	rd.first = [256]bool{}
	for _, n := range rd.names {
		c := n[0]
		rd.first[c] = true
		if 'a' <= c && c <= 'z' {
			rd.first[c-('a'-'A')] = true
		}
	}
}

// redact returns q with the sensitive values replaced by [Redacted]. It
// returns q itself, without allocating, when nothing needs redacting.
// Parameters are separated by '&' and, as some back ends still do, ';'.
func (rd *redactor) redact(q string) string {
	if q == "" {
		return q
	}
	first := -1
	for i := 0; i < len(q); {
		end := nextSep(q, i)
		if rd.sensitive(q[i:end]) {
			first = i
			break
		}
		i = end + 1
	}
	if first < 0 {
		return q
	}
	var b strings.Builder
	b.Grow(len(q) + len(Redacted))
	b.WriteString(q[:first])
	for i := first; i < len(q); {
		end := nextSep(q, i)
		param := q[i:end]
		if rd.sensitive(param) {
			name, _, _ := strings.Cut(param, "=")
			b.WriteString(name)
			b.WriteByte('=')
			b.WriteString(Redacted)
		} else {
			b.WriteString(param)
		}
		if end < len(q) {
			b.WriteByte(q[end])
		}
		i = end + 1
	}
	return b.String()
}

// redactURL redacts the query of a URL (a Referer), keeping the rest.
func (rd *redactor) redactURL(u string) string {
	i := strings.IndexByte(u, '?')
	if i < 0 {
		return u
	}
	q, frag := u[i+1:], ""
	if j := strings.IndexByte(q, '#'); j >= 0 {
		q, frag = q[:j], q[j:]
	}
	r := rd.redact(q)
	if r == q {
		return u
	}
	return u[:i+1] + r + frag
}

func nextSep(q string, i int) int {
	for j := i; j < len(q); j++ {
		if q[j] == '&' || q[j] == ';' {
			return j
		}
	}
	return len(q)
}

// sensitive reports whether the parameter has a value and a name that
// contains one of the redacted names.
func (rd *redactor) sensitive(param string) bool {
	name, value, ok := strings.Cut(param, "=")
	if !ok || value == "" || value == Redacted {
		return false
	}
	for i := 0; i < len(name); i++ {
		if name[i] == '%' || name[i] == '+' {
			if n, err := url.QueryUnescape(name); err == nil {
				name = n
			}
			break
		}
	}
	for i := 0; i < len(name); i++ {
		if !rd.first[name[i]] {
			continue
		}
		for _, n := range rd.names {
			if hasPrefixFold(name[i:], n) {
				return true
			}
		}
	}
	return false
}

// hasPrefixFold reports whether s starts with prefix (lower-case ASCII),
// ignoring ASCII case.
func hasPrefixFold(s, prefix string) bool {
	if len(s) < len(prefix) {
		return false
	}
	for j := 0; j < len(prefix); j++ {
		c := s[j]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != prefix[j] {
			return false
		}
	}
	return true
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

// routeFromPattern turns a ServeMux pattern ("GET example.com/items/{id}")
// into an http.route ("/items/{id}").
func routeFromPattern(p string) string {
	if p == "" {
		return ""
	}
	if i := strings.IndexAny(p, " \t"); i >= 0 {
		p = strings.TrimLeft(p[i:], " \t")
	}
	if i := strings.IndexByte(p, '/'); i > 0 {
		p = p[i:]
	}
	return p
}
