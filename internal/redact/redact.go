// Package redact decides which query parameters and headers look secret and
// hides their values. accesslog (log lines) and recoverer (Sentry events)
// share it, so that both hide the same things.
//
// A name is secret when, ignoring ASCII case, it contains one of [Terms]
// anywhere, or one of its words is one of [Words] (or that word with an "s"
// after it). The words of a name are its runs of ASCII letters and digits,
// split where a lower-case letter is followed by an upper-case one
// ("apiKey": api, key), before the last of several upper-case letters
// followed by a lower-case one ("APIKey": api, key), and between letters
// and digits ("key2": key, 2). So "api_key", "x-api-key", "apiKey",
// "APIKey", "apikey", "auth_code", "connect.sid" and "Otp" are secret, and
// "keyword", "monkey", "author", "design", "inside", "zipcode",
// "passenger" and "footprint" are not. Both lists err on the side of
// redacting: "country_code" and "key_id" are secret too.
package redact

import (
	"net/url"
	"strings"
)

// Terms are long enough not to occur by chance inside ordinary words: any
// occurrence makes a name secret ("client_secret", "X-Amz-Signature",
// "JSESSIONID", "PHPSESSID", "access_token", "apikey").
var Terms = []string{
	"accesskey", "apikey", "authorization", "cookie", "credential", "csrf",
	"jwt", "passcode", "passphrase", "passwd", "password", "privatekey",
	"pwd", "secret", "sessid", "session", "signature", "ticket", "token",
	"xsrf",
}

// Words are too short to be matched inside other words ("key" in
// "monkey", "sig" in "design", "sid" in "inside"): they make a name secret
// only as a word of it.
var Words = []string{"auth", "code", "key", "otp", "pass", "pw", "sid", "sig", "totp"}

// Names matches parameter and header names against the terms and words. It
// is safe for concurrent use once built.
type Names struct {
	// byFirst holds the terms (lower-case ASCII) by their first byte, in
	// both cases: only the terms that can start at a byte are tried there.
	byFirst [256][]string
}

// wordsByFirst holds Words by their first letter, in both cases.
var wordsByFirst = func() (t [256][]string) {
	for _, w := range Words {
		t[w[0]] = append(t[w[0]], w)
		t[w[0]-('a'-'A')] = append(t[w[0]-('a'-'A')], w)
	}
	return t
}()

// Words are 2 to 4 letters long; with a trailing "s", 5.
const minWord, maxWord = 2, 5

// Default is [Terms] and [Words] alone.
var Default = New()

// New returns [Terms] and [Words] plus extra terms (trimmed, lower-cased;
// empty ones are ignored), which match anywhere in a name like Terms.
func New(extra ...string) *Names {
	terms := append([]string(nil), Terms...)
	for _, t := range extra {
		if t = strings.ToLower(strings.TrimSpace(t)); t != "" {
			terms = append(terms, t)
		}
	}
	n := &Names{}
	for _, t := range terms {
		c := t[0]
		n.byFirst[c] = append(n.byFirst[c], t)
		if 'a' <= c && c <= 'z' {
			n.byFirst[c-('a'-'A')] = append(n.byFirst[c-('a'-'A')], t)
		}
	}
	return n
}

// Match reports whether name is secret (see the package documentation), as
// sent or, when it is percent- or plus-encoded, decoded (so that
// "pass%77ord" does not hide a password).
func (n *Names) Match(name string) bool {
	if n.match(name) {
		return true
	}
	if strings.IndexByte(name, '%') >= 0 || strings.IndexByte(name, '+') >= 0 {
		if d, err := url.QueryUnescape(name); err == nil {
			return n.match(d)
		}
	}
	return false
}

func (n *Names) match(s string) bool { return n.contains(s) || hasWord(s) }

func (n *Names) contains(s string) bool {
	for i := 0; i < len(s); i++ {
		for _, t := range n.byFirst[s[i]] {
			if hasPrefixFold(s[i:], t) {
				return true
			}
		}
	}
	return false
}

// hasWord reports whether one of the words of s is one of Words, or one
// followed by "s".
func hasWord(s string) bool {
	for i := 0; i < len(s); {
		if class[s[i]] == other {
			i++
			continue
		}
		j := i + 1
		for j < len(s) && !wordBreak(s, j) {
			j++
		}
		if isWord(s[i:j]) {
			return true
		}
		i = j
	}
	return false
}

// Classes of bytes for splitting names into words.
const (
	other = iota
	digit
	lower
	upper
)

var class = func() (t [256]uint8) {
	for c := '0'; c <= '9'; c++ {
		t[c] = digit
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c] = lower
		t[c-'a'+'A'] = upper
	}
	return t
}()

// wordBreak reports whether a word ends before s[i] (i > 0, s[i-1] a
// letter or digit).
func wordBreak(s string, i int) bool {
	c, prev := class[s[i]], class[s[i-1]]
	switch {
	case c == prev:
		// Within a run of capitals, the last one before a lower-case
		// letter starts the next word: "APIKey".
		return c == upper && i+1 < len(s) && class[s[i+1]] == lower
	case c == other, c == digit, prev == digit:
		return true
	default: // a letter after a letter of the other case
		return c == upper
	}
}

func isWord(w string) bool {
	if len(w) < minWord || len(w) > maxWord {
		return false
	}
	for _, t := range wordsByFirst[w[0]] {
		if len(w) == len(t) && hasPrefixFold(w, t) ||
			len(w) == len(t)+1 && hasPrefixFold(w, t) && (w[len(t)] == 's' || w[len(t)] == 'S') {
			return true
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
