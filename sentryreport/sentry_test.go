package sentryreport_test

import (
	"context"
	"errors"
	"io"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/getsentry/sentry-go"
	sentryhttp "github.com/getsentry/sentry-go/http"
	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/shipshape-go/shipshape/accesslog"
	"github.com/shipshape-go/shipshape/problem"
	"github.com/shipshape-go/shipshape/recoverer"
	"github.com/shipshape-go/shipshape/reqlog"
	"github.com/shipshape-go/shipshape/sentryreport"
	"github.com/shipshape-go/shipshape/sentryreport/sentrytest"
)

func TestSentryEventPerPanic(t *testing.T) {
	tests := []struct {
		name      string
		value     any
		wantType  string
		wantValue string
	}{
		{"error", errors.New("db: connection reset"), "*errors.errorString", "db: connection reset"},
		{"string", "boom", "string", "boom"},
		{"int", 42, "int", "42"},
		{"nil", nil, "*runtime.PanicNilError", "panic called with nil argument"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sentrySrv, hub := newSentry(t, sentry.ClientOptions{})
			capture, logger := newCapture()

			r := chi.NewRouter()
			r.Use(middleware.RequestID)
			r.Use(func(next http.Handler) http.Handler { return withAccessLog(t, logger, next) })
			r.Use(func(next http.Handler) http.Handler {
				return recovering(t, logger, mustReporter(t, sentryreport.WithHub(hub)), next)
			})
			r.Post("/items/{id}", panicWith(tt.value))
			srv, _ := newServer(t, r)

			req, err := http.NewRequest(http.MethodPost, srv.URL+"/items/7?q=shoes&token=tok-SECRET&Password=pw-SECRET&sessionId=sess-SECRET", strings.NewReader("body-SECRET"))
			require.NoError(t, err)
			req.Header.Set("Cookie", "sid=cookie-SECRET")
			req.Header.Set("Authorization", "Bearer auth-SECRET")
			req.Header.Set("Proxy-Authorization", "Basic proxy-SECRET")
			req.Header.Set("X-Api-Key", "apikey-SECRET")
			req.Header.Set("X-Forwarded-For", "203.0.113.9")
			req.Header.Set("User-Agent", "recoverer-test")
			res, err := srv.Client().Do(req)
			require.NoError(t, err)
			_, _ = io.Copy(io.Discard, res.Body)
			_ = res.Body.Close()
			require.Equal(t, http.StatusInternalServerError, res.StatusCode, "status")
			require.True(t, hub.Flush(flushTimeout), "Sentry flush timed out")

			events := sentrySrv.Events()
			require.Len(t, events, 1, "one event per panic, got %d", len(events))
			ev := events[0]
			require.NotEmpty(t, ev.Exception, "exception")
			exc := ev.Exception[len(ev.Exception)-1]
			assert.Equal(t, tt.wantType, exc.Type, "exception type")
			assert.Contains(t, exc.Value, tt.wantValue, "exception value")
			assert.True(t, hasFrame(exc.Stacktrace, testModule, "panicNow"), "stack trace must hold the handler frame: %+v", exc.Stacktrace)
			require.NotNil(t, exc.Mechanism, "mechanism")
			require.NotNil(t, exc.Mechanism.Handled, "mechanism.handled")
			assert.False(t, *exc.Mechanism.Handled, "a panic is unhandled")
			assert.Equal(t, sentry.LevelFatal, ev.Level, "level")
			assert.Equal(t, "POST /items/{id}", ev.Transaction, "transaction is the route")

			require.NotNil(t, ev.Request, "request")
			assert.Equal(t, http.MethodPost, ev.Request.Method, "request method")
			assert.True(t, strings.HasSuffix(ev.Request.URL, "/items/7"), "request URL %q, want the path without query", ev.Request.URL)
			assert.Contains(t, ev.Request.QueryString, "q=shoes", "harmless query kept")
			assert.Equal(t, "recoverer-test", ev.Request.Headers["User-Agent"], "harmless header kept")
			assert.Empty(t, ev.Request.Cookies, "cookies")
			assert.Empty(t, ev.Request.Data, "body")
			for _, h := range []string{"Cookie", "Authorization", "Proxy-Authorization"} {
				assert.NotContains(t, ev.Request.Headers, h, "header %s must not be sent", h)
			}
			assert.NotContains(t, ev.Request.Headers, "X-Api-Key", "a header not allowed")
			assert.NotContains(t, ev.Request.Headers, "X-Forwarded-For", "a client address header")
			raw := sentrySrv.RawEvents()
			require.Len(t, raw, 1, "raw events")
			assert.NotContains(t, string(raw[0]), "SECRET", "no secret may reach Sentry: %s", raw[0])
			assert.NotContains(t, string(raw[0]), "203.0.113.9", "no client address may reach Sentry")

			panics := capture.withMsg(msgPanic)
			require.Len(t, panics, 1, "panic records")
			reqID := panics[0].Attrs["http.request.id"]
			require.NotEmpty(t, reqID, "request id in the record")
			assert.Equal(t, reqID, ev.Tags["request_id"], "request id tag")
			assert.Equal(t, string(ev.EventID), panics[0].Attrs["sentry.event_id"], "event id in the panic record")

			lines := capture.withMsg(accesslog.Message)
			require.Len(t, lines, 1, "access lines")
			assert.Equal(t, string(ev.EventID), lines[0].Attrs["sentry.event_id"], "event id on the access line")
			assert.Contains(t, lines[0].Attrs["panic"], tt.wantValue, "panic on the access line")
			assert.Equal(t, "500", lines[0].Attrs[reqlog.KeyStatus], "access line status")
		})
	}
}

