package accesslog_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/trace"

	"github.com/shipshape-go/shipshape/accesslog"
	"github.com/shipshape-go/shipshape/internal/testenv"
	"github.com/shipshape-go/shipshape/logfile"
	"github.com/shipshape-go/shipshape/reqlog"
)

// serve runs one request through the middleware with a recorder and
// returns the record.
func serve(t *testing.T, h http.Handler, r *http.Request, opts ...accesslog.Option) (slog.Record, *httptest.ResponseRecorder) {
	t.Helper()
	c := &capture{}
	w := httptest.NewRecorder()
	mustNew(t, slog.New(c), opts...)(h).ServeHTTP(w, r)
	return c.only(t), w
}

func TestRecordAttributes(t *testing.T) {
	hello := func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusCreated)
		_, _ = io.WriteString(w, "hello")
	}
	tests := []struct {
		name    string
		req     func() *http.Request
		handler http.HandlerFunc
		outer   []func(http.Handler) http.Handler // chi middleware outside accesslog
		opts    []accesslog.Option
		want    map[string]any
		absent  []string
		never   []string // substrings no attribute may contain
	}{
		{
			name: "GET with query, user agent and referer",
			req: func() *http.Request {
				r := httptest.NewRequest(http.MethodGet, "/items/42?page=2&access_token=abc", nil)
				r.RemoteAddr = "192.0.2.1:41234"
				r.Header.Set("User-Agent", "curl/8.0")
				r.Header.Set("Referer", "https://example.com/")
				return r
			},
			handler: hello,
			want: map[string]any{
				reqlog.KeyMethod: "GET", reqlog.KeyPath: "/items/42",
				reqlog.KeyQuery: "page=2&access_token=REDACTED", reqlog.KeyProtocol: "1.1",
				reqlog.KeyStatus: int64(201), reqlog.KeyRequestSize: int64(0),
				reqlog.KeyResponseSize: int64(5), reqlog.KeyClient: "192.0.2.1",
				reqlog.KeyPeer: "192.0.2.1", reqlog.KeyUserAgent: "curl/8.0",
				reqlog.KeyReferer: "https://example.com/",
			},
			absent: []string{reqlog.KeyRoute, reqlog.KeyUser, reqlog.KeyRequestID, reqlog.KeyAborted, reqlog.KeyTraceID, reqlog.KeySpanID},
			never:  []string{"abc"},
		},
		{
			name: "no query, no user agent, no referer",
			req: func() *http.Request {
				r := httptest.NewRequest(http.MethodGet, "/", nil)
				r.Header.Del("User-Agent")
				return r
			},
			handler: hello,
			want:    map[string]any{reqlog.KeyPath: "/"},
			absent:  []string{reqlog.KeyQuery, reqlog.KeyUserAgent, reqlog.KeyReferer},
		},
		{
			name: "empty user agent is kept, a bare ? gives an empty query",
			req: func() *http.Request {
				r := httptest.NewRequest(http.MethodGet, "/x?", nil)
				r.Header["User-Agent"] = []string{""}
				return r
			},
			handler: hello,
			want:    map[string]any{reqlog.KeyPath: "/x", reqlog.KeyQuery: "", reqlog.KeyUserAgent: ""},
		},
		{
			name: "path is logged as sent, percent-encoding kept",
			req: func() *http.Request {
				return httptest.NewRequest(http.MethodGet, "/a%2Fb/caf%C3%A9?q=%22x%22", nil)
			},
			handler: hello,
			want:    map[string]any{reqlog.KeyPath: "/a%2Fb/caf%C3%A9", reqlog.KeyQuery: "q=%22x%22"},
		},
		{
			name: "basic auth user is not logged by default: it may be an API key",
			req: func() *http.Request {
				r := httptest.NewRequest(http.MethodGet, "/", nil)
				r.SetBasicAuth("sk_live_51Habc", "")
				return r
			},
			handler: hello,
			absent:  []string{reqlog.KeyUser},
			never:   []string{"sk_live_51Habc"},
		},
		{
			name: "basic auth user logged on opt-in, never the password",
			req: func() *http.Request {
				r := httptest.NewRequest(http.MethodGet, "/", nil)
				r.SetBasicAuth("alice", "s3cret")
				return r
			},
			handler: hello,
			opts:    []accesslog.Option{accesslog.WithBasicAuthUser(true)},
			want:    map[string]any{reqlog.KeyUser: "alice"},
			absent:  []string{"http.request.header.authorization", "http.request.header.cookie", "http.request.header.proxy-authorization"},
			never:   []string{"s3cret", "YWxpY2U6czNjcmV0"},
		},
		{
			name: "basic auth user opt-in turned off again",
			req: func() *http.Request {
				r := httptest.NewRequest(http.MethodGet, "/", nil)
				r.SetBasicAuth("alice", "s3cret")
				return r
			},
			handler: hello,
			opts:    []accesslog.Option{accesslog.WithBasicAuthUser(true), accesslog.WithBasicAuthUser(false)},
			absent:  []string{reqlog.KeyUser},
			never:   []string{"alice", "s3cret"},
		},
		{
			name: "listed request headers",
			req: func() *http.Request {
				r := httptest.NewRequest(http.MethodGet, "/", nil)
				r.Header.Add("X-Tenant", "acme")
				r.Header.Add("X-Tenant", "beta")
				r.Header.Set("Cookie", "session=topsecret")
				return r
			},
			handler: hello,
			opts:    []accesslog.Option{accesslog.WithRequestHeaders("x-tenant", "X-Missing", "X-TENANT")},
			want:    map[string]any{"http.request.header.x-tenant": "acme, beta"},
			absent:  []string{"http.request.header.cookie", "http.request.header.x-missing"},
			never:   []string{"topsecret"},
		},
		{
			name: "chi client IP and request id",
			req: func() *http.Request {
				r := httptest.NewRequest(http.MethodGet, "/", nil)
				r.RemoteAddr = "10.1.2.3:5555"
				r.Header.Set("X-Forwarded-For", "198.51.100.7")
				r.Header.Set("X-Request-Id", "req-42")
				return r
			},
			handler: hello,
			outer:   []func(http.Handler) http.Handler{middleware.ClientIPFromXFF("10.0.0.0/8"), middleware.RequestID},
			want: map[string]any{
				reqlog.KeyClient: "198.51.100.7", reqlog.KeyPeer: "10.1.2.3",
				reqlog.KeyRequestID: "req-42",
			},
		},
		{
			name: "OpenTelemetry span in the context",
			req:  func() *http.Request { return httptest.NewRequest(http.MethodGet, "/", nil) },
			outer: []func(http.Handler) http.Handler{func(next http.Handler) http.Handler {
				return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					next.ServeHTTP(w, r.WithContext(trace.ContextWithSpanContext(r.Context(), trace.NewSpanContext(trace.SpanContextConfig{
						TraceID: trace.TraceID{0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36},
						SpanID:  trace.SpanID{0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7},
					}))))
				})
			}},
			handler: hello,
			want:    map[string]any{reqlog.KeyTraceID: "4bf92f3577b34da6a3ce929d0e0e4736", reqlog.KeySpanID: "00f067aa0ba902b7"},
		},
		{
			name: "IPv6 peer",
			req: func() *http.Request {
				r := httptest.NewRequest(http.MethodGet, "/", nil)
				r.RemoteAddr = "[2001:db8::1]:443"
				return r
			},
			handler: hello,
			want:    map[string]any{reqlog.KeyClient: "2001:db8::1", reqlog.KeyPeer: "2001:db8::1"},
		},
		{
			name:    "HEAD sends no body: 0 bytes, as nginx",
			req:     func() *http.Request { return httptest.NewRequest(http.MethodHead, "/", nil) },
			handler: hello,
			want:    map[string]any{reqlog.KeyMethod: "HEAD", reqlog.KeyStatus: int64(201), reqlog.KeyResponseSize: int64(0)},
		},
		{
			name:    "handler that writes nothing: implicit 200",
			req:     func() *http.Request { return httptest.NewRequest(http.MethodGet, "/", nil) },
			handler: func(http.ResponseWriter, *http.Request) {},
			want:    map[string]any{reqlog.KeyStatus: int64(200), reqlog.KeyResponseSize: int64(0)},
		},
		{
			name: "103 Early Hints is not the final status",
			req:  func() *http.Request { return httptest.NewRequest(http.MethodGet, "/", nil) },
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(http.StatusEarlyHints)
				w.WriteHeader(http.StatusAccepted)
				w.WriteHeader(http.StatusTeapot) // ignored, as net/http does
			},
			want: map[string]any{reqlog.KeyStatus: int64(202)},
		},
		{
			name: "chunked body: the bytes the handler read",
			req: func() *http.Request {
				r := httptest.NewRequest(http.MethodPost, "/upload", io.MultiReader(strings.NewReader("0123456789")))
				r.ContentLength = -1
				return r
			},
			handler: func(w http.ResponseWriter, r *http.Request) { _, _ = io.Copy(io.Discard, r.Body) },
			want:    map[string]any{reqlog.KeyRequestSize: int64(10)},
		},
		{
			name: "Content-Length body, unread",
			req: func() *http.Request {
				return httptest.NewRequest(http.MethodPost, "/upload", strings.NewReader("0123456789abc"))
			},
			handler: func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusRequestEntityTooLarge) },
			want:    map[string]any{reqlog.KeyRequestSize: int64(13), reqlog.KeyStatus: int64(413)},
		},
		{
			name: "absolute-form target loses its userinfo",
			req: func() *http.Request {
				return httptest.NewRequest(http.MethodGet, "http://bob:hunter2@example.com/p?q=1", nil)
			},
			handler: hello,
			want:    map[string]any{reqlog.KeyPath: "/p", reqlog.KeyQuery: "q=1"},
			never:   []string{"hunter2", "bob"},
		},
		{
			name: "referer query redacted",
			req: func() *http.Request {
				r := httptest.NewRequest(http.MethodGet, "/style.css", nil)
				r.Header.Set("Referer", "https://example.com/reset?token=t0ps3cret&lang=en")
				return r
			},
			handler: hello,
			want:    map[string]any{reqlog.KeyReferer: "https://example.com/reset?token=REDACTED&lang=en"},
			never:   []string{"t0ps3cret"},
		},
		{
			name: "extra redacted names",
			req: func() *http.Request {
				return httptest.NewRequest(http.MethodGet, "/?ssn=123-45-6789&page=1", nil)
			},
			handler: hello,
			opts:    []accesslog.Option{accesslog.WithRedactQuery("SSN")},
			want:    map[string]any{reqlog.KeyQuery: "ssn=REDACTED&page=1"},
			never:   []string{"6789"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &capture{}
			var h http.Handler = mustNew(t, slog.New(c), tt.opts...)(tt.handler)
			for i := len(tt.outer) - 1; i >= 0; i-- {
				h = tt.outer[i](h)
			}
			h.ServeHTTP(httptest.NewRecorder(), tt.req())
			rec := c.only(t)
			assert.Equal(t, accesslog.Message, rec.Message)
			m := attrMap(t, rec)
			for k, want := range tt.want {
				v, ok := m[k]
				if assert.Truef(t, ok, "attribute %q missing; got %v", k, m) {
					assert.Equalf(t, want, v.Any(), "attribute %q: got %v, want %v", k, v.Any(), want)
				}
			}
			for _, k := range tt.absent {
				assert.NotContainsf(t, m, k, "attribute %q should be absent", k)
			}
			for _, s := range tt.never {
				for k, v := range m {
					assert.NotContainsf(t, v.String(), s, "attribute %q leaks %q", k, s)
				}
			}
			for _, k := range []string{reqlog.KeyDuration, reqlog.KeyTTFB} {
				assert.Equalf(t, slog.KindDuration, m[k].Kind(), "%s kind", k)
			}
		})
	}
}

