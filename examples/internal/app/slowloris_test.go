package app

import (
	"context"
	"io"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/shipshape-go/shipshape/internal/loadgen"
)

// TestSlowloris holds 1,000 connections that trickle their headers one
// byte a second (from ten loopback addresses, under the per-IP connection
// cap) while a normal client keeps requesting: the normal requests are
// answered promptly, and every slow connection is closed by the
// ReadHeaderTimeout, not earlier by anything else.
func TestSlowloris(t *testing.T) {
	if testing.Short() {
		t.Skip("holds 1,000 connections for several seconds")
	}
	const (
		slow          = 1000
		headerTimeout = 2 * time.Second
	)
	cfg := testConfig(t, "-rate-limit", "1000000", "-slow-after", "0", "-log-format", "none",
		"-read-header-timeout", headerTimeout.String())
	srv := start(t, cfg)
	addr := srv.base[len("http://"):]

	type conn struct {
		c      net.Conn
		opened time.Time
		closed atomic.Int64 // ns since opened; 0 while open
	}
	conns := make([]*conn, 0, slow)
	var readers sync.WaitGroup
	for i := range slow {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(10+i%10))}, Timeout: 5 * time.Second}
		c, err := d.Dial("tcp", addr)
		require.NoError(t, err, "slow connection %d", i)
		_, err = io.WriteString(c, "GET /api/hello HTTP/1.1\r\nHost: example\r\nX-Slow-"+strconv.Itoa(i)+": ")
		require.NoError(t, err)
		sc := &conn{c: c, opened: time.Now()}
		conns = append(conns, sc)
		readers.Add(1)
		go func() {
			defer readers.Done()
			_, _ = io.Copy(io.Discard, c) // returns when the server closes
			sc.closed.Store(int64(time.Since(sc.opened)))
		}()
	}
	t.Cleanup(func() {
		for _, c := range conns {
			c.c.Close()
		}
		readers.Wait()
	})
	// Trickle: one byte a second on every open connection.
	ctx, cancel := context.WithCancel(context.Background())
	var trickle sync.WaitGroup
	trickle.Add(1)
	go func() {
		defer trickle.Done()
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				for _, c := range conns {
					if c.closed.Load() == 0 {
						_, _ = c.c.Write([]byte("x"))
					}
				}
			}
		}
	}()

	// Meanwhile a normal client, from another address, at 100 req/s.
	res, err := loadgen.Run(context.Background(), loadgen.Config{
		URL: srv.base + "/api/hello", Concurrency: 4, Rate: 100, Duration: headerTimeout + time.Second,
		LocalAddr: net.IPv4(127, 0, 0, 2),
	})
	require.NoError(t, err)
	t.Logf("normal client during the slowloris: %s", res)
	assert.Zero(t, res.Failed(), "every normal request answered: %v", res.ErrorSamples)
	assert.Greater(t, res.Requests, int64(200))
	// A server the slow connections held up would answer after they are
	// closed, a header timeout later: half of it tells the two apart
	// however loaded the machine is (a tighter bound timed the machine).
	assert.Less(t, res.P99, headerTimeout/2, "normal requests are not held up by the slow connections")

	// Every slow connection is closed by the header timeout.
	deadline := time.Now().Add(headerTimeout + 5*time.Second)
	for _, c := range conns {
		for c.closed.Load() == 0 && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
	}
	cancel()
	trickle.Wait()
	early, open := 0, 0
	var latest time.Duration
	for _, c := range conns {
		d := time.Duration(c.closed.Load())
		switch {
		case d == 0:
			open++
		case d < headerTimeout-200*time.Millisecond:
			early++
		}
		latest = max(latest, d)
	}
	t.Logf("slow connections closed after at most %v", latest)
	assert.Zero(t, open, "slow connections still open after the header timeout")
	assert.Zero(t, early, "slow connections closed before the header timeout (by what?)")
}
