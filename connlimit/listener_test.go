package connlimit

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

// llCounts is the listener's bookkeeping, read under its lock.
func llCounts(l *Listener) (open, peers int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.open, len(l.peers)
}

// llServe accepts from ln until it is closed; each accepted connection gets
// "ok\n" and is held until the client closes it. It returns the number of
// connections accepted and waits for every handler when wait is called.
func llServe(t *testing.T, ln net.Listener) (accepted *atomic.Int64, wait func()) {
	t.Helper()
	accepted = &atomic.Int64{}
	var handlers, loop sync.WaitGroup
	loop.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				if !errors.Is(err, net.ErrClosed) {
					t.Errorf("Accept returned %v; want only net.ErrClosed, after Close", err)
				}
				return
			}
			accepted.Add(1)
			handlers.Go(func() {
				defer c.Close()
				if _, err := io.WriteString(c, "ok\n"); err != nil {
					return
				}
				_, _ = io.Copy(io.Discard, c) // until the client closes
			})
		}
	})
	return accepted, func() { loop.Wait(); handlers.Wait() }
}

// llDial connects from the loopback address from (127.0.0.0/8 all works on
// Linux) and reports whether the server served the connection ("ok") or
// refused it; a refused connection is closed by the client at once.
func llDial(t *testing.T, to net.Addr, from string) (net.Conn, bool, error) {
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 10 * time.Second}
	c, err := d.Dial("tcp", to.String())
	if err != nil {
		return nil, false, err
	}
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 3)
	_, err = io.ReadFull(c, buf)
	_ = c.SetReadDeadline(time.Time{})
	if err == nil && string(buf) == "ok\n" {
		return c, true, nil
	}
	c.Close()
	return nil, false, err
}

// TestFloodFromOneIP: 500 connections at once from 127.0.0.1
// against a per-IP cap of 10: exactly 10 are served, the other 490 are
// reset at once (no read timeout); 127.0.0.2 is served as if nothing
// happened; when everything is closed no goroutine and no count is left.
func TestFloodFromOneIP(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	var rejected atomic.Int64
	ln := mustNew(t, inner, WithMaxConnsPerIP(10), WithOnReject(func(_ net.Addr, r RejectReason) {
		if r == RejectMaxConnsPerIP {
			rejected.Add(1)
		}
	}))
	l := ln
	accepted, wait := llServe(t, ln)

	const flood = 500
	var mu sync.Mutex
	var served []net.Conn
	var refusedErrs []error
	var slowest time.Duration
	var wg sync.WaitGroup
	for range flood {
		wg.Go(func() {
			start := time.Now()
			c, ok, err := llDial(t, inner.Addr(), "127.0.0.1")
			took := time.Since(start)
			mu.Lock()
			defer mu.Unlock()
			if ok {
				served = append(served, c)
				return
			}
			refusedErrs = append(refusedErrs, err)
			slowest = max(slowest, took)
		})
	}
	wg.Wait()
	assert.Len(t, served, 10, "connections served from 127.0.0.1: want the cap")
	require.Len(t, refusedErrs, flood-10, "connections refused from 127.0.0.1")
	for _, err := range refusedErrs {
		// A reset, never a timeout: the listener closed them at once.
		if !assert.ErrorIs(t, err, syscall.ECONNRESET, "refused connection: want a reset (SO_LINGER 0)") {
			break
		}
	}
	t.Logf("%d refused connections, slowest to see the reset %v (dial + read, 500 concurrent dials)", len(refusedErrs), slowest)

	// Another client is unaffected, and has its own cap.
	var other []net.Conn
	for i := range 11 {
		c, ok, err := llDial(t, inner.Addr(), "127.0.0.2")
		if i < 10 {
			require.True(t, ok, "127.0.0.2 connection %d: want served, got %v", i, err)
			other = append(other, c)
		} else {
			assert.False(t, ok, "127.0.0.2 connection 11: want refused at its own cap")
		}
	}
	open, peers := llCounts(l)
	assert.Equal(t, 20, open, "open connections counted")
	assert.Equal(t, 2, peers, "clients tracked")

	for _, c := range append(served, other...) {
		c.Close()
	}
	require.NoError(t, ln.Close())
	wait() // every handler saw EOF and closed its connection
	open, peers = llCounts(l)
	assert.Zero(t, open, "open connections after all closed")
	assert.Zero(t, peers, "clients tracked after all closed")
	assert.Equal(t, int64(20), accepted.Load(), "connections Accept returned")
	// The hook runs on the accepting goroutine after the reset, so a client
	// can see its reset before the hook has run; once the accept loop has
	// returned, every call has been made: the flood's and 127.0.0.2's 11th.
	assert.Equal(t, int64(flood-10+1), rejected.Load(), "OnReject calls")
}

