package recoverer

import (
	"crypto/tls"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestScrubQuery(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"empty", "", ""},
		{"harmless", "q=shoes&page=2", "q=shoes&page=2"},
		{"password", "user=ann&password=hunter2", "user=ann&password=[Filtered]"},
		{"case-insensitive", "Password=x&API_KEY=y&AccessToken=z", "Password=[Filtered]&API_KEY=[Filtered]&AccessToken=[Filtered]"},
		{"every term", "secret=1&code=2&session=3&auth=4&sessionid=5&oauth_token=6&x_sig=7",
			"secret=[Filtered]&code=[Filtered]&session=[Filtered]&auth=[Filtered]&sessionid=[Filtered]&oauth_token=[Filtered]&x_sig=[Filtered]"},
		{"encoded name", "pass%77ord=hunter2&q=a%20b", "pass%77ord=[Filtered]&q=a%20b"},
		{"semicolon separator", "a=1;token=t", "a=1;token=[Filtered]"},
		{"no value", "token&q=1", "token=[Filtered]&q=1"},
		{"empty value", "token=&q=1", "token=[Filtered]&q=1"},
		{"repeated", "key=1&key=2", "key=[Filtered]&key=[Filtered]"},
		{"malformed escape kept", "q=%zz&token=%zz", "q=%zz&token=[Filtered]"},
		{"order and encoding kept", "z=1&a=%41&m=+", "z=1&a=%41&m=+"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, scrubQuery(tt.in), "scrubQuery(%q)", tt.in)
		})
	}
}

// FuzzScrubQuery checks, for any query, that no panic happens, that the
// separators and every harmless parameter survive as they were, and that
// every parameter whose name looks secret becomes name=[Filtered].
func FuzzScrubQuery(f *testing.F) {
	for _, s := range []string{"", "a=1&token=2", "pass%77ord=x;b", "%zz=1&&=&;", "token"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		out := scrubQuery(in)
		isSep := func(r rune) bool { return r == '&' || r == ';' }
		seps := func(s string) string {
			return strings.Map(func(r rune) rune {
				if isSep(r) {
					return r
				}
				return -1
			}, s)
		}
		require.Equal(t, seps(in), seps(out), "separators of %q → %q", in, out)
		inParts, outParts := strings.FieldsFunc(in, isSep), strings.FieldsFunc(out, isSep)
		require.Len(t, outParts, len(inParts), "parameters of %q → %q", in, out)
		for i, part := range inParts {
			name, _, _ := strings.Cut(part, "=")
			lower := strings.ToLower(name)
			decoded, err := url.QueryUnescape(name)
			secret := strings.Contains(lower, "token") || strings.Contains(lower, "password") || strings.Contains(lower, "key") ||
				(err == nil && (strings.Contains(strings.ToLower(decoded), "token") || strings.Contains(strings.ToLower(decoded), "password")))
			switch {
			case isSecretName(name):
				assert.Equal(t, name+"="+filtered, outParts[i], "secret parameter %d of %q", i, in)
			default:
				assert.False(t, secret, "parameter %q looks secret but was kept", name)
				assert.Equal(t, part, outParts[i], "harmless parameter %d of %q", i, in)
			}
		}
	})
}

func TestScrubbedRequest(t *testing.T) {
	r := httptest.NewRequest(http.MethodPut, "https://shop.example/cart/42?coupon=ABC&token=t0k", strings.NewReader("card=4111"))
	r.TLS = &tls.ConnectionState{}
	r.Header.Set("Cookie", "sid=1")
	r.Header.Set("Set-Cookie", "a=b")
	r.Header.Set("Authorization", "Bearer x")
	r.Header.Set("Proxy-Authorization", "Basic y")
	r.Header.Set("X-Csrf-Token", "csrf")
	r.Header.Set("X-Real-Ip", "198.51.100.1")
	r.Header.Set("Forwarded", "for=198.51.100.1")
	r.Header.Set("Accept", "text/html")
	r.Header.Add("X-Multi", "a")
	r.Header.Add("X-Multi", "b")

	sr := scrubbedRequest(r)
	assert.Equal(t, "https://shop.example/cart/42", sr.URL, "URL without query")
	assert.Equal(t, http.MethodPut, sr.Method, "method")
	assert.Equal(t, "coupon=ABC&token=[Filtered]", sr.QueryString, "query")
	assert.Empty(t, sr.Cookies, "cookies")
	assert.Empty(t, sr.Data, "body")
	assert.Empty(t, sr.Env, "no client address")
	for _, h := range []string{"Cookie", "Set-Cookie", "Authorization", "Proxy-Authorization"} {
		assert.NotContains(t, sr.Headers, h, "header %s dropped", h)
	}
	for _, h := range []string{"X-Csrf-Token", "X-Real-Ip", "Forwarded"} {
		assert.Equal(t, filtered, sr.Headers[h], "header %s filtered", h)
	}
	assert.Equal(t, "text/html", sr.Headers["Accept"], "harmless header")
	assert.Equal(t, "a,b", sr.Headers["X-Multi"], "repeated header joined")
	assert.Equal(t, "shop.example", sr.Headers["Host"], "host")

	_, err := url.Parse(sr.URL)
	assert.NoError(t, err, "URL parses")
}