// TestNewErrors: every invalid input to New is an error that names it;
// none is skipped or replaced by a default.
func TestNewErrors(t *testing.T) {
	tests := []struct {
		name string
		opts []accesslog.Option
		want string
	}{
		{"nil option", []accesslog.Option{accesslog.WithBasicAuthUser(true), nil}, "accesslog: nil option"},
		{"nil logger", []accesslog.Option{accesslog.WithLogger(nil)}, "accesslog: logger is nil"},
		{"nil skip", []accesslog.Option{accesslog.WithSkip(nil)}, "accesslog: skip function is nil"},
		{"levels in the wrong order", []accesslog.Option{accesslog.WithLevels(slog.LevelError, slog.LevelWarn, slog.LevelInfo)},
			"accesslog: levels ERROR, WARN, INFO decrease with the status; want info <= clientErr <= serverErr"},
		{"5xx below 4xx", []accesslog.Option{accesslog.WithLevels(slog.LevelInfo, slog.LevelError, slog.LevelWarn)},
			"accesslog: levels INFO, ERROR, WARN decrease with the status; want info <= clientErr <= serverErr"},
		{"empty redacted name", []accesslog.Option{accesslog.WithRedactQuery("ssn", " ")}, "accesslog: redacted query name is empty"},
		{"empty header name", []accesslog.Option{accesslog.WithRequestHeaders("")}, `accesslog: "" is not a valid header name`},
		{"header name with a space", []accesslog.Option{accesslog.WithRequestHeaders("X Tenant")}, `accesslog: "X Tenant" is not a valid header name`},
		{"header name with a colon", []accesslog.Option{accesslog.WithRequestHeaders("X-Tenant:")}, `accesslog: "X-Tenant:" is not a valid header name`},
		{"header name padded", []accesslog.Option{accesslog.WithRequestHeaders(" X-Tenant")}, `accesslog: " X-Tenant" is not a valid header name`},
		{"header name not ASCII", []accesslog.Option{accesslog.WithRequestHeaders("X-Tenänt")}, `accesslog: "X-Tenänt" is not a valid header name`},
		{"Authorization", []accesslog.Option{accesslog.WithRequestHeaders("X-Tenant", "authorization")}, "accesslog: header Authorization carries credentials and is never logged"},
		{"Proxy-Authorization", []accesslog.Option{accesslog.WithRequestHeaders("Proxy-Authorization")}, "accesslog: header Proxy-Authorization carries credentials and is never logged"},
		{"Cookie", []accesslog.Option{accesslog.WithRequestHeaders("COOKIE")}, "accesslog: header Cookie carries credentials and is never logged"},
		{"Referer", []accesslog.Option{accesslog.WithRequestHeaders("Referer")}, "accesslog: header Referer is logged as http.request.header.referer already, its query redacted"},
		{"User-Agent", []accesslog.Option{accesslog.WithRequestHeaders("user-agent")}, "accesslog: header User-Agent is logged as user_agent.original already"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mw, err := accesslog.New(slog.New(&capture{}), tt.opts...)
			assert.Nil(t, mw)
			assert.EqualError(t, err, tt.want)
		})
	}
	t.Run("equal levels are fine", func(t *testing.T) {
		_, err := accesslog.New(nil, accesslog.WithLevels(slog.LevelInfo, slog.LevelInfo, slog.LevelInfo))
		assert.NoError(t, err)
	})
}

