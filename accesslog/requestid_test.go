package accesslog_test

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/go-chi/chi/v5/middleware"
	"github.com/stretchr/testify/require"

	"github.com/shipshape-go/shipshape/accesslog"
	"github.com/shipshape-go/shipshape/reqlog"
)

// idServer is a real loopback server: accesslog with opts around a handler
// that answers chi's middleware.GetReqID of its request and logs one
// application record through reqlog.NewHandler with the request's context.
// It returns the server and the JSON lines written so far.
func idServer(t *testing.T, opts ...accesslog.Option) (*httptest.Server, func() []map[string]any) {
	t.Helper()
	var mu sync.Mutex
	var buf bytes.Buffer
	out := writerFunc(func(p []byte) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		return buf.Write(p)
	})
	rh, err := reqlog.NewHandler(slog.NewJSONHandler(out, nil))
	require.NoError(t, err)
	logger := slog.New(rh)
	access := mustNew(t, logger, opts...)
	srv := httptest.NewServer(access(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		logger.InfoContext(r.Context(), "app")
		_, _ = io.WriteString(w, middleware.GetReqID(r.Context()))
	})))
	t.Cleanup(srv.Close)
	return srv, func() []map[string]any {
		mu.Lock()
		defer mu.Unlock()
		var lines []map[string]any
		for _, l := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
			if l == "" {
				continue
			}
			m := map[string]any{}
			require.NoError(t, json.Unmarshal([]byte(l), &m), l)
			lines = append(lines, m)
		}
		return lines
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// getID sends GET / with the headers and returns the id the handler saw.
func getID(t *testing.T, url string, header http.Header) string {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	require.NoError(t, err)
	req.Header = header
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	return string(b)
}

func isGeneratedID(id string) bool {
	if len(id) != accesslog.RequestIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		if !strings.ContainsRune("0123456789abcdefghjkmnpqrstvwxyz", rune(id[i])) {
			return false
		}
	}
	return true
}

func TestRequestIDIsChisAndTheLines(t *testing.T) {
	srv, lines := idServer(t, accesslog.WithRequestID())
	seen := map[string]bool{}
	for range 20 {
		id := getID(t, srv.URL, http.Header{"X-Request-Id": {"chosen-by-the-client"}})
		require.True(t, isGeneratedID(id), "id %q", id)
		require.False(t, seen[id], "id %q repeated", id)
		seen[id] = true
	}
	// Each request: the application record (reqlog.NewHandler reads the id
	// through chi's GetReqID) and the access line carry the handler's id.
	got := map[string]int{}
	for _, l := range lines() {
		id, _ := l[reqlog.KeyRequestID].(string)
		require.True(t, seen[id], "line %v has id %q, not one the handler saw", l, id)
		got[id]++
	}
	for id := range seen {
		require.Equal(t, 2, got[id], "lines with id %s", id)
	}
}

func TestRequestIDsUniqueUnderConcurrency(t *testing.T) {
	access := mustNew(t, slog.New(slog.NewTextHandler(io.Discard, nil)), accesslog.WithRequestID())
	var mu sync.Mutex
	seen := map[string]bool{}
	h := access(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := middleware.GetReqID(r.Context())
		mu.Lock()
		defer mu.Unlock()
		if !isGeneratedID(id) || seen[id] {
			t.Errorf("id %q invalid or repeated", id)
		}
		seen[id] = true
	}))
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 2000 {
				h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/", nil))
			}
		})
	}
	wg.Wait()
	require.Len(t, seen, 16000)
}

func TestRequestIDFromTrustedPeer(t *testing.T) {
	srv, lines := idServer(t, accesslog.WithRequestIDFrom("x-request-id", "10.0.0.0/8", "127.0.0.1"))
	require.Equal(t, "edge-4bf92f3577b34da6", getID(t, srv.URL, http.Header{"X-Request-Id": {"edge-4bf92f3577b34da6"}}))
	for _, bad := range []string{"", "has space", "quote\"ok", "tab\tid", "back\\slash", "é", strings.Repeat("a", accesslog.MaxIncomingRequestID+1)} {
		id := getID(t, srv.URL, http.Header{"X-Request-Id": {bad}})
		require.True(t, isGeneratedID(id), "value %q: got id %q, want a new one", bad, id)
	}
	longest := strings.Repeat("b", accesslog.MaxIncomingRequestID)
	require.Equal(t, longest, getID(t, srv.URL, http.Header{"X-Request-Id": {longest}}))
	require.True(t, isGeneratedID(getID(t, srv.URL, nil)))
	l := lines()
	require.Equal(t, "edge-4bf92f3577b34da6", l[1][reqlog.KeyRequestID], "the access line of the first request")
}

func TestRequestIDFromUntrustedPeerIsReplaced(t *testing.T) {
	srv, _ := idServer(t, accesslog.WithRequestIDFrom("X-Request-Id", "10.0.0.0/8", "::1"))
	id := getID(t, srv.URL, http.Header{"X-Request-Id": {"forged"}})
	require.True(t, isGeneratedID(id), "a peer outside the trusted ones set the id %q", id)
}

func TestRequestIDOptionErrors(t *testing.T) {
	for name, opt := range map[string]accesslog.Option{
		"bad header name": accesslog.WithRequestIDFrom("X Request", "127.0.0.1"),
		"empty header":    accesslog.WithRequestIDFrom("", "127.0.0.1"),
		"no peer":         accesslog.WithRequestIDFrom("X-Request-Id"),
		"bad prefix":      accesslog.WithRequestIDFrom("X-Request-Id", "10.0.0.0/33"),
		"bad address":     accesslog.WithRequestIDFrom("X-Request-Id", "localhost"),
	} {
		_, err := accesslog.New(nil, opt)
		require.Error(t, err, name)
		require.Contains(t, err.Error(), "WithRequestIDFrom", name)
	}
}

// TestRequestIDCostsOneAllocation holds the figure WithRequestID is for:
// one allocation more than accesslog without it (chi's RequestID costs
// six). The fewest of several runs counts: a GC emptying a sync.Pool can
// add one to a run.
func TestRequestIDCostsOneAllocation(t *testing.T) {
	allocs := func(opts ...accesslog.Option) float64 {
		h := mustNew(t, slog.New(accesslog.NewCombinedHandler(io.Discard, nil)), opts...)(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
		w := &discardResponse{h: http.Header{}}
		r := benchRequest()
		least := 1e9
		for range 5 {
			least = min(least, testing.AllocsPerRun(200, func() { h.ServeHTTP(w, r) }))
		}
		return least
	}
	without, with := allocs(), allocs(accesslog.WithRequestID())
	require.Equal(t, without+1, with, "allocations per request: %v without a request id, %v with", without, with)
}
