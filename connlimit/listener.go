package connlimit

import (
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/netip"
	"sync"
	"time"

	"go.opentelemetry.io/otel/metric"

	"github.com/shipshape-go/shipshape/internal/nilcheck"
)

// RejectReason says why [Listener] refused a connection.
type RejectReason int

// The reasons, in the order the listener checks them.
const (
	// RejectMaxConns: the listener already holds [WithMaxConns] connections.
	RejectMaxConns RejectReason = iota + 1
	// RejectMaxConnsPerIP: the client already holds [WithMaxConnsPerIP]
	// connections.
	RejectMaxConnsPerIP
	// RejectAcceptRate: the client opens connections faster than
	// [WithAcceptRate] allows.
	RejectAcceptRate
)

// String returns the reason as a short snake_case word, for logs and
// metric labels.
func (r RejectReason) String() string {
	switch r {
	case RejectMaxConns:
		return "max_conns"
	case RejectMaxConnsPerIP:
		return "max_conns_per_ip"
	case RejectAcceptRate:
		return "accept_rate"
	}
	return "unknown"
}

// Option configures [Listener].
type Option func(*config)

type config struct {
	maxConns    int
	maxPerIP    int
	perSecond   float64 // WithAcceptRate's rate; 0 = no rate limit
	burst       int
	onReject    func(remote net.Addr, reason RejectReason)
	onRejectSet bool // WithOnReject was given, even with nil
	exempt      []netip.Prefix
	meter       metric.MeterProvider
	meterSet    bool // WithMeterProvider was given, even with nil

	// Derived by New from perSecond and burst.
	interval  time.Duration // GCRA emission interval, 1/rate; 0 = no rate limit
	tolerance time.Duration // GCRA burst tolerance, (burst−1)·interval
}

// validate reports the first bad setting; New returns it.
func (c *config) validate() error {
	switch {
	case c.maxConns < 0:
		return fmt.Errorf("connlimit: WithMaxConns: %d connections, want ≥ 0 (0: no cap)", c.maxConns)
	case c.maxPerIP < 0:
		return fmt.Errorf("connlimit: WithMaxConnsPerIP: %d connections, want ≥ 0 (0: no cap)", c.maxPerIP)
	case !(c.perSecond >= 0) || math.IsInf(c.perSecond, 1): // also NaN
		return fmt.Errorf("connlimit: WithAcceptRate: %v connections per second, want a finite number ≥ 0 (0: no rate limit)", c.perSecond)
	case c.burst < 0:
		return fmt.Errorf("connlimit: WithAcceptRate: burst %d, want ≥ 0 (0: the rate rounded up)", c.burst)
	case c.onRejectSet && c.onReject == nil:
		return errors.New("connlimit: WithOnReject: nil function")
	case c.meterSet && nilcheck.Is(c.meter):
		return errors.New("connlimit: WithMeterProvider: nil provider")
	}
	for i, p := range c.exempt {
		if !p.IsValid() {
			return fmt.Errorf("connlimit: WithExempt: prefix %d is invalid (the zero netip.Prefix, or bits out of range)", i+1)
		}
	}
	return nil
}

// rate derives the GCRA parameters from perSecond and burst, once they
// are valid.
func (c *config) rate() {
	if c.perSecond == 0 {
		return
	}
	b := float64(c.burst)
	if c.burst == 0 {
		b = max(1, math.Ceil(c.perSecond))
	}
	// Bounded so that tat arithmetic cannot overflow: at most ~36 years
	// between connections, ~73 years of burst.
	iv := min(float64(time.Second)/c.perSecond, 1<<60)
	c.interval = max(time.Duration(iv), 1)
	c.tolerance = time.Duration(min((b-1)*float64(c.interval), 1<<61))
}

// WithMaxConns caps the connections open at once through the listener, all
// clients together. A connection over the cap is refused (closed at once),
// not queued. 0 means no cap (the default), so that a configuration value
// can turn the cap off; n < 0 is an error from [New].
func WithMaxConns(n int) Option {
	return func(c *config) { c.maxConns = n }
}