func TestAttributeOrder(t *testing.T) {
	r := httptest.NewRequest(http.MethodGet, "/p?q=1", nil)
	r.Header.Set("Referer", "https://example.com/")
	r.Header.Set("User-Agent", "test")
	rec, _ := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reqlog.AddAttrs(r.Context(), slog.String("extra", "1"))
	}), r)
	want := []string{
		reqlog.KeyMethod, reqlog.KeyPath, reqlog.KeyQuery, reqlog.KeyProtocol,
		reqlog.KeyStatus, reqlog.KeyRequestSize, reqlog.KeyResponseSize,
		reqlog.KeyClient, reqlog.KeyPeer, reqlog.KeyUserAgent, reqlog.KeyReferer,
		reqlog.KeyDuration, reqlog.KeyTTFB, "extra",
	}
	assert.Equal(t, want, attrKeys(rec))
}

func TestLevels(t *testing.T) {
	tests := []struct {
		name   string
		status int
		opts   []accesslog.Option
		want   slog.Level
	}{
		{"200 info", 200, nil, slog.LevelInfo},
		{"302 info", 302, nil, slog.LevelInfo},
		{"404 warn", 404, nil, slog.LevelWarn},
		{"499 warn", 499, nil, slog.LevelWarn},
		{"500 error", 500, nil, slog.LevelError},
		{"503 error", 503, nil, slog.LevelError},
		{"custom info", 204, []accesslog.Option{accesslog.WithLevels(slog.LevelDebug, slog.LevelInfo, slog.LevelWarn)}, slog.LevelDebug},
		{"custom 4xx", 429, []accesslog.Option{accesslog.WithLevels(slog.LevelDebug, slog.LevelInfo, slog.LevelWarn)}, slog.LevelInfo},
		{"custom 5xx", 502, []accesslog.Option{accesslog.WithLevels(slog.LevelDebug, slog.LevelInfo, slog.LevelWarn)}, slog.LevelWarn},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec, _ := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(tt.status)
			}), httptest.NewRequest(http.MethodGet, "/", nil), tt.opts...)
			assert.Equal(t, tt.want, rec.Level, "level for %d", tt.status)
		})
	}
}

