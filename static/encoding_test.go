package static

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestParseAcceptEncoding(t *testing.T) {
	u := int16(qUnset)
	tests := []struct {
		name  string
		lines []string
		q     [numCodings]int16 // identity, br, zstd, gzip
		star  int16
	}{
		{"absent", nil, [numCodings]int16{u, u, u, u}, u},
		{"empty", []string{""}, [numCodings]int16{u, u, u, u}, u},
		{"browser", []string{"gzip, deflate, br, zstd"}, [numCodings]int16{u, 1000, 1000, 1000}, u},
		{"q values", []string{"br;q=0.8, gzip;q=0.5, zstd;q=0"}, [numCodings]int16{u, 800, 0, 500}, u},
		{"three decimals", []string{"gzip;q=0.125"}, [numCodings]int16{u, u, u, 125}, u},
		{"identity and star", []string{"identity;q=0, *;q=0.3"}, [numCodings]int16{0, u, u, u}, 300},
		{"case and spaces", []string{" GZip ; Q = 0.7 ,BR"}, [numCodings]int16{u, 1000, u, 700}, u},
		{"x-gzip is gzip", []string{"x-gzip"}, [numCodings]int16{u, u, u, 1000}, u},
		{"first entry wins", []string{"gzip;q=0.2, gzip;q=1"}, [numCodings]int16{u, u, u, 200}, u},
		{"several lines", []string{"br;q=0.1", "gzip"}, [numCodings]int16{u, 100, u, 1000}, u},
		{"malformed q ignored", []string{"gzip;q=high, br;q=2, zstd;q=-1, identity;q=NaN"}, [numCodings]int16{u, u, u, u}, u},
		{"other params ignored", []string{"gzip;level=9;q=0.4"}, [numCodings]int16{u, u, u, 400}, u},
		{"unknown codings ignored", []string{"deflate, compress, sdch"}, [numCodings]int16{u, u, u, u}, u},
		{"empty elements", []string{",,gzip,,"}, [numCodings]int16{u, u, u, 1000}, u},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := parseAcceptEncoding(tt.lines)
			assert.Equal(t, tt.q, a.q, "q values: got %v, want %v", a.q, tt.q)
			assert.Equal(t, tt.star, a.star, "star: got %d, want %d", a.star, tt.star)
		})
	}
}