// WithMaxConnsPerIP caps the connections one client holds open at once. The
// client is the TCP peer address, IPv4-mapped IPv6 folded to IPv4 and IPv6
// grouped by /64 as ratelimit.KeyByIP does. 0 means no cap (the default);
// n < 0 is an error from [New].
func WithMaxConnsPerIP(n int) Option {
	return func(c *config) { c.maxPerIP = n }
}

// WithAcceptRate limits how fast one client (grouped as for
// [WithMaxConnsPerIP]) may open connections: burst at once, then perSecond
// on average (a token bucket: one token back every 1/perSecond, at most
// burst kept). Refused connections use no token. perSecond 0 means no rate
// limit (the default; burst is then unused); burst 0 means
// max(1, ⌈perSecond⌉). A negative, NaN or infinite perSecond and a
// negative burst are errors from [New].
func WithAcceptRate(perSecond float64, burst int) Option {
	return func(c *config) { c.perSecond, c.burst = perSecond, burst }
}

// WithOnReject calls fn for every refused connection, after it was closed,
// with the peer address and the reason: count them in a metric, or log a
// sample (one line per connection would let a flood fill the log). fn runs
// on the accepting goroutine, so it must be quick. A nil fn is an error
// from [New].
func WithOnReject(fn func(remote net.Addr, reason RejectReason)) Option {
	return func(c *config) { c.onReject, c.onRejectSet = fn, true }
}

// WithMeterProvider sets where the Listener's metrics go (default: the
// global provider, otel.GetMeterProvider() at the time of New, which
// records nothing until the application sets one): connections admitted
// (shipshape.connlimit.connections.accepted), refused by reason
// (shipshape.connlimit.connections.refused, the [RejectReason] words) and
// open now (shipshape.connlimit.connections.open); docs/metrics.md lists
// them. A nil provider is an error from [New].
func WithMeterProvider(mp metric.MeterProvider) Option {
	return func(c *config) { c.meter, c.meterSet = mp, true }
}

// WithExempt exempts peers in the given networks from the per-IP limits
// ([WithMaxConnsPerIP], [WithAcceptRate]); they still count toward
// [WithMaxConns]. Use it for a local reverse proxy or load balancer, whose
// connections carry every client's requests. IPv4-mapped IPv6 peers are
// matched as IPv4. An invalid prefix (the zero netip.Prefix, say, from an
// unchecked parse) is an error from [New]. Several calls add up.
func WithExempt(prefixes ...netip.Prefix) Option {
	return func(c *config) {
		c.exempt = append(c.exempt, prefixes...)
	}
}

// ErrNilListener is returned by [New] for a nil listener.
var ErrNilListener = errors.New("connlimit: nil listener")

