package slowdown

import (
	"errors"
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/shipshape-go/shipshape/ratelimit"
)

// TestDefaultStore: a Delayer built without WithStore takes the store
// registered with ratelimit.SetDefaultStore (a cluster worker's shared
// table), with its policy; WithStore wins; the function's error fails New.
func TestDefaultStore(t *testing.T) {
	shared, err := ratelimit.NewMemoryStore()
	require.NoError(t, err)
	var got []ratelimit.Policy
	ratelimit.SetDefaultStore(func(ps []ratelimit.Policy) (ratelimit.Store, error) {
		got = append(got, ps...)
		return shared, nil
	})
	t.Cleanup(func() { ratelimit.SetDefaultStore(nil) })

	d, err := New(5, time.Minute, WithName("slow"))
	require.NoError(t, err)
	assert.Same(t, shared, d.store)
	assert.Equal(t, []ratelimit.Policy{{Name: "slow", Limit: math.MaxInt32, Window: time.Minute}}, got)

	own, err := ratelimit.NewMemoryStore()
	require.NoError(t, err)
	d, err = New(5, time.Minute, WithStore(own))
	require.NoError(t, err)
	assert.Same(t, own, d.store, "WithStore opts out")
	assert.Len(t, got, 1)

	boom := errors.New("table of another build")
	ratelimit.SetDefaultStore(func([]ratelimit.Policy) (ratelimit.Store, error) { return nil, boom })
	_, err = New(5, time.Minute)
	assert.ErrorIs(t, err, boom)
}
