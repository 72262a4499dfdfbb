package redisstore

import (
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/shipshape-go/shipshape/internal/testenv"
	"github.com/shipshape-go/shipshape/ratelimit"
)

// hostileKeys are keys a client may control (a header value, a path) that
// must be stored safely and apart from each other.
var hostileKeys = []struct {
	name string
	key  string
}{
	{"empty", ""},
	{"ipv4", "203.0.113.7"},
	{"ipv6 prefix", "2001:db8:1:2::/64"},
	{"spaces", "a key with spaces"},
	{"newline", "line1\nline2"},
	{"crlf and RESP injection", "x\r\n*1\r\n$8\r\nFLUSHALL\r\n"},
	{"nul byte", "a\x00b"},
	{"non-UTF-8", "\xff\xfe\xc3\x28"},
	{"unicode", "ключ-🔑"},
	{"open brace", "{"},
	{"close brace", "}"},
	{"empty hash tag", "{}"},
	{"hash tag of another key", "{api:203.0.113.7}"},
	{"closing the tag early", "}:evil{"},
	{"10 KB", strings.Repeat("k", 10<<10)},
	{"10 KB of braces and newlines", strings.Repeat("{\n}", 10<<10/3)},
	{"starts with #", "#probe"},
}

// TestHostileKeys takes through real Redis with every hostile key: no
// error, no fallback, one bounded key each with exactly one hash tag, and
// each key counted on its own.
func TestHostileKeys(t *testing.T) {
	r := testenv.StartRedis(t)
	c := newClient(t, r.Addr)
	s := newStore(t, c, WithTimeout(5*time.Second))
	ctx := ctxT(t)
	const limit = 2
	p := ratelimit.Policy{Name: "hostile", Limit: limit, Window: day}

	seen := map[string]string{}
	for _, tt := range hostileKeys {
		t.Run(tt.name, func(t *testing.T) {
			for i := 1; i <= limit+1; i++ {
				w, err := s.Take(ctx, p, tt.key, time.Time{}, 1)
				require.NoError(t, err, "take %d", i)
				assert.Equal(t, i <= limit, w.Allowed, "take %d: Allowed", i)
			}
			rk := s.redisKey(p.Name, tt.key)
			if other, dup := seen[rk]; dup {
				t.Errorf("redis key %q shared with case %q", rk, other)
			}
			seen[rk] = tt.name
			assert.LessOrEqual(t, len(rk), len(DefaultPrefix)+3+maxPlainTag+len(p.Name), "redis key length")
			assert.Equal(t, 1, strings.Count(rk, "{"), "'{' in %q", rk)
			assert.Equal(t, 1, strings.Count(rk, "}"), "'}' in %q", rk)
			assert.True(t, strings.HasSuffix(rk, "}:"+p.Name), "key %q must end with its hash tag and the policy", rk)
			got, err := c.HGet(ctx, rk, "c").Result()
			require.NoError(t, err, "count stored under %q", rk)
			assert.Equal(t, "2", got, "count stored under %q", rk)
		})
	}
	assert.False(t, s.Degraded(), "Degraded after hostile keys")
	n, err := c.DBSize(ctx).Result()
	require.NoError(t, err)
	assert.Equal(t, int64(len(hostileKeys)), n, "keys in Redis: one per client key, nothing else (no injected command ran)")
}

func TestTagIsInjectiveOnTrickyPairs(t *testing.T) {
	s := &Store{cfg: config{prefix: DefaultPrefix}}
	pairs := [][2]string{
		{"a", "b:c"}, {"a:b", "c"}, {"a", ""}, {"", "a"}, {"", ":a"}, {":", "a"},
		{"#x", "y"}, {"", "#x:y"}, {"ab", "c"}, {"a", "bc"}, {"a}", "b"}, {"a", "}b"}, {"a", "b}:c"},
		{"n", strings.Repeat("k", maxPlainTag)}, {"n", strings.Repeat("k", maxPlainTag+1)},
		{strings.Repeat("n", maxPlainName), "k"}, {strings.Repeat("n", maxPlainName+1), "k"},
		{"n", "k k"}, {"n k", "k"}, {"n", hashed("k")}, {hashed("n"), "k"},
	}
	seen := map[string][2]string{}
	for _, pr := range pairs {
		rk := s.redisKey(pr[0], pr[1])
		if prev, dup := seen[rk]; dup {
			t.Errorf("redisKey(%q, %q) = redisKey(%q, %q) = %q", pr[0], pr[1], prev[0], prev[1], rk)
		}
		seen[rk] = pr
	}
	assert.Equal(t, "shipshape:rl:{203.0.113.7}:api", s.redisKey("api", "203.0.113.7"), "a plain pair stays readable")
	assert.Equal(t, byte('#'), tag("a b")[0], "a key with a space is hashed")
	assert.Equal(t, s.redisKey("api", "a b")[:len(DefaultPrefix)+46], s.redisKey("login", "a b")[:len(DefaultPrefix)+46],
		"every policy of a client shares its hash tag")
}

// FuzzTag: whatever the key, the tag is printable ASCII without braces or
// spaces and bounded; two different (name, key) pairs never share a Redis
// key, and the Redis key has exactly one hash tag, the client's.
func FuzzTag(f *testing.F) {
	for _, k := range hostileKeys {
		f.Add("api", k.key, "api", k.key+"x")
	}
	f.Add("a", "b:c", "a:b", "c")
	f.Add("#a", "b", "", "#a:b")
	f.Add("a}", "b", "a", "}b")
	s := &Store{cfg: config{prefix: DefaultPrefix}}
	f.Fuzz(func(t *testing.T, n1, k1, n2, k2 string) {
		for _, tg := range []string{tag(k1), tag(k2), nameTag(n1), nameTag(n2)} {
			if len(tg) > maxPlainTag {
				t.Fatalf("tag %q longer than %d", tg, maxPlainTag)
			}
			for i := 0; i < len(tg); i++ {
				if !plainByte(tg[i]) {
					t.Fatalf("tag %q has byte %q", tg, tg[i])
				}
			}
			if !utf8.ValidString(tg) {
				t.Fatalf("tag %q is not UTF-8", tg)
			}
		}
		r1, r2 := s.redisKey(n1, k1), s.redisKey(n2, k2)
		if (n1 != n2 || k1 != k2) && r1 == r2 {
			t.Fatalf("redisKey(%q, %q) == redisKey(%q, %q) == %q", n1, k1, n2, k2, r1)
		}
		if strings.Count(r1, "{") != 1 || strings.Count(r1, "}") != 1 {
			t.Fatalf("redis key %q: want one hash tag", r1)
		}
	})
}

func BenchmarkTag(b *testing.B) {
	for _, bc := range []struct{ name, key string }{
		{"plain", "203.0.113.7"},
		{"hashed", "a key with spaces"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_ = tag(bc.key)
			}
		})
	}
}
