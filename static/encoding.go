package static

import (
	"math"
	"strconv"
	"strings"
)

// coding is a content coding the Server can send.
type coding uint8

const (
	identity coding = iota
	brotli
	zstandard
	gzipCoding
	numCodings
)

// codingName is the Content-Encoding token of each coding.
var codingName = [numCodings]string{"identity", "br", "zstd", "gzip"}

// variantSuffix is the file name suffix of a precompressed variant.
var variantSuffix = [numCodings]string{"", ".br", ".zst", ".gz"}

// etagSuffix keeps the ETag of each precompressed variant distinct from
// the identity's even if two files happened to hash alike, and makes the
// encoding visible when debugging caches.
var etagSuffix = [numCodings]string{"", "-br", "-zst", "-gz"}

// qUnset marks a coding the Accept-Encoding field does not list.
const qUnset = -1

// acceptEncoding is a parsed Accept-Encoding field. q values are in
// thousandths (0…1000), the precision RFC 9110 allows.
type acceptEncoding struct {
	q    [numCodings]int16 // per coding; qUnset when not listed
	star int16             // "*"; qUnset when not listed
}

// parseAcceptEncoding parses the Accept-Encoding field lines of a request.
// Elements it cannot parse (a malformed q value) are ignored, as if not
// sent; a coding listed twice keeps its first q value. "x-gzip" counts as
// gzip (RFC 9110, section 8.4.1.3).
func parseAcceptEncoding(lines []string) acceptEncoding {
	a := acceptEncoding{star: qUnset}
	for i := range a.q {
		a.q[i] = qUnset
	}
	for _, line := range lines {
		for elem := range strings.SplitSeq(line, ",") {
			name, q, ok := parseCodingElem(elem)
			if !ok {
				continue
			}
			if name == "*" {
				if a.star == qUnset {
					a.star = q
				}
				continue
			}
			if c, known := codingByName(name); known && a.q[c] == qUnset {
				a.q[c] = q
			}
		}
	}
	return a
}

func codingByName(name string) (coding, bool) {
	switch {
	case strings.EqualFold(name, "gzip"), strings.EqualFold(name, "x-gzip"):
		return gzipCoding, true
	case strings.EqualFold(name, "br"):
		return brotli, true
	case strings.EqualFold(name, "zstd"):
		return zstandard, true
	case strings.EqualFold(name, "identity"):
		return identity, true
	}
	return 0, false
}

// parseCodingElem parses `coding [ ";" "q=" qvalue ]` (other parameters
// are ignored). It reports false for an empty element or a bad q value.
func parseCodingElem(elem string) (name string, q int16, ok bool) {
	name, params, _ := strings.Cut(elem, ";")
	name = strings.TrimSpace(name)
	if name == "" {
		return "", 0, false
	}
	q = 1000
	for params != "" {
		var p string
		p, params, _ = strings.Cut(params, ";")
		k, v, found := strings.Cut(strings.TrimSpace(p), "=")
		if !found || !strings.EqualFold(strings.TrimSpace(k), "q") {
			continue
		}
		f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		if err != nil || f < 0 || f > 1 || math.IsNaN(f) {
			return "", 0, false
		}
		q = int16(f*1000 + 0.5)
	}
	return name, q, true
}

// codingQ is the q value the client gives c: its own entry, else "*",
// else 0 (not acceptable).
func (a *acceptEncoding) codingQ(c coding) int16 {
	if q := a.q[c]; q != qUnset {
		return q
	}
	if a.star != qUnset {
		return a.star
	}
	return 0
}

// identityQ is the q value of the identity coding and whether the client
// stated it (listed "identity", or "*"). Identity is acceptable unless
// refused with "identity;q=0", or "*;q=0" without an identity entry.
func (a *acceptEncoding) identityQ() (q int16, explicit bool) {
	if q := a.q[identity]; q != qUnset {
		return q, true
	}
	if a.star != qUnset {
		return a.star, true
	}
	return 1000, false
}

// choice is the outcome of negotiation.
type choice struct {
	coding     coding // identity when no content coding is applied
	onTheFly   bool   // compress with gzhttp rather than a precompressed file
	acceptable bool   // false: nothing the client accepts (406)
}

// offer describes what can be sent for one file.
type offer struct {
	precompressed [numCodings]bool // a variant file exists for the coding
	onTheFly      bool             // gzip and zstd can be made on the fly
	small         bool             // below the on-the-fly minimum size
}

// preference orders candidates with equal q values: precompressed
// variants first (no CPU, best ratio), brotli > zstd > gzip, then on the
// fly zstd > gzip (gzhttp's own preference).
var preference = [...]struct {
	c        coding
	onTheFly bool
}{
	{brotli, false}, {zstandard, false}, {gzipCoding, false},
	{zstandard, true}, {gzipCoding, true},
}

// negotiate picks the representation to send. A coding the client accepts
// with the highest q wins; identity is sent when no coding is acceptable,
// or when the client stated a higher q for it than for the best coding.
// With identity refused and no coding available, the result is not
// acceptable. A small file is compressed on the fly only when identity is
// refused (compressing a few hundred bytes costs more than it saves).
func negotiate(a *acceptEncoding, o *offer) choice {
	idQ, idExplicit := a.identityQ()
	best := choice{coding: identity}
	bestQ := int16(0)
	for _, p := range preference {
		if p.onTheFly {
			if !o.onTheFly || o.precompressed[p.c] || (o.small && idQ > 0) {
				continue
			}
		} else if !o.precompressed[p.c] {
			continue
		}
		if q := a.codingQ(p.c); q > bestQ {
			best, bestQ = choice{coding: p.c, onTheFly: p.onTheFly}, q
		}
	}
	switch {
	case bestQ == 0 && idQ == 0:
		return choice{}
	case bestQ == 0, idExplicit && idQ > bestQ:
		return choice{coding: identity, acceptable: true}
	}
	best.acceptable = true
	return best
}
