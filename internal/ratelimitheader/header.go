// Package ratelimitheader writes the rate-limit fields of a response for
// ratelimit.Limiter and slowdown.Delayer, which advertise their policies
// the same way: the IETF RateLimit-Policy and RateLimit lists
// (draft-ietf-httpapi-ratelimit-headers-10), the fields of the earlier
// drafts 6 and 7 as express-rate-limit sends them, the legacy X-…-Limit,
// -Remaining and -Reset trio, and Retry-After; the rules for a policy name
// that goes into them; and the rounding to whole seconds they all use.
//
// A [Policy] is prepared once, when a Limiter or Delayer is built, for one
// or several quotas, and writes one response's fields with one allocation.
// A [Style] names the fields it writes; [Names] names the fields of one
// kind of middleware for the styles whose fields describe a single
// policy. ratelimit.HeaderStyle's values are this package's, so a new
// style is a new Style value, one more case in [Policy.Set] and one line
// more in ratelimit.
package ratelimitheader

import (
	"errors"
	"math/bits"
	"net/http"
	"strconv"
	"strings"
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
	// IETF: RateLimit-Policy and RateLimit of draft 10, structured-field
	// lists that carry the items of several policies, each named.
	IETF Style = iota
	// Legacy: the X-…-Limit, -Remaining and -Reset fields of one policy.
	Legacy
	// Both: IETF and Legacy.
	Both
	// None: no rate-limit fields (Retry-After is not a Policy's business).
	None
	// Draft6: express-rate-limit's "draft-6": …-Policy (the quotas, as
	// "limit;w=seconds"), …-Limit, …-Remaining and …-Reset (seconds).
	Draft6
	// Draft7: express-rate-limit's "draft-7": …-Policy as in Draft6 and
	// one field "limit=…, remaining=…, reset=…".
	Draft7
)

// Valid reports whether s is one of the styles above.
func (s Style) Valid() bool { return s >= IETF && s <= Draft7 }

// String returns the style's name: ietf, legacy, both, none, draft-6,
// draft-7.
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
	case Draft6:
		return "draft-6"
	case Draft7:
		return "draft-7"
	}
	return "Style(" + strconv.Itoa(int(s)) + ")"
}

// Names are the canonical keys of the fields that describe a single
// policy, for one kind of middleware: the legacy trio and the fields of
// drafts 6 and 7. Two kinds of policy on one response need two sets of
// names; the IETF draft-10 lists are shared, their items being named.
type Names struct {
	// Legacy trio.
	Limit, Remaining, Reset string
	// Draft6Policy, Draft6Limit, Draft6Remaining and Draft6Reset are the
	// draft-6 fields; Draft6Policy is also draft 7's policy field.
	Draft6Policy, Draft6Limit, Draft6Remaining, Draft6Reset string
	// Draft7 is the draft-7 field "limit=…, remaining=…, reset=…".
	Draft7 string
}

