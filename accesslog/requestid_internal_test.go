package accesslog

import (
	"strings"
	"testing"
)

// TestIDEncoding decodes ids back to their 80 bits: the source's random
// part, then the mixed count, so that no bit of either is lost.
func TestIDEncoding(t *testing.T) {
	g := &idSource{hi: 0xbeef, base: 0xfffffffffffffffe} // the count wraps
	for n := uint64(1); n <= 4; n++ {
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
		if hi != 0xbeef || lo != mix64(g.base+n) {
			t.Fatalf("id %d %q decodes to %#x %#x, want %#x %#x", n, b, hi, lo, 0xbeef, mix64(g.base+n))
		}
	}
}

func BenchmarkIDNext(b *testing.B) {
	var g idSource
	g.init()
	var dst [RequestIDLen]byte
	for b.Loop() {
		g.next(&dst)
	}
}
