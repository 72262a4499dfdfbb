//go:build !unix

package cluster

import (
	"context"
	"errors"
	"fmt"
	"net"
	"runtime"
)

// inheritance is never set where workers are not supported.
type inheritance struct{}

func inherited() (*inheritance, error) { return nil, nil }

func inheritedListener(string, string) (net.Listener, bool, error) { return nil, false, nil }

func runWorker(context.Context, *inheritance, *config, serveFunc, bool) error {
	return errors.ErrUnsupported
}

// supervise reports that the supervisor needs a Unix system: it hands the
// listening socket to its workers as an inherited descriptor.
func supervise(context.Context, *config) error {
	return fmt.Errorf("cluster: supervisor on %s: %w", runtime.GOOS, errors.ErrUnsupported)
}
