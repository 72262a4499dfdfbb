package recoverer_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"sync"

	"github.com/shipshape-go/shipshape/problem"
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
	mw, err := recoverer.New(recoverer.WithLogger(exampleLogger()))
	if err != nil {
		fmt.Println(err)
		return
	}
	h := mw(mux)

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

// WithProblemWriter keeps a service's own error format for the 500 of a
// panic, here with the event id as a reference the user can quote.
func ExampleWithProblemWriter() {
	apiError := func(w http.ResponseWriter, r *http.Request, d problem.Details) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(d.Status)
		_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]any{
			"code": d.Status, "reference": recoverer.EventID(r.Context()),
		}})
	}
	mw, err := recoverer.New(recoverer.WithLogger(slog.New(slog.DiscardHandler)),
		recoverer.WithReporter(printReporter{}), recoverer.WithProblemWriter(apiError))
	if err != nil {
		fmt.Println(err)
		return
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /checkout", func(http.ResponseWriter, *http.Request) { explode() })

	rec := httptest.NewRecorder()
	mw(mux).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/checkout", nil))
	fmt.Println(rec.Code)
	fmt.Print(rec.Body.String())
	// Output:
	// report: boom in github.com/shipshape-go/shipshape/recoverer_test.explode
	// report: request GET /checkout
	// 500
	// {"error":{"code":500,"reference":"evt-1"}}
}

// printReporter is a Reporter that prints what it gets; sentryreport is
// the one that sends panics to Sentry.
type printReporter struct{}

func (printReporter) ReportPanic(ctx context.Context, p recoverer.Panic) string {
	fmt.Printf("report: %v in %s\n", p.Value, p.Frames[0].Function)
	if p.Request != nil {
		fmt.Printf("report: request %s %s\n", p.Request.Method, p.Route)
	}
	return "evt-1"
}

// WithReporter hands each panic to an error tracker; its event id goes to
// the log record (and to the access line, with accesslog outside).
func ExampleWithReporter() {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /orders/{id}", func(http.ResponseWriter, *http.Request) { explode() })
	mw, err := recoverer.New(recoverer.WithLogger(exampleLogger()), recoverer.WithReporter(printReporter{}))
	if err != nil {
		fmt.Println(err)
		return
	}
	mw(mux).ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodPost, "/orders/7", nil))
	// Output:
	// report: boom in github.com/shipshape-go/shipshape/recoverer_test.explode
	// report: request POST /orders/{id}
	// level=ERROR msg="panic recovered" panic=boom http.request.method=POST url.path=/orders/7 http.route=/orders/{id} sentry.event_id=evt-1
}

//go:noinline
func explode() { panic("boom") }

//go:noinline
func lookup(cache []string, i int) string { return cache[i] }

// NewGo runs background work whose panic is reported instead of crashing
// the process, with the middleware's options.
func ExampleNewGo() {
	var wg sync.WaitGroup
	wg.Add(1)
	logger := slog.New(&doneHandler{Handler: exampleLogger().Handler(), done: wg.Done})
	goSafe, err := recoverer.NewGo(recoverer.WithLogger(logger), recoverer.WithReporter(printReporter{}))
	if err != nil {
		fmt.Println(err)
		return
	}
	goSafe(context.Background(), func(ctx context.Context) {
		lookup(nil, 3) // index out of range
	})
	wg.Wait()
	// Output:
	// report: runtime error: index out of range [3] with length 0 in github.com/shipshape-go/shipshape/recoverer_test.lookup
	// level=ERROR msg="panic recovered in goroutine" panic="runtime error: index out of range [3] with length 0" sentry.event_id=evt-1
}

// Go is NewGo without options: the record goes to slog.Default.
func ExampleGo() {
	var wg sync.WaitGroup
	wg.Add(1)
	old := slog.Default()
	slog.SetDefault(slog.New(&doneHandler{Handler: exampleLogger().Handler(), done: wg.Done}))
	defer slog.SetDefault(old)

	recoverer.Go(context.Background(), func(ctx context.Context) {
		explode()
	})
	wg.Wait()
	// Output:
	// level=ERROR msg="panic recovered in goroutine" panic=boom
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
