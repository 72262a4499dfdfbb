package reqlog

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestPatternRoute(t *testing.T) {
	for in, want := range map[string]string{
		"":                          "",
		"/":                         "/",
		"/items/{id}":               "/items/{id}",
		"GET /items/{id}":           "/items/{id}",
		"POST example.com/x/{y...}": "/x/{y...}",
		"example.com/":              "/",
		"GET  /spaces":              "/spaces",
	} {
		assert.Equal(t, want, patternRoute(in), "patternRoute(%q)", in)
	}
}
