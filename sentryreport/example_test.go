package sentryreport_test

import (
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/getsentry/sentry-go"

	"github.com/shipshape-go/shipshape/cluster"
	"github.com/shipshape-go/shipshape/recoverer"
	"github.com/shipshape-go/shipshape/sentryreport"
	"github.com/shipshape-go/shipshape/sentryreport/sentrytest"
)

// exampleSentry starts a loopback Sentry and a real client reporting to
// it, bound to a hub; stop flushes the client and closes both.
func exampleSentry() (srv *sentrytest.Server, hub *sentry.Hub, stop func(), err error) {
	srv, err = sentrytest.Start()
	if err != nil {
		return nil, nil, nil, err
	}
	tr := &http.Transport{}
	client, err := sentry.NewClient(sentry.ClientOptions{Dsn: srv.DSN(), HTTPTransport: tr})
	if err != nil {
		srv.Close()
		return nil, nil, nil, err
	}
	stop = func() {
		client.Close()
		tr.CloseIdleConnections()
		srv.Close()
	}
	return srv, sentry.NewHub(client, sentry.NewScope()), stop, nil
}

// A panic behind recoverer becomes one Sentry event, named after the
// route; the secret in the query never reaches Sentry. Here the events go to
// a loopback Sentry (sentrytest) that decodes them.
func Example() {
	srv, hub, stop, err := exampleSentry()
	if err != nil {
		fmt.Println(err)
		return
	}
	defer stop()

	rep, err := sentryreport.New(sentryreport.WithHub(hub)) // without WithHub: the request's hub, else sentry.CurrentHub
	if err != nil {
		fmt.Println(err)
		return
	}
	mw, err := recoverer.New(recoverer.WithLogger(slog.New(slog.DiscardHandler)), recoverer.WithReporter(rep))
	if err != nil {
		fmt.Println(err)
		return
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /orders/{id}", func(http.ResponseWriter, *http.Request) { panic("orders: no such order") })

	req := httptest.NewRequest(http.MethodGet, "/orders/42?token=SECRET&page=2", nil)
	mw(mux).ServeHTTP(httptest.NewRecorder(), req)
	hub.Flush(5 * time.Second) // events leave asynchronously; flush at shutdown

	for _, ev := range srv.Events() {
		fmt.Println(ev.Level, ev.Transaction)
		fmt.Println(ev.Exception[0].Type, ev.Exception[0].Value)
		fmt.Println(ev.Request.Method, ev.Request.URL, ev.Request.QueryString)
	}
	// Output:
	// fatal GET /orders/{id}
	// string orders: no such order
	// GET http://example.com/orders/42 token=[Filtered]&page=2
}

// WithHeaders adds headers to the allow-list of what an event carries
// about the request; a name that looks secret has its value filtered.
func ExampleWithHeaders() {
	srv, hub, stop, err := exampleSentry()
	if err != nil {
		fmt.Println(err)
		return
	}
	defer stop()

	rep, err := sentryreport.New(sentryreport.WithHub(hub), sentryreport.WithHeaders("X-Tenant", "X-Api-Key"))
	if err != nil {
		fmt.Println(err)
		return
	}
	mw, err := recoverer.New(recoverer.WithLogger(slog.New(slog.DiscardHandler)), recoverer.WithReporter(rep))
	if err != nil {
		fmt.Println(err)
		return
	}
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	req.Header.Set("X-Tenant", "acme")
	req.Header.Set("X-Api-Key", "SECRET")
	req.Header.Set("X-Forwarded-For", "203.0.113.9") // not on the list: left out
	mw(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic("boom") })).ServeHTTP(httptest.NewRecorder(), req)
	hub.Flush(5 * time.Second)

	for _, ev := range srv.Events() {
		h := ev.Request.Headers
		fmt.Println(h["X-Tenant"], h["X-Api-Key"], h["X-Forwarded-For"] == "")
	}

	_, err = sentryreport.New(sentryreport.WithHeaders("Cookie"))
	fmt.Println(err)
	// Output:
	// acme [Filtered] true
	// sentryreport: WithHeaders: "Cookie" is a credential; only WithRequestScrubber can send it
}

// WithRequestScrubber sends on purpose what the default leaves out, here
// the client's address, or removes more.
func ExampleWithRequestScrubber() {
	srv, hub, stop, err := exampleSentry()
	if err != nil {
		fmt.Println(err)
		return
	}
	defer stop()

	scrub := func(dst *sentry.Request, r *http.Request) {
		dst.Env = map[string]string{"REMOTE_ADDR": r.RemoteAddr}
		delete(dst.Headers, "User-Agent")
	}
	rep, err := sentryreport.New(sentryreport.WithHub(hub), sentryreport.WithRequestScrubber(scrub))
	if err != nil {
		fmt.Println(err)
		return
	}
	mw, err := recoverer.New(recoverer.WithLogger(slog.New(slog.DiscardHandler)), recoverer.WithReporter(rep))
	if err != nil {
		fmt.Println(err)
		return
	}
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	req.Header.Set("User-Agent", "curl/8.0")
	mw(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic("boom") })).ServeHTTP(httptest.NewRecorder(), req)
	hub.Flush(5 * time.Second)

	for _, ev := range srv.Events() {
		fmt.Println(ev.Request.Env["REMOTE_ADDR"], ev.Request.Headers["User-Agent"] == "")
	}
	// Output:
	// 192.0.2.1:1234 true
}

// In the cluster supervisor, ReportCrash is the crash handler: each
// crashed worker becomes one event. Here a crash report, as the
// supervisor builds it, goes to a loopback Sentry (sentrytest).
func ExampleReporter_ReportCrash() {
	srv, hub, stop, err := exampleSentry()
	if err != nil {
		fmt.Println(err)
		return
	}
	defer stop()
	rep, err := sentryreport.New(sentryreport.WithHub(hub))
	if err != nil {
		fmt.Println(err)
		return
	}
	// In main: cluster.Serve(ctx, srv, cluster.WithCrashHandler(rep.ReportCrash)),
	// then sentry.Flush. The supervisor calls it with reports like this one.
	rep.ReportCrash(cluster.Crash{
		Worker: 1, PID: 4242, Reason: cluster.ReasonFatalError, Message: "fatal error: concurrent map writes",
		Goroutines: []cluster.Goroutine{{ID: 7, State: "running", Crashed: true, Frames: []cluster.Frame{
			{Function: "internal/runtime/maps.fatal", Package: "internal/runtime/maps", File: "/usr/local/go/src/runtime/panic.go", Line: 1181},
			{Function: "example.com/shop.(*Cart).add", Package: "example.com/shop", File: "/src/shop/cart.go", Line: 42, InApp: true},
		}}},
	})
	hub.Flush(5 * time.Second)

	ev := srv.Events()[0]
	ex := ev.Exception[0]
	fmt.Printf("%s: %s (worker %s, pid %s)\n", ex.Type, ex.Value, ev.Tags["worker"], ev.Tags["pid"])
	for _, f := range ex.Stacktrace.Frames {
		fmt.Printf("  %s.%s in_app=%v\n", f.Module, f.Function, f.InApp)
	}
	// Output:
	// fatal error: concurrent map writes (worker 1, pid 4242)
	//   example.com/shop.(*Cart).add in_app=true
	//   internal/runtime/maps.fatal in_app=false
}
