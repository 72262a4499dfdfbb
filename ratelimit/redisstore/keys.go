package redisstore

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
)

// maxPlainTag is the longest policy name + key kept readable in the Redis
// key; longer ones are hashed so that a client cannot make the Store write
// huge keys.
const maxPlainTag = 128

// redisKey is the Redis key of (name, key): prefix + "{" + tag + "}". The
// braces make the tag the Redis Cluster hash tag, so keys spread over the
// slots by client, whatever the prefix.
func (s *Store) redisKey(name, key string) string {
	return s.cfg.prefix + "{" + tag(name, key) + "}"
}

// tag identifies (name, key) inside the braces. It is injective, and never
// holds a brace, a control byte, a space or a non-ASCII byte:
//
//   - plain: name + ":" + key, when both are printable ASCII without braces
//     or spaces, name has no ':' and does not start with '#', and the whole
//     is at most maxPlainTag bytes — readable in redis-cli
//     (shipshape:rl:{api:203.0.113.7});
//   - hashed otherwise: "#" + base64url(SHA-256(uvarint(len(name)) ‖ name ‖
//     key)), 44 bytes. The length prefix keeps (name, key) pairs apart;
//     the leading '#' keeps hashed tags apart from plain ones.
func tag(name, key string) string {
	if plainTag(name, key) {
		return name + ":" + key
	}
	h := sha256.New()
	var n [binary.MaxVarintLen64]byte
	h.Write(n[:binary.PutUvarint(n[:], uint64(len(name)))])
	h.Write([]byte(name))
	h.Write([]byte(key))
	var sum [sha256.Size]byte
	return "#" + base64.RawURLEncoding.EncodeToString(h.Sum(sum[:0]))
}

func plainTag(name, key string) bool {
	if len(name)+1+len(key) > maxPlainTag || (name != "" && name[0] == '#') {
		return false
	}
	for i := 0; i < len(name); i++ {
		if !plainByte(name[i]) || name[i] == ':' {
			return false
		}
	}
	for i := 0; i < len(key); i++ {
		if !plainByte(key[i]) {
			return false
		}
	}
	return true
}

// plainByte: printable ASCII, no space, no brace.
func plainByte(c byte) bool {
	return c > ' ' && c < 0x7f && c != '{' && c != '}'
}