// New wraps ln so that connections over the limits set by the
// options are refused at layer 4, before a byte of them is read: per client
// IP, at most [WithMaxConnsPerIP] open at once and at most
// [WithAcceptRate] new ones per second; and at most [WithMaxConns] open in
// total. Without options nothing is limited.
//
// A refused connection is closed at once, with SO_LINGER 0 so the client
// gets a reset rather than a half-open socket and the server keeps no
// TIME_WAIT entry for it. Accept then goes on to the next connection: it
// never returns an error for a refused one (http.Server would back off)
// and never blocks on a client. It returns ln's own errors unchanged.
//
// The client is the TCP peer address, never a header: behind a proxy every
// connection comes from the proxy, so set per-IP limits only where clients
// connect directly, and limit at the proxy otherwise (see examples/deploy).
// Peers that are not IP addresses (Unix sockets) count toward
// [WithMaxConns] only.
//
// Each accepted connection releases its share exactly once, on its first
// Close. Bookkeeping for a client is dropped once it has no connection
// left and its rate budget is full again: at its last Close, or, with
// [WithAcceptRate], by a sweep that an Accept runs when the table has
// doubled or a minute has passed. Memory follows the clients active in the
// last minute plus burst/rate seconds.
//
// The returned listener is safe for concurrent use. Its connections keep
// sendfile (io.ReaderFrom), splice (io.WriterTo) and CloseWrite of a
// *net.TCPConn, and NetConn returns the connection underneath.
//
// New returns [ErrNilListener] for a nil ln (or an interface holding a nil
// pointer), and an error for a nil option and for every option given a
// value it cannot use (see each option); 0 turns a limit off.
func New(ln net.Listener, opts ...Option) (*Listener, error) {
	if nilcheck.Is(ln) {
		return nil, ErrNilListener
	}
	var cfg config
	for _, o := range opts {
		if o == nil {
			return nil, errors.New("connlimit: nil option")
		}
		o(&cfg)
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	cfg.rate()
	for i, p := range cfg.exempt {
		cfg.exempt[i] = p.Masked()
	}
	ms, err := newMetrics(cfg.meter)
	if err != nil {
		return nil, fmt.Errorf("connlimit: WithMeterProvider: %w", err)
	}
	return &Listener{Listener: ln, cfg: cfg, metrics: ms, peers: make(map[netip.Addr]*peerConns), sweepAt: minSweep, base: time.Now()}, nil
}

// sweepEvery is how often, at most, Accept sweeps idle clients when the
// table has not doubled.
const sweepEvery = time.Minute

// minSweep is the number of client entries below which the listener does
// not sweep on size.
const minSweep = 1024

// Listener is a net.Listener that refuses connections over its limits; see
// [New].
type Listener struct {
	net.Listener
	cfg     config
	metrics *metrics
	base    time.Time // clock origin: durations since it are monotonic

	mu        sync.Mutex
	open      int // accepted connections not yet closed
	peers     map[netip.Addr]*peerConns
	sweepAt   int           // sweep when peers grows to this size
	lastSweep time.Duration // on the base clock
}

// peerConns is the bookkeeping of one client.
type peerConns struct {
	open int
	// tat is the GCRA theoretical arrival time on the base clock: the
	// client's rate budget is full when tat ≤ now.
	tat time.Duration
}

func (l *Listener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if lc := l.wrap(c); lc != nil {
			return lc, nil
		}
	}
}

// wrap admits c and returns it wrapped, or refuses it: closes it, reports
// it and returns nil.
func (l *Listener) wrap(c net.Conn) net.Conn {
	ip, keyed := peerIP(c.RemoteAddr())
	keyed = keyed && !l.exempted(ip) // exempt peers count toward the global cap only
	key := clientKey(ip)
	reason := l.admit(key, keyed)
	if reason == 0 {
		return &limitConn{Conn: c, l: l, key: key, keyed: keyed, counted: l.metrics.admitted()}
	}
	refuse(c)
	l.metrics.rejected(reason)
	if l.cfg.onReject != nil {
		l.cfg.onReject(c.RemoteAddr(), reason)
	}
	return nil
}

