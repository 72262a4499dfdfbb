package errlog

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

func TestReporterThrottles(t *testing.T) {
	var buf bytes.Buffer
	r := New(slog.New(slog.NewTextHandler(&buf, nil)), "store failed", time.Second)
	now := time.Unix(1000, 0)
	r.now = func() time.Time { return now }
	ctx := context.Background()
	boom := errors.New("boom")

	assert.True(t, r.Report(ctx, boom), "first error is logged")
	for range 5 {
		assert.False(t, r.Report(ctx, boom), "errors within the interval are counted")
	}
	now = now.Add(time.Second)
	assert.True(t, r.Report(ctx, boom, slog.String("key", "v")))

	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if assert.Len(t, lines, 2) {
		assert.Contains(t, lines[0], `msg="store failed" error=boom`)
		assert.NotContains(t, lines[0], "suppressed")
		assert.Contains(t, lines[1], "key=v error=boom suppressed=5")
	}
}
