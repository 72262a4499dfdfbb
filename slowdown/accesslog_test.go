package slowdown_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/shipshape-go/shipshape/accesslog"
	"github.com/shipshape-go/shipshape/reqlog"
	"github.com/shipshape-go/shipshape/slowdown"
)

// TestAccessLog runs the Delayer inside the real accesslog middleware:
// each outcome leaves its decision, delay and status on the request's line.
func TestAccessLog(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var buf bytes.Buffer
		logged := slog.New(slog.NewJSONHandler(&buf, nil))
		slow, err := slowdown.New(1, time.Minute, slowdown.WithStep(time.Second), slowdown.WithMaxWaiting(1))
		require.NoError(t, err)
		logRequests, err := accesslog.New(logged)
		require.NoError(t, err)
		h := logRequests(slow.Handler(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})))

		lastLine := func() map[string]any {
			t.Helper()
			lines := bytes.Split(bytes.TrimSpace(buf.Bytes()), []byte("\n"))
			var rec map[string]any
			require.NoError(t, json.Unmarshal(lines[len(lines)-1], &rec), "line %q", lines[len(lines)-1])
			return rec
		}

		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/", nil))
		assert.NotContains(t, lastLine(), "slowdown", "undelayed request: nothing added")

		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/", nil))
		line := lastLine()
		assert.Equal(t, map[string]any{"policy": "slowdown", "decision": "delayed", "delay": float64(time.Second)},
			line["slowdown"], "delayed request")
		assert.EqualValues(t, 200, line["http.response.status_code"])

		// The third request (2s) waits; the client leaves. A fourth finds the
		// only waiting place taken.
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() {
			defer close(done)
			h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/", nil).WithContext(ctx))
		}()
		synctest.Wait()
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/", nil))
		line = lastLine()
		assert.Equal(t, map[string]any{"policy": "slowdown", "decision": "overflow", "delay": float64(3 * time.Second)},
			line["slowdown"], "request past MaxWaiting")
		assert.EqualValues(t, 503, line["http.response.status_code"])

		cancel()
		<-done
		line = lastLine()
		assert.Equal(t, map[string]any{"policy": "slowdown", "decision": "canceled", "delay": float64(2 * time.Second)},
			line["slowdown"], "request whose client left")
		assert.EqualValues(t, reqlog.StatusClientClosedRequest, line["http.response.status_code"])
	})
}

// TestAccessLogKeepsRoute: a delayed request is passed on with a new
// context; the route the ServeMux matched on it must still reach the line.
func TestAccessLogKeepsRoute(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var buf bytes.Buffer
		slow, err := slowdown.New(0, time.Minute, slowdown.WithStep(time.Millisecond))
		require.NoError(t, err)
		mux := http.NewServeMux()
		mux.HandleFunc("GET /items/{id}", func(http.ResponseWriter, *http.Request) {})
		logRequests, err := accesslog.New(slog.New(slog.NewJSONHandler(&buf, nil)))
		require.NoError(t, err)
		h := logRequests(slow.Handler(mux))

		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/items/42", nil))
		var line map[string]any
		require.NoError(t, json.Unmarshal(bytes.TrimSpace(buf.Bytes()), &line))
		require.Contains(t, line, "slowdown", "the request was delayed")
		assert.Equal(t, "/items/{id}", line["http.route"])
	})
}
