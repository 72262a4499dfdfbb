package cluster

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/shipshape-go/shipshape/internal/testenv"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// startHTTPServe runs httpServe on a loopback listener; stop cancels its
// context and returns what it returned.
func startHTTPServe(t *testing.T, srv *http.Server, opts ...Option) (addr string, stop func() error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	c, err := newConfig(opts)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- httpServe(srv, c)(ctx, ln) }()
	stop = sync.OnceValue(func() error {
		cancel()
		return <-done
	})
	t.Cleanup(func() { _ = stop() })
	return ln.Addr().String(), stop
}

// waitRefused waits until addr refuses connections: the drain has closed
// the listener.
func waitRefused(t *testing.T, addr string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			return
		}
		c.Close()
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatal("listener still accepting 5s after the drain began")
}

// TestServeAnswersConnectionAcceptedBeforeDrain: a connection accepted
// before the drain whose request arrives during it gets its answer.
// http.Server.Shutdown alone closes such a connection without one.
func TestServeAnswersConnectionAcceptedBeforeDrain(t *testing.T) {
	accepted := make(chan struct{}, 1)
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "hello") }),
		ConnState: func(_ net.Conn, st http.ConnState) { // the program's own hook is still called
			if st == http.StateNew {
				select {
				case accepted <- struct{}{}:
				default:
				}
			}
		},
	}
	addr, stop := startHTTPServe(t, srv, WithShutdownTimeout(5*time.Second))
	conn, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer conn.Close()
	<-accepted

	stopped := make(chan error, 1)
	go func() { stopped <- stop() }()
	waitRefused(t, addr)
	_, err = io.WriteString(conn, "GET / HTTP/1.1\r\nHost: test\r\n\r\n")
	require.NoError(t, err)
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	require.NoError(t, err, "response to the request sent during the drain")
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	assert.Equal(t, http.StatusOK, resp.StatusCode, "status")
	assert.Equal(t, "hello", string(body), "body")
	// Keep-alives go off once Serve has returned, a moment after the
	// listener closed: a request read in between is answered with
	// keep-alive, and the drain then closes the idle connection. Either
	// way the connection does not outlive the drain.
	if !resp.Close {
		require.NoError(t, conn.SetReadDeadline(time.Now().Add(5*time.Second)))
		_, err := conn.Read(make([]byte, 1))
		assert.ErrorIs(t, err, io.EOF, "the drain closes the idle keep-alive connection")
	}
	assert.NoError(t, <-stopped, "httpServe")
}

// TestServeDrainTimeout: a request longer than the shutdown timeout is cut
// off, with a warning, and the worker still stops cleanly.
func TestServeDrainTimeout(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	inHandler := make(chan struct{})
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(inHandler)
		<-release
	})}
	var logs bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, nil))
	addr, stop := startHTTPServe(t, srv, WithShutdownTimeout(50*time.Millisecond), WithLogger(logger))

	reqErr := make(chan error, 1)
	go func() {
		resp, err := http.Get("http://" + addr)
		if err == nil {
			resp.Body.Close()
		}
		reqErr <- err
	}()
	<-inHandler
	assert.NoError(t, stop(), "httpServe")
	assert.Error(t, <-reqErr, "request cut off by the hard close")
	assert.Contains(t, logs.String(), "cluster: worker shutdown timed out", "log")
}

// TestServeSilentConnection: a connection that never sends a request holds
// the drain only until the server's ReadHeaderTimeout closes it, not until
// the shutdown timeout (which would log a warning and close by force).
func TestServeSilentConnection(t *testing.T) {
	accepted := make(chan struct{}, 1)
	srv := &http.Server{
		ReadHeaderTimeout: 100 * time.Millisecond,
		ConnState: func(_ net.Conn, st http.ConnState) {
			if st == http.StateNew {
				accepted <- struct{}{}
			}
		},
	}
	var logs bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, nil))
	addr, stop := startHTTPServe(t, srv, WithShutdownTimeout(time.Minute), WithLogger(logger))
	conn, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer conn.Close()
	<-accepted

	done := make(chan error, 1)
	go func() { done <- stop() }()
	select {
	case err := <-done:
		assert.NoError(t, err, "httpServe")
	case <-time.After(30 * time.Second):
		t.Fatal("drain still waiting for a silent connection 30s later (ReadHeaderTimeout 100ms)")
	}
	assert.NotContains(t, logs.String(), "timed out", "log")
}

