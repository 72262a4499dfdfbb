package cluster

import (
	"math/rand/v2"
	"time"
)

// crashTracker decides, for one worker slot, how long to wait before the
// next restart and when restarts have become a crash loop. Time and
// randomness are arguments so that tests are exact. It is not safe for
// concurrent use; each slot goroutine owns one.
type crashTracker struct {
	min, max time.Duration
	restarts int           // crash loop: more than restarts…
	within   time.Duration // …within this window
	rand     func() float64

	consecutive int         // crashes since the last stable run
	times       []time.Time // restarts inside the window
}

func newCrashTracker(c *config) *crashTracker {
	return &crashTracker{
		min: c.backoffMin, max: c.backoffMax,
		restarts: c.crashRestarts, within: c.crashWithin,
		rand: rand.Float64,
	}
}

// crash records a crash at now of a worker that had been up for uptime. It
// returns the delay before the restart, and loop=true when this restart
// would be one too many within the window: the supervisor gives up.
func (t *crashTracker) crash(now time.Time, uptime time.Duration) (delay time.Duration, loop bool) {
	if uptime >= t.max {
		t.consecutive = 0 // it ran stably; this crash starts a new series
	}
	t.consecutive++

	cut := now.Add(-t.within)
	kept := t.times[:0]
	for _, at := range t.times {
		if at.After(cut) {
			kept = append(kept, at)
		}
	}
	t.times = append(kept, now)
	if len(t.times) > t.restarts {
		return 0, true
	}
	return t.delay(), false
}

// delay is min·2^(consecutive-1), capped at max, minus up to 25% jitter.
func (t *crashTracker) delay() time.Duration {
	d := t.min
	for i := 1; i < t.consecutive && d < t.max; i++ {
		d *= 2
	}
	d = min(d, t.max)
	return d - time.Duration(float64(d)*0.25*t.rand())
}
