package examples_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestReadmeQuickStartBuilds builds every complete program (a Go block that
// starts with "package main") in the README against the code in this
// repository, so that the page a user copies from cannot fall behind the
// API. It runs offline, from the module cache.
func TestReadmeQuickStartBuilds(t *testing.T) {
	root, err := filepath.Abs("..")
	require.NoError(t, err)
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	require.NoError(t, err)
	blocks := regexp.MustCompile("(?s)```go\n(package main\n.*?)```").FindAllStringSubmatch(string(readme), -1)
	require.NotEmpty(t, blocks, "the README has a complete program")
	for i, b := range blocks {
		dir := t.TempDir()
		gomod := "module example.com/readme\n\ngo 1.26.0\n\n" +
			"require github.com/shipshape-go/shipshape v0.0.0-00010101000000-000000000000\n\n" +
			"replace github.com/shipshape-go/shipshape => " + root + "\n"
		require.NoError(t, os.WriteFile(filepath.Join(dir, "go.mod"), []byte(gomod), 0o644))
		require.NoError(t, os.WriteFile(filepath.Join(dir, "main.go"), []byte(b[1]), 0o644))
		for _, args := range [][]string{{"mod", "tidy"}, {"vet", "."}, {"build", "-o", os.DevNull, "."}} {
			cmd := exec.Command("go", args...)
			cmd.Dir = dir
			cmd.Env = append(os.Environ(), "GOWORK=off", "GOPROXY=off", "GOFLAGS=-mod=mod", "GOSUMDB=off")
			out, err := cmd.CombinedOutput()
			require.NoError(t, err, "README program %d: go %s:\n%s", i+1, strings.Join(args, " "), out)
		}
	}
}
