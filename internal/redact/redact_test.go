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
		{"the names issue 12 found leaking", "pass=1&pw=2&sid=3&ticket=4&otp=5&keyword=k",
			"pass=REDACTED&pw=REDACTED&sid=REDACTED&ticket=REDACTED&otp=REDACTED&keyword=k"},
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

// TestMatchNames is the rule of the package documentation: Terms anywhere,
// Words only as words. Each name the issue listed as leaking is secret; the
// ordinary words that contain a short term are not.
func TestMatchNames(t *testing.T) {
	tests := []struct {
		name   string
		secret []string
		plain  []string
	}{
		{"key", []string{"key", "Key", "keys", "api_key", "apikey", "APIKEY", "x-api-key", "X-Api-Key", "apiKey", "APIKey", "key2", "accesskey", "AWSAccessKeyId", "privatekey", "secret_key"},
			[]string{"keyword", "monkey", "turkey", "hockey", "keyboard", "hotkey"}},
		{"code", []string{"code", "auth_code", "authCode", "AUTH_CODE", "codes", "code_verifier", "otp-code", "passcode"},
			[]string{"zipcode", "postcode", "encode", "barcode", "unicode", "codec"}},
		{"auth", []string{"auth", "Auth", "x-auth", "auth_user", "authorization", "Authorization"},
			[]string{"author", "authority", "authors_list"}},
		{"pass, pw, pwd, password", []string{"pass", "user_pass", "db-pass", "Pass", "pw", "new_pw", "pwd", "mysql_pwd", "password", "Passwd", "passphrase"},
			[]string{"passenger", "bypass", "compass", "passport", "upward"}},
		{"sid, session", []string{"sid", "SID", "connect.sid", "session", "sessionId", "session_id", "JSESSIONID", "PHPSESSID", "ASP.NET_SessionId"},
			[]string{"inside", "side", "residence", "president"}},
		{"ticket, otp", []string{"ticket", "service_ticket", "serviceTicket", "otp", "OTP", "otp_token", "totp"},
			[]string{"footprint", "hotpot"}},
		{"sig, signature", []string{"sig", "x_sig", "X-Amz-Signature", "signature", "hmacSig"},
			[]string{"design", "signup", "assign", "sigma"}},
		{"credential, token, secret", []string{"credential", "credentials", "access_token", "X-Csrf-Token", "client_secret", "jwt", "XSRF-TOKEN", "cookie"},
			[]string{"tok", "cred"}},
		{"harmless", nil, []string{"Accept", "User-Agent", "X-Request-Id", "page", "sort", "q", "lang", "state", "redirect_uri", ""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, n := range tt.secret {
				assert.True(t, Default.Match(n), "%q must be secret", n)
			}
			for _, n := range tt.plain {
				assert.False(t, Default.Match(n), "%q must not be secret", n)
			}
		})
	}
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
	for _, s := range []string{"", "a=1", "token=x&b=2", "pass%77ord=1;x=2", "&&==;;", "%zz=1&key", "Session=1&session=2", "apiKey=1&monkey=2", "APIKey2=x&x-sid=1"} {
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
			sensitive := secretName(name)
			if d, err := url.QueryUnescape(name); err == nil && strings.ContainsAny(name, "%+") && secretName(d) {
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

// secretName is the rule of the package documentation written the slow
// way, to check the fast one against.
func secretName(name string) bool {
	lower := asciiLower(name)
	for _, s := range Terms {
		if strings.Contains(lower, s) {
			return true
		}
	}
	for _, w := range words(name) {
		for _, s := range Words {
			if lw := asciiLower(w); lw == s || lw == s+"s" {
				return true
			}
		}
	}
	return false
}

// words splits name into runs of ASCII letters and digits, then each run at
// lower-to-upper case changes, before the last of an upper-case run that a
// lower-case letter follows, and between letters and digits.
func words(name string) []string {
	kind := func(c byte) int { // 0 other, 1 digit, 2 lower, 3 upper
		switch {
		case '0' <= c && c <= '9':
			return 1
		case 'a' <= c && c <= 'z':
			return 2
		case 'A' <= c && c <= 'Z':
			return 3
		}
		return 0
	}
	var out []string
	cur := ""
	for i := 0; i < len(name); i++ {
		k := kind(name[i])
		if k == 0 {
			if cur != "" {
				out = append(out, cur)
			}
			cur = ""
			continue
		}
		if cur != "" {
			pk := kind(cur[len(cur)-1])
			next := 0
			if i+1 < len(name) {
				next = kind(name[i+1])
			}
			if (pk == 1) != (k == 1) || pk == 2 && k == 3 || pk == 3 && k == 3 && next == 2 {
				out = append(out, cur)
				cur = ""
			}
		}
		cur += string(name[i])
	}
	if cur != "" {
		out = append(out, cur)
	}
	return out
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

// BenchmarkQuery is what accesslog pays per request with a query: a query
// with nothing to hide (no allocation) and one with two secrets.
func BenchmarkQuery(b *testing.B) {
	for _, bb := range []struct{ name, q string }{
		{"clean", "page=2&sort=name&filter=active&q=running+shoes&lang=en"},
		{"secrets", "page=2&api_key=k&sort=name&session_id=s&lang=en"},
	} {
		b.Run(bb.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_ = Default.Query(bb.q, mark)
			}
		})
	}
}