func TestSentryMidStreamPanicIsReportedOnce(t *testing.T) {
	sentrySrv, hub := newSentry(t, sentry.ClientOptions{})
	capture, logger := newCapture()
	h := recovering(t, logger, mustReporter(t, sentryreport.WithHub(hub)), http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "partial")
		http.NewResponseController(w).Flush()
		panicNow("mid-stream")
	}))
	srv, _ := newServer(t, withAccessLog(t, logger, h))
	res, err := srv.Client().Get(srv.URL)
	if err == nil {
		_, err = io.ReadAll(res.Body)
		_ = res.Body.Close()
	}
	require.Error(t, err, "the client must see the abort")
	require.True(t, hub.Flush(flushTimeout), "flush")
	events := sentrySrv.Events()
	require.Len(t, events, 1, "one event for the mid-stream panic, none for the abort")
	assert.Equal(t, "mid-stream", events[0].Exception[0].Value, "exception value")

	// accesslog sees the abort propagate and still writes the line, with
	// what recoverer added before aborting.
	lines := capture.withMsg(accesslog.Message)
	require.Len(t, lines, 1, "access lines")
	assert.Equal(t, string(events[0].EventID), lines[0].Attrs["sentry.event_id"], "event id on the access line")
	assert.Equal(t, "200", lines[0].Attrs[reqlog.KeyStatus], "the status that was sent")
	assert.Equal(t, accesslog.AbortedPanic, lines[0].Attrs[reqlog.KeyAborted], "the line says the response was aborted")
}

func TestSentryNotReportedForErrAbortHandler(t *testing.T) {
	sentrySrv, hub := newSentry(t, sentry.ClientOptions{})
	_, logger := newCapture()
	srv, _ := newServer(t, recovering(t, logger, mustReporter(t, sentryreport.WithHub(hub)), panicWith(http.ErrAbortHandler)))
	res, err := srv.Client().Get(srv.URL)
	if err == nil {
		_ = res.Body.Close()
	}
	require.Error(t, err, "aborted")
	hub.CaptureMessage("marker") // proves delivery works, and ends the wait
	require.True(t, hub.Flush(flushTimeout), "flush")
	events := sentrySrv.Events()
	require.Len(t, events, 1, "only the marker: %+v", events)
	assert.Equal(t, "marker", events[0].Message, "the one event is the marker")
}

