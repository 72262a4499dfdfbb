package ratelimit

import (
	"errors"
	"sync/atomic"
)

// DefaultStoreFunc makes the store of a [Limiter] (or slowdown.Delayer)
// built without WithStore. policies are the policies it will enforce; their
// names and windows identify its counts (limits may change per request:
// see [WithLimitFunc]). It is called once per New.
type DefaultStoreFunc func(policies []Policy) (Store, error)

var defaultStore atomic.Pointer[DefaultStoreFunc]

// SetDefaultStore sets what [New] and slowdown.New use when they are not
// given a store, as database/sql drivers register themselves: package
// cluster calls it in a worker process, so that every worker of a
// supervisor counts into the supervisor's shared table and a limit is the
// service's, not each worker's (see cluster.WithSharedKeys). nil restores
// the default of a process without a supervisor: a new [MemoryStore] per
// Limiter or Delayer.
//
// It applies to limiters built afterwards: call it from an init function
// (cluster does), before main builds its handlers. An explicit WithStore
// always wins, which is how one limiter opts out:
// WithStore(NewMemoryStore()) keeps counts in the process.
func SetDefaultStore(f DefaultStoreFunc) {
	if f == nil {
		defaultStore.Store(nil)
		return
	}
	defaultStore.Store(&f)
}

// DefaultStore returns the store of a Limiter or Delayer built without
// WithStore: the one [SetDefaultStore] registered, else a new
// [MemoryStore]. An error of the registered function is returned as it is
// (New fails with it): a worker that cannot use its supervisor's table
// must not fall back to limits of its own without anyone noticing.
func DefaultStore(policies []Policy) (Store, error) {
	if f := defaultStore.Load(); f != nil {
		s, err := (*f)(policies)
		if err == nil && s == nil {
			err = errors.New("ratelimit: the default store function returned no store")
		}
		return s, err
	}
	return NewMemoryStore()
}