// TestLimitListenerHTTPChurn runs an http.Server over the listener while 8
// clients connect, request and disconnect in a loop with a per-IP cap of
// 4: requests over the cap fail at connect time, none gets a 5xx, Serve
// never stops, and nothing stays counted afterwards.
func TestHTTPChurn(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ln := mustNew(t, inner, WithMaxConnsPerIP(4), WithMaxConns(6))
	l := ln
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "hello")
	})}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()

	var ok, refused atomic.Int64
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			tr := &http.Transport{DisableKeepAlives: true, DialContext: (&net.Dialer{
				LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(1+g%2))}, // two clients
			}).DialContext}
			defer tr.CloseIdleConnections()
			c := &http.Client{Transport: tr, Timeout: 10 * time.Second}
			for range 60 {
				resp, err := c.Get("http://" + inner.Addr().String())
				if err != nil {
					refused.Add(1)
					continue
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if assert.Equal(t, http.StatusOK, resp.StatusCode) && assert.Equal(t, "hello", string(body)) {
					ok.Add(1)
				}
			}
		})
	}
	wg.Wait()
	t.Logf("churn: %d served, %d refused", ok.Load(), refused.Load())
	assert.Positive(t, ok.Load(), "requests served")
	assert.Equal(t, int64(8*60), ok.Load()+refused.Load(), "served + refused")

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, srv.Shutdown(ctx))
	assert.ErrorIs(t, <-serveErr, http.ErrServerClosed, "Serve must only stop on Shutdown")
	open, peers := llCounts(l)
	assert.Zero(t, open, "open connections after Shutdown")
	assert.Zero(t, peers, "clients tracked after Shutdown")
}

// llFakeConn is a connection with a chosen peer address, for the
// admission logic; the socket tests above cover real connections.
type llFakeConn struct {
	net.Conn // nil: only the methods below are called
	remote   net.Addr
	closes   atomic.Int32
	linger   atomic.Int32
}

func llConn(remote string) *llFakeConn {
	c := &llFakeConn{remote: llAddr(remote)}
	c.linger.Store(-1)
	return c
}

func llAddr(s string) net.Addr {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return net.TCPAddrFromAddrPort(ap)
	}
	return &net.UnixAddr{Name: s, Net: "unix"}
}

func (c *llFakeConn) RemoteAddr() net.Addr      { return c.remote }
func (c *llFakeConn) Close() error              { c.closes.Add(1); return nil }
func (c *llFakeConn) SetLinger(sec int) error   { c.linger.Store(int32(sec)); return nil }
func (c *llFakeConn) Write([]byte) (int, error) { return 0, errors.New("fake") }

// llFakeListener hands out the connections sent on its channel.
type llFakeListener struct {
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
}

func newLLFakeListener() *llFakeListener {
	return &llFakeListener{conns: make(chan net.Conn, 64), done: make(chan struct{})}
}

func (f *llFakeListener) Accept() (net.Conn, error) {
	select {
	case c := <-f.conns:
		return c, nil
	case <-f.done:
		return nil, net.ErrClosed
	}
}
func (f *llFakeListener) Close() error   { f.once.Do(func() { close(f.done) }); return nil }
func (f *llFakeListener) Addr() net.Addr { return llAddr("127.0.0.1:80") }

