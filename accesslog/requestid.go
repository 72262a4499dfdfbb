package accesslog

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/go-chi/chi/v5/middleware"
)

// RequestIDLen is the length of the ids [WithRequestID] makes.
const RequestIDLen = 16

// MaxIncomingRequestID is the longest id [WithRequestIDFrom] takes from a
// request header; a longer one is replaced by a new id.
const MaxIncomingRequestID = 128

// WithRequestID gives every request an id, which the access line carries
// as http.request.id: 16 characters of lower-case Crockford base32
// ("0123456789abcdefghjkmnpqrstvwxyz"), 80 bits that no other request of
// the process had (a random per-process part and a per-request count,
// mixed so that the ids do not show how many requests the process
// served). It is what chi's middleware.RequestID does, at the cost of one
// 16-byte allocation instead of six: the id is kept in accesslog's
// per-request state, which is already the request's context, so there is
// no context.WithValue and no second copy of the request.
//
// The id is where chi's readers look for it: middleware.GetReqID of the
// request's context returns it, so [reqlog.NewHandler], recoverer, the
// Sentry report and any code written for chi's RequestID see it. Use it
// instead of middleware.RequestID, not with it (accesslog's id would hide
// chi's from the handler and the line). A request id an incoming header
// carries is ignored: a client could otherwise choose the id of its own
// lines, or a victim's; [WithRequestIDFrom] takes it from a trusted proxy.
//
// Requests left out by [WithSkip] get no id.
func WithRequestID() Option {
	return func(c *config) { c.requestID = true }
}

// WithRequestIDFrom is [WithRequestID] that keeps the id a front proxy
// sent in the header (chi's middleware.RequestIDHeader, "X-Request-Id",
// is the usual one) when the request's TCP peer is one of trusted: CIDR
// prefixes ("10.0.0.0/8") or addresses ("127.0.0.1"). The id of a request
// from any other peer, with no such header, or whose value is not 1 to
// [MaxIncomingRequestID] bytes of printable ASCII without spaces, '"' or
// '\', is a new
// one. An invalid header name or peer, and an empty list of peers, are
// errors (pass "0.0.0.0/0" and "::/0" to trust every peer, which only a
// service that no client reaches directly should do).
func WithRequestIDFrom(header string, trusted ...string) Option {
	return func(c *config) {
		if !validHeaderName(header) {
			c.fail(fmt.Errorf("accesslog: WithRequestIDFrom: %q is not a valid header name", header))
			return
		}
		if len(trusted) == 0 {
			c.fail(errors.New("accesslog: WithRequestIDFrom: no trusted peer (the header would never be used)"))
			return
		}
		prefixes := make([]netip.Prefix, 0, len(trusted))
		for _, t := range trusted {
			p, err := parseTrusted(t)
			if err != nil {
				c.fail(fmt.Errorf("accesslog: WithRequestIDFrom: %w", err))
				return
			}
			prefixes = append(prefixes, p)
		}
		c.requestID = true
		c.idHeader = http.CanonicalHeaderKey(header)
		c.idTrusted = prefixes
	}
}

// parseTrusted parses a CIDR prefix or a single address.
func parseTrusted(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("trusted peer %q: %w", s, err)
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("trusted peer %q is neither an address nor a CIDR prefix", s)
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// setRequestID gives the request its id: the trusted incoming one, else a
// new one written into the state.
func (s *reqState) setRequestID(c *config, r *http.Request) {
	if c.idHeader != "" {
		if v := r.Header[c.idHeader]; len(v) > 0 && validIncomingID(v[0]) && trustedPeer(c.idTrusted, r.RemoteAddr) {
			s.reqID = v[0]
			return
		}
	}
	ids.next(&s.idBuf)
	s.reqID = unsafe.String(&s.idBuf[0], RequestIDLen)
}

// chiRequestIDKey is the key chi's middleware.GetReqID looks up.
var chiRequestIDKey any = middleware.RequestIDKey

// validIncomingID reports whether v can be logged as an id as it is:
// 1 to MaxIncomingRequestID bytes from '!' to '~' but '"' and '\'.
func validIncomingID(v string) bool {
	if v == "" || len(v) > MaxIncomingRequestID {
		return false
	}
	for i := 0; i < len(v); i++ {
		if c := v[i]; c < '!' || c > '~' || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}

// trustedPeer reports whether the host of remoteAddr is in one of the
// prefixes.
func trustedPeer(prefixes []netip.Prefix, remoteAddr string) bool {
	ap, err := netip.ParseAddrPort(remoteAddr)
	var a netip.Addr
	if err == nil {
		a = ap.Addr()
	} else if a, err = netip.ParseAddr(remoteAddr); err != nil {
		return false
	}
	a = a.Unmap()
	for _, p := range prefixes {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// idSource makes the ids: x = base + n for the n-th id of the process,
// through a bijection of 64-bit integers (the finalizer of splitmix64), so
// that two ids of one process never repeat before 2^64 of them, after 16
// random bits that, with base, set processes apart.
//
// The counts are handed out in blocks of idBlock, one per P through a
// sync.Pool, so that the CPUs do not pass one counter's cache line to each
// other on every request: on 2 cores the shared counter's add alone took
// 17 ns a request from both at once, a whole id from a block 11–20 ns
// (BenchmarkIDNext). A block the pool drops at a GC leaves its remaining
// counts unused: the ids stay unique, they just skip.
type idSource struct {
	once   sync.Once
	hi     uint16
	base   uint64
	n      atomic.Uint64 // blocks handed out
	blocks sync.Pool     // of *idBlockState
}

// idBlock is how many counts a block holds.
const idBlock = 1024

type idBlockState struct{ next, end uint64 }

var ids idSource

// crockford is the alphabet of the ids: no i, l, o, u.
const crockford = "0123456789abcdefghjkmnpqrstvwxyz"

func (g *idSource) init() {
	g.once.Do(func() {
		var b [10]byte
		_, _ = rand.Read(b[:]) // never fails (crypto/rand.Read's documentation)
		g.hi = binary.LittleEndian.Uint16(b[:2])
		g.base = binary.LittleEndian.Uint64(b[2:])
	})
}

func (g *idSource) next(dst *[RequestIDLen]byte) {
	b, _ := g.blocks.Get().(*idBlockState)
	if b == nil || b.next == b.end {
		if b == nil {
			b = new(idBlockState)
		}
		b.end = g.n.Add(1) * idBlock
		b.next = b.end - idBlock
	}
	b.next++
	x := mix64(g.base + b.next)
	g.blocks.Put(b)
	// 80 bits, five at a time from the top: hi's 16 and x's top 4 make the
	// first four characters, x's other 60 the last twelve.
	top := uint64(g.hi)<<4 | x>>60
	dst[0] = crockford[top>>15&31]
	dst[1] = crockford[top>>10&31]
	dst[2] = crockford[top>>5&31]
	dst[3] = crockford[top&31]
	for i := range 12 {
		dst[4+i] = crockford[x>>(55-5*i)&31]
	}
}

// mix64 is splitmix64's finalizer, a bijection of uint64.
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}