// TestServeReturnsServeErrors: an error from srv.Serve is returned, and a
// Shutdown by the program itself ends serve without one.
func TestServeReturnsServeErrors(t *testing.T) {
	t.Run("closed listener", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		ln.Close()
		c, err := newConfig(nil)
		require.NoError(t, err)
		err = httpServe(&http.Server{}, c)(context.Background(), ln)
		assert.ErrorIs(t, err, net.ErrClosed)
	})
	t.Run("program shuts down", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		c, err := newConfig(nil)
		require.NoError(t, err)
		srv := &http.Server{}
		done := make(chan error, 1)
		go func() { done <- httpServe(srv, c)(context.Background(), ln) }()
		require.NoError(t, testenv.WaitTCP(ln.Addr().String(), 5*time.Second))
		require.NoError(t, srv.Shutdown(context.Background()))
		assert.NoError(t, <-done)
	})
}

func TestConnTracker(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	type step struct {
		conn net.Conn
		st   http.ConnState
		busy int // want after the step
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"new, active, idle, closed", []step{{a, http.StateNew, 1}, {a, http.StateActive, 1}, {a, http.StateIdle, 0}, {a, http.StateClosed, 0}}},
		{"idle, active again", []step{{a, http.StateNew, 1}, {a, http.StateIdle, 0}, {a, http.StateActive, 1}, {a, http.StateIdle, 0}}},
		{"hijacked", []step{{a, http.StateNew, 1}, {a, http.StateActive, 1}, {a, http.StateHijacked, 0}}},
		{"two connections", []step{{a, http.StateNew, 1}, {b, http.StateNew, 2}, {a, http.StateClosed, 1}, {b, http.StateActive, 1}, {b, http.StateClosed, 0}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var seen []http.ConnState
			tr := &connTracker{busy: map[net.Conn]struct{}{},
				next: func(_ net.Conn, st http.ConnState) { seen = append(seen, st) }}
			var want []http.ConnState
			for i, s := range tt.steps {
				tr.hook(s.conn, s.st)
				want = append(want, s.st)
				assert.Len(t, tr.busy, s.busy, "step %d (%v): busy connections", i+1, s.st)
			}
			assert.Equal(t, want, seen, "states passed on to the program's hook")
		})
	}
}

func TestConnTrackerWaitQuiet(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, b := net.Pipe()
		defer a.Close()
		defer b.Close()
		tr := &connTracker{busy: map[net.Conn]struct{}{}}
		tr.hook(a, http.StateNew)
		done := make(chan struct{})
		go func() {
			tr.waitQuiet(context.Background())
			close(done)
		}()
		time.Sleep(time.Second)
		synctest.Wait()
		select {
		case <-done:
			t.Fatal("waitQuiet returned while a connection was new")
		default:
		}
		tr.hook(a, http.StateActive)
		time.Sleep(time.Second)
		synctest.Wait()
		select {
		case <-done:
			t.Fatal("waitQuiet returned while a connection was active")
		default:
		}
		tr.hook(a, http.StateClosed)
		time.Sleep(10 * time.Millisecond)
		synctest.Wait()
		select {
		case <-done:
		default:
			t.Fatal("waitQuiet still waiting with no connection left")
		}
	})
	t.Run("context done", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			a, b := net.Pipe()
			defer a.Close()
			defer b.Close()
			tr := &connTracker{busy: map[net.Conn]struct{}{}}
			tr.hook(a, http.StateActive)
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			start := time.Now()
			tr.waitQuiet(ctx)
			assert.Equal(t, time.Second, time.Since(start), "waited until the deadline")
		})
	})
}