// The names of a Limiter (as GitHub and express-rate-limit send them) and
// of a Delayer: the Limiter's with RateLimit replaced by Slow-Down, whose
// fields describe the threshold at which delays start (fastify-slow-down
// names its limit and remaining count the same way). A client written for
// the Limiter's fields reads them as the point past which it is refused;
// a Delayer that wrote them would overwrite or contradict the Limiter.
var (
	RateLimitNames = Names{
		Limit: "X-Ratelimit-Limit", Remaining: "X-Ratelimit-Remaining", Reset: "X-Ratelimit-Reset",
		Draft6Policy: "Ratelimit-Policy", Draft6Limit: "Ratelimit-Limit", Draft6Remaining: "Ratelimit-Remaining", Draft6Reset: "Ratelimit-Reset",
		Draft7: "Ratelimit",
	}
	SlowDownNames = Names{
		Limit: "X-Slow-Down-Limit", Remaining: "X-Slow-Down-Remaining", Reset: "X-Slow-Down-Reset",
		Draft6Policy: "Slow-Down-Policy", Draft6Limit: "Slow-Down-Limit", Draft6Remaining: "Slow-Down-Remaining", Draft6Reset: "Slow-Down-Reset",
		Draft7: "Slow-Down",
	}
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

// Quota is one policy as the fields describe it.
type Quota struct {
	Name   string // valid: see ValidName
	Limit  int
	Window time.Duration
}

// Policy writes the rate-limit fields of one middleware's quotas. Make it
// with [NewPolicy]; it is read-only afterwards and safe for concurrent
// use.
type Policy struct {
	style  Style
	names  Names
	quotas []Quota

	ietfPolicy  string   // the RateLimit-Policy items of the quotas, draft 10
	draftPolicy string   // the draft-6/7 policy field: "10;w=1, 1000;w=3600"
	limitValue  []string // each quota's limit, formatted
	// itemBuf is the buffer of the IETF style of one quota with its
	// configured limit, the common case: the smallest of ietfBufs that
	// holds the longest RateLimit item the quota can have, or 0 when the
	// case does not apply (see Set).
	itemBuf int
}

// NewPolicy prepares the fields of quotas (at least one) in style, with
// names for the fields that describe one policy.
func NewPolicy(style Style, names Names, quotas ...Quota) Policy {
	p := Policy{style: style, names: names, quotas: append([]Quota(nil), quotas...)}
	p.ietfPolicy = string(p.appendIETFPolicy(nil, nil))
	p.draftPolicy = string(p.appendDraftPolicy(nil, nil))
	for _, q := range quotas {
		p.limitValue = append(p.limitValue, strconv.Itoa(q.Limit))
	}
	if style == IETF && len(quotas) == 1 {
		p.itemBuf = itemBufFor(quotas[0])
	}
	return p
}

// The buffers of the IETF style of one quota, by size: the whole
// allocation (two strings and the buffer) is 64, 80 or 112 bytes, each a
// size class of the allocator, and the smaller it is the less often the
// garbage collector runs (at 112 bytes per response it was a fifth of a
// request's instructions).
const (
	ietfBufSmall  = 32
	ietfBufMedium = 48
	ietfBufLarge  = 80
)

// itemBufFor is the smallest buffer that holds every RateLimit item of q:
// its name, a remaining count of at most its limit and a reset of at most
// two windows (Set formats larger values correctly, with an allocation
// more); 0 when no buffer does.
func itemBufFor(q Quota) int {
	n := len(`"";r=;t=`) + len(q.Name) + digits(uint64(max(q.Limit, 0))) + digits(uint64(max(CeilSeconds(2*q.Window), 0)))
	for _, size := range []int{ietfBufSmall, ietfBufMedium, ietfBufLarge} {
		if n <= size {
			return size
		}
	}
	return 0
}

// vals holds one response's values in one allocation: the value slices
// point into vals and the formatted strings into buf, which is written
// once, before any string refers to it, and never again. The IETF style
// of one quota, the common case, uses ietfValsSmall, ietfValsMedium or
// ietfVals, whichever holds its item (see itemBufFor).
type vals struct {
	vals [5]string
	buf  [96]byte
}

// bigVals is vals for several quotas or a response's own limits, whose
// policy field is formatted per response.
type bigVals struct {
	vals [5]string
	buf  [160]byte
}

type ietfVals struct {
	vals [2]string
	buf  [ietfBufLarge]byte
}

type ietfValsSmall struct {
	vals [2]string
	buf  [ietfBufSmall]byte
}

type ietfValsMedium struct {
	vals [2]string
	buf  [ietfBufMedium]byte
}

// Set writes the fields on h for a response sent at at. limits are this
// response's limits of the quotas, in order (nil: the limits NewPolicy was
// given); quota i is the one the single-policy fields describe, the one
// closest to refusing, which has remaining requests left and its quota
// fully available again reset after at.
//
// The IETF fields are lists: items already on h (another policy's) are
// kept, and this policy's are added after them. The fields that describe
// one policy are replaced. Each response gets value slices of its own, so
// a handler that edits them in place cannot change another response's
// fields.
func (p *Policy) Set(h http.Header, limits []int, i, remaining int, reset time.Duration, at time.Time) {
	if limits == nil && p.itemBuf != 0 {
		switch p.itemBuf {
		case ietfBufSmall:
			v := new(ietfValsSmall)
			p.setItem(h, &v.vals, v.buf[:], remaining, reset)
		case ietfBufMedium:
			v := new(ietfValsMedium)
			p.setItem(h, &v.vals, v.buf[:], remaining, reset)
		default:
			v := new(ietfVals)
			p.setItem(h, &v.vals, v.buf[:], remaining, reset)
		}
		return
	}
	if p.style == None {
		return
	}
	static := limits == nil
	limit := p.quotas[i].Limit
	if !static {
		limit = limits[i]
	}
	var vs []string
	var buf []byte
	if static && len(p.quotas) == 1 {
		v := new(vals)
		vs, buf = v.vals[:], v.buf[:]
	} else {
		v := new(bigVals)
		vs, buf = v.vals[:], v.buf[:]
	}
	b := buf[:0]
	var spans [5][2]int // start and end in b of the value vs[k], when formatted
	mark := func(k int, start int) { spans[k] = [2]int{start, len(b)} }
	const (
		// draft7 shares item's slot: a style has one or the other.
		item, policy, lim, rem, rst, draft7 = 0, 1, 2, 3, 4, 0
	)
	ietf := p.style == IETF || p.style == Both
	legacy := p.style == Legacy || p.style == Both
	if ietf {
		start := len(b)
		b = appendItem(b, p.quotas[i].Name, remaining, reset)
		mark(item, start)
		if !static {
			start = len(b)
			b = p.appendIETFPolicy(b, limits)
			mark(policy, start)
		}
	}
	if p.style == Draft6 || p.style == Draft7 {
		if !static {
			start := len(b)
			b = p.appendDraftPolicy(b, limits)
			mark(policy, start)
		}
	}
	if !static || p.style == Draft7 {
		start := len(b)
		b = appendInt(b, int64(limit))
		mark(lim, start)
	}
	if legacy || p.style == Draft6 || p.style == Draft7 {
		start := len(b)
		b = appendInt(b, int64(remaining))
		mark(rem, start)
		start = len(b)
		if legacy {
			end := at.Add(reset)
			b = appendInt(b, end.Unix()+boolInt(end.Nanosecond() != 0))
		} else {
			b = appendInt(b, CeilSeconds(reset))
		}
		mark(rst, start)
	}
	if p.style == Draft7 {
		start := len(b)
		b = append(b, "limit="...)
		b = append(b, b[spans[lim][0]:spans[lim][1]]...)
		b = append(b, ", remaining="...)
		b = append(b, b[spans[rem][0]:spans[rem][1]]...)
		b = append(b, ", reset="...)
		b = append(b, b[spans[rst][0]:spans[rst][1]]...)
		mark(draft7, start)
	}
	str := bufString(b, buf)
	for k := range spans {
		if spans[k][1] > spans[k][0] {
			vs[k] = str[spans[k][0]:spans[k][1]]
		}
	}
	if static {
		if ietf {
			vs[policy] = p.ietfPolicy
		} else {
			vs[policy] = p.draftPolicy
		}
		if vs[lim] == "" {
			vs[lim] = p.limitValue[i]
		}
	}
	one := func(k int) []string { return vs[k : k+1 : k+1] }
	if ietf {
		add(h, PolicyKey, one(policy))
		add(h, RateLimitKey, one(item))
	}
	if legacy {
		h[p.names.Limit] = one(lim)
		h[p.names.Remaining] = one(rem)
		h[p.names.Reset] = one(rst)
	}
	switch p.style {
	case Draft6:
		h[p.names.Draft6Policy] = one(policy)
		h[p.names.Draft6Limit] = one(lim)
		h[p.names.Draft6Remaining] = one(rem)
		h[p.names.Draft6Reset] = one(rst)
	case Draft7:
		h[p.names.Draft6Policy] = one(policy)
		h[p.names.Draft7] = one(draft7)
	}
}

// setItem writes the IETF fields of one quota with its configured limit,
// formatting the item into buf, which vals and buf share one allocation
// with.
func (p *Policy) setItem(h http.Header, vals *[2]string, buf []byte, remaining int, reset time.Duration) {
	b := appendItem(buf[:0], p.quotas[0].Name, remaining, reset)
	vals[0] = bufString(b, buf)
	vals[1] = p.ietfPolicy
	if len(h) == 0 {
		// A fresh response's header, the common case: neither field can
		// be there already, so no look-up first.
		h[PolicyKey] = vals[1:2:2]
		h[RateLimitKey] = vals[0:1:1]
		return
	}
	add(h, PolicyKey, vals[1:2:2])
	add(h, RateLimitKey, vals[0:1:1])
}

// appendIETFPolicy appends the RateLimit-Policy items of the quotas, with
// limits instead of theirs unless nil: "burst";q=10;w=1, "hour";q=1000;w=3600.
func (p *Policy) appendIETFPolicy(b []byte, limits []int) []byte {
	for k, q := range p.quotas {
		if k > 0 {
			b = append(b, ", "...)
		}
		limit := q.Limit
		if limits != nil {
			limit = limits[k]
		}
		b = append(b, '"')
		b = append(b, q.Name...)
		b = append(b, `";q=`...)
		b = strconv.AppendInt(b, int64(limit), 10)
		b = append(b, ";w="...)
		b = strconv.AppendInt(b, CeilSeconds(q.Window), 10)
	}
	return b
}

// appendDraftPolicy appends the draft-6/7 policy field: 10;w=1, 1000;w=3600.
func (p *Policy) appendDraftPolicy(b []byte, limits []int) []byte {
	for k, q := range p.quotas {
		if k > 0 {
			b = append(b, ", "...)
		}
		limit := q.Limit
		if limits != nil {
			limit = limits[k]
		}
		b = strconv.AppendInt(b, int64(limit), 10)
		b = append(b, ";w="...)
		b = strconv.AppendInt(b, CeilSeconds(q.Window), 10)
	}
	return b
}

// appendItem appends the RateLimit item: "name";r=42;t=17.
func appendItem(b []byte, name string, remaining int, reset time.Duration) []byte {
	b = append(b, '"')
	b = append(b, name...)
	b = append(b, `";r=`...)
	b = appendInt(b, int64(remaining))
	b = append(b, ";t="...)
	return appendInt(b, CeilSeconds(reset))
}

// pairs holds the two digits of 0 to 99, padded to 256 bytes so that an
// index masked with 0xff needs no bounds check.
var pairs = [256]byte([]byte("00010203040506070809101112131415161718192021222324252627282930313233343536373839" +
	"40414243444546474849505152535455565758596061626364656667686970717273747576777879" +
	"8081828384858687888990919293949596979899" + strings.Repeat("-", 56)))

// appendInt is strconv.AppendInt(b, v, 10) written in place, two digits at
// a time, when b has room for the number (the buffers of Set are sized
// for the numbers they get): every response formats two or three numbers, and strconv's
// detour through a buffer of its own showed in the profile of the
// limiter's path.
func appendInt(b []byte, v int64) []byte {
	if v < 0 {
		return strconv.AppendInt(b, v, 10)
	}
	u := uint64(v)
	start := len(b)
	i := start + digits(u)
	if i > cap(b) {
		return strconv.AppendInt(b, v, 10)
	}
	b = b[:i]
	out := b[start:i] // only the digits: indexes below are checked against it once
	i = len(out)
	for u >= 100 && i >= 2 {
		q := u / 100
		d := (u - q*100) * 2
		i -= 2
		out[i], out[i+1] = pairs[d&0xff], pairs[(d+1)&0xff]
		u = q
	}
	switch {
	case u >= 10 && i >= 2:
		out[i-2], out[i-1] = pairs[(u*2)&0xff], pairs[(u*2+1)&0xff]
	case i >= 1:
		out[i-1] = byte('0' + u)
	}
	return b
}

// pow10 holds 10⁰ to 10¹⁹.
var pow10 = [20]uint64{1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9,
	1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19}

// digits is the number of decimal digits of u: log10 from the bit length
// (1233/4096 ≈ log10 2), corrected by one comparison.
func digits(u uint64) int {
	t := bits.Len64(u) * 1233 >> 12
	if u >= pow10[t] {
		t++
	}
	return max(t, 1)
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
// An empty header, a fresh response's, needs no look-up first.
func add(h http.Header, key string, v []string) {
	if len(h) == 0 {
		h[key] = v
		return
	}
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
