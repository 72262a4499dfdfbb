//go:build unix

package cluster

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"

	"github.com/shipshape-go/shipshape/internal/shmtable"
	"github.com/shipshape-go/shipshape/ratelimit"
)

// The shared limits table: the part of the supervisor that creates the
// table of internal/shmtable before the first worker and hands it to every
// worker as the inherited file "limits". Workers map it as the program
// starts and make it ratelimit's default store. The alternative, asking
// the supervisor over a unix socket for every take, costs a round trip
// per request and makes the supervisor the bottleneck of every worker:
// see BenchmarkSocketTake in internal/shmtable and "Shared limits" in
// docs/cluster.md.
const sharedFileName = "limits"

// sharedLimits is the supervisor's table.
type sharedLimits struct {
	f  *os.File
	t  *shmtable.Table
	wg sync.WaitGroup // scans for the claims of dead workers
}

// newSharedLimits creates the table of c's WithSharedKeys; nil with 0.
func newSharedLimits(c *config) (*sharedLimits, error) {
	n := c.shared.size()
	if n == 0 {
		return nil, nil
	}
	f, t, err := shmtable.Create(n)
	if err != nil {
		return nil, fmt.Errorf("cluster: shared limits table: %w", err)
	}
	return &sharedLimits{f: f, t: t}, nil
}

// prepare hands the table to a worker.
func (l *sharedLimits) prepare(p *proc) ([]inheritedFile, error) {
	p.attach(sharedHook{l})
	return []inheritedFile{{sharedFileName, l.f}}, nil
}

func (l *sharedLimits) close() {
	l.wg.Wait()
	l.t.Close()
	l.f.Close()
}

// sharedHook frees what a worker that died in the middle of an insert left
// claimed.
type sharedHook struct{ l *sharedLimits }

func (sharedHook) started(*proc) {}

// exited scans off the supervisor's path: a replacement need not wait for
// it (the workers free a dead claim they meet themselves).
func (h sharedHook) exited(p *proc) {
	if pid := p.pid; pid > 0 {
		h.l.wg.Go(func() { h.l.t.ReclaimDead(pid) })
	}
}

// workerTable is a worker's mapping of the table.
type workerTable struct {
	t    *shmtable.Table
	mu   sync.Mutex
	seen map[string]int // policies fingerprint → limiters built with it
}

func (wt *workerTable) store(ns string) ratelimit.Store { return wt.t.Store(ns) }

// sharedTable maps the table this worker inherited, once.
var sharedTable = sync.OnceValues(func() (*workerTable, error) {
	inh, err := inherited()
	if err != nil || inh == nil || inh.file(sharedFileName) == nil {
		return nil, ErrNoSharedStore
	}
	t, err := shmtable.Open(inh.file(sharedFileName))
	if err != nil {
		return nil, fmt.Errorf("cluster: the supervisor's shared limits table: %w "+
			"(a supervisor of another build: restart it, or give the limiter a store with WithStore)", err)
	}
	return &workerTable{t: t, seen: map[string]int{}}, nil
})

// A worker makes the table ratelimit's default store as the program
// starts, before main builds its limiters.
func init() {
	if inh, _ := inherited(); inh != nil && inh.file(sharedFileName) != nil {
		ratelimit.SetDefaultStore(defaultSharedStore)
	}
}

// defaultSharedStore is ratelimit's default store in a worker. Each
// limiter gets a namespace of its own, as it would get a MemoryStore of
// its own: its policies' names and windows, and how many limiters with the
// same ones this process built before it. The n-th such limiter of one
// worker therefore shares counts with the n-th of every other worker (and
// of the workers after a restart), which holds when every worker builds
// its limiters in the same order, as a program that builds them in main
// does.
func defaultSharedStore(ps []ratelimit.Policy) (ratelimit.Store, error) {
	wt, err := sharedTable()
	if err != nil {
		return nil, err
	}
	fp := sharedNamespace(ps, 0)
	wt.mu.Lock()
	n := wt.seen[fp]
	wt.seen[fp] = n + 1
	wt.mu.Unlock()
	s := wt.t.Store(sharedNamespace(ps, n))
	if err := s.Register(ps); err != nil {
		return nil, fmt.Errorf("cluster: shared limits table: %w", err)
	}
	return s, nil
}

// sharedNamespace is the namespace of the n-th limiter with policies ps
// (from 0): their names and windows, and n.
func sharedNamespace(ps []ratelimit.Policy, n int) string {
	var b strings.Builder
	for _, p := range ps {
		b.WriteString(p.Name)
		b.WriteByte('/')
		b.WriteString(p.Window.String())
		b.WriteByte(',')
	}
	b.WriteByte('#')
	b.WriteString(strconv.Itoa(n))
	return b.String()
}
