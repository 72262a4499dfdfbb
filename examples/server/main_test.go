package main

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestExitCodes(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want int
	}{
		{"help", []string{"-h"}, 0},
		{"bad flag", []string{"-rate-limit", "many"}, 2},
		{"bad format", []string{"-log-format", "xml"}, 2},
		{"cannot listen", []string{"-addr", "256.0.0.1:80", "-log-dir", ""}, 1},
		{"health check against nothing", []string{"-healthcheck", "http://127.0.0.1:1/healthz"}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, run(tt.args))
		})
	}
}
