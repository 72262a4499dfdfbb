package recoverer_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/shipshape-go/shipshape/accesslog"
	"github.com/shipshape-go/shipshape/problem"
	"github.com/shipshape-go/shipshape/recoverer"
	"github.com/shipshape-go/shipshape/reqlog"
)

type customPanic struct{ Code int }

func TestPanicBecomes500(t *testing.T) {
	tests := []struct {
		name      string
		value     any
		wantPanic string
	}{
		{"string", "boom", "boom"},
		{"int", 42, "42"},
		{"error", errors.New("db: connection reset"), "db: connection reset"},
		{"struct", customPanic{Code: 7}, "{7}"},
		{"nil becomes PanicNilError", nil, "panic called with nil argument"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			capture, logger := newCapture()
			mux := http.NewServeMux()
			mux.Handle("GET /items/{id}", panicWith(tt.value))
			srv, errLog := newServer(t, mustNew(t, recoverer.WithLogger(logger))(mux))

			req, err := http.NewRequest(http.MethodGet, srv.URL+"/items/7", nil)
			require.NoError(t, err)
			req.Header.Set("Accept", "application/json")
			res, err := srv.Client().Do(req)
			require.NoError(t, err, "the client must get a response, not a dropped connection")
			body, err := io.ReadAll(res.Body)
			require.NoError(t, err)
			_ = res.Body.Close()

			assert.Equal(t, http.StatusInternalServerError, res.StatusCode, "status")
			assert.Equal(t, "application/problem+json", res.Header.Get("Content-Type"), "content type")
			var prob map[string]any
			require.NoError(t, json.Unmarshal(body, &prob), "body %q is not JSON", body)
			assert.EqualValues(t, 500, prob["status"], "problem status")
			assert.Equal(t, "Internal Server Error", prob["title"], "problem title")
			assert.NotContains(t, string(body), tt.wantPanic, "the panic value must not reach the client")
			assert.NotContains(t, string(body), "panicNow", "the stack must not reach the client")

			records := capture.withMsg(msgPanic)
			require.Len(t, records, 1, "panic records: got %d, want 1: %v", len(records), capture.all())
			rec := records[0]
			assert.Equal(t, "ERROR", rec.Level.String(), "level")
			assert.Contains(t, rec.Attrs["panic"], tt.wantPanic, "panic attribute")
			assert.Contains(t, rec.Attrs["stack"], "recoverer_test.panicNow", "stack must show the handler frame")
			assert.NotContains(t, rec.Attrs["stack"], "runtime.", "stack must be trimmed of runtime frames")
			assert.Equal(t, "GET", rec.Attrs["http.request.method"], "method")
			assert.Equal(t, "/items/7", rec.Attrs["url.path"], "path")
			assert.Equal(t, "/items/{id}", rec.Attrs["http.route"], "route")
			assert.NotContains(t, rec.Attrs, "sentry.event_id", "no Sentry configured, no event id")
			assert.Empty(t, errLog.String(), "net/http must not log the panic itself")
		})
	}
}