func TestLevelBelowHandlerIsNotBuilt(t *testing.T) {
	var buf strings.Builder
	logger := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelWarn}))
	h := mustNew(t, logger)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/missing" {
			http.NotFound(w, r)
		}
	}))
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/ok", nil))
	assert.Empty(t, buf.String(), "a 200 is below the Warn level of the handler")
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/missing", nil))
	assert.Contains(t, buf.String(), `"http.response.status_code":404`)
}

func TestSkip(t *testing.T) {
	c := &capture{}
	served := 0
	h := mustNew(t, slog.New(c), accesslog.WithSkip(func(r *http.Request) bool {
		return r.URL.Path == "/healthz"
	}))(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { served++ }))
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/healthz", nil))
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/api", nil))
	assert.Equal(t, 2, served, "skipped requests are still served")
	recs := c.records()
	require.Len(t, recs, 1, "only /api is logged")
	assert.Equal(t, "/api", attrMap(t, recs[0])[reqlog.KeyPath].String())
}

func TestNilLoggerUsesDefault(t *testing.T) {
	c := &capture{}
	old := slog.Default()
	slog.SetDefault(slog.New(c))
	t.Cleanup(func() { slog.SetDefault(old) })
	mustNew(t, nil)(http.NotFoundHandler()).ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/", nil))
	assert.Equal(t, int64(404), attrMap(t, c.only(t))[reqlog.KeyStatus].Int64())
}

func TestRoute(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /items/{id}", func(http.ResponseWriter, *http.Request) {})
	mux.HandleFunc("example.com/hosted/{x}", func(http.ResponseWriter, *http.Request) {})

	r := chi.NewRouter()
	c := &capture{}
	r.Use(mustNew(t, slog.New(c)))
	r.Get("/users/{id}", func(http.ResponseWriter, *http.Request) {})
	r.Route("/api", func(r chi.Router) {
		r.Get("/orders/{order}/lines/{line}", func(http.ResponseWriter, *http.Request) {})
	})

	// A middleware between accesslog and the mux that replaces the
	// request, as ratelimit does to store its decision: r.Pattern is set on
	// a copy accesslog never sees, so the handler reports it.
	type copyKey struct{}
	copying := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), copyKey{}, 1)))
		})
	}
	reporting := http.NewServeMux()
	reporting.HandleFunc("GET /r/{id}", func(w http.ResponseWriter, r *http.Request) {
		reqlog.AddAttrs(r.Context(), slog.String(reqlog.KeyRoute, r.Pattern))
	})

	tests := []struct {
		name    string
		handler func(*capture) http.Handler
		target  string
		want    string // "" for absent
	}{
		{"ServeMux method pattern", func(c *capture) http.Handler { return mustNew(t, slog.New(c))(mux) }, "/items/7", "/items/{id}"},
		{"ServeMux host pattern", func(c *capture) http.Handler { return mustNew(t, slog.New(c))(mux) }, "http://example.com/hosted/1", "/hosted/{x}"},
		{"ServeMux no match", func(c *capture) http.Handler { return mustNew(t, slog.New(c))(mux) }, "/nothing", ""},
		{"ServeMux behind a request-copying middleware, without RecordRoute", func(c *capture) http.Handler { return mustNew(t, slog.New(c))(copying(mux)) }, "/items/7", ""},
		{"handler sets the route with AddAttrs", func(c *capture) http.Handler {
			return mustNew(t, slog.New(c))(copying(reporting))
		}, "/r/1", "GET /r/{id}"},
		{"chi", func(*capture) http.Handler { return r }, "/users/9", "/users/{id}"},
		{"chi subrouter", func(*capture) http.Handler { return r }, "/api/orders/1/lines/2", "/api/orders/{order}/lines/{line}"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c.recs = nil
			own := &capture{}
			tt.handler(own).ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, tt.target, nil))
			recs := append(own.records(), c.records()...)
			require.Len(t, recs, 1)
			m := attrMap(t, recs[0])
			if tt.want == "" {
				assert.NotContains(t, m, reqlog.KeyRoute)
				return
			}
			assert.Equal(t, tt.want, m[reqlog.KeyRoute].String())
		})
	}
}