func TestNegotiate(t *testing.T) {
	all := offer{precompressed: [numCodings]bool{false, true, true, true}, onTheFly: true}
	gzOnly := offer{precompressed: [numCodings]bool{gzipCoding: true}, onTheFly: true}
	otf := offer{onTheFly: true}
	small := offer{onTheFly: true, small: true}
	none := offer{}
	id := choice{coding: identity, acceptable: true}
	pre := func(c coding) choice { return choice{coding: c, acceptable: true} }
	fly := func(c coding) choice { return choice{coding: c, onTheFly: true, acceptable: true} }
	tests := []struct {
		name   string
		header []string
		offer  offer
		want   choice
	}{
		{"no header: identity", nil, all, id},
		{"empty header: identity", []string{""}, all, id},
		{"browser prefers br", []string{"gzip, deflate, br, zstd"}, all, pre(brotli)},
		{"zstd before gzip", []string{"gzip, zstd"}, all, pre(zstandard)},
		{"q decides", []string{"br;q=0.5, gzip;q=0.9"}, all, pre(gzipCoding)},
		{"q=0 refuses", []string{"br;q=0, zstd;q=0, gzip"}, all, pre(gzipCoding)},
		{"star matches unlisted", []string{"*"}, all, pre(brotli)},
		{"star with listed refusal", []string{"br;q=0, *;q=0.5"}, all, pre(zstandard)},
		{"precompressed gz beats on-the-fly zstd at equal q", []string{"gzip, zstd"}, gzOnly, pre(gzipCoding)},
		{"on-the-fly zstd when its q is higher", []string{"gzip;q=0.5, zstd"}, gzOnly, fly(zstandard)},
		{"on the fly: zstd preferred", []string{"gzip, deflate, br, zstd"}, otf, fly(zstandard)},
		{"on the fly: gzip", []string{"gzip"}, otf, fly(gzipCoding)},
		{"on the fly: br cannot be made", []string{"br"}, otf, id},
		{"small file stays identity", []string{"gzip"}, small, id},
		{"small file compressed when identity refused", []string{"gzip, identity;q=0"}, small, fly(gzipCoding)},
		{"explicit identity with higher q", []string{"gzip;q=0.5, identity"}, all, id},
		{"explicit identity with equal q loses", []string{"gzip, identity"}, gzOnly, pre(gzipCoding)},
		{"implicit identity never beats a coding", []string{"gzip;q=0.1"}, gzOnly, pre(gzipCoding)},
		{"star gives identity its q", []string{"gzip;q=0.5, *;q=1"}, offer{precompressed: [numCodings]bool{gzipCoding: true}}, id},
		{"star also reaches on-the-fly zstd", []string{"gzip;q=0.5, *;q=1"}, gzOnly, fly(zstandard)},
		{"identity;q=0 with a coding", []string{"gzip, identity;q=0"}, gzOnly, pre(gzipCoding)},
		{"identity;q=0 and nothing else: not acceptable", []string{"identity;q=0"}, none, choice{}},
		{"star;q=0 refuses identity too", []string{"*;q=0"}, none, choice{}},
		{"star;q=0 but identity listed", []string{"*;q=0, identity"}, none, id},
		{"identity;q=0, only br offered, gzip asked", []string{"gzip, identity;q=0"}, offer{precompressed: [numCodings]bool{brotli: true}}, choice{}},
		{"nothing compressible", []string{"gzip, br"}, none, id},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := parseAcceptEncoding(tt.header)
			got := negotiate(&a, &tt.offer)
			assert.Equal(t, tt.want, got, "negotiate(%q): got %+v, want %+v", tt.header, got, tt.want)
		})
	}
}

// FuzzNegotiate checks the negotiation invariants on arbitrary
// Accept-Encoding values: never a coding the client refused or the file
// lacks, never identity when refused, 406 only when nothing is left.
func FuzzNegotiate(f *testing.F) {
	for _, s := range []string{"", "gzip", "br;q=0.5, gzip;q=0.5, zstd;q=0", "identity;q=0", "*;q=0", "*", "x-gzip;q=1.000",
		"gzip;q=0.0001", "br;q=1e-3", "gzip;q=NaN", ";;,,", "GZIP;Q=0.9"} {
		f.Add(s, uint8(0xff))
	}
	f.Fuzz(func(t *testing.T, header string, bits uint8) {
		o := offer{
			precompressed: [numCodings]bool{false, bits&1 != 0, bits&2 != 0, bits&4 != 0},
			onTheFly:      bits&8 != 0,
			small:         bits&16 != 0,
		}
		a := parseAcceptEncoding([]string{header})
		ch := negotiate(&a, &o)
		idQ, _ := a.identityQ()
		switch {
		case !ch.acceptable:
			if idQ > 0 {
				t.Fatalf("%q: 406 although identity is acceptable", header)
			}
			for c := brotli; c < numCodings; c++ {
				possible := o.precompressed[c] || o.onTheFly && c != brotli
				if possible && a.codingQ(c) > 0 {
					t.Fatalf("%q: 406 although %s is acceptable and possible", header, codingName[c])
				}
			}
		case ch.coding == identity:
			if ch.onTheFly || idQ == 0 {
				t.Fatalf("%q: identity chosen although refused (q=%d)", header, idQ)
			}
		default:
			if a.codingQ(ch.coding) <= 0 {
				t.Fatalf("%q: %s chosen although refused", header, codingName[ch.coding])
			}
			if ch.onTheFly && (!o.onTheFly || ch.coding == brotli || o.precompressed[ch.coding]) {
				t.Fatalf("%q: on-the-fly %s not possible for %+v", header, codingName[ch.coding], o)
			}
			if !ch.onTheFly && !o.precompressed[ch.coding] {
				t.Fatalf("%q: no %s variant in %+v", header, codingName[ch.coding], o)
			}
		}
	})
}