// TestAdmission walks scripted sequences of opens, closes and clock steps
// through the admission logic, each in a testing/synctest bubble whose
// fake clock the steps move with time.Sleep.
func TestAdmission(t *testing.T) {
	type step struct {
		open  string        // peer address to admit, or
		close int           // 1-based index of an earlier open to close, or
		wait  time.Duration // clock step
		want  RejectReason  // for open
	}
	tests := []struct {
		name  string
		opts  []Option
		steps []step
	}{
		{"no options: nothing limited", nil, []step{
			{open: "192.0.2.1:1"}, {open: "192.0.2.1:2"}, {open: "192.0.2.1:3"},
		}},
		{"per-IP cap", []Option{WithMaxConnsPerIP(2)}, []step{
			{open: "192.0.2.1:1"}, {open: "192.0.2.1:2"},
			{open: "192.0.2.1:3", want: RejectMaxConnsPerIP},
			{open: "192.0.2.2:1"},
			{close: 1},
			{open: "192.0.2.1:4"},
			{open: "192.0.2.1:5", want: RejectMaxConnsPerIP},
		}},
		{"global cap before per-IP cap", []Option{WithMaxConns(2), WithMaxConnsPerIP(1)}, []step{
			{open: "192.0.2.1:1"},
			{open: "192.0.2.1:2", want: RejectMaxConnsPerIP},
			{open: "192.0.2.2:1"},
			{open: "192.0.2.3:1", want: RejectMaxConns},
			{open: "/run/app.sock", want: RejectMaxConns},
			{close: 3},
			{open: "192.0.2.3:2"},
		}},
		{"IPv6 grouped by /64", []Option{WithMaxConnsPerIP(1)}, []step{
			{open: "[2001:db8:1:2::1]:1"},
			{open: "[2001:db8:1:2:ffff::9]:1", want: RejectMaxConnsPerIP},
			{open: "[2001:db8:1:3::1]:1"},
			{open: "[fe80::1%eth0]:1"},
			{open: "[fe80::2%eth1]:1", want: RejectMaxConnsPerIP},
		}},
		{"IPv4-mapped IPv6 is the IPv4 client", []Option{WithMaxConnsPerIP(1)}, []step{
			{open: "192.0.2.1:1"},
			{open: "[::ffff:192.0.2.1]:2", want: RejectMaxConnsPerIP},
		}},
		{"exempt proxy counts only globally", []Option{WithMaxConnsPerIP(1), WithMaxConns(4),
			WithExempt(netip.MustParsePrefix("127.0.0.1/32"), netip.MustParsePrefix("::1/128"))}, []step{
			{open: "127.0.0.1:1"}, {open: "127.0.0.1:2"}, {open: "[::ffff:127.0.0.1]:3"},
			{open: "127.0.0.2:1"},
			{open: "127.0.0.2:2", want: RejectMaxConns},
			{close: 1},
			{open: "127.0.0.2:3", want: RejectMaxConnsPerIP}, // not exempt
		}},
		{"exempt IPv6 matches the address, not its /64", []Option{WithMaxConnsPerIP(1),
			WithExempt(netip.MustParsePrefix("2001:db8::1/128"), netip.MustParsePrefix("fe80::1/128"))}, []step{
			{open: "[2001:db8::1]:1"}, {open: "[2001:db8::1]:2"}, {open: "[fe80::1%eth0]:1"}, {open: "[fe80::1%eth0]:2"},
			{open: "[2001:db8::2]:1"},
			{open: "[2001:db8::3]:1", want: RejectMaxConnsPerIP}, // same /64 as ::2, not exempt
		}},
		{"unix peers count only globally", []Option{WithMaxConnsPerIP(1), WithAcceptRate(1, 1)}, []step{
			{open: "/run/app.sock"}, {open: "/run/app.sock"}, {open: "/run/app.sock"},
		}},
		{"accept rate: burst, then one per interval", []Option{WithAcceptRate(2, 3)}, []step{
			{open: "192.0.2.1:1"}, {open: "192.0.2.1:2"}, {open: "192.0.2.1:3"},
			{open: "192.0.2.1:4", want: RejectAcceptRate},
			{open: "192.0.2.2:1"}, // another client has its own budget
			{wait: 499 * time.Millisecond},
			{open: "192.0.2.1:5", want: RejectAcceptRate},
			{wait: time.Millisecond},
			{open: "192.0.2.1:6"},
			{open: "192.0.2.1:7", want: RejectAcceptRate},
			{wait: 10 * time.Second},
			{open: "192.0.2.1:8"}, {open: "192.0.2.1:9"}, {open: "192.0.2.1:10"},
			{open: "192.0.2.1:11", want: RejectAcceptRate},
		}},
		{"accept rate: closing does not refill", []Option{WithAcceptRate(1, 1)}, []step{
			{open: "192.0.2.1:1"},
			{close: 1},
			{open: "192.0.2.1:2", want: RejectAcceptRate},
			{wait: time.Second},
			{open: "192.0.2.1:3"},
		}},
		{"accept rate: refused connections use no budget", []Option{WithAcceptRate(1, 1), WithMaxConnsPerIP(1)}, []step{
			{open: "192.0.2.1:1"},
			{wait: time.Second},
			{open: "192.0.2.1:2", want: RejectMaxConnsPerIP},
			{close: 1},
			{open: "192.0.2.1:3"},
		}},
		{"burst 0 defaults to the rate", []Option{WithAcceptRate(2.5, 0)}, []step{
			{open: "192.0.2.1:1"}, {open: "192.0.2.1:2"}, {open: "192.0.2.1:3"},
			{open: "192.0.2.1:4", want: RejectAcceptRate},
		}},
		{"zero values mean no limit", []Option{WithMaxConns(0), WithMaxConnsPerIP(0), WithAcceptRate(0, 5)}, []step{
			{open: "192.0.2.1:1"}, {open: "192.0.2.1:2"}, {open: "192.0.2.1:3"},
		}},
		{"a later option replaces an earlier one", []Option{WithMaxConnsPerIP(1), WithMaxConnsPerIP(0), WithAcceptRate(1, 1), WithAcceptRate(0, 0)}, []step{
			{open: "192.0.2.1:1"}, {open: "192.0.2.1:2"}, {open: "192.0.2.1:3"},
		}},
		{"tiny rate does not overflow", []Option{WithAcceptRate(1e-30, math.MaxInt)}, []step{
			{open: "192.0.2.1:1"}, {open: "192.0.2.1:2"}, {wait: 1000 * time.Hour}, {open: "192.0.2.1:3"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var reasons []RejectReason
				opts := append(tt.opts, WithOnReject(func(_ net.Addr, r RejectReason) { reasons = append(reasons, r) }))
				l := mustNew(t, newLLFakeListener(), opts...)

				var opened []net.Conn // by open step, nil when refused
				for i, st := range tt.steps {
					switch {
					case st.open != "":
						c := llConn(st.open)
						reasons = nil
						got := l.wrap(c)
						if st.want != 0 {
							assert.Nil(t, got, "step %d (%s): want refused", i, st.open)
							assert.Equal(t, []RejectReason{st.want}, reasons, "step %d (%s): reject reason", i, st.open)
							assert.Equal(t, int32(1), c.closes.Load(), "step %d: refused connection closed once", i)
							assert.Equal(t, int32(0), c.linger.Load(), "step %d: refused connection: SO_LINGER", i)
						} else {
							assert.NotNil(t, got, "step %d (%s): want accepted, refused for %v", i, st.open, reasons)
							assert.Zero(t, c.closes.Load(), "step %d: accepted connection closed", i)
						}
						opened = append(opened, got)
					case st.close > 0:
						require.NotNil(t, opened[st.close-1], "step %d closes a refused connection", i)
						require.NoError(t, opened[st.close-1].Close())
					default:
						time.Sleep(st.wait)
					}
				}
				for _, c := range opened {
					if c != nil {
						c.Close()
					}
				}
				open, _ := llCounts(l)
				assert.Zero(t, open, "open connections after all closed")
				time.Sleep(1000000 * time.Hour)
				l.mu.Lock()
				l.sweepAt = 0 // force a sweep now
				l.maybeSweep(time.Since(l.base))
				l.mu.Unlock()
				_, peers := llCounts(l)
				assert.Zero(t, peers, "clients tracked once all closed and budgets full")
				require.NoError(t, l.Close())
			})
		})
	}
}

