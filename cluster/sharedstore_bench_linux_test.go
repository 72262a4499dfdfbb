package cluster

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shipshape-go/shipshape/internal/loadgen"
)

// BenchmarkSharedLimitStack compares, in one run, the throughput of a
// rate-limited hello world (one key, a limit never reached) through the
// whole stack: one plain process with a MemoryStore, two workers counting
// in the shared table, and two workers with a MemoryStore each
// (WithSharedKeys(0), limits per worker). The load generator runs in this
// process on the same machine, closed loop over 64 keep-alive connections
// for 5s per case:
//
//	go test -run '^$' -bench SharedLimitStack -benchtime 1x ./cluster/
//
// Build without -race.
func BenchmarkSharedLimitStack(b *testing.B) {
	cases := []struct {
		name string
		want int
		env  []string
	}{
		{"1proc-memorystore", 0, []string{"CLUSTER_TEST_SINGLE=1", "GOMAXPROCS=2"}},
		{"2workers-shared", 2, []string{"CLUSTER_TEST_WORKERS=2"}},
		{"2workers-memorystore", 2, []string{"CLUSTER_TEST_WORKERS=2", "CLUSTER_TEST_SHARED_KEYS=0"}},
	}
	for _, bc := range cases {
		b.Run(bc.name, func(b *testing.B) {
			c := startProgram(b, "", "limits", bc.want, bc.env...)
			var res loadgen.Result
			for b.Loop() {
				var err error
				res, err = loadgen.Run(context.Background(), loadgen.Config{URL: c.url + "/flood?k=bench", Concurrency: 64, Duration: 5 * time.Second})
				require.NoError(b, err)
			}
			require.Zero(b, res.Failed(), "failed requests")
			b.ReportMetric(res.Throughput, "req/s")
			b.ReportMetric(float64(res.P50.Microseconds()), "p50-µs")
			b.ReportMetric(float64(res.P99.Microseconds()), "p99-µs")
			b.ReportMetric(0, "ns/op")
		})
	}
}
