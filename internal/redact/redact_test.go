package redact

import (
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

const mark = "REDACTED"

func TestQuery(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"nothing sensitive", "page=2&sort=name", "page=2&sort=name"},
		{"empty", "", ""},
		{"password", "user=bob&password=hunter2", "user=bob&password=REDACTED"},
		{"case-insensitive substring", "Access_Token=abc&X-Amz-Signature=f00&API_KEY=k", "Access_Token=REDACTED&X-Amz-Signature=REDACTED&API_KEY=REDACTED"},
		{"every term", "secret=1&code=2&session=3&auth=4&oauth_token=6&x_sig=7&jwt=8&csrf=9&cookie=a&credentials=b&pwd=c",
			"secret=REDACTED&code=REDACTED&session=REDACTED&auth=REDACTED&oauth_token=REDACTED&x_sig=REDACTED&jwt=REDACTED&csrf=REDACTED&cookie=REDACTED&credentials=REDACTED&pwd=REDACTED"},
		{"OAuth code and state", "code=xyz&state=s", "code=REDACTED&state=s"},
		{"percent-encoded name", "pass%77ord=x&to%6Ben=y", "pass%77ord=REDACTED&to%6Ben=REDACTED"},
		{"plus in name", "auth+x=1", "auth+x=REDACTED"},
		{"semicolon separator", "a=1;token=abc", "a=1;token=REDACTED"},
		{"repeated", "token=a&token=b&x=1", "token=REDACTED&token=REDACTED&x=1"},
		{"no value, nothing to hide", "token&token=", "token&token="},
		{"value with =", "secret=a=b=c", "secret=REDACTED"},
		{"trailing separator kept", "x=1&key=2&", "x=1&key=REDACTED&"},
		{"bad escape in name still matched raw", "token%zz=1", "token%zz=REDACTED"},
		{"order and encoding kept", "z=1&a=%41&m=+", "z=1&a=%41&m=+"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, Default.Query(tt.in, mark))
		})
	}
}

func TestExtraTerms(t *testing.T) {
	n := New(" SSN ", "")
	assert.Equal(t, "ssn=REDACTED&page=1&token=REDACTED", n.Query("ssn=1&page=1&token=2", mark), "extra terms add to the defaults")
	assert.Equal(t, "ssn=1", Default.Query("ssn=1", mark), "Default is not changed")
}

func TestMatchHeaders(t *testing.T) {
	for name, want := range map[string]bool{
		"X-Api-Key": true, "X-Csrf-Token": true, "Authorization": true, "Accept": false, "X-Request-Id": false,
	} {
		assert.Equal(t, want, Default.Match(name), name)
	}
}

func TestURL(t *testing.T) {
	for in, want := range map[string]string{
		"https://example.com/":                          "https://example.com/",
		"https://example.com/p?x=1":                     "https://example.com/p?x=1",
		"https://example.com/reset?token=abc&lang=en":   "https://example.com/reset?token=REDACTED&lang=en",
		"https://example.com/cb?code=xyz#access_token=": "https://example.com/cb?code=REDACTED#access_token=",
		"/relative?session=1":                           "/relative?session=REDACTED",
		"":                                              "",
	} {
		assert.Equal(t, want, Default.URL(in, mark), "URL(%q)", in)
	}
}

func TestQueryDoesNotAllocateWhenClean(t *testing.T) {
	allocs := testing.AllocsPerRun(100, func() { _ = Default.Query("page=2&sort=name&filter=active", mark) })
	assert.Zero(t, allocs, "allocations for a query with nothing to redact")
}

// FuzzQuery checks, for any query, that every parameter with a value whose
// raw or decoded name contains a term has its value replaced, that the
// others are untouched, and that the separators stay where they were.
func FuzzQuery(f *testing.F) {
	for _, s := range []string{"", "a=1", "token=x&b=2", "pass%77ord=1;x=2", "&&==;;", "%zz=1&key", "Session=1&session=2"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, q string) {
		out := Default.Query(q, mark)
		in, inSeps := splitParams(q)
		got, gotSeps := splitParams(out)
		if !assert.Equal(t, inSeps, gotSeps, "separators of %q -> %q", q, out) {
			return
		}
		for i, p := range in {
			name, value, hasValue := strings.Cut(p, "=")
			sensitive := containsTerm(name)
			if d, err := url.QueryUnescape(name); err == nil && strings.ContainsAny(name, "%+") && containsTerm(d) {
				sensitive = true
			}
			if sensitive && hasValue && value != "" && value != mark {
				assert.Equal(t, name+"="+mark, got[i], "parameter %d of %q", i, q)
			} else {
				assert.Equal(t, p, got[i], "parameter %d of %q", i, q)
			}
		}
	})
}

func containsTerm(name string) bool {
	for _, s := range Terms {
		if strings.Contains(asciiLower(name), s) {
			return true
		}
	}
	return false
}

// asciiLower lowers ASCII letters only: matching ignores ASCII case, not
// Unicode case (strings.ToLower maps the Kelvin sign to 'k').
func asciiLower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

// splitParams splits q at '&' and ';' into parameters and the separators
// between them.
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