func TestCloseReleasesOnce(t *testing.T) {
	fl := newLLFakeListener()
	l := mustNew(t, fl, WithMaxConnsPerIP(1))
	fl.conns <- llConn("192.0.2.1:1")
	c, err := l.Accept()
	require.NoError(t, err)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() { c.Close() })
	}
	wg.Wait()
	open, peers := llCounts(l)
	assert.Zero(t, open, "open after 8 concurrent Closes of one connection")
	assert.Zero(t, peers, "clients after 8 concurrent Closes")
	// The cap still holds after a double Close: a second connection fits,
	// a third does not.
	fl.conns <- llConn("192.0.2.1:2")
	c2, err := l.Accept()
	require.NoError(t, err)
	c2.Close()
	c2.Close()
	open, _ = llCounts(l)
	assert.Zero(t, open, "open count never goes negative")
}

// TestSweepsIdleClients runs in a testing/synctest bubble, whose fake
// clock time.Sleep moves.
func TestSweepsIdleClients(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fl := newLLFakeListener()
		l := mustNew(t, fl, WithAcceptRate(1, 1))
		// 3000 clients connect and leave; their budgets refill after 1s.
		for i := range 3000 {
			fl.conns <- llConn(fmt.Sprintf("10.0.%d.%d:1", i/256, i%256))
			c, err := l.Accept()
			require.NoError(t, err)
			c.Close()
			if i == 1499 {
				time.Sleep(2 * time.Second)
			}
		}
		_, peers := llCounts(l)
		assert.LessOrEqual(t, peers, 2*minSweep, "clients tracked: idle ones must be swept as the map grows")
		time.Sleep(2 * time.Minute)
		fl.conns <- llConn("10.99.0.1:1")
		c, err := l.Accept() // a sweep interval passed: this accept sweeps
		require.NoError(t, err)
		_, peers = llCounts(l)
		assert.Equal(t, 1, peers, "clients tracked after a sweep interval: only the connected one")
		c.Close()
		require.NoError(t, l.Close())
	})
}

