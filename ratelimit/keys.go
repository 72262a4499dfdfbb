package ratelimit

import (
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"strconv"
	"strings"

	"github.com/go-chi/chi/v5/middleware"
)

// KeyFunc returns the key a request is counted under. An error means the
// request cannot be identified; the [Limiter] then answers 400 (the error
// wraps [ErrNoKey]) or 500 (any other error, which is also logged) through
// its problem Writer (see [WithProblemWriter]), and never lets the request
// through uncounted.
//
// A KeyFunc may read anything the request carries, its context included:
// behind an authentication middleware, key by the identity it stored (see
// ExampleKeyFunc_perUser and docs/ratelimit.md).
type KeyFunc func(r *http.Request) (string, error)

// ErrNoKey is wrapped by key errors caused by the request itself (a missing
// header, an address that does not parse, no authenticated user). The
// Limiter answers them with 400 Bad Request and does not log them.
var ErrNoKey = errors.New("ratelimit: request has no usable key")

// KeyByIP keys a request by its client IP address: the address chi's
// middleware.ClientIPFromXFF, ClientIPFromHeader or ClientIPFromRemoteAddr
// stored in the request context, else the host part of r.RemoteAddr.
// IPv4-mapped IPv6 addresses fold to IPv4 and IPv6 addresses are grouped by
// their /64 prefix, the block one subscriber usually gets. It never reads
// X-Forwarded-For itself: put chi's middleware, with your proxies as
// trusted prefixes, in front of the limiter when there is a proxy.
//
// Behind a proxy, KeyByIP is only as good as what chi stored. When chi's
// ClientIPFromXFF cannot use the X-Forwarded-For of a trusted peer (the
// entry it reaches is not a bare IP: garbage, "ip:port"; or there are only
// trusted hops, or no header at all), it stores no client IP (it fails
// closed), and KeyByIP then silently keys the request by r.RemoteAddr:
// the proxy's address. That happens when the proxy appends "ip:port" (some
// load balancers do), passes a client's header on unchanged instead of
// appending to it, or sends no header (a health check from the proxy's
// host). All such requests share the proxy's key and one quota. Make the
// proxy append the peer as a bare IP (nginx: proxy_set_header
// X-Forwarded-For $proxy_add_x_forwarded_for), or use a KeyFunc of your
// own that refuses a request for which middleware.GetClientIPAddr is not
// valid.
//
// The key is the address in its canonical text form ("192.0.2.1",
// "2001:db8:1:2::/64"). An IPv4 RemoteAddr is keyed without allocating.
func KeyByIP(r *http.Request) (string, error) {
	return ipKey(r, 32, 64)
}

// KeyByIPPrefix is [KeyByIP] with other prefix lengths: v4Bits for IPv4
// (1–32; 24 groups a /24) and v6Bits for IPv6 (1–128). Out-of-range values
// make every call fail with an error that is not [ErrNoKey], so the
// Limiter answers 500 and logs it, and the mistake shows at once instead
// of silently limiting the wrong thing.
func KeyByIPPrefix(v4Bits, v6Bits int) KeyFunc {
	if v4Bits < 1 || v4Bits > 32 || v6Bits < 1 || v6Bits > 128 {
		err := fmt.Errorf("ratelimit: KeyByIPPrefix(%d, %d): prefix lengths must be in 1–32 and 1–128", v4Bits, v6Bits)
		return func(*http.Request) (string, error) { return "", err }
	}
	return func(r *http.Request) (string, error) { return ipKey(r, v4Bits, v6Bits) }
}

