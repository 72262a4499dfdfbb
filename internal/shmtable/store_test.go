//go:build unix

package shmtable

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/shipshape-go/shipshape/internal/storetest"
	"github.com/shipshape-go/shipshape/ratelimit"
)

// testTable creates a table of maxKeys keys, closed with the test.
func testTable(t testing.TB, maxKeys int) *Table {
	t.Helper()
	f, tab, err := Create(maxKeys)
	require.NoError(t, err)
	t.Cleanup(func() {
		tab.Close()
		f.Close()
	})
	return tab
}

// TestConformance runs the suite every Store passes over a shared table
// in one process.
func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) ratelimit.Store {
		return testTable(t, 10_000).Store("")
	})
}
