package main

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

func TestOptionsValidate(t *testing.T) {
	good := options{microCount: 3, load: loadOptions{threads: 2, connections: 64, duration: 8 * time.Second,
		warmup: 2 * time.Second, rounds: 5, maxOther: 0.3, retries: 2}}
	cases := []struct {
		name    string
		edit    func(o *options)
		wantErr string // "" when valid
	}{
		{"defaults", func(*options) {}, ""},
		{"no warm-up", func(o *options) { o.load.warmup = 0 }, ""},
		{"no rounds", func(o *options) { o.load.rounds = 0 }, "-rounds"},
		{"no micro-benchmark runs", func(o *options) { o.microCount = 0 }, "-count"},
		{"more threads than connections", func(o *options) { o.load.threads = 4; o.load.connections = 2 }, "-threads must be ≤ -connections"},
		{"duration under a second", func(o *options) { o.load.duration = 500 * time.Millisecond }, "-duration"},
		{"duration not whole seconds", func(o *options) { o.load.duration = 1500 * time.Millisecond }, "-duration"},
		{"warm-up not whole seconds", func(o *options) { o.load.warmup = 300 * time.Millisecond }, "-warmup"},
		{"negative warm-up", func(o *options) { o.load.warmup = -time.Second }, "-warmup"},
		{"negative retries", func(o *options) { o.load.retries = -1 }, "-retries"},
		{"no disturbance threshold", func(o *options) { o.load.maxOther = 0 }, "-max-other"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			o := good
			c.edit(&o)
			err := o.validate()
			if c.wantErr == "" {
				assert.NoError(t, err)
				return
			}
			assert.ErrorContains(t, err, c.wantErr)
		})
	}
}