func TestWithRequestScrubberOptsIn(t *testing.T) {
	sentrySrv, hub := newSentry(t, sentry.ClientOptions{})
	_, logger := newCapture()
	scrub := func(dst *sentry.Request, r *http.Request) {
		dst.Cookies = r.Header.Get("Cookie")
		delete(dst.Headers, "User-Agent")
	}
	h := recovering(t, logger, mustReporter(t, sentryreport.WithHub(hub), sentryreport.WithRequestScrubber(scrub)), panicWith("boom"))
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	req.Header.Set("Cookie", "theme=dark")
	req.Header.Set("User-Agent", "ua")
	h.ServeHTTP(httptest.NewRecorder(), req)
	require.True(t, hub.Flush(flushTimeout), "flush")
	events := sentrySrv.Events()
	require.Len(t, events, 1, "events")
	assert.Equal(t, "theme=dark", events[0].Request.Cookies, "cookies the scrubber opted in")
	assert.NotContains(t, events[0].Request.Headers, "User-Agent", "header the scrubber removed")
}

func TestSentryHubSelection(t *testing.T) {
	t.Run("hub in the request context", func(t *testing.T) {
		sentrySrv, hub := newSentry(t, sentry.ClientOptions{})
		_, logger := newCapture()
		h := recovering(t, logger, mustReporter(t), panicWith("ctx hub"))
		req := httptest.NewRequest(http.MethodGet, "/", nil)
		req = req.WithContext(sentry.SetHubOnContext(req.Context(), hub))
		h.ServeHTTP(httptest.NewRecorder(), req)
		require.True(t, hub.Flush(flushTimeout), "flush")
		assert.Len(t, sentrySrv.Events(), 1, "event through the context's hub")
	})
	t.Run("current hub", func(t *testing.T) {
		sentrySrv, hub := newSentry(t, sentry.ClientOptions{})
		current := sentry.CurrentHub()
		current.BindClient(hub.Client())
		t.Cleanup(func() { current.BindClient(nil) })
		capture, logger := newCapture()
		h := recovering(t, logger, mustReporter(t), panicWith("current hub"))
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/", nil))
		require.True(t, hub.Flush(flushTimeout), "flush")
		events := sentrySrv.Events()
		require.Len(t, events, 1, "event through sentry.CurrentHub()")
		assert.Equal(t, string(events[0].EventID), capture.withMsg(msgPanic)[0].Attrs["sentry.event_id"], "event id logged")
	})
	t.Run("client without DSN", func(t *testing.T) {
		client, err := sentry.NewClient(sentry.ClientOptions{Dsn: ""})
		require.NoError(t, err)
		t.Cleanup(client.Close)
		capture, logger := newCapture()
		h := recovering(t, logger, mustReporter(t, sentryreport.WithHub(sentry.NewHub(client, sentry.NewScope()))), panicWith("no dsn"))
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/", nil))
		records := capture.withMsg(msgPanic)
		require.Len(t, records, 1, "still logged")
		assert.NotContains(t, records[0].Attrs, "sentry.event_id", "no event id for an event that goes nowhere")
	})
}

func TestEventIDInProblemWriter(t *testing.T) {
	sentrySrv, hub := newSentry(t, sentry.ClientOptions{})
	_, logger := newCapture()
	page := func(w http.ResponseWriter, r *http.Request, d problem.Details) {
		w.WriteHeader(d.Status)
		_, _ = io.WriteString(w, "reference "+recoverer.EventID(r.Context()))
	}
	mw, err := recoverer.New(recoverer.WithLogger(logger),
		recoverer.WithReporter(mustReporter(t, sentryreport.WithHub(hub))), recoverer.WithProblemWriter(page))
	require.NoError(t, err)
	rec := httptest.NewRecorder()
	mw(panicWith("boom")).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
	require.True(t, hub.Flush(flushTimeout), "flush")
	events := sentrySrv.Events()
	require.Len(t, events, 1, "events")
	assert.Equal(t, "reference "+string(events[0].EventID), rec.Body.String(), "the page shows the event id")
}

