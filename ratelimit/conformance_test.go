package ratelimit_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/shipshape-go/shipshape/internal/storetest"
	"github.com/shipshape-go/shipshape/ratelimit"
)

// TestMemoryStoreConformance runs the suite every Store passes.
func TestMemoryStoreConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) ratelimit.Store {
		s, err := ratelimit.NewMemoryStore()
		require.NoError(t, err)
		return s
	})
}