func TestAddAttrs(t *testing.T) {
	t.Run("no-op without the middleware", func(t *testing.T) {
		assert.NotPanics(t, func() {
			reqlog.AddAttrs(context.Background(), slog.String("k", "v"))
			reqlog.AddAttrs(context.Background())
		})
	})
	t.Run("added attributes follow the built-in ones", func(t *testing.T) {
		rec, _ := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			reqlog.AddAttrs(r.Context(), slog.String("tenant", "acme"), slog.Int("items", 3))
		}), httptest.NewRequest(http.MethodGet, "/", nil))
		keys := attrKeys(rec)
		require.GreaterOrEqual(t, len(keys), 2)
		assert.Equal(t, []string{"tenant", "items"}, keys[len(keys)-2:])
	})
	t.Run("an added built-in key replaces the built-in value", func(t *testing.T) {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.SetBasicAuth("basic-user", "pw")
		rec, _ := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			reqlog.AddAttrs(r.Context(), slog.String(reqlog.KeyUser, "jwt-user"))
		}), r)
		assert.Equal(t, "jwt-user", attrMap(t, rec)[reqlog.KeyUser].String())
	})
	t.Run("concurrent additions all land", func(t *testing.T) {
		const goroutines, each = 8, 50
		rec, _ := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			var wg sync.WaitGroup
			for g := range goroutines {
				wg.Go(func() {
					for i := range each {
						reqlog.AddAttrs(r.Context(), slog.Int(fmt.Sprintf("g%d.%d", g, i), i))
					}
				})
			}
			wg.Wait()
		}), httptest.NewRequest(http.MethodGet, "/", nil))
		m := attrMap(t, rec)
		for g := range goroutines {
			for i := range each {
				assert.Contains(t, m, fmt.Sprintf("g%d.%d", g, i))
			}
		}
	})
	t.Run("additions after the line was written are ignored", func(t *testing.T) {
		release := make(chan struct{})
		done := make(chan struct{})
		rec, _ := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			ctx := r.Context()
			go func() {
				defer close(done)
				<-release
				reqlog.AddAttrs(ctx, slog.String("late", "1"))
			}()
		}), httptest.NewRequest(http.MethodGet, "/", nil))
		close(release)
		<-done
		assert.NotContains(t, attrMap(t, rec), "late")
	})
}

func TestContextKeepsParentValuesAndCancellation(t *testing.T) {
	type key struct{}
	parent, cancel := context.WithCancel(context.WithValue(context.Background(), key{}, "v"))
	var got any
	var child context.Context
	h := mustNew(t, slog.New(&capture{}))(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r.Context().Value(key{})
		var stop context.CancelFunc
		child, stop = context.WithCancel(r.Context())
		_ = stop
		cancel()
	}))
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/", nil).WithContext(parent))
	assert.Equal(t, "v", got)
	select {
	case <-child.Done():
	default:
		t.Fatal("a context derived from the request context was not cancelled with its parent")
	}
	assert.ErrorIs(t, child.Err(), context.Canceled)
}

func TestPanic(t *testing.T) {
	errBoom := errors.New("boom")
	tests := []struct {
		name       string
		handler    http.HandlerFunc
		wantPanic  any
		wantStatus int64
		wantBytes  int64
		wantAbort  string
		wantLevel  slog.Level
	}{
		{
			name:       "panic before writing: 500",
			handler:    func(http.ResponseWriter, *http.Request) { panic(errBoom) },
			wantPanic:  errBoom,
			wantStatus: 500, wantAbort: accesslog.AbortedPanic, wantLevel: slog.LevelError,
		},
		{
			name: "recoverer re-panics ErrAbortHandler mid-stream: status as written",
			handler: func(w http.ResponseWriter, r *http.Request) {
				_, _ = io.WriteString(w, "partial")
				panic(http.ErrAbortHandler)
			},
			wantPanic:  http.ErrAbortHandler,
			wantStatus: 200, wantBytes: 7, wantAbort: accesslog.AbortedPanic, wantLevel: slog.LevelError,
		},
		{
			name: "recoverer inside wrote the 500: a normal line",
			handler: func(w http.ResponseWriter, r *http.Request) {
				defer func() {
					if p := recover(); p != nil {
						reqlog.AddAttrs(r.Context(), slog.Any("panic", p))
						http.Error(w, "internal error", http.StatusInternalServerError)
					}
				}()
				panic("oops")
			},
			wantStatus: 500, wantBytes: int64(len("internal error\n")), wantLevel: slog.LevelError,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &capture{}
			h := mustNew(t, slog.New(c))(tt.handler)
			var got any
			func() {
				defer func() { got = recover() }()
				h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/", nil))
			}()
			assert.Equal(t, tt.wantPanic, got, "the panic goes on unchanged")
			rec := c.only(t)
			m := attrMap(t, rec)
			assert.Equal(t, tt.wantStatus, m[reqlog.KeyStatus].Int64())
			assert.Equal(t, tt.wantBytes, m[reqlog.KeyResponseSize].Int64())
			assert.Equal(t, tt.wantLevel, rec.Level)
			if tt.wantAbort == "" {
				assert.NotContains(t, m, reqlog.KeyAborted)
			} else {
				assert.Equal(t, tt.wantAbort, m[reqlog.KeyAborted].String())
			}
		})
	}
}

