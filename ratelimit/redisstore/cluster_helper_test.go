package redisstore_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/shipshape-go/shipshape/internal/testenv"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestRedisClusterServesAllSlots checks the test helper the Cluster tests
// stand on: every master owns slots and serves keys.
func TestRedisClusterServesAllSlots(t *testing.T) {
	c := testenv.StartRedisCluster(t)
	require.Len(t, c.Addrs, 3, "nodes")

	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.Addrs})
	t.Cleanup(func() { cc.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	// Keys spread over the slots land on every master; each one must be
	// writable and readable through the cluster client.
	masters := map[string]bool{}
	for i := 0; i < 64; i++ {
		k := fmt.Sprintf("k%d", i)
		require.NoError(t, cc.Set(ctx, k, i, 0).Err(), "SET %s", k)
		got, err := cc.Get(ctx, k).Int()
		require.NoError(t, err, "GET %s", k)
		assert.Equal(t, i, got, "GET %s", k)
		slot, err := cc.ClusterKeySlot(ctx, k).Result()
		require.NoError(t, err)
		masters[ownerOf(t, ctx, cc, slot)] = true
	}
	assert.Len(t, masters, 3, "masters that own the 64 keys: got %v, want all 3", masters)
}

func ownerOf(t *testing.T, ctx context.Context, cc *redis.ClusterClient, slot int64) string {
	t.Helper()
	shards, err := cc.ClusterShards(ctx).Result()
	require.NoError(t, err)
	for _, sh := range shards {
		for _, r := range sh.Slots {
			if r.Start <= slot && slot <= r.End && len(sh.Nodes) > 0 {
				return fmt.Sprintf("%s:%d", sh.Nodes[0].IP, sh.Nodes[0].Port)
			}
		}
	}
	t.Fatalf("slot %d has no owner in %v", slot, shards)
	return ""
}
