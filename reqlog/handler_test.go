package reqlog_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/trace"

	"github.com/shipshape-go/shipshape/accesslog"
	"github.com/shipshape-go/shipshape/reqlog"
)

// The span of the tests: a valid OpenTelemetry span context, as otelhttp
// would put in the request's context (no SDK needed to make one).
var (
	traceID = trace.TraceID{0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36}
	spanID  = trace.SpanID{0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7}
)

// at is the time of records made by hand.
var at = time.Date(2024, 3, 5, 9, 4, 5, 0, time.UTC)

const (
	traceHex = "4bf92f3577b34da6a3ce929d0e0e4736"
	spanHex  = "00f067aa0ba902b7"
)

func withSpan(ctx context.Context) context.Context {
	return trace.ContextWithSpanContext(ctx, trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: traceID, SpanID: spanID, TraceFlags: trace.FlagsSampled,
	}))
}

// spanMiddleware puts the test span in the request's context, where
// otelhttp puts its server span.
func spanMiddleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		next.ServeHTTP(w, r.WithContext(withSpan(r.Context())))
	})
}

type userKey struct{}

func newHandler(t *testing.T, h slog.Handler) slog.Handler {
	t.Helper()
	rh, err := reqlog.NewHandler(h)
	require.NoError(t, err)
	return rh
}

// records decodes the JSON lines in buf, and fails on a key that appears
// twice in a line (json.Unmarshal would keep the last silently).
func records(t *testing.T, buf *bytes.Buffer) []map[string]any {
	t.Helper()
	var out []map[string]any
	for line := range strings.Lines(buf.String()) {
		var m map[string]any
		require.NoError(t, json.Unmarshal([]byte(line), &m), "line %q", line)
		for k := range m {
			assert.Equalf(t, 1, strings.Count(line, `"`+k+`":`), "key %q once in %s", k, line)
		}
		out = append(out, m)
	}
	return out
}

func TestNewHandlerNil(t *testing.T) {
	var nilJSON *slog.JSONHandler
	for name, h := range map[string]slog.Handler{"nil": nil, "typed nil": nilJSON} {
		t.Run(name, func(t *testing.T) {
			got, err := reqlog.NewHandler(h)
			assert.Nil(t, got)
			assert.EqualError(t, err, "reqlog: handler is nil")
		})
	}
}

// TestNewHandlerInsideRequests logs an application record in the handler
// of each router, through accesslog (with the same logger) inside the
// span's middleware (otelhttp's place), and checks that the record carries the request's
// keys with the values of the access line, and that the access line has
// each key once.
func TestNewHandlerInsideRequests(t *testing.T) {
	item := func(w http.ResponseWriter, r *http.Request) {
		slog.InfoContext(r.Context(), "cart updated", "items", 3)
		w.WriteHeader(http.StatusNoContent)
	}
	routers := map[string]func(access func(http.Handler) http.Handler) http.Handler{
		"ServeMux": func(access func(http.Handler) http.Handler) http.Handler {
			mux := http.NewServeMux()
			mux.HandleFunc("POST /carts/{id}", item)
			// An authentication middleware's copy of the request between
			// accesslog and the ServeMux: RecordRoute gets the route
			// through it.
			authenticate := func(next http.Handler) http.Handler {
				return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), userKey{}, "alice")))
				})
			}
			return spanMiddleware(access(authenticate(reqlog.RecordRoute(mux))))
		},
		"chi": func(access func(http.Handler) http.Handler) http.Handler {
			r := chi.NewRouter()
			r.Use(spanMiddleware, access)
			r.Post("/carts/{id}", item)
			return r
		},
	}
	for name, build := range routers {
		t.Run(name, func(t *testing.T) {
			var buf bytes.Buffer
			logger := slog.New(newHandler(t, slog.NewJSONHandler(&buf, nil)))
			old := slog.Default()
			slog.SetDefault(logger)
			t.Cleanup(func() { slog.SetDefault(old) })

			access, err := accesslog.New(nil) // slog.Default(): the same logger
			require.NoError(t, err)
			h := middleware.RequestID(build(access))
			r := httptest.NewRequest(http.MethodPost, "/carts/9", nil)
			r.RemoteAddr = "203.0.113.7:41000"
			r.Header.Set("X-Request-Id", "req-1")
			h.ServeHTTP(httptest.NewRecorder(), r)

			recs := records(t, &buf)
			require.Len(t, recs, 2)
			app, line := recs[0], recs[1]
			assert.Equal(t, "cart updated", app["msg"])
			assert.Equal(t, accesslog.Message, line["msg"])
			for key, want := range map[string]any{
				reqlog.KeyRequestID: "req-1",
				reqlog.KeyClient:    "203.0.113.7",
				reqlog.KeyRoute:     "/carts/{id}",
				reqlog.KeyTraceID:   traceHex,
				reqlog.KeySpanID:    spanHex,
			} {
				assert.Equalf(t, want, app[key], "%s of the application record %v", key, app)
				assert.Equalf(t, want, line[key], "%s of the access line %v", key, line)
			}
			assert.EqualValues(t, 3, app["items"])
		})
	}
}

