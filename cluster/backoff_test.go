package cluster

import (
	"cmp"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

func TestCrashTracker(t *testing.T) {
	type crash struct {
		at     time.Duration // since the start of the test case
		uptime time.Duration
		delay  time.Duration // want
		loop   bool          // want
	}
	tests := []struct {
		name     string
		jitter   float64 // what rand returns
		restarts int     // WithCrashLoop restarts (default 5)
		crashes  []crash
	}{
		{
			name:     "doubles up to max",
			restarts: 10,
			crashes: []crash{
				{0, 0, 100 * time.Millisecond, false},
				{time.Second, 0, 200 * time.Millisecond, false},
				{2 * time.Second, 0, 400 * time.Millisecond, false},
				{3 * time.Second, 0, 800 * time.Millisecond, false},
				{4 * time.Second, 0, 1600 * time.Millisecond, false},
				{5 * time.Second, 0, 2 * time.Second, false},
				{6 * time.Second, 0, 2 * time.Second, false},
			},
		},
		{
			name:   "jitter takes up to a quarter off",
			jitter: 1,
			crashes: []crash{
				{0, 0, 75 * time.Millisecond, false},
				{time.Second, 0, 150 * time.Millisecond, false},
				{10 * time.Second, 0, 300 * time.Millisecond, false},
			},
		},
		{
			name: "a stable run resets the backoff",
			crashes: []crash{
				{0, 0, 100 * time.Millisecond, false},
				{time.Second, 0, 200 * time.Millisecond, false},
				{2 * time.Second, 0, 400 * time.Millisecond, false},
				{10 * time.Second, 5 * time.Second, 100 * time.Millisecond, false},
				{11 * time.Second, 0, 200 * time.Millisecond, false},
			},
		},
		{
			name: "more restarts than allowed within the window is a loop",
			crashes: []crash{
				{0, 0, 100 * time.Millisecond, false},
				{time.Second, 0, 200 * time.Millisecond, false},
				{2 * time.Second, 0, 400 * time.Millisecond, false},
				{3 * time.Second, 0, 800 * time.Millisecond, false},
				{4 * time.Second, 0, 1600 * time.Millisecond, false},
				{5 * time.Second, 0, 0, true},
			},
		},
		{
			name: "restarts that left the window do not count",
			crashes: []crash{
				{0, 0, 100 * time.Millisecond, false},
				{time.Second, 0, 200 * time.Millisecond, false},
				{2 * time.Second, 0, 400 * time.Millisecond, false},
				{3 * time.Second, 0, 800 * time.Millisecond, false},
				{4 * time.Second, 0, 1600 * time.Millisecond, false},
				{61 * time.Second, 0, 2 * time.Second, false},
				{62 * time.Second, 0, 2 * time.Second, false},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &config{backoffMin: 100 * time.Millisecond, backoffMax: 2 * time.Second,
				crashRestarts: cmp.Or(tt.restarts, 5), crashWithin: time.Minute}
			tr := newCrashTracker(c)
			tr.rand = func() float64 { return tt.jitter }
			start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
			for i, cr := range tt.crashes {
				delay, loop := tr.crash(start.Add(cr.at), cr.uptime)
				assert.Equal(t, cr.delay, delay, "crash %d: delay", i+1)
				assert.Equal(t, cr.loop, loop, "crash %d: crash loop", i+1)
			}
		})
	}
}
