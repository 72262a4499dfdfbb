package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestOptionsValidate(t *testing.T) {
	good := options{microCount: 3, load: loadOptions{threads: 2, connections: 64, duration: 8 * time.Second, jsonRounds: 3,
		warmup: 2 * time.Second, rounds: 5, maxOther: 0.3, retries: 2}}
	cases := []struct {
		name    string
		edit    func(o *options)
		wantErr string // "" when valid
	}{
		{"defaults", func(*options) {}, ""},
		{"no warm-up", func(o *options) { o.load.warmup = 0 }, ""},
		{"no rounds", func(o *options) { o.load.rounds = 0 }, "-rounds"},
		{"no /json rounds", func(o *options) { o.load.jsonRounds = 0 }, ""},
		{"negative /json rounds", func(o *options) { o.load.jsonRounds = -1 }, "-json-rounds"},
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

// findNode leaves the Node peers out, with a reason, when node or a
// package of bench/node is missing. It runs node --version when node is
// installed, and needs nothing else of it.
func TestFindNode(t *testing.T) {
	_, lookErr := exec.LookPath("node")
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "package.json"),
		[]byte(`{"dependencies": {"morgan": "1.12.1", "express": "5.3.0"}}`), 0o644))
	installed := func(name string) {
		require.NoError(t, os.MkdirAll(filepath.Join(dir, "node_modules", name), 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(dir, "node_modules", name, "package.json"), []byte(`{}`), 0o644))
	}

	installed("express")
	n := findNode(t.Context(), dir)
	if lookErr != nil {
		assert.Contains(t, n.Missing, "node not found")
		return
	}
	assert.Contains(t, n.Missing, "morgan is not installed", "a package without its node_modules entry")

	installed("morgan")
	n = findNode(t.Context(), dir)
	if n.Missing != "" && assert.Contains(t, n.Missing, "older than express 5 needs") {
		return
	}
	assert.Empty(t, n.Missing)
	assert.Equal(t, "express 5.3.0, morgan 1.12.1", n.Packages, "dependencies in name order")
	assert.Regexp(t, `^v\d+\.`, n.Version)

	require.NoError(t, os.Remove(filepath.Join(dir, "package.json")))
	assert.NotEmpty(t, findNode(t.Context(), dir).Missing, "no package.json")
}
