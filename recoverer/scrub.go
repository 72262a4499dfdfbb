package recoverer

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/shipshape-go/shipshape/internal/redact"

	"github.com/getsentry/sentry-go"
)

// filtered replaces a secret value; it is Sentry's own marker, so that the
// SDK's, Relay's and recoverer's scrubbing look the same in the UI.
const filtered = "[Filtered]"

// droppedHeaders never reach Sentry, not even their names.
var droppedHeaders = map[string]bool{
	"Authorization":       true,
	"Proxy-Authorization": true,
	"Cookie":              true,
	"Set-Cookie":          true,
}

// isClientAddressHeader reports whether a header carries the client's IP
// address, which is personal data: Forwarded, X-Forwarded-For, X-Real-Ip,
// True-Client-Ip, Cf-Connecting-Ip and the like.
func isClientAddressHeader(name string) bool {
	lower := strings.ToLower(name)
	return strings.Contains(lower, "forwarded") || strings.HasSuffix(lower, "-ip")
}

// sentryRequest builds the request part of the event with the default
// scrubbing, then lets the configured scrubber change it.
func (c *config) sentryRequest(r *http.Request) *sentry.Request {
	sr := scrubbedRequest(r)
	if c.scrubber != nil {
		c.scrubber(sr, r)
	}
	return sr
}

// scrubbedRequest returns what Sentry may know about r by default: method,
// URL without query, the query with secret values filtered, and the headers
// minus credentials and cookies, with secret-looking values filtered (the
// names accesslog redacts too: redact.Terms, also when percent-encoded). No
// cookies, no body, no client address.
func scrubbedRequest(r *http.Request) *sentry.Request {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	u := url.URL{Scheme: scheme, Host: r.Host, Path: r.URL.Path, RawPath: r.URL.RawPath}
	headers := make(map[string]string, len(r.Header)+1)
	for name, values := range r.Header {
		canonical := http.CanonicalHeaderKey(name)
		switch {
		case droppedHeaders[canonical]:
			continue
		case redact.Default.Match(name) || isClientAddressHeader(name):
			headers[canonical] = filtered
		default:
			headers[canonical] = strings.Join(values, ",")
		}
	}
	if r.Host != "" {
		headers["Host"] = r.Host
	}
	return &sentry.Request{
		URL:         u.String(),
		Method:      r.Method,
		QueryString: redact.Default.Query(r.URL.RawQuery, filtered),
		Headers:     headers,
	}
}
