package sentryreport_test

import (
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/getsentry/sentry-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/shipshape-go/shipshape/sentryreport"
	"github.com/shipshape-go/shipshape/sentryreport/sentrytest"
)

// TestThousandConcurrentPanics fires 1,000 panicking requests at once at a
// real server reporting to a real Sentry client: every one must get its 500,
// the server must keep serving, each panic must be logged once, and once the
// client is flushed and closed no goroutine may be left behind.
func TestThousandConcurrentPanics(t *testing.T) {
	// Registered first, so it runs last: after the Sentry client, its
	// transport and both servers are closed. Nothing is ignored.
	t.Cleanup(func() { goleak.VerifyNone(t) })

	const n = 1000
	sentrySrv := sentrytest.NewServer(t)
	client := sentrytest.NewClient(t, sentrySrv.DSN(), sentry.ClientOptions{})
	hub := sentry.NewHub(client, sentry.NewScope())
	capture, logger := newCapture()

	mux := http.NewServeMux()
	mux.Handle("GET /panic", panicWith("under load"))
	mux.HandleFunc("GET /ok", func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "ok") })
	srv, errLog := newServer(t, recovering(t, logger, mustReporter(t, sentryreport.WithHub(hub)), mux))
	tr := &http.Transport{MaxIdleConnsPerHost: 64}
	t.Cleanup(tr.CloseIdleConnections)
	httpClient := &http.Client{Transport: tr}

	var wg sync.WaitGroup
	var got500, failed atomic.Int32
	start := make(chan struct{})
	for range n {
		wg.Go(func() {
			<-start
			res, err := httpClient.Get(srv.URL + "/panic")
			if err != nil {
				failed.Add(1)
				return
			}
			_, _ = io.Copy(io.Discard, res.Body)
			_ = res.Body.Close()
			if res.StatusCode == http.StatusInternalServerError {
				got500.Add(1)
			}
		})
	}
	close(start)
	wg.Wait()
	require.Zero(t, failed.Load(), "requests that failed outright")
	assert.EqualValues(t, n, got500.Load(), "500 responses")

	res, err := httpClient.Get(srv.URL + "/ok")
	require.NoError(t, err, "the server must keep serving")
	body, _ := io.ReadAll(res.Body)
	_ = res.Body.Close()
	assert.Equal(t, http.StatusOK, res.StatusCode, "status after the storm")
	assert.Equal(t, "ok", string(body), "body after the storm")

	assert.Len(t, capture.withMsg(msgPanic), n, "one record per panic")
	assert.Empty(t, errLog.String(), "net/http logged nothing")

	require.True(t, client.Flush(flushTimeout), "flush")
	events := sentrySrv.Events()
	// The SDK buffers a bounded number of error events (drop-oldest) while
	// its single sender works: some may be dropped, none duplicated.
	assert.NotEmpty(t, events, "events delivered")
	assert.LessOrEqual(t, len(events), n, "at most one event per panic")
	seen := map[sentry.EventID]bool{}
	for _, ev := range events {
		assert.False(t, seen[ev.EventID], "event %s delivered twice", ev.EventID)
		seen[ev.EventID] = true
	}
	t.Logf("%d panics, %d events delivered", n, len(events))
}
