package recoverer_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"sync"

	"github.com/shipshape-go/shipshape/recoverer"
)

// exampleLogger writes text records to stdout without the time and the
// stack, so that the output is stable.
func exampleLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(os.Stdout, &slog.HandlerOptions{
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey || a.Key == "stack" {
				return slog.Attr{}
			}
			return a
		},
	}))
}

type order struct{ Total int }

// A panicking handler behind the middleware: the client gets a problem
// response without internals, the log gets the panic.
func Example() {
	mux := http.NewServeMux()
	orders := map[string]*order{}
	mux.HandleFunc("GET /orders/{id}", func(w http.ResponseWriter, r *http.Request) {
		o := orders[r.PathValue("id")] // nil: no such order, and no check
		fmt.Fprintln(w, o.Total)
	})
	h := recoverer.New(recoverer.WithLogger(exampleLogger()))(mux)

	req := httptest.NewRequest(http.MethodGet, "/orders/42", nil)
	req.Header.Set("Accept", "application/json")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)

	fmt.Println(rec.Code, rec.Header().Get("Content-Type"))
	fmt.Print(rec.Body.String())
	// Output:
	// level=ERROR msg="panic recovered" panic="runtime error: invalid memory address or nil pointer dereference" http.request.method=GET url.path=/orders/42 http.route=/orders/{id}
	// 500 application/problem+json
	// {"type":"about:blank","title":"Internal Server Error","status":500}
}

// WithResponse replaces the default body, here with a page for browsers.
func ExampleWithResponse() {
	page := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.WriteHeader(http.StatusInternalServerError)
		// recoverer.EventID(r.Context()) is the Sentry event id, when
		// Sentry is configured: a reference the user can quote.
		_, _ = io.WriteString(w, "<h1>Something went wrong</h1>\n")
	})
	logger := slog.New(slog.DiscardHandler)
	h := recoverer.New(recoverer.WithLogger(logger), recoverer.WithResponse(page))(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
		panic("template: missing field")
	}))

	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
	fmt.Println(rec.Code)
	fmt.Print(rec.Body.String())
	// Output:
	// 500
	// <h1>Something went wrong</h1>
}

// Go runs background work whose panic is reported instead of crashing the
// process.
func ExampleGo() {
	var wg sync.WaitGroup
	wg.Add(1)
	logger := slog.New(&doneHandler{Handler: exampleLogger().Handler(), done: wg.Done})
	recoverer.Go(context.Background(), func(ctx context.Context) {
		var cache []string
		_ = cache[3] // index out of range
	}, recoverer.WithLogger(logger))
	wg.Wait()
	// Output:
	// level=ERROR msg="panic recovered in goroutine" panic="runtime error: index out of range [3] with length 0"
}

// doneHandler calls done after each record, so that the example can wait
// for the goroutine's report.
type doneHandler struct {
	slog.Handler
	done func()
}

func (h *doneHandler) Handle(ctx context.Context, r slog.Record) error {
	defer h.done()
	return h.Handler.Handle(ctx, r)
}
