// Package ratelimitheader writes the rate-limit fields of a response for
// ratelimit.Limiter and slowdown.Delayer, which advertise their policies
// the same way: the IETF RateLimit-Policy and RateLimit lists
// (draft-ietf-httpapi-ratelimit-headers-10), the legacy X-…-Limit,
// -Remaining and -Reset trio, and Retry-After; the rules for a policy name
// that goes into them; and the rounding to whole seconds they all use.
//
// A [Policy] is prepared once, when a Limiter or Delayer is built, and
// writes one response's fields with one allocation. A [Style] names the
// fields it writes. A new style (express-rate-limit's draft-6 and draft-7
// fields, say) is a new Style value, whatever NewPolicy can precompute for
// it, and one more case in [Policy.Set]; ratelimit.HeaderStyle's values are
// this package's, so the public constant is one line more.
package ratelimitheader

import (
	"errors"
	"net/http"
	"strconv"
	"time"
	"unsafe"
)

// Canonical keys, so that the map writes below match Header.Get.
const (
	PolicyKey     = "Ratelimit-Policy"
	RateLimitKey  = "Ratelimit"
	RetryAfterKey = "Retry-After"
)

// Style selects the fields a Policy writes. ratelimit.HeaderStyle has the
// same values.
type Style int

// The styles.
const (
	// IETF: RateLimit-Policy and RateLimit, structured-field lists that
	// may carry the items of several policies.
	IETF Style = iota
	// Legacy: the X-…-Limit, -Remaining and -Reset fields of one policy.
	Legacy
	// Both: IETF and Legacy.
	Both
	// None: no rate-limit fields (Retry-After is not a Policy's business).
	None
)

// Valid reports whether s is one of the styles above.
func (s Style) Valid() bool { return s >= IETF && s <= None }

// String returns the style's name: ietf, legacy, both, none.
func (s Style) String() string {
	switch s {
	case IETF:
		return "ietf"
	case Legacy:
		return "legacy"
	case Both:
		return "both"
	case None:
		return "none"
	}
	return "Style(" + strconv.Itoa(int(s)) + ")"
}

// LegacyNames are the canonical keys of the legacy trio of one kind of
// policy. Each describes a single policy, so two kinds of policy on one
// response need two sets of names.
type LegacyNames struct {
	Limit, Remaining, Reset string
}

// The legacy names of a Limiter (as GitHub popularised them) and of a
// Delayer, whose trio describes the threshold at which delays start
// (fastify-slow-down names its limit and remaining count the same way).
var (
	RateLimitNames = LegacyNames{"X-Ratelimit-Limit", "X-Ratelimit-Remaining", "X-Ratelimit-Reset"}
	SlowDownNames  = LegacyNames{"X-Slow-Down-Limit", "X-Slow-Down-Remaining", "X-Slow-Down-Reset"}
)

// maxName is the longest policy name: the IETF item of any name fits in
// the buffers below most of the time, and a header stays short.
const maxName = 64

// ValidName reports an error when name cannot be a policy name: it goes
// verbatim into a structured-field string of the RateLimit fields, so it
// must be 1–64 printable ASCII characters without '"' or '\'. The error
// has no package prefix: the caller wraps it with its own and the option's
// name.
func ValidName(name string) error {
	if name == "" || len(name) > maxName {
		return errors.New("name must be 1 to 64 characters")
	}
	for i := 0; i < len(name); i++ {
		if b := name[i]; b < 0x20 || b > 0x7e || b == '"' || b == '\\' {
			return errors.New(`name must be printable ASCII without '"' or '\'`)
		}
	}
	return nil
}

// CeilSeconds is d in whole seconds, rounded up: a client told t=17 or
// Retry-After: 17 is never early.
func CeilSeconds(d time.Duration) int64 {
	s := int64(d / time.Second)
	if d%time.Second > 0 {
		s++
	}
	return s
}

// RetryAfterSeconds is the Retry-After value for d: CeilSeconds, never 0
// (a 0 would invite an immediate retry that is refused again).
func RetryAfterSeconds(d time.Duration) int64 {
	return max(1, CeilSeconds(d))
}

// SetRetryAfter sets Retry-After to RetryAfterSeconds(d).
func SetRetryAfter(h http.Header, d time.Duration) {
	h[RetryAfterKey] = []string{strconv.FormatInt(RetryAfterSeconds(d), 10)}
}

// Policy writes the rate-limit fields of one policy. Make it with
// [NewPolicy]; it is read-only afterwards and safe for concurrent use.
type Policy struct {
	style  Style
	name   string
	legacy LegacyNames

	policyValue string // the RateLimit-Policy item
	limitValue  string // the legacy Limit value
}