func TestResponseNegotiation(t *testing.T) {
	tests := []struct {
		name       string
		accept     []string
		wantType   string
		wantPrefix string
	}{
		{"no Accept", nil, "application/problem+json", "{"},
		{"json", []string{"application/json"}, "application/problem+json", "{"},
		{"problem json", []string{"application/problem+json"}, "application/problem+json", "{"},
		{"curl", []string{"*/*"}, "application/problem+json", "{"},
		{"browser", []string{"text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}, "application/problem+json", "{"},
		{"text only", []string{"text/plain"}, "text/plain; charset=utf-8", "Internal Server Error"},
		{"html only", []string{"text/html"}, "text/plain; charset=utf-8", "Internal Server Error"},
		{"json refused", []string{"application/json;q=0, text/plain"}, "text/plain; charset=utf-8", "Internal Server Error"},
		{"text preferred", []string{"application/json;q=0.5, text/plain;q=0.9"}, "text/plain; charset=utf-8", "Internal Server Error"},
		{"two headers", []string{"text/plain;q=0.1", "application/json"}, "application/problem+json", "{"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, logger := newCapture()
			h := mustNew(t, recoverer.WithLogger(logger))(panicWith("boom"))
			req := httptest.NewRequest(http.MethodGet, "/", nil)
			for _, a := range tt.accept {
				req.Header.Add("Accept", a)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			assert.Equal(t, http.StatusInternalServerError, rec.Code, "status")
			assert.Equal(t, tt.wantType, rec.Header().Get("Content-Type"), "content type")
			assert.True(t, strings.HasPrefix(rec.Body.String(), tt.wantPrefix), "body %q, want prefix %q", rec.Body.String(), tt.wantPrefix)
			assert.Equal(t, "nosniff", rec.Header().Get("X-Content-Type-Options"), "nosniff")
			assert.Equal(t, "no-store", rec.Header().Get("Cache-Control"), "cache control")
			assert.Equal(t, fmt.Sprint(rec.Body.Len()), rec.Header().Get("Content-Length"), "content length")
		})
	}
}

func TestStaleHeadersAreDropped(t *testing.T) {
	_, logger := newCapture()
	h := mustNew(t, recoverer.WithLogger(logger))(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Set-Cookie", "session=half-done")
		w.Header().Set("ETag", `"v1"`)
		w.Header().Set("Content-Length", "12345")
		w.Header().Set("Content-Disposition", "attachment")
		w.Header().Set("Cache-Control", "max-age=3600")
		w.Header().Set("Access-Control-Allow-Origin", "*")
		panicNow("boom")
	}))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
	require.Equal(t, http.StatusInternalServerError, rec.Code, "status")
	for _, k := range []string{"Set-Cookie", "Etag", "Content-Disposition"} {
		assert.Empty(t, rec.Header().Get(k), "%s must not describe the error response", k)
	}
	assert.Equal(t, "no-store", rec.Header().Get("Cache-Control"), "cache control")
	assert.NotEqual(t, "12345", rec.Header().Get("Content-Length"), "content length of the error body")
	assert.Equal(t, "*", rec.Header().Get("Access-Control-Allow-Origin"), "unrelated headers stay")
}

func TestErrAbortHandlerIsRepanickedAndNotReported(t *testing.T) {
	capture, logger := newCapture()
	srv, errLog := newServer(t, mustNew(t, recoverer.WithLogger(logger))(panicWith(http.ErrAbortHandler)))

	res, err := srv.Client().Get(srv.URL)
	if err == nil {
		_ = res.Body.Close()
	}
	require.Error(t, err, "the connection must be aborted (got status %v)", res)
	assert.Empty(t, capture.all(), "ErrAbortHandler must not be logged")
	assert.Empty(t, errLog.String(), "net/http must not log ErrAbortHandler either")
}

func TestPanicAfterHeadersAbortsTheConnection(t *testing.T) {
	tests := []struct {
		name  string
		flush bool
		h2    bool
	}{
		{"HTTP/1.1 flushed", true, false},
		{"HTTP/1.1 buffered", false, false},
		{"HTTP/2 flushed", true, true},
		{"HTTP/2 buffered", false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			capture, logger := newCapture()
			h := mustNew(t, recoverer.WithLogger(logger))(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/plain")
				w.WriteHeader(http.StatusOK)
				_, _ = io.WriteString(w, "partial ")
				if tt.flush {
					http.NewResponseController(w).Flush()
				}
				panicNow("mid-stream")
			}))
			srv, errLog := startServer(t, h, tt.h2)

			res, err := srv.Client().Get(srv.URL)
			var body []byte
			if err == nil {
				wantProto := map[bool]int{false: 1, true: 2}[tt.h2]
				assert.Equal(t, wantProto, res.ProtoMajor, "protocol")
				body, err = io.ReadAll(res.Body)
				_ = res.Body.Close()
				assert.Equal(t, http.StatusOK, res.StatusCode, "the status already sent cannot change")
				assert.NotContains(t, string(body), "Internal Server Error", "no second response appended")
			}
			require.Error(t, err, "the client must see the truncation, got a clean response %q", body)

			records := capture.withMsg(msgPanic)
			require.Len(t, records, 1, "panic records")
			assert.Equal(t, "mid-stream", records[0].Attrs["panic"], "panic attribute")
			assert.Empty(t, errLog.String(), "the abort must not make net/http log a second stack")
		})
	}
}