// TestSentryUnavailableDoesNotDelayResponses sends panicking requests while
// Sentry refuses connections or takes 5s to answer each envelope: every
// response must still come back at once (far below the 5s), and the SDK's
// work must not grow with the number of panics (no goroutine per event).
func TestSentryUnavailableDoesNotDelayResponses(t *testing.T) {
	const requests = 50
	const limit = time.Second
	tests := []struct {
		name string
		// sentry returns the DSN and a func that stops the endpoint.
		sentry func(t testing.TB) (string, func())
	}{
		{"down", func(t testing.TB) (string, func()) { return sentrytest.ClosedDSN(t), func() {} }},
		{"slow", func(t testing.TB) (string, func()) {
			srv := sentrytest.NewServer(t, sentrytest.WithDelay(5*time.Second))
			return srv.DSN(), srv.Close
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dsn, stop := tt.sentry(t)
			client := sentrytest.NewClient(t, dsn, sentry.ClientOptions{})
			// Registered after the client, so it runs before the client's
			// cleanup: closing the client drains the SDK's queue, which
			// against a Sentry that takes 5s per envelope takes minutes.
			t.Cleanup(stop)
			hub := sentry.NewHub(client, sentry.NewScope())
			capture, logger := newCapture()
			srv, _ := newServer(t, recovering(t, logger, mustReporter(t, sentryreport.WithHub(hub)), panicWith("sentry is unwell")))
			httpClient := srv.Client()

			before := runtime.NumGoroutine()
			for i := range requests {
				start := time.Now()
				res, err := httpClient.Get(srv.URL)
				require.NoError(t, err)
				_, _ = io.Copy(io.Discard, res.Body)
				_ = res.Body.Close()
				took := time.Since(start)
				require.Less(t, took, limit, "request %d took %v: reporting must not wait for Sentry", i, took)
				require.Equal(t, http.StatusInternalServerError, res.StatusCode, "status")
			}
			assert.Len(t, capture.withMsg(msgPanic), requests, "every panic logged")
			for _, r := range capture.withMsg(msgPanic) {
				assert.NotEmpty(t, r.Attrs["sentry.event_id"], "an event id even when delivery fails")
			}
			assert.Less(t, runtime.NumGoroutine()-before, 20, "goroutines grew with the number of panics")
		})
	}
}

