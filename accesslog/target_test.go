package accesslog

import (
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

func newRedactor(names ...string) *redactor {
	rd := &redactor{names: names}
	rd.prepare()
	return rd
}

func TestRedact(t *testing.T) {
	rd := newRedactor(defaultRedact...)
	tests := []struct {
		name, in, want string
	}{
		{"nothing sensitive", "page=2&sort=name", "page=2&sort=name"},
		{"empty", "", ""},
		{"password", "user=bob&password=hunter2", "user=bob&password=REDACTED"},
		{"case-insensitive substring", "Access_Token=abc&X-Amz-Signature=f00&API_KEY=k", "Access_Token=REDACTED&X-Amz-Signature=REDACTED&API_KEY=REDACTED"},
		{"OAuth code and state", "code=xyz&state=s", "code=REDACTED&state=s"},
		{"session id", "PHPSESSID=1&sessionid=2", "PHPSESSID=1&sessionid=REDACTED"},
		{"percent-encoded name", "pass%77ord=x&to%6Ben=y", "pass%77ord=REDACTED&to%6Ben=REDACTED"},
		{"plus in name", "auth+x=1", "auth+x=REDACTED"},
		{"semicolon separator", "a=1;token=abc", "a=1;token=REDACTED"},
		{"repeated", "token=a&token=b&x=1", "token=REDACTED&token=REDACTED&x=1"},
		{"no value, nothing to hide", "token&token=", "token&token="},
		{"value with =", "secret=a=b=c", "secret=REDACTED"},
		{"trailing separator kept", "x=1&key=2&", "x=1&key=REDACTED&"},
		{"bad escape in name still matched raw", "token%zz=1", "token%zz=REDACTED"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, rd.redact(tt.in))
		})
	}
}

func TestRedactURL(t *testing.T) {
	rd := newRedactor(defaultRedact...)
	for in, want := range map[string]string{
		"https://example.com/":                          "https://example.com/",
		"https://example.com/p?x=1":                     "https://example.com/p?x=1",
		"https://example.com/reset?token=abc&lang=en":   "https://example.com/reset?token=REDACTED&lang=en",
		"https://example.com/cb?code=xyz#access_token=": "https://example.com/cb?code=REDACTED#access_token=",
		"/relative?session=1":                           "/relative?session=REDACTED",
		"":                                              "",
	} {
		assert.Equal(t, want, rd.redactURL(in), "redactURL(%q)", in)
	}
}

func TestRedactDoesNotAllocateWhenClean(t *testing.T) {
	rd := newRedactor(defaultRedact...)
	allocs := testing.AllocsPerRun(100, func() { _ = rd.redact("page=2&sort=name&filter=active") })
	assert.Zero(t, allocs, "allocations for a query with nothing to redact")
}

// FuzzRedact checks, for any query, that every parameter whose decoded name
// contains a sensitive word has its value replaced, that the others are
// untouched, and that the separators stay where they were.
func FuzzRedact(f *testing.F) {
	for _, s := range []string{"", "a=1", "token=x&b=2", "pass%77ord=1;x=2", "&&==;;", "%zz=1&key", "Session=1&session=2"} {
		f.Add(s)
	}
	rd := newRedactor(defaultRedact...)
	f.Fuzz(func(t *testing.T, q string) {
		out := rd.redact(q)
		in, inSeps := splitParams(q)
		got, gotSeps := splitParams(out)
		if !assert.Equal(t, inSeps, gotSeps, "separators of %q -> %q", q, out) {
			return
		}
		for i, p := range in {
			name, value, hasValue := strings.Cut(p, "=")
			decoded := name
			if n, err := url.QueryUnescape(name); err == nil && strings.ContainsAny(name, "%+") {
				decoded = n
			}
			sensitive := false
			for _, s := range defaultRedact {
				if strings.Contains(asciiLower(decoded), s) {
					sensitive = true
				}
			}
			if sensitive && hasValue && value != "" {
				assert.Equal(t, name+"="+Redacted, got[i], "parameter %d of %q", i, q)
			} else {
				assert.Equal(t, p, got[i], "parameter %d of %q", i, q)
			}
		}
	})
}

// asciiLower lowers ASCII letters only: the redactor ignores ASCII case,
// not Unicode case (strings.ToLower maps the Kelvin sign to 'k').
func asciiLower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

// splitParams splits on '&' and ';', keeping empty parameters, and
// returns the separators in order.
func splitParams(q string) (params []string, seps string) {
	start := 0
	for i := 0; i < len(q); i++ {
		if q[i] == '&' || q[i] == ';' {
			params = append(params, q[start:i])
			seps += string(q[i])
			start = i + 1
		}
	}
	return append(params, q[start:]), seps
}

func TestPeerHost(t *testing.T) {
	for in, want := range map[string]string{
		"192.0.2.1:1234":     "192.0.2.1",
		"[2001:db8::1]:443":  "2001:db8::1",
		"[fe80::1%eth0]:80":  "fe80::1%eth0",
		"2001:db8::1":        "2001:db8::1",
		"192.0.2.1":          "192.0.2.1",
		"@":                  "@",
		"":                   "",
		"[broken":            "[broken",
		"unix:/run/app.sock": "unix",
	} {
		assert.Equal(t, want, peerHost(in), "peerHost(%q)", in)
	}
}

func TestRouteFromPattern(t *testing.T) {
	for in, want := range map[string]string{
		"":                          "",
		"/":                         "/",
		"/items/{id}":               "/items/{id}",
		"GET /items/{id}":           "/items/{id}",
		"POST example.com/x/{y...}": "/x/{y...}",
		"example.com/":              "/",
		"GET  /spaces":              "/spaces",
	} {
		assert.Equal(t, want, routeFromPattern(in), "routeFromPattern(%q)", in)
	}
}
