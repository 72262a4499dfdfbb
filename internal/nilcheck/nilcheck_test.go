package nilcheck

import (
	"net"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestIs(t *testing.T) {
	var nilHandler http.Handler
	var nilFunc http.HandlerFunc
	tests := []struct {
		name string
		v    any
		want bool
	}{
		{"nil", nil, true},
		{"nil interface", nilHandler, true},
		{"typed nil pointer", (*net.TCPListener)(nil), true},
		{"typed nil func", nilFunc, true},
		{"typed nil map", map[string]int(nil), true},
		{"pointer", &net.TCPListener{}, false},
		{"func", http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}), false},
		{"value", struct{}{}, false},
		{"zero int", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, Is(tt.v), "Is(%#v)", tt.v)
		})
	}
}
