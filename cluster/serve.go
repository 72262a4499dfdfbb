package cluster

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/http"
	"slices"
	"sync"
)

// Service is what a worker serves: the servers and what to close after
// them, built in the worker by the function given to [ServeFunc].
type Service struct {
	// Server serves the main address, [WithAddr] (required).
	Server *http.Server
	// Servers serve the addresses of [WithNamedAddr], one per name: every
	// name needs a server, and every server a name.
	Servers map[string]*http.Server
	// Close, when set, runs once every server has drained (or when the
	// worker fails to start after build returned): close here what build
	// opened, such as log files, database pools or an error reporter's
	// flush. Its error is returned by ServeFunc.
	Close func() error
}

// ServeFunc is [Serve] for a service built in the workers only: the
// supervisor never calls build, so nothing build opens (log files,
// database or Redis pools, a Sentry client) is opened in the supervisor,
// which stays a small process that holds the sockets and the workers.
//
// In every worker, build runs once, with the worker's context (done when
// the worker is asked to stop), before the worker counts as ready; the
// servers of the Service it returns are then served as Serve serves its
// srv (same drain, same TLS and HTTP/2 when a server's TLSConfig is set),
// Service.Server on [WithAddr] and each of Service.Servers on the
// [WithNamedAddr] address of its name. When the worker is asked to stop,
// every server drains at once, then Service.Close runs. An error from
// build, a nil Service, a nil Server or a Servers map that does not match
// the WithNamedAddr names end the worker with an error (the supervisor
// sees a worker that failed to start).
//
// ServeFunc needs [WithAddr]; it returns an error, before anything
// starts, for a nil ctx or build, a nil or invalid option, or no
// WithAddr. It returns as Serve does: nil after a requested stop in
// either process, the crash-loop error in the supervisor, and in a worker
// the servers' and Close's errors.
func ServeFunc(ctx context.Context, build func(ctx context.Context) (*Service, error), opts ...Option) error {
	if ctx == nil {
		return errors.New("cluster: ServeFunc: nil context")
	}
	if build == nil {
		return errors.New("cluster: ServeFunc: nil build function")
	}
	c, err := newConfig(opts)
	if err != nil {
		return err
	}
	if !c.addrSet {
		return errors.New("cluster: ServeFunc: no address; use WithAddr")
	}
	return run(ctx, c, serveService(build, c), false)
}

// serveService is the serveFunc of Serve and ServeFunc: build the
// service, serve each server on its listener, and drain them together.
func serveService(build func(context.Context) (*Service, error), c *config) serveFunc {
	return func(ctx context.Context, lns map[string]net.Listener) (err error) {
		svc, err := build(ctx)
		if err != nil {
			return fmt.Errorf("cluster: ServeFunc: build: %w", err)
		}
		if svc == nil {
			return errors.New("cluster: ServeFunc: build returned a nil *Service and no error")
		}
		if svc.Close != nil {
			defer func() {
				if cerr := svc.Close(); cerr != nil {
					err = errors.Join(err, fmt.Errorf("cluster: ServeFunc: close: %w", cerr))
				}
			}()
		}
		servers, err := svc.byListener(lns)
		if err != nil {
			return err
		}
		// One server failing (its listener broke, a TLS set-up error)
		// ends the worker: the others drain, and the supervisor replaces
		// the worker as a whole.
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		var mu sync.Mutex
		var errs []error
		var wg sync.WaitGroup
		for name, srv := range servers {
			ln := lns[name]
			wg.Go(func() {
				if err := httpServe(srv, c)(ctx, ln); err != nil {
					if name != "" {
						err = fmt.Errorf("%q: %w", name, err)
					}
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
					cancel()
				}
			})
		}
		wg.Wait()
		return errors.Join(errs...)
	}
}

// byListener pairs the service's servers with the listeners by name ("" for
// Server), refusing a missing, nil or unknown one.
func (svc *Service) byListener(lns map[string]net.Listener) (map[string]*http.Server, error) {
	if svc.Server == nil {
		return nil, errors.New("cluster: ServeFunc: Service.Server is nil")
	}
	servers := map[string]*http.Server{"": svc.Server}
	for name, srv := range svc.Servers {
		if _, ok := lns[name]; !ok || name == "" {
			return nil, fmt.Errorf("cluster: ServeFunc: Service.Servers[%q]: no WithNamedAddr of that name", name)
		}
		if srv == nil {
			return nil, fmt.Errorf("cluster: ServeFunc: Service.Servers[%q] is nil", name)
		}
		servers[name] = srv
	}
	for name := range lns {
		if _, ok := servers[name]; !ok {
			return nil, fmt.Errorf("cluster: ServeFunc: WithNamedAddr %q has no server in Service.Servers", name)
		}
	}
	seen := map[*http.Server]bool{}
	for _, name := range slices.Sorted(maps.Keys(servers)) {
		if seen[servers[name]] {
			return nil, fmt.Errorf("cluster: ServeFunc: the server of %q serves another address too; give each address a server of its own", name)
		}
		seen[servers[name]] = true
	}
	return servers, nil
}
