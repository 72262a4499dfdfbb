package cluster

import "time"

// dedupWindow is how long identical crashes are counted instead of being
// handed on one by one (see WithCrashHandler).
const dedupWindow = time.Minute

// dedup decides which crashes reach the crash handler. The first crash of
// a signature is handed on at once and opens a window of a minute; the
// identical crashes within it are counted, and when the window closes
// with a count, the last of them is handed on with Repeats set, which
// opens the next window. A crash loop's last crash is always handed on at
// once, with the count so far. Time is an argument, so that tests are
// exact; it is not safe for concurrent use.
type dedup struct {
	window time.Duration
	open   map[string]*dedupState
}

type dedupState struct {
	until time.Time
	count int
	last  Crash
}

func newDedup(window time.Duration) *dedup {
	return &dedup{window: window, open: map[string]*dedupState{}}
}

// add records c at now and reports whether to hand it on now (c with
// Repeats set, for a crash loop's).
func (d *dedup) add(now time.Time, c Crash) (Crash, bool) {
	sig := c.signature()
	st := d.open[sig]
	if c.CrashLoop {
		if st != nil {
			c.Repeats = st.count
			delete(d.open, sig)
		}
		return c, true
	}
	if st != nil && now.Before(st.until) {
		st.count++
		st.last = c
		return Crash{}, false
	}
	d.open[sig] = &dedupState{until: now.Add(d.window)}
	return c, true
}

// expire closes the windows that ended at or before now and returns the
// reports of those that counted repeats, in no particular order.
func (d *dedup) expire(now time.Time) []Crash {
	var out []Crash
	for sig, st := range d.open {
		if now.Before(st.until) {
			continue
		}
		if st.count == 0 {
			delete(d.open, sig)
			continue
		}
		c := st.last
		c.Repeats = st.count
		out = append(out, c)
		d.open[sig] = &dedupState{until: st.until.Add(d.window)}
	}
	return out
}

// next returns when the earliest open window ends.
func (d *dedup) next() (time.Time, bool) {
	var t time.Time
	for _, st := range d.open {
		if t.IsZero() || st.until.Before(t) {
			t = st.until
		}
	}
	return t, !t.IsZero()
}

// flush closes every window, for the supervisor's stop, and returns the
// reports of those that counted repeats.
func (d *dedup) flush() []Crash {
	var out []Crash
	for sig, st := range d.open {
		if st.count > 0 {
			c := st.last
			c.Repeats = st.count
			out = append(out, c)
		}
		delete(d.open, sig)
	}
	return out
}
