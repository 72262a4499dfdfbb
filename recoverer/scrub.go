package recoverer

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/getsentry/sentry-go"
)

// filtered replaces a secret value; it is Sentry's own marker, so that the
// SDK's, Relay's and recoverer's scrubbing look the same in the UI.
const filtered = "[Filtered]"

// sensitiveTerms mark a header or query parameter as secret when its name
// contains one of them, case-insensitively. The list errs on the side of
// redacting: "key" also catches "monkey", "sig" also "design"; a scrubber
// ([WithRequestScrubber]) can put back what a service knows to be harmless.
var sensitiveTerms = []string{
	"auth", "code", "cookie", "credential", "csrf", "jwt", "key", "passwd",
	"password", "pwd", "secret", "session", "sig", "token", "xsrf",
}

// droppedHeaders never reach Sentry, not even their names.
var droppedHeaders = map[string]bool{
	"Authorization":       true,
	"Proxy-Authorization": true,
	"Cookie":              true,
	"Set-Cookie":          true,
}

// isSensitive reports whether a header or query parameter name looks secret.
func isSensitive(name string) bool {
	lower := strings.ToLower(name)
	for _, t := range sensitiveTerms {
		if strings.Contains(lower, t) {
			return true
		}
	}
	return false
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
// minus credentials and cookies, with secret-looking values filtered. No
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
		case isSensitive(name) || isClientAddressHeader(name):
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
		QueryString: scrubQuery(r.URL.RawQuery),
		Headers:     headers,
	}
}

// scrubQuery replaces the value of every secret-looking parameter of a raw
// query with [filtered] and keeps the rest as it came, in its order and
// encoding. Both '&' and ';' separate parameters (some frameworks accept the
// latter), and a name is checked both raw and decoded, so that
// percent-encoding ("pass%77ord") does not hide it. A parameter without '='
// whose name looks secret is written "name=[Filtered]".
func scrubQuery(raw string) string {
	if raw == "" {
		return ""
	}
	var b strings.Builder
	b.Grow(len(raw))
	for raw != "" {
		part, sep := raw, ""
		if i := strings.IndexAny(raw, "&;"); i >= 0 {
			part, sep, raw = raw[:i], raw[i:i+1], raw[i+1:]
		} else {
			raw = ""
		}
		name, _, _ := strings.Cut(part, "=")
		if isSecretName(name) {
			b.WriteString(name)
			b.WriteByte('=')
			b.WriteString(filtered)
		} else {
			b.WriteString(part)
		}
		b.WriteString(sep)
	}
	return b.String()
}

// isSecretName checks a raw query parameter name, and its decoded form.
func isSecretName(name string) bool {
	if isSensitive(name) {
		return true
	}
	decoded, err := url.QueryUnescape(name)
	return err == nil && isSensitive(decoded)
}
