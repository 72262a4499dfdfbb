package recoverer_test

import (
	"io"
	"log/slog"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/shipshape-go/shipshape/recoverer"
)

// TestLateWriteNeverReachesAnotherResponse is the attack of issue 12, item
// 6, on a real server: Alice's handler leaks its ResponseWriter to a
// goroutine, returns, and her response completes; while Bob's request is in
// its handler, on another TCP connection, the goroutine writes to Alice's
// writer. The write must fail, and Bob must get exactly his own body and
// headers. Several rounds, because a reused writer comes back only when Bob's
// handler runs where Alice's left it.
func TestLateWriteNeverReachesAnotherResponse(t *testing.T) {
	quiet := slog.New(slog.DiscardHandler)
	stacks := []struct {
		name string
		wrap func(http.Handler) http.Handler
	}{
		{"recoverer", mustNew(t)},
		{"accesslog", func(h http.Handler) http.Handler { return withAccessLog(t, quiet, h) }},
		{"accesslog outside recoverer", func(h http.Handler) http.Handler {
			return withAccessLog(t, quiet, mustNew(t)(h))
		}},
		{"recoverer outside accesslog", func(h http.Handler) http.Handler {
			return mustNew(t)(withAccessLog(t, quiet, h))
		}},
	}
	for _, st := range stacks {
		for _, h2 := range []bool{false, true} {
			for _, stream := range []bool{false, true} {
				name := st.name + " HTTP1.1"
				if h2 {
					name = st.name + " HTTP2"
				}
				if stream {
					// A flushed response has no Content-Length, and bare
					// net/http then takes a late HTTP/1 write into a
					// buffer it has given back to its pool.
					name += " streamed"
				}
				t.Run(name, func(t *testing.T) { lateWriteRounds(t, st.wrap, h2, stream) })
			}
		}
	}
}

// lateWriteRounds runs the attack 20 times on one server, over HTTP/2 with
// TLS when h2 is true; Alice's handler flushes when stream is true.
func lateWriteRounds(t *testing.T, wrap func(http.Handler) http.Handler, h2, stream bool) {
	held := make(chan http.ResponseWriter, 1)
	bobWaiting := make(chan struct{}, 1)
	lateDone := make(chan struct{}, 1)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /alice", func(w http.ResponseWriter, r *http.Request) {
		held <- w // the leak: someone keeps w after the handler returns
		_, _ = io.WriteString(w, "alice\n")
		if stream {
			_ = http.NewResponseController(w).Flush()
		}
	})
	mux.HandleFunc("GET /bob", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "bob-start\n")
		bobWaiting <- struct{}{}
		select {
		case <-lateDone:
		case <-time.After(10 * time.Second): // liveness only
		}
		_, _ = io.WriteString(w, "bob-end\n")
	})
	srv, _ := startServer(t, wrap(mux), h2)
	// Two clients, so two TCP connections, as two users have.
	tr := srv.Client().Transport.(*http.Transport)
	alice := &http.Client{Transport: tr.Clone()}
	bob := &http.Client{Transport: tr.Clone()}
	t.Cleanup(alice.CloseIdleConnections)
	t.Cleanup(bob.CloseIdleConnections)

	for round := range 20 {
		res, err := alice.Get(srv.URL + "/alice")
		require.NoError(t, err, "round %d: alice", round)
		if h2 {
			require.Equal(t, 2, res.ProtoMajor, "protocol")
		}
		body, err := io.ReadAll(res.Body)
		_ = res.Body.Close()
		require.NoError(t, err, "round %d: alice's body", round)
		require.Equal(t, "alice\n", string(body), "round %d: alice's body", round)
		aliceW := <-held // Alice's handler has returned: her response is complete

		type result struct {
			body   string
			header http.Header
			err    error
		}
		bobRes := make(chan result, 1)
		go func() {
			res, err := bob.Get(srv.URL + "/bob")
			if err != nil {
				bobRes <- result{err: err}
				return
			}
			body, err := io.ReadAll(res.Body)
			_ = res.Body.Close()
			bobRes <- result{body: string(body), header: res.Header, err: err}
		}()
		select {
		case <-bobWaiting:
		case <-time.After(10 * time.Second):
			t.Fatalf("round %d: bob's handler never ran", round)
		}

		aliceW.Header().Set("X-Alice", "private")
		n, lateErr := io.WriteString(aliceW, "ALICE-PRIVATE-DATA")
		lateDone <- struct{}{}

		got := <-bobRes
		require.NoError(t, got.err, "round %d: bob", round)
		assert.Equal(t, "bob-start\nbob-end\n", got.body, "round %d: bob's body holds only his own writes", round)
		assert.Empty(t, got.header.Get("X-Alice"), "round %d: bob's headers hold nothing of alice's", round)
		assert.ErrorIs(t, lateErr, recoverer.ErrHandlerReturned, "round %d: a write after the handler returned must fail", round)
		assert.Zero(t, n, "round %d: bytes accepted by a late write", round)
		if t.Failed() {
			return
		}
	}
}
