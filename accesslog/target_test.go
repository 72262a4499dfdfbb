package accesslog

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestPeerHost(t *testing.T) {
	for in, want := range map[string]string{
		"192.0.2.1:1234":     "192.0.2.1",
		"[2001:db8::1]:443":  "2001:db8::1",
		"[fe80::1%eth0]:80":  "fe80::1%eth0",
		"2001:db8::1":        "2001:db8::1",
		"192.0.2.1":          "192.0.2.1",
		"@":                  "@",
		"":                   "",
		"[broken":            "[broken",
		"unix:/run/app.sock": "unix",
	} {
		assert.Equal(t, want, peerHost(in), "peerHost(%q)", in)
	}
}
