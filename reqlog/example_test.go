package reqlog_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"

	"go.opentelemetry.io/otel/trace"

	"github.com/shipshape-go/shipshape/accesslog"
	"github.com/shipshape-go/shipshape/reqlog"
)

// dropVarying removes the attributes that change from run to run, so that
// the examples have a fixed output.
func dropVarying(groups []string, a slog.Attr) slog.Attr {
	switch a.Key {
	case slog.TimeKey, reqlog.KeyDuration, reqlog.KeyTTFB:
		return slog.Attr{}
	}
	return a
}

func ExampleAddAttrs() {
	logger := slog.New(slog.NewTextHandler(os.Stdout, &slog.HandlerOptions{ReplaceAttr: dropVarying}))
	access, err := accesslog.New(logger)
	if err != nil {
		panic(err)
	}
	handler := access(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Any handler or middleware below accesslog can add to the line.
		reqlog.AddAttrs(r.Context(), slog.String("tenant", "acme"), slog.Int("items", 3))
		w.WriteHeader(http.StatusNoContent)
	}))
	handler.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodDelete, "/cart", nil))
	// Output:
	// level=INFO msg="http request" http.request.method=DELETE url.path=/cart network.protocol.version=1.1 http.response.status_code=204 http.request.body.size=0 http.response.body.size=0 client.address=192.0.2.1 network.peer.address=192.0.2.1 tenant=acme items=3
}

// ExampleRecordRoute: an authentication middleware between accesslog and
// the ServeMux hands the mux a copy of the request, whose Pattern
// accesslog never sees; RecordRoute around the mux brings the route back.
func ExampleRecordRoute() {
	logger := slog.New(slog.NewTextHandler(os.Stdout, &slog.HandlerOptions{ReplaceAttr: dropVarying}))
	mux := http.NewServeMux()
	mux.HandleFunc("GET /items/{id}", func(w http.ResponseWriter, r *http.Request) {})
	type userKey struct{}
	authenticate := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), userKey{}, "alice")))
		})
	}
	access, err := accesslog.New(logger)
	if err != nil {
		panic(err)
	}
	handler := access(authenticate(reqlog.RecordRoute(mux)))
	handler.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/items/7", nil))
	// Output:
	// level=INFO msg="http request" http.request.method=GET url.path=/items/7 http.route=/items/{id} network.protocol.version=1.1 http.response.status_code=200 http.request.body.size=0 http.response.body.size=0 client.address=192.0.2.1 network.peer.address=192.0.2.1
}

// ExampleNewHandler: the application's records logged within a request
// carry the request's route, client address and OpenTelemetry ids, like
// its access line (here a span context made by hand stands for
// otelhttp's server span).
func ExampleNewHandler() {
	h, err := reqlog.NewHandler(slog.NewTextHandler(os.Stdout, &slog.HandlerOptions{ReplaceAttr: dropVarying}))
	if err != nil {
		panic(err)
	}
	logger := slog.New(h)
	mux := http.NewServeMux()
	mux.HandleFunc("POST /carts/{id}", func(w http.ResponseWriter, r *http.Request) {
		logger.InfoContext(r.Context(), "cart updated", "items", 3)
	})
	access, err := accesslog.New(logger)
	if err != nil {
		panic(err)
	}
	handler := access(reqlog.RecordRoute(mux))

	sc := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID:    trace.TraceID{0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36},
		SpanID:     trace.SpanID{0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7},
		TraceFlags: trace.FlagsSampled,
	})
	r := httptest.NewRequest(http.MethodPost, "/carts/9", nil)
	r = r.WithContext(trace.ContextWithSpanContext(r.Context(), sc))
	handler.ServeHTTP(httptest.NewRecorder(), r)
	logger.Info("not in a request")
	// Output:
	// level=INFO msg="cart updated" items=3 client.address=192.0.2.1 http.route=/carts/{id} trace_id=4bf92f3577b34da6a3ce929d0e0e4736 span_id=00f067aa0ba902b7
	// level=INFO msg="http request" http.request.method=POST url.path=/carts/9 http.route=/carts/{id} network.protocol.version=1.1 http.response.status_code=200 http.request.body.size=0 http.response.body.size=0 client.address=192.0.2.1 network.peer.address=192.0.2.1 trace_id=4bf92f3577b34da6a3ce929d0e0e4736 span_id=00f067aa0ba902b7
	// level=INFO msg="not in a request"
}

func ExampleAppendTrace() {
	sc := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: trace.TraceID{0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36},
		SpanID:  trace.SpanID{0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7},
	})
	ctx := trace.ContextWithSpanContext(context.Background(), sc)
	fmt.Println(reqlog.AppendTrace(nil, ctx))
	fmt.Println(reqlog.AppendTrace(nil, context.Background()))
	// Output:
	// [trace_id=4bf92f3577b34da6a3ce929d0e0e4736 span_id=00f067aa0ba902b7]
	// []
}