// TestSentryEnvelopeHoldsNoSecretAndNoClientAddress is issue 12, item 3, on
// a real server: a request with every client-address header a proxy may
// set, credentials, secret-named query parameters, a Referer and an
// X-Original-Uri with tokens, and a body, from a client on 127.0.0.2 (so
// that its address is one the envelope has no other reason to hold),
// through sentryhttp (which puts the request on the scope) to a panic. The
// envelopes the real SDK sends must hold none of it anywhere, whatever the
// client is told to collect.
func TestSentryEnvelopeHoldsNoSecretAndNoClientAddress(t *testing.T) {
	tests := []struct {
		name string
		opts sentry.ClientOptions
	}{
		{"SDK defaults", sentry.ClientOptions{}},
		// Deprecated, but still honoured by the SDK and still in use.
		{"SendDefaultPII", sentry.ClientOptions{SendDefaultPII: true}}, //lint:ignore SA1019 the old switch must not leak either
		{"DataCollection of everything", sentry.ClientOptions{DataCollection: &sentry.DataCollection{
			UserInfo: sentry.Set(true), HTTPBodies: []sentry.BodyType{sentry.BodyIncomingRequest},
		}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sentrySrv, hub := newSentry(t, tt.opts)
			_, logger := newCapture()
			app := recovering(t, logger, mustReporter(t), http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				_, _ = io.ReadAll(r.Body) // sentryhttp keeps what the handler reads
				panicNow("boom")
			}))
			h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				sentryhttp.New(sentryhttp.Options{}).Handle(app).ServeHTTP(w, r.WithContext(sentry.SetHubOnContext(r.Context(), hub)))
			})
			srv, _ := newServer(t, h)

			dialer := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}}
			tr := &http.Transport{DialContext: dialer.DialContext}
			t.Cleanup(tr.CloseIdleConnections)
			secrets := url.Values{}
			for _, name := range []string{"pass", "pw", "pwd", "password", "sid", "session", "ticket", "otp", "code", "auth", "key", "api_key", "signature", "credential", "token"} {
				secrets.Set(name, name+"-SECRET")
			}
			req, err := http.NewRequest(http.MethodPost, srv.URL+"/reset?q=shoes&"+secrets.Encode(), strings.NewReader("card=4111-SECRET"))
			require.NoError(t, err)
			for name, value := range map[string]string{
				"Referer":                    "https://shop.example/reset?token=referer-SECRET&lang=en",
				"X-Original-Uri":             "/reset?token=uri-SECRET",
				"X-Azure-ClientIP":           "203.0.113.10",
				"X-Azure-SocketIP":           "203.0.113.11",
				"X-Envoy-External-Address":   "203.0.113.12",
				"X-Client-Addr":              "203.0.113.13",
				"Remote-Addr":                "203.0.113.14",
				"X-Forwarded-For":            "203.0.113.15, 198.51.100.1",
				"Forwarded":                  "for=203.0.113.16",
				"X-Real-Ip":                  "203.0.113.17",
				"True-Client-Ip":             "203.0.113.18",
				"Cf-Connecting-Ip":           "2001:db8::18",
				"Fastly-Client-Ip":           "203.0.113.19",
				"X-Cluster-Client-Ip":        "203.0.113.20",
				"X-Appengine-User-Ip":        "203.0.113.21",
				"Cookie":                     "sid=cookie-SECRET",
				"Authorization":              "Bearer auth-SECRET",
				"Proxy-Authorization":        "Basic proxy-SECRET",
				"X-Api-Key":                  "apikey-SECRET",
				"X-Csrf-Token":               "csrf-SECRET",
				"Content-Type":               "application/x-www-form-urlencoded",
				"Accept":                     "application/json",
				"User-Agent":                 "recoverer-test",
				"X-Amzn-Oidc-Data":           "oidc-SECRET",
				"X-Forwarded-Client-Cert":    "cert-SECRET",
				"X-Ms-Client-Principal-Name": "alice@example.com",
			} {
				req.Header.Set(name, value)
			}
			res, err := (&http.Client{Transport: tr}).Do(req)
			require.NoError(t, err)
			_, _ = io.Copy(io.Discard, res.Body)
			_ = res.Body.Close()
			require.Equal(t, http.StatusInternalServerError, res.StatusCode, "status")
			require.True(t, hub.Flush(flushTimeout), "Sentry flush timed out")

			events := sentrySrv.Events()
			require.Len(t, events, 1, "events")
			ev := events[0]
			require.NotNil(t, ev.Request, "request")
			assert.Equal(t, []string{"Accept", "Content-Length", "Content-Type", "Host", "Referer", "User-Agent"},
				slices.Sorted(maps.Keys(ev.Request.Headers)), "only the allowed headers")
			assert.Equal(t, "https://shop.example/reset?token=[Filtered]&lang=en", ev.Request.Headers["Referer"], "Referer's query filtered")
			assert.Contains(t, ev.Request.QueryString, "q=shoes", "harmless query kept")
			assert.Empty(t, ev.Request.Env, "no REMOTE_ADDR")
			assert.Empty(t, ev.Request.Cookies, "no cookies")
			assert.Empty(t, ev.Request.Data, "no body")
			assert.Empty(t, ev.User.IPAddress, "no user IP")

			envelopes := sentrySrv.Envelopes()
			require.NotEmpty(t, envelopes, "envelopes")
			for _, env := range envelopes {
				raw := string(env.Raw)
				for _, leak := range []string{"SECRET", "203.0.113.", "2001:db8", "127.0.0.2", "alice@example.com", "{{auto}}"} {
					assert.NotContains(t, raw, leak, "the envelope must not hold %q: %s", leak, raw)
				}
			}
		})
	}
}

