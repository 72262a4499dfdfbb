// Package modgraph checks what a program that imports shipshape inherits:
// the packages it links and the modules in its module graph. It has tests
// only.
package modgraph

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// heavy are modules that only the nested modules (redisstore, sentryreport,
// examples, bench) may require: a program that imports the library alone
// must not have them in its module graph.
var heavy = []string{
	"github.com/redis/go-redis",
	"github.com/getsentry/sentry-go",
	"github.com/go-chi/httprate",
	"github.com/samber/slog-multi",
	"golang.org/x/image",
	"honnef.co/go/tools",
}

// goCmd runs the go command in dir without the workspace, without the
// network (the module cache holds everything the library builds with) and
// without the checksum database.
func goCmd(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("go", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOWORK=off", "GOPROXY=off", "GOFLAGS=-mod=mod", "GOSUMDB=off")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "go %s:\n%s", strings.Join(args, " "), out)
	return string(out)
}

func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	require.NoError(t, err)
	require.FileExists(t, filepath.Join(root, "go.mod"))
	return root
}

// TestRatelimitLinksNoCompressionRotationOrSentry: the packages a program
// importing ratelimit and slowdown links hold no log rotation, no
// compression beyond what net/http itself links, no Sentry and no Redis;
// of OpenTelemetry, the metric API only, never the SDK or an exporter
// (those are the application's).
func TestRatelimitLinksNoCompressionRotationOrSentry(t *testing.T) {
	deps := goCmd(t, repoRoot(t), "list", "-deps", "./ratelimit", "./slowdown")
	assert.Contains(t, deps, "go.opentelemetry.io/otel/metric\n", "ratelimit records through the metric API")
	for _, bad := range []string{"klauspost", "/logfile", "/accesslog", "sentry", "redis", "otel/sdk", "otel/exporters", "prometheus"} {
		for _, line := range strings.Split(deps, "\n") {
			assert.NotContains(t, line, bad, "ratelimit and slowdown link %s", line)
		}
	}
}

// TestConsumerModuleGraph builds a consumer module that imports only
// ratelimit and lists its module graph: none of the heavy modules.
func TestConsumerModuleGraph(t *testing.T) {
	dir := t.TempDir()
	gomod := "module example.com/consumer\n\ngo 1.26.0\n\n" +
		"require github.com/shipshape-go/shipshape v0.0.0-00010101000000-000000000000\n\n" +
		"replace github.com/shipshape-go/shipshape => " + repoRoot(t) + "\n"
	require.NoError(t, os.WriteFile(filepath.Join(dir, "go.mod"), []byte(gomod), 0o644))
	main := `package main

import (
	"time"

	"github.com/shipshape-go/shipshape/ratelimit"
)

func main() { _, _ = ratelimit.New(10, time.Minute) }
`
	require.NoError(t, os.WriteFile(filepath.Join(dir, "main.go"), []byte(main), 0o644))
	goCmd(t, dir, "mod", "tidy")
	// -e: the graph is what is asserted, not that the module cache holds
	// the version info of every module in it (a fresh cache lacks that of
	// modules no build needed, such as testify's own requirements, and
	// GOPROXY=off cannot fetch it); the modules are listed either way.
	graph := goCmd(t, dir, "list", "-m", "-e", "all")
	t.Logf("go list -m all of a program that imports only ratelimit:\n%s", graph)
	for _, line := range strings.Split(strings.TrimSpace(graph), "\n") {
		mod := strings.Fields(line)[0]
		for _, h := range heavy {
			assert.False(t, strings.HasPrefix(mod, h), "the consumer's module graph holds %s", line)
		}
	}
	goCmd(t, dir, "build", "-o", os.DevNull, ".")
}