func TestNewHandlerAddsWhatTheContextHas(t *testing.T) {
	chiIP := func(ctx context.Context) context.Context {
		var got context.Context
		r := httptest.NewRequest(http.MethodGet, "/", nil).WithContext(ctx)
		r.RemoteAddr = "10.0.0.1:1"
		r.Header.Set("X-Forwarded-For", "198.51.100.2")
		middleware.ClientIPFromXFF("10.0.0.0/8")(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
			got = r.Context()
		})).ServeHTTP(httptest.NewRecorder(), r)
		return got
	}
	entry := func(peer string) context.Context {
		e := &reqlog.Entry{}
		e.SetPeer(peer)
		return reqlog.NewContext(context.Background(), e)
	}
	tests := []struct {
		name   string
		ctx    context.Context
		log    func(l *slog.Logger, ctx context.Context)
		want   map[string]any
		absent []string
	}{
		{
			name:   "no context",
			ctx:    nil,
			log:    func(l *slog.Logger, _ context.Context) { l.Info("plain") },
			absent: []string{reqlog.KeyRequestID, reqlog.KeyClient, reqlog.KeyRoute, reqlog.KeyTraceID, reqlog.KeySpanID},
		},
		{
			name:   "a context with nothing of a request",
			ctx:    context.Background(),
			absent: []string{reqlog.KeyRequestID, reqlog.KeyClient, reqlog.KeyRoute, reqlog.KeyTraceID, reqlog.KeySpanID},
		},
		{
			name:   "a span, outside any request",
			ctx:    withSpan(context.Background()),
			want:   map[string]any{reqlog.KeyTraceID: traceHex, reqlog.KeySpanID: spanHex},
			absent: []string{reqlog.KeyClient},
		},
		{
			name:   "an invalid span context is not a span",
			ctx:    trace.ContextWithSpanContext(context.Background(), trace.NewSpanContext(trace.SpanContextConfig{SpanID: spanID})),
			absent: []string{reqlog.KeyTraceID, reqlog.KeySpanID},
		},
		{
			name: "the peer accesslog recorded",
			ctx:  entry("192.0.2.9"),
			want: map[string]any{reqlog.KeyClient: "192.0.2.9"},
		},
		{
			name: "chi's client IP comes before the peer",
			ctx:  chiIP(entry("10.0.0.1")),
			want: map[string]any{reqlog.KeyClient: "198.51.100.2"},
		},
		{
			name: "the record's own key wins",
			ctx:  withSpan(entry("192.0.2.9")),
			log: func(l *slog.Logger, ctx context.Context) {
				l.InfoContext(ctx, "msg", reqlog.KeyClient, "mine", reqlog.KeyTraceID, "t")
			},
			want: map[string]any{reqlog.KeyClient: "mine", reqlog.KeyTraceID: "t", reqlog.KeySpanID: spanHex},
		},
		{
			name: "the logger's own key wins",
			ctx:  withSpan(entry("192.0.2.9")),
			log: func(l *slog.Logger, ctx context.Context) {
				l.With(reqlog.KeySpanID, "s").InfoContext(ctx, "msg")
			},
			want: map[string]any{reqlog.KeySpanID: "s", reqlog.KeyTraceID: traceHex, reqlog.KeyClient: "192.0.2.9"},
		},
		{
			name: "an inlined group counts as the record's own",
			ctx:  entry("192.0.2.9"),
			log: func(l *slog.Logger, ctx context.Context) {
				l.InfoContext(ctx, "msg", slog.Group("", slog.String(reqlog.KeyClient, "inline")))
			},
			want: map[string]any{reqlog.KeyClient: "inline"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			l := slog.New(newHandler(t, slog.NewJSONHandler(&buf, nil)))
			if tt.log == nil {
				l.InfoContext(tt.ctx, "msg")
			} else {
				tt.log(l, tt.ctx)
			}
			recs := records(t, &buf)
			require.Len(t, recs, 1)
			for k, want := range tt.want {
				assert.Equalf(t, want, recs[0][k], "%s in %v", k, recs[0])
			}
			for _, k := range tt.absent {
				assert.NotContainsf(t, recs[0], k, "in %v", recs[0])
			}
		})
	}
}

