package recoverer

import (
	"context"
	"log/slog"
	"net/http"

	"github.com/shipshape-go/shipshape/internal/respwriter"
	"github.com/shipshape-go/shipshape/problem"
)

type eventIDKey struct{}

// EventID returns the event id of the panic being answered, the one its
// [Reporter] returned, for a [WithProblemWriter] writer that wants to show
// it (a support reference). It is "" elsewhere, and when the panic was not
// sent to an error tracker.
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

// internalError is what the problem writer gets: no detail, since the
// client must learn nothing about the panic.
var internalError = problem.Details{Status: http.StatusInternalServerError}

// respond writes the 500 when nothing has been written yet: through the
// WithProblemWriter writer, and problem.Write when that wrote nothing or
// panicked.
func (c *config) respond(rec *respwriter.Recorder, r *http.Request, eventID string) {
	h := rec.Header()
	for _, k := range staleHeaders {
		h.Del(k)
	}
	if c.problem != nil {
		c.customResponse(rec, r, eventID)
		if rec.Status != 0 || rec.Hijacked {
			return
		}
	}
	problem.Write(rec, r, internalError)
}

// customResponse runs the WithProblemWriter writer. A panic in it is logged
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
		c.log().LogAttrs(r.Context(), slog.LevelError, "recoverer: problem writer panicked",
			slog.String(keyPanic, panicString(p)))
	}()
	if eventID != "" {
		r = r.WithContext(context.WithValue(r.Context(), eventIDKey{}, eventID))
	}
	c.problem(rec.Wrap(), r, internalError)
}
