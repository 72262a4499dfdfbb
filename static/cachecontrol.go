package static

import (
	"errors"
	"path"
	"strconv"
	"strings"
)

// Default Cache-Control values, used when no WithCacheControl rule
// matches.
const (
	// CacheImmutable is sent for fingerprinted names such as
	// app.3f9a1c2b.js: their content never changes under that name.
	CacheImmutable = "public, max-age=31536000, immutable"
	// CacheRevalidate is sent for .html files (and so for index and SPA
	// fallback pages): caches keep them but revalidate every time, so a
	// deploy is seen at once while unchanged pages cost a 304.
	CacheRevalidate = "no-cache"
	// CacheDefault is sent for every other file.
	CacheDefault = "public, max-age=3600"
)

type ruleKind uint8

const (
	matchBase ruleKind = iota // no '/': glob on the base name, at any depth
	matchPath                 // glob on the whole path from the root
	matchDir                  // ends in '/': every file below the directory
)

// cacheRule is one WithCacheControl rule.
type cacheRule struct {
	kind    ruleKind
	pattern string // without the leading and trailing '/'
	depth   int    // matchDir: number of segments in pattern
	value   string
}

func newCacheRule(pattern, value string) (cacheRule, error) {
	if !validHeaderValue(value) {
		return cacheRule{}, errors.New("value " + strconv.Quote(value) + " is empty or not printable text")
	}
	r := cacheRule{value: value, kind: matchBase}
	p := pattern
	if strings.HasPrefix(p, "/") {
		p, r.kind = strings.TrimPrefix(p, "/"), matchPath
	}
	if strings.HasSuffix(p, "/") {
		p, r.kind = strings.TrimSuffix(p, "/"), matchDir
	} else if strings.Contains(p, "/") {
		r.kind = matchPath
	}
	if p == "" {
		return cacheRule{}, errors.New("empty pattern")
	}
	if _, err := path.Match(p, ""); err != nil {
		return cacheRule{}, errors.New("pattern " + strconv.Quote(pattern) + " is malformed")
	}
	r.pattern = p
	r.depth = strings.Count(p, "/") + 1
	return r, nil
}

// match reports whether the rule applies to the file name (slash
// separated, relative to the root of the file system).
func (r *cacheRule) match(name string) bool {
	switch r.kind {
	case matchBase:
		ok, _ := path.Match(r.pattern, path.Base(name))
		return ok
	case matchPath:
		ok, _ := path.Match(r.pattern, name)
		return ok
	default: // matchDir: the first depth segments match, and more follow
		i, n := 0, 0
		for n < r.depth {
			j := strings.IndexByte(name[i:], '/')
			if j < 0 {
				return false
			}
			i += j + 1
			n++
		}
		ok, _ := path.Match(r.pattern, name[:i-1])
		return ok
	}
}

// cacheControl is the Cache-Control value for the file name: the first
// matching rule in the order added, else the defaults.
func cacheControl(rules []cacheRule, name string) string {
	for i := range rules {
		if rules[i].match(name) {
			return rules[i].value
		}
	}
	base := path.Base(name)
	switch {
	case isFingerprinted(base):
		return CacheImmutable
	case strings.HasSuffix(base, ".html") || strings.HasSuffix(base, ".htm"):
		return CacheRevalidate
	}
	return CacheDefault
}

// isFingerprinted reports whether a dot-separated segment of base, other
// than the extension, is a content hash: at least 8 hex digits, at least
// one of them a letter. Requiring a letter keeps dates and build numbers
// (report.20240131.pdf) out: marking those immutable would pin a changed
// file in browsers for a year, while missing a rare all-digit hash only
// costs an hourly revalidation.
func isFingerprinted(base string) bool {
	segs := strings.Split(base, ".")
	for _, s := range segs[:len(segs)-1] {
		if len(s) >= 8 && isHexWithLetter(s) {
			return true
		}
	}
	return false
}

func isHexWithLetter(s string) bool {
	letter := false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case '0' <= c && c <= '9':
		case 'a' <= c && c <= 'f', 'A' <= c && c <= 'F':
			letter = true
		default:
			return false
		}
	}
	return letter
}

// validHeaderValue reports whether v is a non-empty field value without
// control characters (which would allow header injection).
func validHeaderValue(v string) bool {
	if strings.TrimSpace(v) == "" {
		return false
	}
	for i := 0; i < len(v); i++ {
		if c := v[i]; c < ' ' && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}