func TestHijackedConnectionIsLeftAlone(t *testing.T) {
	capture, logger := newCapture()
	conns := make(chan net.Conn, 1)
	done := make(chan struct{})
	inner := mustNew(t, recoverer.WithLogger(logger))(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Errorf("hijack: %v", err)
			return
		}
		conns <- c
		_, _ = brw.WriteString("HELLO\n")
		_ = brw.Flush()
		panicNow("websocket handler")
	}))
	srv, errLog := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer close(done)
		inner.ServeHTTP(w, r)
	}))

	client, err := net.Dial("tcp", srv.Listener.Addr().String())
	require.NoError(t, err)
	defer func() { _ = client.Close() }()
	_, err = io.WriteString(client, "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
	require.NoError(t, err)
	serverConn := <-conns
	defer func() { _ = serverConn.Close() }()
	<-done // the middleware has returned: anything it wrote has been written

	_ = client.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	got, _ := io.ReadAll(bufio.NewReader(client))
	assert.Equal(t, "HELLO\n", string(got), "only the handler's own bytes on the hijacked connection")
	assert.Empty(t, errLog.String(), "no write may even be attempted on the hijacked response")
	assert.Len(t, capture.withMsg(msgPanic), 1, "the panic is still reported")
}

func TestRouteAndRequestIDFromChi(t *testing.T) {
	capture, logger := newCapture()
	r := chi.NewRouter()
	r.Use(middleware.RequestID)
	r.Use(mustNew(t, recoverer.WithLogger(logger)))
	r.Route("/api", func(r chi.Router) {
		r.Post("/orders/{orderID}", panicWith("chi boom"))
	})
	req := httptest.NewRequest(http.MethodPost, "/api/orders/99", nil)
	req.Header.Set("X-Request-Id", "req-123")
	rec := httptest.NewRecorder()
	r.ServeHTTP(rec, req)

	require.Equal(t, http.StatusInternalServerError, rec.Code, "status")
	records := capture.withMsg(msgPanic)
	require.Len(t, records, 1, "panic records")
	assert.Equal(t, "/api/orders/{orderID}", records[0].Attrs["http.route"], "chi route")
	assert.Equal(t, "req-123", records[0].Attrs["http.request.id"], "chi request id")
	assert.Equal(t, "POST", records[0].Attrs["http.request.method"], "method")
}

func TestNoPanicPassesThrough(t *testing.T) {
	capture, logger := newCapture()
	h := mustNew(t, recoverer.WithLogger(logger))(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Handler", "yes")
		w.WriteHeader(http.StatusTeapot)
		_, _ = io.WriteString(w, "short and stout")
	}))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
	assert.Equal(t, http.StatusTeapot, rec.Code, "status")
	assert.Equal(t, "short and stout", rec.Body.String(), "body")
	assert.Equal(t, "yes", rec.Header().Get("X-Handler"), "header")
	assert.Empty(t, capture.all(), "nothing logged without a panic")
}

func TestDefaultLoggerIsUsedWithoutWithLogger(t *testing.T) {
	capture, logger := newCapture()
	old := slog.Default()
	slog.SetDefault(logger)
	t.Cleanup(func() { slog.SetDefault(old) })

	h := mustNew(t)(panicWith("to the default logger"))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
	assert.Equal(t, http.StatusInternalServerError, rec.Code, "status")
	assert.Len(t, capture.withMsg(msgPanic), 1, "the record goes to slog.Default()")
}

func TestWithProblemWriter(t *testing.T) {
	tests := []struct {
		name       string
		writer     problem.Writer
		wantStatus int
		wantBody   string
		wantLogs   int
	}{
		{
			name: "custom format",
			writer: func(w http.ResponseWriter, r *http.Request, d problem.Details) {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(d.Status)
				_, _ = fmt.Fprintf(w, `{"error":{"code":%d}}`, d.Status)
			},
			wantStatus: http.StatusInternalServerError,
			wantBody:   `{"error":{"code":500}}`,
			wantLogs:   1,
		},
		{
			name: "custom page, another status",
			writer: func(w http.ResponseWriter, r *http.Request, d problem.Details) {
				w.Header().Set("Content-Type", "text/html")
				w.WriteHeader(http.StatusServiceUnavailable)
				_, _ = io.WriteString(w, "<h1>sorry</h1>")
			},
			wantStatus: http.StatusServiceUnavailable,
			wantBody:   "<h1>sorry</h1>",
			wantLogs:   1,
		},
		{
			name:       "writes nothing: problem.Write follows",
			writer:     func(w http.ResponseWriter, r *http.Request, d problem.Details) { w.Header().Set("X-Tried", "1") },
			wantStatus: http.StatusInternalServerError,
			wantBody:   "Internal Server Error\n",
			wantLogs:   1,
		},
		{
			name:       "panics: logged, problem.Write follows",
			writer:     func(w http.ResponseWriter, r *http.Request, d problem.Details) { panic("response broke too") },
			wantStatus: http.StatusInternalServerError,
			wantBody:   "Internal Server Error\n",
			wantLogs:   2,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			capture, logger := newCapture()
			h := mustNew(t, recoverer.WithLogger(logger), recoverer.WithProblemWriter(tt.writer))(panicWith("boom"))
			req := httptest.NewRequest(http.MethodGet, "/", nil)
			req.Header.Set("Accept", "text/plain")
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			assert.Equal(t, tt.wantStatus, rec.Code, "status")
			assert.Equal(t, tt.wantBody, rec.Body.String(), "body")
			assert.NotContains(t, rec.Body.String(), "boom", "the panic value must not reach the client")
			assert.Len(t, capture.all(), tt.wantLogs, "log records: %v", capture.all())
		})
	}
}