func TestWithHeaders(t *testing.T) {
	sentrySrv, hub := newSentry(t, sentry.ClientOptions{})
	_, logger := newCapture()
	rep := mustReporter(t, sentryreport.WithHub(hub),
		sentryreport.WithHeaders(" x-tenant ", "X-Original-Uri", "X-Api-Key"),
		sentryreport.WithHeaders("X-Forwarded-For"),
	)
	h := recovering(t, logger, rep, panicWith("boom"))

	req := httptest.NewRequest(http.MethodGet, "/", nil)
	req.Header.Set("X-Tenant", "acme")
	req.Header.Set("X-Original-Uri", "/reset?token=uri-SECRET&lang=en")
	req.Header.Set("X-Api-Key", "key-SECRET")
	req.Header.Set("X-Forwarded-For", "203.0.113.9")
	req.Header.Set("Authorization", "Bearer auth-SECRET")
	req.Header.Set("Cookie", "sid=cookie-SECRET")
	req.Header.Set("X-Region", "eu")
	h.ServeHTTP(httptest.NewRecorder(), req)
	require.True(t, hub.Flush(flushTimeout), "flush")
	events := sentrySrv.Events()
	require.Len(t, events, 1, "events")
	got := events[0].Request.Headers
	assert.Equal(t, "acme", got["X-Tenant"], "added header, name trimmed and case-folded")
	assert.Equal(t, "/reset?token=[Filtered]&lang=en", got["X-Original-Uri"], "added URL-valued header, query filtered")
	assert.Equal(t, "[Filtered]", got["X-Api-Key"], "added secret-looking header, value filtered")
	assert.Equal(t, "203.0.113.9", got["X-Forwarded-For"], "client address header added on purpose")
	for _, name := range []string{"Authorization", "Cookie", "X-Region"} {
		assert.NotContains(t, got, name, "header %s", name)
	}
	raw := sentrySrv.RawEvents()
	require.Len(t, raw, 1, "raw events")
	assert.NotContains(t, string(raw[0]), "SECRET", "no secret reaches Sentry")
}

// TestNewRejectsInvalidOptions: every invalid option is an error from New
// that names it; a refused header name no longer leaves New with a log
// line, and every refused name is in the error.
func TestNewRejectsInvalidOptions(t *testing.T) {
	tests := []struct {
		name    string
		opts    []sentryreport.Option
		wantErr string
	}{
		{"nil option", []sentryreport.Option{sentryreport.WithHeaders("X-Tenant"), nil}, "sentryreport: nil Option"},
		{"nil hub", []sentryreport.Option{sentryreport.WithHub(nil)}, "sentryreport: WithHub: nil hub"},
		{"nil scrubber", []sentryreport.Option{sentryreport.WithRequestScrubber(nil)}, "sentryreport: WithRequestScrubber: nil function"},
		{"empty header name", []sentryreport.Option{sentryreport.WithHeaders("")}, `sentryreport: WithHeaders: "" is not a header field name`},
		{"space in a header name", []sentryreport.Option{sentryreport.WithHeaders("X Tenant")}, `sentryreport: WithHeaders: "X Tenant" is not a header field name`},
		{"two names in one", []sentryreport.Option{sentryreport.WithHeaders("X-Tenant, X-Region")}, `sentryreport: WithHeaders: "X-Tenant, X-Region" is not a header field name`},
		{"non-ASCII", []sentryreport.Option{sentryreport.WithHeaders("Zürich")}, `sentryreport: WithHeaders: "Zürich" is not a header field name`},
		{"Authorization", []sentryreport.Option{sentryreport.WithHeaders("Authorization")}, `sentryreport: WithHeaders: "Authorization" is a credential; only WithRequestScrubber can send it`},
		{"Proxy-Authorization", []sentryreport.Option{sentryreport.WithHeaders("proxy-authorization")}, `sentryreport: WithHeaders: "proxy-authorization" is a credential; only WithRequestScrubber can send it`},
		{"Cookie", []sentryreport.Option{sentryreport.WithHeaders("cookie")}, `sentryreport: WithHeaders: "cookie" is a credential; only WithRequestScrubber can send it`},
		{"Set-Cookie", []sentryreport.Option{sentryreport.WithHeaders("Set-Cookie")}, `sentryreport: WithHeaders: "Set-Cookie" is a credential; only WithRequestScrubber can send it`},
		{"every refused name", []sentryreport.Option{sentryreport.WithHeaders("X-Ok", "X Bad"), sentryreport.WithHeaders("Cookie")},
			"sentryreport: WithHeaders: \"X Bad\" is not a header field name\n" +
				`sentryreport: WithHeaders: "Cookie" is a credential; only WithRequestScrubber can send it`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rep, err := sentryreport.New(tt.opts...)
			assert.EqualError(t, err, tt.wantErr)
			assert.Nil(t, rep, "no Reporter with an error")
		})
	}
}