// TestNewHandlerKeepsRequestKeysOutsideGroups: under logger.WithGroup the
// request's keys stay at the top level, where queries look for them, and
// the logger's attributes after the group stay in it.
func TestNewHandlerKeepsRequestKeysOutsideGroups(t *testing.T) {
	var buf bytes.Buffer
	e := &reqlog.Entry{}
	e.SetPeer("192.0.2.9")
	ctx := withSpan(reqlog.NewContext(context.Background(), e))
	l := slog.New(newHandler(t, slog.NewJSONHandler(&buf, nil))).With("service", "cart")
	l.WithGroup("db").With("table", "items").WithGroup("query").InfoContext(ctx, "slow", "ms", 120)
	l.WithGroup("db").InfoContext(context.Background(), "no request")

	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	require.Len(t, lines, 2)
	assert.Regexp(t, `^\{"time":"[^"]+","level":"INFO","msg":"slow","service":"cart","client.address":"192.0.2.9","trace_id":"`+traceHex+`","span_id":"`+spanHex+`","db":\{"table":"items","query":\{"ms":120\}\}\}$`, lines[0])
	assert.Regexp(t, `^\{"time":"[^"]+","level":"INFO","msg":"no request","service":"cart"\}$`, lines[1])
}

// TestNewHandlerDoesNotChangeTheCallersRecord: the attributes are added to
// a copy; a handler beside it (fan-out) gets the record as it was.
func TestNewHandlerDoesNotChangeTheCallersRecord(t *testing.T) {
	var wrapped, plain bytes.Buffer
	ctx := withSpan(context.Background())
	r := slog.NewRecord(at, slog.LevelInfo, "m", 0)
	r.AddAttrs(slog.Int("a", 1), slog.Int("b", 2), slog.Int("c", 3), slog.Int("d", 4), slog.Int("e", 5), slog.Int("f", 6))
	require.NoError(t, newHandler(t, slog.NewJSONHandler(&wrapped, nil)).Handle(ctx, r))
	require.NoError(t, slog.NewJSONHandler(&plain, nil).Handle(ctx, r))
	assert.Contains(t, wrapped.String(), `"f":6,"trace_id":"`+traceHex+`","span_id":"`+spanHex+`"}`)
	assert.NotContains(t, plain.String(), "trace_id")
	assert.NotContains(t, plain.String(), "BUG")
}

func TestNewHandlerEnabled(t *testing.T) {
	h := newHandler(t, slog.NewJSONHandler(&bytes.Buffer{}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	assert.False(t, h.Enabled(context.Background(), slog.LevelInfo))
	assert.True(t, h.Enabled(context.Background(), slog.LevelWarn))
}
