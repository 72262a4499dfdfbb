package sentryreport

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/getsentry/sentry-go"

	"github.com/shipshape-go/shipshape/internal/redact"
)

// filtered replaces a secret value; it is Sentry's own marker, so that the
// SDK's, Relay's and this package's scrubbing look the same in the UI.
const filtered = "[Filtered]"

// defaultHeaders are the request headers an event carries by default
// (listed in WithHeaders' documentation): what helps to
// reproduce a request, and nothing that identifies the client or carries a
// credential.
var defaultHeaders = []string{"Accept", "Content-Length", "Content-Type", "Host", "Referer", "User-Agent"}

// credentialHeaders never reach Sentry through WithHeaders; only a
// WithRequestScrubber written for the purpose can send them.
var credentialHeaders = map[string]bool{
	"Authorization":       true,
	"Proxy-Authorization": true,
	"Cookie":              true,
	"Set-Cookie":          true,
}

// headerNames validates the names given to WithHeaders and returns the
// canonical ones to send beyond the defaults, without duplicates, or an
// error that names every refused name, in the order given.
func headerNames(names []string) (valid []string, err error) {
	var refused []error
	for _, name := range names {
		trimmed := strings.TrimSpace(name)
		canonical := http.CanonicalHeaderKey(trimmed)
		switch {
		case !validFieldName(trimmed):
			refused = append(refused, fmt.Errorf("sentryreport: WithHeaders: %q is not a header field name", name))
		case credentialHeaders[canonical]:
			refused = append(refused, fmt.Errorf("sentryreport: WithHeaders: %q is a credential; only WithRequestScrubber can send it", name))
		case containsName(defaultHeaders, canonical) || containsName(valid, canonical):
		default:
			valid = append(valid, canonical)
		}
	}
	if len(refused) > 0 {
		return nil, errors.Join(refused...)
	}
	return valid, nil
}

func containsName(names []string, name string) bool {
	for _, n := range names {
		if n == name {
			return true
		}
	}
	return false
}

// validFieldName reports whether s is a field name of RFC 9110: one or more
// tchar.
func validFieldName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// scrubbedRequest returns what Sentry may know about r by default: method,
// URL without query, the query with secret values filtered (the names
// accesslog redacts too, from internal/redact), and the headers of
// defaultHeaders plus extra. A header whose name looks secret has
// its value filtered; the query of a URL in any header value (Referer, an
// X-Original-Uri that was added) is filtered like the request's. No
// cookies, no body, no client address: sentry-go adds none of them to a
// request it did not build itself.
func scrubbedRequest(r *http.Request, extra []string) *sentry.Request {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	u := url.URL{Scheme: scheme, Host: r.Host, Path: r.URL.Path, RawPath: r.URL.RawPath}
	headers := make(map[string]string, len(defaultHeaders)+len(extra))
	add := func(name string) {
		if name == "Host" {
			// A server request carries it in r.Host, not in r.Header.
			if r.Host != "" {
				headers[name] = r.Host
			}
			return
		}
		values := r.Header.Values(name)
		switch {
		case len(values) == 0:
		case redact.Default.Match(name):
			headers[name] = filtered
		default:
			vs := make([]string, len(values))
			for i, v := range values {
				vs[i] = redact.Default.URL(v, filtered)
			}
			headers[name] = strings.Join(vs, ",")
		}
	}
	for _, name := range defaultHeaders {
		add(name)
	}
	for _, name := range extra {
		add(name)
	}
	return &sentry.Request{
		URL:         u.String(),
		Method:      r.Method,
		QueryString: redact.Default.Query(r.URL.RawQuery, filtered),
		Headers:     headers,
	}
}