func TestPeerKey(t *testing.T) {
	tests := []struct {
		addr   net.Addr
		want   string
		wantOK bool
	}{
		{llAddr("192.0.2.1:80"), "192.0.2.1", true},
		{llAddr("[::ffff:192.0.2.1]:80"), "192.0.2.1", true},
		{llAddr("[2001:db8:1:2:3:4:5:6]:80"), "2001:db8:1:2::", true},
		{llAddr("[fe80::1%eth0]:80"), "fe80::", true},
		{&net.TCPAddr{IP: net.ParseIP("192.0.2.1").To16(), Port: 1}, "192.0.2.1", true},
		{&net.TCPAddr{IP: nil}, "", false},
		{llAddr("/run/app.sock"), "", false},
		{nil, "", false},
		{llStringAddr("198.51.100.7:9"), "198.51.100.7", true},
		{llStringAddr("garbage"), "", false},
	}
	for _, tt := range tests {
		ip, ok := peerIP(tt.addr)
		assert.Equal(t, tt.wantOK, ok, "peerIP(%v): ok", tt.addr)
		if tt.wantOK {
			assert.Equal(t, tt.want, clientKey(ip).String(), "clientKey(peerIP(%v))", tt.addr)
		}
	}
}

// llStringAddr is an address of an unknown type, parsed from its String.
type llStringAddr string

func (a llStringAddr) Network() string { return "custom" }
func (a llStringAddr) String() string  { return string(a) }

func TestRejectReasonString(t *testing.T) {
	for r, want := range map[RejectReason]string{
		RejectMaxConns: "max_conns", RejectMaxConnsPerIP: "max_conns_per_ip", RejectAcceptRate: "accept_rate", 0: "unknown",
	} {
		assert.Equal(t, want, r.String(), "RejectReason(%d)", int(r))
	}
}

