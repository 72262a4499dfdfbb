//go:build unix

package shmring

import (
	"runtime"
	"testing"
	"time"
)

var benchLine = []byte(`203.0.113.7 - - [05/Mar/2024:09:04:05 -0700] "GET /api/items/42?page=2 HTTP/1.1" 200 512 "-" "curl/8.0 (x86_64-pc-linux)"` + "\n")

// BenchmarkWrite: 120-byte records from 8 goroutines into a 1 MiB ring
// that a goroutine drains (and discards) as fast as it can.
//
//	go test -run '^$' -bench . -benchmem ./internal/shmring/
func BenchmarkWrite(b *testing.B) {
	reader, writer := pair(b, 1<<20)
	rd, w := NewReader(reader), NewWriter(writer, nil, time.Minute)
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			default:
			}
			if n, _ := rd.Drain(64<<10, discard); n == 0 {
				runtime.Gosched()
			}
		}
	}()
	b.SetParallelism(max(1, 8/runtime.GOMAXPROCS(0)))
	b.SetBytes(int64(len(benchLine)))
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := w.Write(benchLine); err != nil {
				b.Error(err)
				return
			}
		}
	})
	close(stop)
	<-done
}

func discard([]byte) error { return nil }

// BenchmarkWriteSerial is the cost of a Write alone, from one goroutine.
func BenchmarkWriteSerial(b *testing.B) {
	reader, writer := pair(b, 1<<20)
	rd, w := NewReader(reader), NewWriter(writer, nil, time.Minute)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if _, err := w.Write(benchLine); err != nil {
			b.Fatal(err)
		}
		if i%4096 == 4095 {
			b.StopTimer()
			_, _ = rd.Drain(1<<20, discard)
			b.StartTimer()
		}
	}
}
