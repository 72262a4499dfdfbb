package problem

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

// TestAcceptsJSON is the table of recoverer's 500, whose copy of this
// negotiation problem.Write replaced.
func TestAcceptsJSON(t *testing.T) {
	tests := []struct {
		name   string
		accept []string
		want   bool
	}{
		{"absent", nil, true},
		{"empty", []string{""}, false},
		{"any", []string{"*/*"}, true},
		{"application any", []string{"application/*"}, true},
		{"json", []string{"application/json"}, true},
		{"problem json", []string{"application/problem+json"}, true},
		{"upper case", []string{"Application/JSON"}, true},
		{"spaces", []string{"  application/json ; q=0.5 "}, true},
		{"text", []string{"text/plain"}, false},
		{"text any", []string{"text/*"}, false},
		{"html", []string{"text/html"}, false},
		{"json q=0", []string{"application/json;q=0"}, false},
		{"json below text", []string{"application/json;q=0.4,text/plain;q=0.5"}, false},
		{"json equals text", []string{"application/json;q=0.5,text/plain;q=0.5"}, true},
		{"any below text", []string{"text/plain,*/*;q=0.1"}, false},
		{"browser", []string{"text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}, true},
		{"malformed q loses", []string{"application/json;q=abc,text/plain;q=0.1"}, false},
		{"NaN q loses", []string{"application/json;q=NaN"}, false},
		{"q above 1 loses", []string{"application/json;q=2"}, false},
		{"split across headers", []string{"text/plain;q=0.2", "application/json;q=0.3"}, true},
		{"other params ignored", []string{"application/json;charset=utf-8;q=1"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, acceptsJSON(tt.accept), "acceptsJSON(%q)", tt.accept)
		})
	}
}

// FuzzAcceptsJSON: no Accept value makes the parser panic, and an explicit
// application/problem+json (q=1) always wins.
func FuzzAcceptsJSON(f *testing.F) {
	for _, s := range []string{"", "*/*", "text/plain;q=0.5", "application/json;q=", ";;,,;q=1;q=0", "a/b;q=1e400"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, accept string) {
		_ = acceptsJSON([]string{accept})
		withJSON := strings.TrimRight(accept, ";") + ",application/problem+json"
		assert.True(t, acceptsJSON([]string{withJSON}), "acceptsJSON(%q)", withJSON)
	})
}