func TestPanicOnRealServer(t *testing.T) {
	c := &capture{ch: make(chan slog.Record, 1)}
	srv := httptest.NewUnstartedServer(mustNew(t, slog.New(c))(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
		panic("handler bug")
	})))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // net/http logs the panic it recovers
	srv.Start()
	defer srv.Close()
	resp, err := srv.Client().Get(srv.URL)
	if err == nil {
		resp.Body.Close()
	}
	require.Error(t, err, "net/http closes the connection of a panicking handler")
	rec := waitRecord(t, c.ch)
	m := attrMap(t, rec)
	assert.Equal(t, int64(500), m[reqlog.KeyStatus].Int64())
	assert.Equal(t, accesslog.AbortedPanic, m[reqlog.KeyAborted].String())
}

func waitRecord(t *testing.T, ch <-chan slog.Record) slog.Record {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(10 * time.Second):
		t.Fatal("no access record within 10s")
		return slog.Record{}
	}
}

func TestClientDisconnect(t *testing.T) {
	c := &capture{ch: make(chan slog.Record, 1)}
	started := make(chan struct{})
	srv := httptest.NewServer(mustNew(t, slog.New(c))(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(started)
		select {
		case <-r.Context().Done():
		case <-time.After(10 * time.Second):
			t.Error("the request context was not cancelled when the client went away")
		}
	})))
	defer srv.Close()
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/slow", nil)
	require.NoError(t, err)
	errc := make(chan error, 1)
	go func() {
		resp, err := srv.Client().Do(req)
		if err == nil {
			resp.Body.Close()
		}
		errc <- err
	}()
	<-started
	cancel()
	require.Error(t, <-errc)
	rec := waitRecord(t, c.ch)
	m := attrMap(t, rec)
	assert.Equal(t, int64(reqlog.StatusClientClosedRequest), m[reqlog.KeyStatus].Int64())
	assert.Equal(t, accesslog.AbortedClientDisconnect, m[reqlog.KeyAborted].String())
	assert.Equal(t, slog.LevelWarn, rec.Level)
}

func TestDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := &capture{}
		h := mustNew(t, slog.New(c))(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			<-r.Context().Done()
		}))
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/", nil).WithContext(ctx))
		m := attrMap(t, c.only(t))
		assert.Equal(t, accesslog.AbortedTimeout, m[reqlog.KeyAborted].String())
		assert.Equal(t, time.Second, m[reqlog.KeyDuration].Duration())
	})
}

func TestDurationAndTTFB(t *testing.T) {
	tests := []struct {
		name     string
		handler  http.HandlerFunc
		ttfb     time.Duration
		duration time.Duration
	}{
		{"headers then body", func(w http.ResponseWriter, r *http.Request) {
			time.Sleep(10 * time.Millisecond)
			w.WriteHeader(http.StatusOK)
			time.Sleep(20 * time.Millisecond)
			_, _ = io.WriteString(w, "body")
		}, 10 * time.Millisecond, 30 * time.Millisecond},
		{"first write", func(w http.ResponseWriter, r *http.Request) {
			time.Sleep(5 * time.Millisecond)
			_, _ = io.WriteString(w, "a")
			time.Sleep(5 * time.Millisecond)
		}, 5 * time.Millisecond, 10 * time.Millisecond},
		{"flush", func(w http.ResponseWriter, r *http.Request) {
			time.Sleep(7 * time.Millisecond)
			w.(http.Flusher).Flush()
			time.Sleep(1 * time.Millisecond)
		}, 7 * time.Millisecond, 8 * time.Millisecond},
		{"nothing written: ttfb is the duration", func(w http.ResponseWriter, r *http.Request) {
			time.Sleep(3 * time.Millisecond)
		}, 3 * time.Millisecond, 3 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				start := time.Now()
				rec, _ := serve(t, tt.handler, httptest.NewRequest(http.MethodGet, "/", nil))
				m := attrMap(t, rec)
				assert.Equal(t, tt.ttfb, m[reqlog.KeyTTFB].Duration(), "ttfb")
				assert.Equal(t, tt.duration, m[reqlog.KeyDuration].Duration(), "duration")
				assert.True(t, rec.Time.Equal(start.Add(tt.duration)), "record time %v, want the end %v", rec.Time, start.Add(tt.duration))
			})
		})
	}
}

func TestWriteErrorsReportedOncePerInterval(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		failing := &capture{err: errors.New("no space left on device")}
		reports := &capture{}
		h := mustNew(t, slog.New(failing), accesslog.WithLogger(slog.New(reports)))(
			http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "ok") }))
		serveOK := func() {
			w := httptest.NewRecorder()
			h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/", nil))
			assert.Equal(t, "ok", w.Body.String(), "requests are served when the log fails")
		}
		for range 5 {
			serveOK()
		}
		require.Len(t, reports.records(), 1, "one report for five failures in one interval")
		time.Sleep(11 * time.Second)
		serveOK()
		recs := reports.records()
		require.Len(t, recs, 2, "a second report after the interval")
		m := attrMap(t, recs[1])
		assert.Equal(t, int64(4), m["suppressed"].Int64(), "the report counts what was suppressed")
		assert.Contains(t, m["error"].String(), "no space left")
	})
}

// The test writers below carry every combination of the optional
// interfaces.
type baseWriter struct{ h http.Header }

func (b *baseWriter) Header() http.Header         { return b.h }
func (b *baseWriter) Write(p []byte) (int, error) { return len(p), nil }
func (b *baseWriter) WriteHeader(int)             {}

type flushes struct{}

func (flushes) Flush() {}

type hijacks struct{}

