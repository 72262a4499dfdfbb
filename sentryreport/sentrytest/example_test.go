package sentrytest_test

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/getsentry/sentry-go"

	"github.com/shipshape-go/shipshape/sentryreport/sentrytest"
)

// A real sentry-go client reports to the loopback server, which decodes
// what it receives. In a test, NewServer(t) and NewClient(t, …) do the
// setup and the cleanup.
func Example() {
	srv, err := sentrytest.Start()
	if err != nil {
		fmt.Println(err)
		return
	}
	defer srv.Close()
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	client, err := sentry.NewClient(sentry.ClientOptions{Dsn: srv.DSN(), HTTPTransport: tr})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer client.Close()
	hub := sentry.NewHub(client, sentry.NewScope())

	hub.CaptureException(errors.New("payment: card declined"))
	client.Flush(5 * time.Second) // the transport is asynchronous

	for _, ev := range srv.Events() {
		exc := ev.Exception[len(ev.Exception)-1]
		fmt.Println(exc.Type, exc.Value)
	}
	fmt.Println("decoding errors:", srv.Err())
	// Output:
	// *errors.errorString payment: card declined
	// decoding errors: <nil>
}
