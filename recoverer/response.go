package recoverer

import (
	"context"
	"log/slog"
	"net/http"
	"strconv"
	"strings"

	"github.com/shipshape-go/shipshape/internal/respwriter"
	"github.com/shipshape-go/shipshape/problem"
)

type eventIDKey struct{}

// EventID returns the Sentry event id of the panic being answered, for a
// [WithResponse] handler that wants to show it (a support reference). It is
// "" elsewhere, and when the panic was not sent to Sentry.
func EventID(ctx context.Context) string {
	id, _ := ctx.Value(eventIDKey{}).(string)
	return id
}

// staleHeaders describe the response the handler meant to send, not the
// error that replaces it. Content-Encoding stays, as in http.Error: a
// middleware that set it may be compressing what is written through it.
var staleHeaders = []string{
	"Cache-Control", "Content-Disposition", "Content-Language", "Content-Length",
	"Content-Location", "Content-Range", "Etag", "Expires", "Last-Modified",
	"Location", "Set-Cookie", "Trailer",
}

const plainBody = "Internal Server Error\n"

// respond writes the 500 when nothing has been written yet.
func (c *config) respond(rec *respwriter.Recorder, r *http.Request, eventID string) {
	h := rec.Header()
	for _, k := range staleHeaders {
		h.Del(k)
	}
	if c.response != nil {
		c.customResponse(rec, r, eventID)
		if rec.Status != 0 || rec.Hijacked {
			return
		}
	}
	if acceptsJSON(r.Header.Values("Accept")) {
		problem.Write(rec, r, problem.Details{Status: http.StatusInternalServerError})
		return
	}
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("Content-Length", strconv.Itoa(len(plainBody)))
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	rec.WriteHeader(http.StatusInternalServerError)
	_, _ = rec.WriteString(plainBody)
}

// customResponse runs the WithResponse handler. A panic in it is logged
// (it is a second bug, not the one already reported) and the default
// response follows if nothing was written; http.ErrAbortHandler still
// aborts.
func (c *config) customResponse(rec *respwriter.Recorder, r *http.Request, eventID string) {
	defer func() {
		p := recover()
		if p == nil {
			return
		}
		if p == http.ErrAbortHandler { // compared the way net/http does
			panic(p)
		}
		logger := c.logger
		if logger == nil {
			logger = slog.Default()
		}
		logger.LogAttrs(r.Context(), slog.LevelError, "recoverer: response handler panicked",
			slog.String(keyPanic, panicString(p)))
	}()
	if eventID != "" {
		r = r.WithContext(context.WithValue(r.Context(), eventIDKey{}, eventID))
	}
	c.response.ServeHTTP(rec.Wrap(), r)
}

// acceptsJSON reports whether an Accept header lets the client receive
// application/problem+json at least as gladly as text/plain: the best
// quality of a range matching the former (application/problem+json,
// application/json, application/*, */*) is > 0 and not below the best of
// one matching text/plain. No Accept header accepts anything.
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