// admit counts a new connection from key, or says why it cannot.
func (l *Listener) admit(key netip.Addr, keyed bool) RejectReason {
	var now time.Duration
	if l.cfg.interval > 0 {
		now = time.Since(l.base)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.cfg.maxConns > 0 && l.open >= l.cfg.maxConns {
		return RejectMaxConns
	}
	if keyed {
		p := l.peers[key]
		if l.cfg.maxPerIP > 0 && p != nil && p.open >= l.cfg.maxPerIP {
			return RejectMaxConnsPerIP
		}
		var tat time.Duration
		if l.cfg.interval > 0 {
			// GCRA: a connection fits when the budget is not more than
			// burst−1 intervals in debt.
			tat = now
			if p != nil && p.tat > now {
				tat = p.tat
			}
			if tat-now > l.cfg.tolerance {
				return RejectAcceptRate
			}
			tat += l.cfg.interval
		}
		if p == nil {
			p = &peerConns{}
			l.peers[key] = p
		}
		p.open++
		p.tat = tat
		l.maybeSweep(now)
	}
	l.open++
	return 0
}

// maybeSweep drops clients with no connection and a full budget when the
// map doubled since the last sweep or a sweep interval passed. Only
// needed with a rate limit: without one, release drops entries itself.
func (l *Listener) maybeSweep(now time.Duration) {
	if l.cfg.interval == 0 || (len(l.peers) < l.sweepAt && now-l.lastSweep < sweepEvery) {
		return
	}
	for k, p := range l.peers {
		if p.open == 0 && p.tat <= now {
			delete(l.peers, k)
		}
	}
	l.lastSweep = now
	l.sweepAt = max(minSweep, 2*len(l.peers))
}

// release gives back what admit counted for one connection.
func (l *Listener) release(key netip.Addr, keyed bool) {
	var now time.Duration
	if l.cfg.interval > 0 {
		now = time.Since(l.base)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.open--
	if !keyed {
		return
	}
	p := l.peers[key]
	if p == nil { // cannot happen: admit created it and only release drops it while open
		return
	}
	p.open--
	if p.open == 0 && p.tat <= now {
		delete(l.peers, key)
	}
}

// refuse closes c at once with a reset (SO_LINGER 0), so neither side keeps
// the socket around.
func refuse(c net.Conn) {
	if lc, ok := c.(interface{ SetLinger(sec int) error }); ok {
		_ = lc.SetLinger(0)
	}
	_ = c.Close()
}

// exempted reports whether ip is in a WithExempt network.
func (l *Listener) exempted(ip netip.Addr) bool {
	for _, p := range l.cfg.exempt {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// peerIP is the IP of a remote address, IPv4-mapped IPv6 folded to IPv4 and
// without zone. ok is false for addresses that are not IP (Unix sockets).
func peerIP(a net.Addr) (ip netip.Addr, ok bool) {
	switch a := a.(type) {
	case *net.TCPAddr:
		ip, _ = netip.AddrFromSlice(a.IP)
	case nil:
	default:
		if ap, err := netip.ParseAddrPort(a.String()); err == nil {
			ip = ap.Addr()
		}
	}
	if !ip.IsValid() {
		return netip.Addr{}, false
	}
	return ip.Unmap().WithZone(""), true
}

// clientKey is the client a peer IP (from peerIP) belongs to: IPv4 as is,
// IPv6 reduced to its /64.
func clientKey(ip netip.Addr) netip.Addr {
	if ip.Is6() {
		p, _ := ip.Prefix(64)
		return p.Addr()
	}
	return ip
}

// limitConn is an accepted connection that releases its share of the
// limits on its first Close.
type limitConn struct {
	net.Conn
	l     *Listener
	key   netip.Addr
	keyed bool
	// counted: the connection is in the open connections metric, which
	// Close takes it out of.
	counted bool
	once    sync.Once
}

// Close closes the connection and, the first time, releases its share of
// the listener's limits.
func (c *limitConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() {
		c.l.release(c.key, c.keyed)
		if c.counted {
			c.l.metrics.closed()
		}
	})
	return err
}

// NetConn returns the connection underneath, as tls.Conn.NetConn does.
func (c *limitConn) NetConn() net.Conn { return c.Conn }

// ReadFrom keeps sendfile: http.Server uses it for files when the
// connection is an io.ReaderFrom, as *net.TCPConn is.
func (c *limitConn) ReadFrom(r io.Reader) (int64, error) {
	if rf, ok := c.Conn.(io.ReaderFrom); ok {
		return rf.ReadFrom(r)
	}
	return io.Copy(struct{ io.Writer }{c.Conn}, r)
}

// WriteTo keeps splice for proxies that copy from the connection.
func (c *limitConn) WriteTo(w io.Writer) (int64, error) {
	if wt, ok := c.Conn.(io.WriterTo); ok {
		return wt.WriteTo(w)
	}
	return io.Copy(w, struct{ io.Reader }{c.Conn})
}

// CloseWrite shuts down the writing side, as http.Server does before it
// closes a connection to let the client read the last response.
func (c *limitConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return errors.ErrUnsupported
}

// CloseRead shuts down the reading side.
func (c *limitConn) CloseRead() error {
	if cr, ok := c.Conn.(interface{ CloseRead() error }); ok {
		return cr.CloseRead()
	}
	return errors.ErrUnsupported
}