func (hijacks) Hijack() (net.Conn, *bufio.ReadWriter, error) { return nil, nil, errors.New("test") }

type readsFrom struct{}

func (readsFrom) ReadFrom(r io.Reader) (int64, error) { return io.Copy(io.Discard, r) }

type pushes struct{}

func (pushes) Push(string, *http.PushOptions) error { return nil }

func TestWrapperKeepsExactlyTheOptionalInterfaces(t *testing.T) {
	b := &baseWriter{h: http.Header{}}
	f, h, r, p := flushes{}, hijacks{}, readsFrom{}, pushes{}
	writers := map[string]http.ResponseWriter{
		"none": struct{ *baseWriter }{b},
		"F": struct {
			*baseWriter
			flushes
		}{b, f},
		"H": struct {
			*baseWriter
			hijacks
		}{b, h},
		"FH": struct {
			*baseWriter
			flushes
			hijacks
		}{b, f, h},
		"R": struct {
			*baseWriter
			readsFrom
		}{b, r},
		"FR": struct {
			*baseWriter
			flushes
			readsFrom
		}{b, f, r},
		"HR": struct {
			*baseWriter
			hijacks
			readsFrom
		}{b, h, r},
		"FHR": struct {
			*baseWriter
			flushes
			hijacks
			readsFrom
		}{b, f, h, r},
		"P": struct {
			*baseWriter
			pushes
		}{b, p},
		"FP": struct {
			*baseWriter
			flushes
			pushes
		}{b, f, p},
		"HP": struct {
			*baseWriter
			hijacks
			pushes
		}{b, h, p},
		"FHP": struct {
			*baseWriter
			flushes
			hijacks
			pushes
		}{b, f, h, p},
		"RP": struct {
			*baseWriter
			readsFrom
			pushes
		}{b, r, p},
		"FRP": struct {
			*baseWriter
			flushes
			readsFrom
			pushes
		}{b, f, r, p},
		"HRP": struct {
			*baseWriter
			hijacks
			readsFrom
			pushes
		}{b, h, r, p},
		"FHRP": struct {
			*baseWriter
			flushes
			hijacks
			readsFrom
			pushes
		}{b, f, h, r, p},
	}
	require.Len(t, writers, 16)
	for name, under := range writers {
		t.Run(name, func(t *testing.T) {
			var got, unwrapped http.ResponseWriter
			mustNew(t, slog.New(&capture{}))(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				got = w
				if u, ok := w.(interface{ Unwrap() http.ResponseWriter }); ok {
					unwrapped = u.Unwrap() // while the handler runs: after it, the wrapper refuses
				}
			})).ServeHTTP(under, httptest.NewRequest(http.MethodGet, "/", nil))
			require.NotNil(t, got)
			checks := []struct {
				iface string
				has   func(any) bool
			}{
				{"http.Flusher", func(w any) bool { _, ok := w.(http.Flusher); return ok }},
				{"http.Hijacker", func(w any) bool { _, ok := w.(http.Hijacker); return ok }},
				{"io.ReaderFrom", func(w any) bool { _, ok := w.(io.ReaderFrom); return ok }},
				{"http.Pusher", func(w any) bool { _, ok := w.(http.Pusher); return ok }},
			}
			for _, c := range checks {
				assert.Equalf(t, c.has(under), c.has(got), "%s: wrapped writer has it = %v, underlying = %v", c.iface, c.has(got), c.has(under))
			}
			require.NotNil(t, unwrapped, "the wrapper has Unwrap")
			assert.Equal(t, under, unwrapped)
		})
	}
}

func TestResponseControllerThroughWrapper(t *testing.T) {
	t.Run("flush on a writer that cannot: ErrNotSupported", func(t *testing.T) {
		var err error
		mustNew(t, slog.New(&capture{}))(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			err = http.NewResponseController(w).Flush()
		})).ServeHTTP(&baseWriter{h: http.Header{}}, httptest.NewRequest(http.MethodGet, "/", nil))
		assert.ErrorIs(t, err, http.ErrNotSupported)
	})
	t.Run("flush and deadlines on a real server", func(t *testing.T) {
		c := &capture{ch: make(chan slog.Record, 1)}
		srv := httptest.NewServer(mustNew(t, slog.New(c))(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			rc := http.NewResponseController(w)
			assert.NoError(t, rc.SetWriteDeadline(time.Now().Add(time.Minute)), "SetWriteDeadline reaches the server's writer through Unwrap")
			assert.NoError(t, rc.Flush())
		})))
		defer srv.Close()
		resp, err := srv.Client().Get(srv.URL)
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, int64(200), attrMap(t, waitRecord(t, c.ch))[reqlog.KeyStatus].Int64(), "a flush commits a 200")
	})
}