// NewPolicy prepares the fields of the policy name (valid: see
// [ValidName]) with quota requests per window, in style, with legacy as
// the names of the legacy trio.
func NewPolicy(style Style, legacy LegacyNames, name string, quota int, window time.Duration) Policy {
	b := append([]byte{'"'}, name...)
	b = append(b, `";q=`...)
	b = strconv.AppendInt(b, int64(quota), 10)
	b = append(b, ";w="...)
	b = strconv.AppendInt(b, CeilSeconds(window), 10)
	return Policy{
		style:       style,
		name:        name,
		legacy:      legacy,
		policyValue: string(b),
		limitValue:  strconv.Itoa(quota),
	}
}

// vals holds one response's values in one allocation: the value slices
// point into vals and the formatted strings into buf, which is written
// once, before any string refers to it, and never again. The IETF style,
// the common case, uses the smaller ietfVals.
type vals struct {
	vals [5]string
	buf  [96]byte
}

type ietfVals struct {
	vals [2]string
	buf  [80]byte
}

// ietfShortName is the longest name whose IETF item always fits in
// ietfVals.buf: 1+40+4 bytes of name and punctuation, 19 digits of r, 3
// of ";t=", 10 of t (a time.Duration is under 10¹⁰ s).
const ietfShortName = 40

// Set writes the policy's fields on h for a response sent at at, with
// remaining requests left and the quota fully available again reset after
// at. The IETF fields are lists: items already on h (another policy's)
// are kept, and this policy's are added after them. The legacy fields
// describe one policy and are replaced. Each response gets value slices
// of its own, so a handler that edits them in place cannot change another
// response's fields.
func (p *Policy) Set(h http.Header, remaining int, reset time.Duration, at time.Time) {
	switch p.style {
	case None:
		return
	case IETF:
		if len(p.name) <= ietfShortName {
			v := new(ietfVals)
			b := p.appendItem(v.buf[:0], remaining, reset)
			v.vals[0] = bufString(b, v.buf[:])
			v.vals[1] = p.policyValue
			add(h, PolicyKey, v.vals[1:2:2])
			add(h, RateLimitKey, v.vals[0:1:1])
			return
		}
	}
	v := new(vals)
	b := v.buf[:0]
	var item, rem, rst [2]int // start, end of each value in b
	ietf := p.style == IETF || p.style == Both
	legacy := p.style == Legacy || p.style == Both
	if ietf {
		item[0] = len(b)
		b = p.appendItem(b, remaining, reset)
		item[1] = len(b)
	}
	if legacy {
		rem[0] = len(b)
		b = strconv.AppendInt(b, int64(remaining), 10)
		rem[1] = len(b)
		rst[0] = len(b)
		end := at.Add(reset)
		b = strconv.AppendInt(b, end.Unix()+boolInt(end.Nanosecond() != 0), 10)
		rst[1] = len(b)
	}
	s := bufString(b, v.buf[:])
	if ietf {
		v.vals[0] = s[item[0]:item[1]]
		v.vals[3] = p.policyValue
		add(h, PolicyKey, v.vals[3:4:4])
		add(h, RateLimitKey, v.vals[0:1:1])
	}
	if legacy {
		v.vals[1] = s[rem[0]:rem[1]]
		v.vals[2] = s[rst[0]:rst[1]]
		v.vals[4] = p.limitValue
		h[p.legacy.Limit] = v.vals[4:5:5]
		h[p.legacy.Remaining] = v.vals[1:2:2]
		h[p.legacy.Reset] = v.vals[2:3:3]
	}
}

// appendItem appends the RateLimit item: "name";r=42;t=17.
func (p *Policy) appendItem(b []byte, remaining int, reset time.Duration) []byte {
	b = append(b, '"')
	b = append(b, p.name...)
	b = append(b, `";r=`...)
	b = strconv.AppendInt(b, int64(remaining), 10)
	b = append(b, ";t="...)
	return strconv.AppendInt(b, CeilSeconds(reset), 10)
}

// bufString is b as a string without a copy when b still lies in buf (it
// was appended to buf[:0] and never outgrew it), else a copy.
func bufString(b, buf []byte) string {
	if len(b) == 0 {
		return ""
	}
	if &b[0] == &buf[0] && len(b) <= len(buf) {
		return unsafe.String(&buf[0], len(b))
	}
	return string(b)
}

// add adds the one value in v to h[key]: as the whole slice when the
// field is not set yet (no allocation), else appended, so that the items
// of another policy stay in the structured-field list beside this one.
func add(h http.Header, key string, v []string) {
	if old := h[key]; len(old) > 0 {
		h[key] = append(old, v[0])
		return
	}
	h[key] = v
}

func boolInt(b bool) int64 {
	if b {
		return 1
	}
	return 0
}
