package cluster

import (
	"errors"
	"fmt"

	"github.com/shipshape-go/shipshape/ratelimit"
)

// DefaultSharedKeys is the default key cap of the shared limits table
// (see [WithSharedKeys]).
const DefaultSharedKeys = 1_000_000

// maxSharedKeys bounds WithSharedKeys (a table of 2³² slots, 128 GiB).
const maxSharedKeys = 3 << 30

// ErrNoSharedStore is returned by [SharedStore] in a process that is not a
// worker of a supervisor with a shared limits table.
var ErrNoSharedStore = errors.New("cluster: no shared limits table: not a worker, or WithSharedKeys(0)")

// sharedConfig is WithSharedKeys.
type sharedConfig struct {
	keys int
	set  bool
}

func (c sharedConfig) validate() error {
	if c.set && (c.keys < 0 || c.keys > maxSharedKeys) {
		return fmt.Errorf("cluster: WithSharedKeys: %d keys, want 0 (no shared table) to %d", c.keys, maxSharedKeys)
	}
	return nil
}

// size is the key cap of the table, 0 for none.
func (c sharedConfig) size() int {
	if !c.set {
		return DefaultSharedKeys
	}
	return c.keys
}

// WithSharedKeys sets the key cap of the table in which the workers of the
// supervisor count their rate limits (default [DefaultSharedKeys]), or,
// with 0, turns the table off.
//
// The supervisor creates the table before the first worker and hands it to
// every worker; it outlives every worker, and so every restart, replacement
// and rolling restart, and dies with the supervisor. In a worker,
// ratelimit.New and slowdown.New without a WithStore count in it (see
// ratelimit.SetDefaultStore), so that a limit of 100 per minute is 100 for
// the service, not 100 per worker; [SharedStore] returns it for limiters
// that share counts on purpose. Without the table (0), or in a process
// without a supervisor, each limiter has a MemoryStore of its own.
//
// The cap counts keys across every limiter of the service (a key under two
// policies is two). The table is a power of two of 32-byte slots kept at
// most 3/4 full at the cap: 64 MiB at the default, in memory the workers
// share (pages are used as keys arrive). At the cap a new key evicts one by
// MemoryStore's rule (see "Shared limits" in docs/cluster.md). A negative
// n, or one above 3·2³⁰, is an error from Run and Serve.
func WithSharedKeys(n int) Option {
	return func(c *config) { c.shared = sharedConfig{keys: n, set: true} }
}

// SharedStore returns the store of the shared limits table in a worker, for
// limiters that are meant to share counts (a Limiter and a Delayer given
// the same store, as with a MemoryStore): its counts are apart from those
// of the limiters that use the table by default, each of which has a
// namespace of its own. In any other process, or with WithSharedKeys(0), it
// returns an error wrapping [ErrNoSharedStore]; a worker of another build
// than its supervisor's, whose table it cannot read, gets that error
// instead.
func SharedStore() (ratelimit.Store, error) {
	t, err := sharedTable()
	if err != nil {
		return nil, err
	}
	return t.store(""), nil
}