func TestServerSentEventsStreamThroughWrapper(t *testing.T) {
	const events = 5
	acks := make(chan int)
	c := &capture{ch: make(chan slog.Record, 1)}
	srv := httptest.NewServer(mustNew(t, slog.New(c))(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		f, ok := w.(http.Flusher)
		if !assert.True(t, ok, "the wrapper of a server writer is a Flusher") {
			return
		}
		for i := range events {
			_, _ = fmt.Fprintf(w, "data: %d\n\n", i)
			f.Flush()
			// The next event is only sent once the client has read this
			// one: without a working flush, the test blocks here.
			select {
			case got := <-acks:
				assert.Equal(t, i, got)
			case <-time.After(10 * time.Second):
				t.Errorf("event %d was not received incrementally", i)
				return
			}
		}
	})))
	defer srv.Close()
	resp, err := srv.Client().Get(srv.URL)
	require.NoError(t, err)
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	for i := range events {
		line, err := br.ReadString('\n')
		require.NoError(t, err)
		assert.Equal(t, fmt.Sprintf("data: %d\n", i), line)
		_, err = br.ReadString('\n')
		require.NoError(t, err)
		acks <- i
	}
	rec := waitRecord(t, c.ch)
	m := attrMap(t, rec)
	assert.Equal(t, int64(200), m[reqlog.KeyStatus].Int64())
	assert.Equal(t, int64(events*len("data: 0\n\n")), m[reqlog.KeyResponseSize].Int64())
}

func TestHijackThroughWrapper(t *testing.T) {
	c := &capture{ch: make(chan slog.Record, 1)}
	srv := httptest.NewServer(mustNew(t, slog.New(c))(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hj, ok := w.(http.Hijacker)
		if !assert.True(t, ok, "the wrapper of an HTTP/1 writer is a Hijacker") {
			return
		}
		conn, brw, err := hj.Hijack()
		if !assert.NoError(t, err) {
			return
		}
		defer conn.Close()
		_, _ = brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n")
		_ = brw.Flush()
		line, err := brw.ReadString('\n')
		if assert.NoError(t, err) {
			_, _ = brw.WriteString("echo: " + line)
			_ = brw.Flush()
		}
	})))
	defer srv.Close()
	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	require.NoError(t, err)
	defer conn.Close()
	_, err = io.WriteString(conn, "GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
	require.NoError(t, err)
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	require.NoError(t, err)
	assert.Equal(t, http.StatusSwitchingProtocols, resp.StatusCode)
	_, err = io.WriteString(conn, "ping\n")
	require.NoError(t, err)
	line, err := br.ReadString('\n')
	require.NoError(t, err)
	assert.Equal(t, "echo: ping\n", line)
	m := attrMap(t, waitRecord(t, c.ch))
	assert.Equal(t, int64(101), m[reqlog.KeyStatus].Int64())
	assert.NotContains(t, m, reqlog.KeyAborted)
}

func TestReadFromThroughWrapper(t *testing.T) {
	path := filepath.Join(t.TempDir(), "payload.bin")
	payload := strings.Repeat("0123456789abcdef", 4096)
	require.NoError(t, os.WriteFile(path, []byte(payload), 0o600))
	c := &capture{ch: make(chan slog.Record, 1)}
	srv := httptest.NewServer(mustNew(t, slog.New(c))(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, ok := w.(io.ReaderFrom)
		assert.True(t, ok, "the wrapper keeps io.ReaderFrom (sendfile)")
		f, err := os.Open(path)
		if !assert.NoError(t, err) {
			return
		}
		defer f.Close()
		_, err = io.Copy(w, f)
		assert.NoError(t, err)
	})))
	defer srv.Close()
	resp, err := srv.Client().Get(srv.URL)
	require.NoError(t, err)
	got, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.NoError(t, err)
	assert.Equal(t, payload, string(got))
	assert.Equal(t, int64(len(payload)), attrMap(t, waitRecord(t, c.ch))[reqlog.KeyResponseSize].Int64())
}

func TestHTTP2(t *testing.T) {
	var buf testenv.Buffer
	var ifaces []string
	srv := httptest.NewUnstartedServer(mustNew(t, slog.New(accesslog.NewCombinedHandler(&buf, nil)))(
		http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if _, ok := w.(http.Flusher); ok {
				ifaces = append(ifaces, "Flusher")
			}
			if _, ok := w.(http.Pusher); ok {
				ifaces = append(ifaces, "Pusher")
			}
			if _, ok := w.(http.Hijacker); ok {
				ifaces = append(ifaces, "Hijacker")
			}
			_, _ = io.WriteString(w, "over h2")
		})))
	srv.EnableHTTP2 = true
	srv.StartTLS()
	defer srv.Close()
	resp, err := srv.Client().Get(srv.URL + "/h2?x=1")
	require.NoError(t, err)
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	require.Equal(t, 2, resp.ProtoMajor, "the test server speaks HTTP/2")
	line := lastLine(t, "accesslog", 1, buf.String)
	assert.Regexp(t, `^127\.0\.0\.1 - - \[[^\]]+\] "GET /h2\?x=1 HTTP/2\.0" 200 7 "-" "Go-http-client/2\.0"\n$`, line)
	assert.Equal(t, []string{"Flusher", "Pusher"}, ifaces, "an HTTP/2 writer flushes and pushes, and cannot be hijacked")
}

func TestFullDiskKeepsServing(t *testing.T) {
	if _, err := os.Stat("/dev/full"); err != nil {
		t.Skip("no /dev/full")
	}
	f, err := logfile.Open("/dev/full", logfile.WithCompression(false), logfile.WithMaxSize(0))
	require.NoError(t, err)
	defer f.Close()
	reports := &capture{}
	h := mustNew(t, slog.New(accesslog.NewCombinedHandler(f, nil)), accesslog.WithLogger(slog.New(reports)))(
		http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "served") }))
	for range 3 {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/", nil))
		assert.Equal(t, "served", w.Body.String())
	}
	recs := reports.records()
	require.Len(t, recs, 1, "one report for the interval, not one per request")
	assert.Contains(t, attrMap(t, recs[0])["error"].String(), "no space left on device")
}