// TestTransactionIsTheRouteThroughACopy is issue 13's route seam: a
// middleware between accesslog and the ServeMux copies the request
// (r.WithContext, as an authentication middleware does), and the event's
// transaction is still the route, with reqlog.RecordRoute around the mux.
func TestTransactionIsTheRouteThroughACopy(t *testing.T) {
	type userKey struct{}
	sentrySrv, hub := newSentry(t, sentry.ClientOptions{})
	_, logger := newCapture()
	mux := http.NewServeMux()
	mux.Handle("GET /items/{id}", panicWith("boom"))
	auth := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), userKey{}, "ann")))
		})
	}
	h := withAccessLog(t, logger, recovering(t, logger, mustReporter(t, sentryreport.WithHub(hub)), auth(reqlog.RecordRoute(mux))))
	srv, _ := newServer(t, h)
	res, err := srv.Client().Get(srv.URL + "/items/7")
	require.NoError(t, err)
	_ = res.Body.Close()
	require.Equal(t, http.StatusInternalServerError, res.StatusCode, "status")
	require.True(t, hub.Flush(flushTimeout), "flush")
	events := sentrySrv.Events()
	require.Len(t, events, 1, "events")
	assert.Equal(t, "GET /items/{id}", events[0].Transaction, "transaction")
}

// TestTransactionWithoutRouteIsThePath: no router matched, so the event is
// named after the path.
func TestTransactionWithoutRouteIsThePath(t *testing.T) {
	sentrySrv, hub := newSentry(t, sentry.ClientOptions{})
	_, logger := newCapture()
	h := recovering(t, logger, mustReporter(t, sentryreport.WithHub(hub)), panicWith("boom"))
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodDelete, "/carts/9", nil))
	require.True(t, hub.Flush(flushTimeout), "flush")
	events := sentrySrv.Events()
	require.Len(t, events, 1, "events")
	assert.Equal(t, "DELETE /carts/9", events[0].Transaction, "transaction")
}

// TestGoroutinePanicIsReported: recoverer.NewGo with the Reporter sends the
// goroutine's panic, with the request id of its context and no request.
func TestGoroutinePanicIsReported(t *testing.T) {
	sentrySrv, hub := newSentry(t, sentry.ClientOptions{})
	capture, logger := newCapture()
	goSafe, err := recoverer.NewGo(recoverer.WithLogger(logger), recoverer.WithReporter(mustReporter(t, sentryreport.WithHub(hub))))
	require.NoError(t, err)
	ctx := context.WithValue(context.Background(), middleware.RequestIDKey, "req-go-1")
	goSafe(ctx, func(ctx context.Context) { panicNow("background boom") })
	require.Eventually(t, func() bool { return len(capture.withMsg("panic recovered in goroutine")) == 1 },
		flushTimeout, time.Millisecond, "the goroutine's panic record")
	require.True(t, hub.Flush(flushTimeout), "flush")
	events := sentrySrv.Events()
	require.Len(t, events, 1, "events")
	ev := events[0]
	assert.Equal(t, string(ev.EventID), capture.withMsg("panic recovered in goroutine")[0].Attrs["sentry.event_id"], "event id logged")
	assert.Equal(t, "background boom", ev.Exception[0].Value, "exception value")
	assert.True(t, hasFrame(ev.Exception[0].Stacktrace, testModule, "panicNow"), "fn's frame in the event")
	assert.Equal(t, "req-go-1", ev.Tags["request_id"], "request id tag")
	assert.Nil(t, ev.Request, "no request in the event")
	assert.Empty(t, ev.Transaction, "no transaction without a request")
}
