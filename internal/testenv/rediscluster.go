//go:build unix

package testenv

import (
	"context"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// RedisCluster is a Redis Cluster of three masters (no replicas) started
// for one test on loopback ports, the 16384 slots split between them.
type RedisCluster struct {
	Addrs []string // host:port of each node, for redis.ClusterOptions.Addrs
	Nodes []*Redis
}

// StartRedisCluster starts three cluster-enabled redis-server processes,
// joins them with `redis-cli --cluster create`, and waits until every node
// reports cluster_state:ok. The nodes stop when the test ends.
//
// A missing redis-server or redis-cli skips the test (fails it under
// CI=true), as does a redis-server that cannot run in cluster mode here:
// the message says why.
func StartRedisCluster(t testing.TB) *RedisCluster {
	t.Helper()
	bin := LookPath(t, "redis-server", "redis-server")
	cli := LookPath(t, "redis-cli", "redis-tools")
	c := &RedisCluster{}
	for i := 0; i < 3; i++ {
		r, err := startClusterNode(t, bin)
		if err != nil {
			skipOrFail(t, fmt.Sprintf("testenv: redis-server in cluster mode did not start: %v", err))
		}
		c.Nodes = append(c.Nodes, r)
		c.Addrs = append(c.Addrs, r.Addr)
	}
	args := append([]string{"--cluster", "create"}, c.Addrs...)
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if out, err := exec.CommandContext(ctx, cli, args...).CombinedOutput(); err != nil {
		skipOrFail(t, fmt.Sprintf("testenv: redis-cli --cluster create: %v\n%s", err, out))
	}
	for _, addr := range c.Addrs {
		if err := waitClusterOK(cli, addr, 20*time.Second); err != nil {
			skipOrFail(t, err.Error())
		}
	}
	return c
}

// startClusterNode starts one node; the cluster bus gets a free port of its
// own (--cluster-port, Redis 7) rather than port+10000, which may be taken
// or beyond 65535.
func startClusterNode(t testing.TB, bin string) (*Redis, error) {
	var last error
	for attempt := 0; attempt < 3; attempt++ {
		r := &Redis{t: t, bin: bin, Port: FreePort(t)}
		r.args = []string{
			"--cluster-enabled", "yes",
			"--cluster-port", strconv.Itoa(FreePort(t)),
			"--cluster-config-file", "nodes.conf", // in the node's own temp dir
			"--cluster-node-timeout", "5000",
		}
		r.Addr = Addr(r.Port)
		if last = r.start(); last == nil {
			return r, nil
		}
	}
	return nil, last
}

// waitClusterOK polls CLUSTER INFO on addr until the node serves all slots
// and knows the other two nodes.
func waitClusterOK(cli, addr string, timeout time.Duration) error {
	host, port, _ := strings.Cut(addr, ":")
	deadline := time.Now().Add(timeout)
	var out []byte
	for {
		var err error
		out, err = exec.Command(cli, "-h", host, "-p", port, "cluster", "info").Output()
		if err == nil && strings.Contains(string(out), "cluster_state:ok") &&
			strings.Contains(string(out), "cluster_known_nodes:3") {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("testenv: redis cluster node %s not ok after %v (err %v):\n%s", addr, timeout, err, out)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func skipOrFail(t testing.TB, msg string) {
	t.Helper()
	if InCI() {
		t.Fatal(msg + "; CI=true, so this is a failure")
	}
	t.Skip(msg)
}