// TestProblemWriterGetsTheDetailsAndTheEventID: the writer gets a 500
// without detail and a request whose context carries the Reporter's event
// id, with the stale headers already gone.
func TestProblemWriterGetsTheDetailsAndTheEventID(t *testing.T) {
	var got problem.Details
	var gotID, gotCookie string
	writer := func(w http.ResponseWriter, r *http.Request, d problem.Details) {
		got, gotID, gotCookie = d, recoverer.EventID(r.Context()), w.Header().Get("Set-Cookie")
		problem.Write(w, r, d)
	}
	rep := &recordingReporter{id: "evt-42"}
	h := mustNew(t, recoverer.WithLogger(slog.New(slog.DiscardHandler)), recoverer.WithReporter(rep),
		recoverer.WithProblemWriter(writer))(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Set-Cookie", "session=half-done")
		panicNow("boom")
	}))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
	assert.Equal(t, problem.Details{Status: http.StatusInternalServerError}, got, "details")
	assert.Equal(t, "evt-42", gotID, "EventID in the writer's request context")
	assert.Empty(t, gotCookie, "stale headers removed before the writer runs")
	assert.Equal(t, http.StatusInternalServerError, rec.Code, "status")
	assert.Empty(t, recoverer.EventID(httptest.NewRequest(http.MethodGet, "/", nil).Context()), "no id outside a panic")
}

// TestNewRejectsInvalidOptions: every invalid option is an error from New
// and from NewGo, with a message that names it.
func TestNewRejectsInvalidOptions(t *testing.T) {
	tests := []struct {
		name    string
		opts    []recoverer.Option
		wantErr string
	}{
		{"nil option", []recoverer.Option{recoverer.WithLogger(slog.Default()), nil}, "recoverer: nil Option"},
		{"nil logger", []recoverer.Option{recoverer.WithLogger(nil)}, "recoverer: WithLogger: nil logger"},
		{"nil reporter", []recoverer.Option{recoverer.WithReporter(nil)}, "recoverer: WithReporter: nil Reporter"},
		{"nil problem writer", []recoverer.Option{recoverer.WithProblemWriter(nil)}, "recoverer: WithProblemWriter: nil Writer"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mw, err := recoverer.New(tt.opts...)
			assert.EqualError(t, err, tt.wantErr, "New")
			assert.Nil(t, mw, "New returns no middleware with an error")
			goSafe, err := recoverer.NewGo(tt.opts...)
			assert.EqualError(t, err, tt.wantErr, "NewGo")
			assert.Nil(t, goSafe, "NewGo returns no function with an error")
		})
	}
}

// TestReporterGetsThePanic: the Reporter gets the value, the frames from
// the culprit outwards without runtime frames, the request and the route;
// its id reaches the panic record and the access line.
func TestReporterGetsThePanic(t *testing.T) {
	capture, logger := newCapture()
	rep := &recordingReporter{id: "evt-1"}
	mux := http.NewServeMux()
	mux.Handle("GET /items/{id}", panicWith("boom"))
	h := withAccessLog(t, logger, mustNew(t, recoverer.WithLogger(logger), recoverer.WithReporter(rep))(mux))
	req := httptest.NewRequest(http.MethodGet, "/items/7", nil)
	h.ServeHTTP(httptest.NewRecorder(), req)

	reported := rep.reported()
	require.Len(t, reported, 1, "one report per panic")
	p := reported[0]
	assert.Equal(t, "boom", p.Value, "value")
	require.NotEmpty(t, p.Frames, "frames")
	assert.True(t, strings.HasSuffix(p.Frames[0].Function, "recoverer_test.panicNow"), "innermost frame %q", p.Frames[0].Function)
	for _, f := range p.Frames {
		assert.False(t, strings.HasPrefix(f.Function, "runtime."), "runtime frame kept: %s", f.Function)
	}
	require.NotNil(t, p.Request, "request")
	assert.Equal(t, "/items/7", p.Request.URL.Path, "request path")
	assert.Equal(t, "/items/{id}", p.Route, "route")

	records := capture.withMsg(msgPanic)
	require.Len(t, records, 1, "panic records")
	assert.Equal(t, "evt-1", records[0].Attrs["sentry.event_id"], "event id in the panic record")
	lines := capture.withMsg(accesslog.Message)
	require.Len(t, lines, 1, "access lines")
	assert.Equal(t, "evt-1", lines[0].Attrs["sentry.event_id"], "event id on the access line")
}

