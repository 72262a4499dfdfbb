package sentryreport

import (
	"crypto/tls"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestScrubbedQuery: the query sent to Sentry hides the same names as
// accesslog (internal/redact has the full table and the fuzz test).
func TestScrubbedQuery(t *testing.T) {
	for in, want := range map[string]string{
		"q=shoes&page=2":                                 "q=shoes&page=2",
		"user=ann&password=hunter2":                      "user=ann&password=[Filtered]",
		"pass%77ord=hunter2&q=a%20b":                     "pass%77ord=[Filtered]&q=a%20b",
		"a=1;X-Amz-Signature=f00":                        "a=1;X-Amz-Signature=[Filtered]",
		"pass=1&pw=2&sid=3&ticket=4&otp=5&keyword=shoes": "pass=[Filtered]&pw=[Filtered]&sid=[Filtered]&ticket=[Filtered]&otp=[Filtered]&keyword=shoes",
	} {
		r := httptest.NewRequest(http.MethodGet, "/x?"+in, nil)
		assert.Equal(t, want, scrubbedRequest(r, nil).QueryString, "query %q", in)
	}
}

func TestScrubbedRequest(t *testing.T) {
	r := httptest.NewRequest(http.MethodPut, "https://shop.example/cart/42?coupon=ABC&token=t0k", strings.NewReader("card=4111"))
	r.TLS = &tls.ConnectionState{}
	r.RemoteAddr = "198.51.100.7:4711"
	r.Header.Set("Cookie", "sid=1")
	r.Header.Set("Authorization", "Bearer x")
	r.Header.Set("X-Csrf-Token", "csrf")
	r.Header.Set("X-Real-Ip", "198.51.100.1")
	r.Header.Set("X-Original-Uri", "/reset?token=abc")
	r.Header.Set("Accept", "text/html")
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.Header.Set("User-Agent", "ua")
	r.Header.Set("Referer", "https://shop.example/reset?token=abc&lang=en")
	r.Header.Add("X-Multi", "a")
	r.Header.Add("X-Multi", "b")

	sr := scrubbedRequest(r, nil)
	assert.Equal(t, "https://shop.example/cart/42", sr.URL, "URL without query")
	assert.Equal(t, http.MethodPut, sr.Method, "method")
	assert.Equal(t, "coupon=ABC&token=[Filtered]", sr.QueryString, "query")
	assert.Empty(t, sr.Cookies, "cookies")
	assert.Empty(t, sr.Data, "body")
	assert.Empty(t, sr.Env, "no client address")
	assert.Equal(t, map[string]string{
		"Accept":       "text/html",
		"Content-Type": "application/x-www-form-urlencoded",
		"Host":         "shop.example",
		"Referer":      "https://shop.example/reset?token=[Filtered]&lang=en",
		"User-Agent":   "ua",
	}, sr.Headers, "the default headers only, the Referer's query filtered")

	_, err := url.Parse(sr.URL)
	assert.NoError(t, err, "URL parses")

	sr = scrubbedRequest(r, []string{"X-Original-Uri", "X-Csrf-Token", "X-Multi", "X-Real-Ip", "X-Absent"})
	assert.Equal(t, "/reset?token=[Filtered]", sr.Headers["X-Original-Uri"], "an added URL-valued header has its query filtered")
	assert.Equal(t, filtered, sr.Headers["X-Csrf-Token"], "an added secret-looking header has its value filtered")
	assert.Equal(t, "a,b", sr.Headers["X-Multi"], "repeated header joined")
	assert.Equal(t, "198.51.100.1", sr.Headers["X-Real-Ip"], "a client-address header added on purpose is sent")
	assert.NotContains(t, sr.Headers, "X-Absent", "a header the request lacks")
	assert.NotContains(t, sr.Headers, "Cookie", "never added")
	assert.NotContains(t, sr.Headers, "Authorization", "never added")
}

func TestHeaderNames(t *testing.T) {
	valid, err := headerNames([]string{"x-tenant", " X-Region ", "X-TENANT", "User-Agent", "x_custom"})
	require.NoError(t, err)
	assert.Equal(t, []string{"X-Tenant", "X-Region", "X_custom"}, valid, "canonical, trimmed, no duplicates, defaults left out")

	for _, name := range []string{"", "X Tenant", "X-Tenant, X-Region", "Zürich", "X-Bad:", "Authorization", "cookie", "Proxy-Authorization", "Set-Cookie"} {
		valid, err := headerNames([]string{"X-Ok", name})
		require.Error(t, err, "name %q", name)
		assert.Contains(t, err.Error(), strconv.Quote(name), "the error names %q", name)
		assert.Nil(t, valid, "no names with an error")
	}
}