func ipKey(r *http.Request, v4Bits, v6Bits int) (string, error) {
	ip := middleware.GetClientIPAddr(r.Context())
	if !ip.IsValid() {
		if v4Bits == 32 {
			if host, ok := ipv4Host(r.RemoteAddr); ok {
				// The common case, keyed by the substring: one pass over
				// the address, no parse, no formatting.
				return host, nil
			}
		}
		host, ok := remoteHost(r.RemoteAddr)
		if ok {
			var err error
			ip, err = netip.ParseAddr(host)
			if err == nil && ip.Is4() && v4Bits == 32 {
				// The host of an IPv4 RemoteAddr that parses is already
				// canonical (netip rejects leading zeros): key by the
				// substring and save formatting it.
				return host, nil
			}
			if err != nil {
				ip = netip.Addr{}
			}
		}
		if !ip.IsValid() {
			return "", fmt.Errorf("%w: cannot parse client address %q", ErrNoKey, truncate(r.RemoteAddr, 64))
		}
	}
	ip = ip.Unmap().WithZone("")
	bitsLen := v6Bits
	if ip.Is4() {
		bitsLen = v4Bits
	}
	if bitsLen == ip.BitLen() {
		return ip.String(), nil
	}
	p, err := ip.Prefix(bitsLen)
	if err != nil { // cannot happen: bits were validated
		return "", err
	}
	return p.String(), nil
}

// ipv4Host returns the host of addr when remoteHost would return one
// that is an IPv4 address in the canonical dotted-decimal form
// netip.Addr.String writes (four decimal octets of at most 255 without
// leading zeros): addr is that address, alone or followed by ':' and a
// port without another ':'. It reads addr once, where remoteHost and a
// check of its result read it three times; anything else (IPv6, a mapped
// address, a zone, a name, garbage) goes through remoteHost and netip.
func ipv4Host(addr string) (string, bool) {
	i := 0
	for octet := range 4 {
		if octet > 0 {
			if i >= len(addr) || addr[i] != '.' {
				return "", false
			}
			i++
		}
		if i >= len(addr) {
			return "", false
		}
		v := uint(addr[i] - '0')
		if v > 9 {
			return "", false
		}
		i++
		if v == 0 {
			continue // "0" alone: a digit after it is a leading zero, refused by what must follow
		}
		for range 2 {
			if i >= len(addr) {
				break
			}
			c := uint(addr[i] - '0')
			if c > 9 {
				break
			}
			v = v*10 + c
			i++
		}
		if v > 255 {
			return "", false
		}
	}
	if i < len(addr) && (addr[i] != ':' || strings.IndexByte(addr[i+1:], ':') >= 0) {
		return "", false
	}
	return addr[:i], true
}

// remoteHost returns the host part of a RemoteAddr ("1.2.3.4:5",
// "[::1]:5", or a bare address as some test servers set).
func remoteHost(addr string) (string, bool) {
	if addr == "" {
		return "", false
	}
	if addr[0] == '[' {
		end := strings.IndexByte(addr, ']')
		if end < 0 {
			return "", false
		}
		return addr[1:end], true
	}
	if i := strings.LastIndexByte(addr, ':'); i >= 0 && strings.IndexByte(addr[:i], ':') < 0 {
		return addr[:i], true // host:port with an IPv4 or name host
	}
	return addr, true // bare address, IPv6 without port included
}

// KeyByHeader keys a request by the first value of the named header (an
// API key, a tenant id), trimmed of spaces. A request without it, or with
// an empty value, gets an error wrapping [ErrNoKey] (400 by default).
// Only use headers that your own authentication or proxy sets or checks:
// a client can put anything in a header.
func KeyByHeader(name string) KeyFunc {
	name = http.CanonicalHeaderKey(name)
	return func(r *http.Request) (string, error) {
		v := r.Header[name]
		if len(v) == 0 {
			return "", fmt.Errorf("%w: header %s missing", ErrNoKey, name)
		}
		k := strings.TrimSpace(v[0])
		if k == "" {
			return "", fmt.Errorf("%w: header %s empty", ErrNoKey, name)
		}
		return k, nil
	}
}

// Keys joins the keys of several key functions into one (for example the
// client IP and the route), so that a request is counted per combination.
// Each part is written as its length, ':' and the key, parts separated by
// ';' ("9:192.0.2.1;5:k-123"), so different combinations never produce the
// same key. The first error is returned.
func Keys(fns ...KeyFunc) KeyFunc {
	fns = append([]KeyFunc(nil), fns...)
	return func(r *http.Request) (string, error) {
		var b []byte
		for i, fn := range fns {
			k, err := fn(r)
			if err != nil {
				return "", err
			}
			if i > 0 {
				b = append(b, ';')
			}
			b = strconv.AppendInt(b, int64(len(k)), 10)
			b = append(b, ':')
			b = append(b, k...)
		}
		return string(b), nil
	}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