func TestNewRejectsBadArguments(t *testing.T) {
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer inner.Close()

	var nilListener net.Listener
	for name, ln := range map[string]net.Listener{"nil": nil, "nil interface": nilListener, "typed nil": (*net.TCPListener)(nil)} {
		l, err := New(ln, WithMaxConns(1))
		assert.ErrorIs(t, err, ErrNilListener, "%s listener", name)
		assert.EqualError(t, err, "connlimit: nil listener", "%s listener", name)
		assert.Nil(t, l)
	}

	tests := []struct {
		name string
		opts []Option
		want string
	}{
		{"nil option", []Option{WithMaxConns(1), nil}, "connlimit: nil option"},
		{"negative max conns", []Option{WithMaxConns(-1)}, "connlimit: WithMaxConns: -1 connections, want ≥ 0 (0: no cap)"},
		{"negative max conns per IP", []Option{WithMaxConnsPerIP(-5)}, "connlimit: WithMaxConnsPerIP: -5 connections, want ≥ 0 (0: no cap)"},
		{"negative rate", []Option{WithAcceptRate(-1, 1)}, "connlimit: WithAcceptRate: -1 connections per second, want a finite number ≥ 0 (0: no rate limit)"},
		{"NaN rate", []Option{WithAcceptRate(math.NaN(), 1)}, "connlimit: WithAcceptRate: NaN connections per second, want a finite number ≥ 0 (0: no rate limit)"},
		{"infinite rate", []Option{WithAcceptRate(math.Inf(1), 1)}, "connlimit: WithAcceptRate: +Inf connections per second, want a finite number ≥ 0 (0: no rate limit)"},
		{"negative infinite rate", []Option{WithAcceptRate(math.Inf(-1), 1)}, "connlimit: WithAcceptRate: -Inf connections per second, want a finite number ≥ 0 (0: no rate limit)"},
		{"negative burst", []Option{WithAcceptRate(10, -1)}, "connlimit: WithAcceptRate: burst -1, want ≥ 0 (0: the rate rounded up)"},
		{"negative burst without a rate", []Option{WithAcceptRate(0, -1)}, "connlimit: WithAcceptRate: burst -1, want ≥ 0 (0: the rate rounded up)"},
		{"nil reject hook", []Option{WithOnReject(nil)}, "connlimit: WithOnReject: nil function"},
		{"zero prefix", []Option{WithExempt(netip.MustParsePrefix("10.0.0.0/8"), netip.Prefix{})},
			"connlimit: WithExempt: prefix 2 is invalid (the zero netip.Prefix, or bits out of range)"},
		{"bits out of range", []Option{WithExempt(netip.PrefixFrom(netip.MustParseAddr("192.0.2.1"), 33))},
			"connlimit: WithExempt: prefix 1 is invalid (the zero netip.Prefix, or bits out of range)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, err := New(inner, tt.opts...)
			assert.EqualError(t, err, tt.want)
			assert.Nil(t, l)
		})
	}
}

// TestLimitConnKeepsTCPFeatures: the wrapper must not hide sendfile,
// splice or CloseWrite of the TCP connection underneath.
func TestLimitConnKeepsTCPFeatures(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ln := mustNew(t, inner, WithMaxConnsPerIP(1))
	defer ln.Close()

	path := filepath.Join(t.TempDir(), "f")
	content := strings.Repeat("sendfile ", 10000)
	require.NoError(t, os.WriteFile(path, []byte(content), 0o644))

	done := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			done <- err
			return
		}
		defer c.Close()
		_, isRF := c.(io.ReaderFrom)
		_, isWT := c.(io.WriterTo)
		_, isCW := c.(interface{ CloseWrite() error })
		nc, isNC := c.(interface{ NetConn() net.Conn })
		if !isRF || !isWT || !isCW || !isNC {
			done <- fmt.Errorf("ReaderFrom %v WriterTo %v CloseWrite %v NetConn %v: want all", isRF, isWT, isCW, isNC)
			return
		}
		if _, ok := nc.NetConn().(*net.TCPConn); !ok {
			done <- fmt.Errorf("NetConn is %T, want *net.TCPConn", nc.NetConn())
			return
		}
		f, err := os.Open(path)
		if err != nil {
			done <- err
			return
		}
		defer f.Close()
		if _, err := c.(io.ReaderFrom).ReadFrom(f); err != nil {
			done <- err
			return
		}
		done <- c.(interface{ CloseWrite() error }).CloseWrite()
	}()
	c, err := net.Dial("tcp", inner.Addr().String())
	require.NoError(t, err)
	defer c.Close()
	got, err := io.ReadAll(c) // ends at the server's CloseWrite
	require.NoError(t, err)
	require.NoError(t, <-done)
	assert.Equal(t, len(content), len(got), "bytes received through ReadFrom")
}

// mustNew is New for arguments that must be valid.
func mustNew(t testing.TB, ln net.Listener, opts ...Option) *Listener {
	t.Helper()
	l, err := New(ln, opts...)
	require.NoError(t, err)
	return l
}
