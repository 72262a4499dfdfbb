// Package redact decides which query parameters and headers look secret and
// hides their values. accesslog (log lines) and recoverer (Sentry events)
// share it, so that both hide the same things.
package redact

import (
	"net/url"
	"strings"
)

// Terms mark a name as secret when the name contains one of them, ignoring
// ASCII case: "access_token", "api_key", "client_secret",
// "X-Amz-Signature", "sessionid", "X-Csrf-Token" all match. The list errs
// on the side of redacting ("key" also matches "monkey", "sig" also
// "design"): over-redaction is the price of not leaking the names nobody
// listed.
var Terms = []string{
	"auth", "code", "cookie", "credential", "csrf", "jwt", "key", "passwd",
	"password", "pwd", "secret", "session", "sig", "token", "xsrf",
}

// Names matches parameter and header names against a list of terms. It is
// safe for concurrent use once built.
type Names struct {
	terms []string  // lower-case ASCII
	first [256]bool // first bytes of terms, both cases: where a match can start
}

// Default is [Terms] alone.
var Default = New()

// New returns [Terms] plus extra terms (trimmed, lower-cased; empty ones
// are ignored).
func New(extra ...string) *Names {
	n := &Names{terms: append([]string(nil), Terms...)}
	for _, t := range extra {
		if t = strings.ToLower(strings.TrimSpace(t)); t != "" {
			n.terms = append(n.terms, t)
		}
	}
	for _, t := range n.terms {
		c := t[0]
		n.first[c] = true
		if 'a' <= c && c <= 'z' {
			n.first[c-('a'-'A')] = true
		}
	}
	return n
}

// Match reports whether name contains one of the terms, as sent or, when it
// is percent- or plus-encoded, decoded (so that "pass%77ord" does not hide
// a password).
func (n *Names) Match(name string) bool {
	if n.contains(name) {
		return true
	}
	if strings.ContainsAny(name, "%+") {
		if d, err := url.QueryUnescape(name); err == nil {
			return n.contains(d)
		}
	}
	return false
}

func (n *Names) contains(s string) bool {
	for i := 0; i < len(s); i++ {
		if !n.first[s[i]] {
			continue
		}
		for _, t := range n.terms {
			if hasPrefixFold(s[i:], t) {
				return true
			}
		}
	}
	return false
}

// Query returns the raw query q with the value of every parameter whose
// name matches replaced by marker; everything else (order, encoding,
// separators) stays as it came. Parameters are separated by '&' and, as
// some back ends still do, ';'. A parameter without a value has nothing to
// hide and is kept. Query returns q itself, without allocating, when
// nothing needs hiding.
func (n *Names) Query(q, marker string) string {
	first := -1
	for i := 0; i < len(q); {
		end := nextSep(q, i)
		if n.hides(q[i:end], marker) {
			first = i
			break
		}
		i = end + 1
	}
	if first < 0 {
		return q
	}
	var b strings.Builder
	b.Grow(len(q) + len(marker))
	b.WriteString(q[:first])
	for i := first; i < len(q); {
		end := nextSep(q, i)
		param := q[i:end]
		if n.hides(param, marker) {
			name, _, _ := strings.Cut(param, "=")
			b.WriteString(name)
			b.WriteByte('=')
			b.WriteString(marker)
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

// URL returns u with its query passed through [Names.Query]; the fragment
// and the rest are kept.
func (n *Names) URL(u, marker string) string {
	i := strings.IndexByte(u, '?')
	if i < 0 {
		return u
	}
	q, frag := u[i+1:], ""
	if j := strings.IndexByte(q, '#'); j >= 0 {
		q, frag = q[:j], q[j:]
	}
	r := n.Query(q, marker)
	if r == q {
		return u
	}
	return u[:i+1] + r + frag
}

// hides reports whether param has a value to hide: a matching name and a
// value that is not empty (and not already the marker).
func (n *Names) hides(param, marker string) bool {
	name, value, ok := strings.Cut(param, "=")
	return ok && value != "" && value != marker && n.Match(name)
}

func nextSep(q string, i int) int {
	for j := i; j < len(q); j++ {
		if q[j] == '&' || q[j] == ';' {
			return j
		}
	}
	return len(q)
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
