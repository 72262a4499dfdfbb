// Package problem is how shipshape's middleware answer with an error:
// every response a shipshape package generates itself (429 from
// ratelimit, 503 from slowdown, 500 from recoverer, 404 and 405 from
// static, 400 for a request without a client key) goes through a [Writer],
// so a service keeps one error format for all of them.
//
// The default, [Write], sends RFC 9457 "problem details"
// (application/problem+json), or text/plain to a client that prefers it.
// A service with its own JSON error shape passes its Writer to each
// package's WithProblemWriter option:
//
//	func apiError(w http.ResponseWriter, r *http.Request, d problem.Details) {
//		w.Header().Set("Content-Type", "application/json")
//		w.WriteHeader(d.Status)
//		json.NewEncoder(w).Encode(map[string]any{"error": map[string]any{"code": d.Status, "message": d.Detail}})
//	}
//
//	limiter, err := ratelimit.New(100, time.Minute, ratelimit.WithProblemWriter(apiError))
//	rec, err := recoverer.New(recoverer.WithProblemWriter(apiError))
//
// Headers a package sets before it calls the Writer (Retry-After,
// RateLimit, Allow) are already on w; a Writer must keep them. Detail is
// fixed text written for the client: it never holds internal error text.
// The package imports only the standard library.
//
// Examples: [ExampleWriter], [ExampleWrite].
package problem

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
)

// ContentType is the media type of a problem details body.
const ContentType = "application/problem+json"

// Details is an RFC 9457 problem details object. Type is "about:blank"
// when empty, and Title then defaults to the status text.
type Details struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail,omitempty"`
}

// Writer writes the response for d. It runs on the request's goroutine,
// before anything was written to w.
type Writer func(w http.ResponseWriter, r *http.Request, d Details)

// Write is the default Writer. It sends d as application/problem+json
// when the request's Accept header takes it at least as gladly as
// text/plain (the best quality of application/problem+json,
// application/json, application/* or */* is > 0 and not below that of
// text/plain or text/*; no Accept header takes anything), else
// "<Title>: <Detail>\n" as text/plain. Both carry Cache-Control: no-store
// and X-Content-Type-Options: nosniff, and keep the headers already on w.
// r may be nil (JSON then).
func Write(w http.ResponseWriter, r *http.Request, d Details) {
	if d.Type == "" {
		d.Type = "about:blank"
	}
	if d.Title == "" {
		d.Title = http.StatusText(d.Status)
	}
	var body []byte
	h := w.Header()
	if r == nil || acceptsJSON(r.Header.Values("Accept")) {
		var err error
		if body, err = json.Marshal(d); err != nil { // cannot happen for this struct; keep the status anyway
			body = []byte(`{"type":"about:blank","status":` + strconv.Itoa(d.Status) + `}`)
		}
		body = append(body, '\n')
		h.Set("Content-Type", ContentType)
	} else {
		text := d.Title
		if d.Detail != "" {
			text += ": " + d.Detail
		}
		body = []byte(text + "\n")
		h.Set("Content-Type", "text/plain; charset=utf-8")
	}
	h.Set("Content-Length", strconv.Itoa(len(body)))
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(d.Status)
	if r == nil || r.Method != http.MethodHead {
		_, _ = w.Write(body)
	}
}

// acceptsJSON reports whether an Accept header lets the client receive
// application/problem+json at least as gladly as text/plain.
func acceptsJSON(values []string) bool {
	if len(values) == 0 {
		return true
	}
	var qJSON, qText float64
	for _, v := range values {
		for v != "" {
			var entry string
			entry, v, _ = strings.Cut(v, ",")
			mediaRange, params, _ := strings.Cut(entry, ";")
			mediaRange = strings.ToLower(strings.TrimSpace(mediaRange))
			q := quality(params)
			switch mediaRange {
			case "application/problem+json", "application/json", "application/*":
				qJSON = max(qJSON, q)
			case "text/plain", "text/*":
				qText = max(qText, q)
			case "*/*":
				qJSON, qText = max(qJSON, q), max(qText, q)
			}
		}
	}
	return qJSON > 0 && qJSON >= qText
}

// quality returns the q parameter of a media range's parameters (1 when
// absent, 0 when malformed, so that a broken range never wins).
func quality(params string) float64 {
	for params != "" {
		var p string
		p, params, _ = strings.Cut(params, ";")
		name, value, ok := strings.Cut(p, "=")
		if !ok || !strings.EqualFold(strings.TrimSpace(name), "q") {
			continue
		}
		q, err := strconv.ParseFloat(strings.TrimSpace(value), 64)
		if err != nil || !(q >= 0 && q <= 1) { // also refuses NaN
			return 0
		}
		return q
	}
	return 1
}
