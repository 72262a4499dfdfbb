package accesslog

import (
	"strings"
	"testing"
)

// TestIDEncoding decodes ids back to their 80 bits: the source's random
// part, then the count, unmixed, so that no bit of either is lost, and no
// count repeats or lies outside the blocks handed out.
func TestIDEncoding(t *testing.T) {
	g := &idSource{hi: 0xbeef, base: 0xfffffffffffffff0} // the count wraps
	seen := map[uint64]bool{}
	for range 3 * idBlock {
		var b [RequestIDLen]byte
		g.next(&b)
		var hi, lo uint64
		for _, c := range b {
			d := strings.IndexByte(crockford, c)
			if d < 0 {
				t.Fatalf("id %q has %q, not in the alphabet", b, c)
			}
			hi = hi<<5 | lo>>59
			lo = lo<<5 | uint64(d)
		}
		c := unmix64(lo) - g.base
		if hi != 0xbeef || c < 1 || c > g.n.Load()*idBlock {
			t.Fatalf("id %q decodes to %#x and count %d: not the random part and a count handed out", b, hi, c)
		}
		if seen[c] {
			t.Fatalf("count %d given twice", c)
		}
		seen[c] = true
	}
}

// unmix64 is mix64's inverse.
func unmix64(x uint64) uint64 {
	x = unxorshift(x, 31)
	x *= inverse(0x94d049bb133111eb)
	x = unxorshift(x, 27)
	x *= inverse(0xbf58476d1ce4e5b9)
	return unxorshift(x, 30)
}

// unxorshift inverts x ^= x >> k.
func unxorshift(y uint64, k uint) uint64 {
	x := y
	for range 64 / k {
		x = y ^ x>>k
	}
	return x
}

// inverse is the multiplicative inverse of odd a modulo 2^64 (Newton).
func inverse(a uint64) uint64 {
	x := a
	for range 6 {
		x *= 2 - a*x
	}
	return x
}

func TestUnmix(t *testing.T) {
	for _, x := range []uint64{0, 1, 42, 1 << 63, 0xdeadbeefcafef00d} {
		if got := unmix64(mix64(x)); got != x {
			t.Fatalf("unmix64(mix64(%#x)) = %#x", x, got)
		}
	}
}

// BenchmarkIDNext is one id, from every core at once.
func BenchmarkIDNext(b *testing.B) {
	var g idSource
	g.init()
	b.RunParallel(func(pb *testing.PB) {
		var dst [RequestIDLen]byte
		for pb.Next() {
			g.next(&dst)
		}
	})
}
