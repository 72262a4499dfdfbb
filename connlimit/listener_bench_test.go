package connlimit

import (
	"strconv"
	"sync/atomic"
	"testing"
)

// BenchmarkAdmit is the bookkeeping cost of one connection
// (admit on accept, release on close) with every limit on, from many
// goroutines and clients at once; the socket work is not included:
//
//	go test -run '^$' -bench BenchmarkAdmit ./connlimit/
func BenchmarkAdmit(b *testing.B) {
	l := mustNew(b, newLLFakeListener(), WithMaxConns(1<<20), WithMaxConnsPerIP(1<<20),
		WithAcceptRate(1e9, 1<<20))
	var ids atomic.Int64
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		id := ids.Add(1)
		conns := make([]*llFakeConn, 256)
		for i := range conns {
			conns[i] = llConn("10." + strconv.FormatInt(id%256, 10) + "." + strconv.Itoa(i) + ".1:1")
		}
		for i := 0; pb.Next(); i++ {
			c := l.wrap(conns[i%len(conns)])
			if c == nil {
				b.Fatal("refused")
			}
			c.Close()
		}
	})
}
