package recoverer

import (
	"crypto/tls"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

// TestScrubbedQuery: the query sent to Sentry hides the same names as
// accesslog (internal/redact has the full table and the fuzz test).
func TestScrubbedQuery(t *testing.T) {
	for in, want := range map[string]string{
		"q=shoes&page=2":             "q=shoes&page=2",
		"user=ann&password=hunter2":  "user=ann&password=[Filtered]",
		"pass%77ord=hunter2&q=a%20b": "pass%77ord=[Filtered]&q=a%20b",
		"a=1;X-Amz-Signature=f00":    "a=1;X-Amz-Signature=[Filtered]",
	} {
		r := httptest.NewRequest(http.MethodGet, "/x?"+in, nil)
		assert.Equal(t, want, scrubbedRequest(r).QueryString, "query %q", in)
	}
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
