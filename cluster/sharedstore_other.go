//go:build !unix

package cluster

import "github.com/shipshape-go/shipshape/ratelimit"

type workerTable struct{}

func (*workerTable) store(string) ratelimit.Store { return nil }

// sharedTable: there are no workers where supervisors are not supported.
func sharedTable() (*workerTable, error) { return nil, ErrNoSharedStore }