// TestReporterPanicDoesNotHideThePanic: a Reporter that panics is ignored;
// the panic is still logged and answered.
func TestReporterPanicDoesNotHideThePanic(t *testing.T) {
	capture, logger := newCapture()
	h := mustNew(t, recoverer.WithLogger(logger), recoverer.WithReporter(panickingReporter{}))(panicWith("the real bug"))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
	assert.Equal(t, http.StatusInternalServerError, rec.Code, "status")
	records := capture.withMsg(msgPanic)
	require.Len(t, records, 1, "panic records")
	assert.Equal(t, "the real bug", records[0].Attrs["panic"], "the original panic is logged")
	assert.NotContains(t, records[0].Attrs, "sentry.event_id", "no id from a reporter that failed")
}

type panickingReporter struct{}

func (panickingReporter) ReportPanic(context.Context, recoverer.Panic) string {
	panic("reporter broke")
}

// TestRouteThroughRequestCopies: the panic record and the Reporter have the
// route even when middleware between recoverer and the router copies the
// request, with reqlog.RecordRoute around the router and accesslog outside.
func TestRouteThroughRequestCopies(t *testing.T) {
	type ctxKey struct{}
	copies := []struct {
		name string
		wrap func(http.Handler) http.Handler
		path string
	}{
		{"r.WithContext", func(next http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), ctxKey{}, "user")))
			})
		}, "/items/7"},
		{"http.StripPrefix", func(next http.Handler) http.Handler { return http.StripPrefix("/api", next) }, "/api/items/7"},
		{"http.MaxBytesHandler", func(next http.Handler) http.Handler { return http.MaxBytesHandler(next, 1<<20) }, "/items/7"},
		{"http.TimeoutHandler", func(next http.Handler) http.Handler { return http.TimeoutHandler(next, time.Minute, "timeout") }, "/items/7"},
	}
	for _, tt := range copies {
		t.Run(tt.name, func(t *testing.T) {
			capture, logger := newCapture()
			rep := &recordingReporter{id: "evt"}
			mux := http.NewServeMux()
			mux.Handle("GET /items/{id}", panicWith("boom"))
			h := withAccessLog(t, logger, mustNew(t, recoverer.WithLogger(logger), recoverer.WithReporter(rep))(
				tt.wrap(reqlog.RecordRoute(mux))))
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, tt.path, nil))
			assert.Equal(t, http.StatusInternalServerError, rec.Code, "status")

			records := capture.withMsg(msgPanic)
			require.Len(t, records, 1, "panic records")
			assert.Equal(t, "/items/{id}", records[0].Attrs[reqlog.KeyRoute], "route in the panic record")
			reported := rep.reported()
			require.Len(t, reported, 1, "reports")
			assert.Equal(t, "/items/{id}", reported[0].Route, "route given to the Reporter")
		})
	}
}

// An invalid status code makes net/http panic inside WriteHeader: nothing
// was sent, so the client gets the 500, and the access line outside says so
// too (not the code that was refused).
func TestInvalidStatusCodeGets500(t *testing.T) {
	capture, logger := newCapture()
	h := withAccessLog(t, logger, mustNew(t, recoverer.WithLogger(logger))(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(1000)
	})))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
	assert.Equal(t, http.StatusInternalServerError, rec.Code, "status sent")
	require.Len(t, capture.withMsg(msgPanic), 1, "the panic is reported")
	lines := capture.withMsg(accesslog.Message)
	require.Len(t, lines, 1, "access lines")
	assert.Equal(t, "500", lines[0].Attrs[reqlog.KeyStatus], "status logged")
}
