package redisstore

import (
	"crypto/sha256"
	"encoding/base64"
)

// maxPlainTag is the longest key kept readable in the Redis key; longer
// ones are hashed so that a client cannot make the Store write huge keys.
const maxPlainTag = 128

// maxPlainName is the longest policy name kept readable (ratelimit's
// naming rule allows 64 characters).
const maxPlainName = 64

// redisKey is the Redis key of (name, key): prefix + "{" + tag(key) + "}:"
// + name. The braces make the client's tag the Redis Cluster hash tag, so
// keys spread over the slots by client, whatever the prefix, and every
// policy of one client is in one slot: a take under several policies is
// one script on one node.
func (s *Store) redisKey(name, key string) string {
	return s.cfg.prefix + "{" + tag(key) + "}:" + nameTag(name)
}

// tag identifies a key inside the braces. It is injective, and never
// holds a brace, a control byte, a space or a non-ASCII byte:
//
//   - plain: the key, when it is printable ASCII without braces or spaces,
//     does not start with '#', and is at most maxPlainTag bytes —
//     readable in redis-cli (shipshape:rl:{203.0.113.7}:api);
//   - hashed otherwise: "#" + base64url(SHA-256(key)), 44 bytes; the
//     leading '#' keeps hashed tags apart from plain ones.
func tag(key string) string {
	if plain(key, maxPlainTag) {
		return key
	}
	return hashed(key)
}

// nameTag is tag for a policy name after the braces, with the bound of
// names. The tag ends at the first '}', which neither holds, so (tag,
// name) pairs are told apart.
func nameTag(name string) string {
	if plain(name, maxPlainName) {
		return name
	}
	return hashed(name)
}

func hashed(s string) string {
	sum := sha256.Sum256([]byte(s))
	return "#" + base64.RawURLEncoding.EncodeToString(sum[:])
}

func plain(s string, maxLen int) bool {
	if len(s) > maxLen || (s != "" && s[0] == '#') {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !plainByte(s[i]) {
			return false
		}
	}
	return true
}

// plainByte: printable ASCII, no space, no brace.
func plainByte(c byte) bool {
	return c > ' ' && c < 0x7f && c != '{' && c != '}'
}
