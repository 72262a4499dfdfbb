//go:build unix

package shmtable

import (
	"context"
	"strconv"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"github.com/stretchr/testify/require"

	"github.com/shipshape-go/shipshape/ratelimit"
)

// BenchmarkTake compares a take of the shared table (at the default cap of
// 1,000,000 keys, and sized to the keys) with a MemoryStore take on the
// same keys, in one run:
//
//	go test -run '^$' -bench '^BenchmarkTake$' -cpu 2 ./internal/shmtable/
//
// 10,000 and 100,000 existing keys taken from every core, each key
// formatted into a buffer of the goroutine as ratelimit's
// BenchmarkMemoryStoreTake does; and one key taken from every core (hot).
func BenchmarkTake(b *testing.B) {
	for _, nkeys := range []int{10_000, 100_000} {
		b.Run("store=memory/keys="+strconv.Itoa(nkeys), func(b *testing.B) {
			s, err := ratelimit.NewMemoryStore()
			require.NoError(b, err)
			benchmarkTake(b, s, nkeys)
		})
		b.Run("store=shared/keys="+strconv.Itoa(nkeys), func(b *testing.B) {
			benchmarkTake(b, testTable(b, ratelimit.DefaultMaxKeys).Store(""), nkeys)
		})
		// A table sized to twice the keys instead of the default cap:
		// the keys are then as dense as in a MemoryStore, and the
		// difference with the case above is TLB misses (no huge pages
		// for shared memory here).
		b.Run("store=shared-fit/keys="+strconv.Itoa(nkeys), func(b *testing.B) {
			benchmarkTake(b, testTable(b, 2*nkeys).Store(""), nkeys)
		})
	}
	b.Run("store=memory/hot", func(b *testing.B) {
		s, err := ratelimit.NewMemoryStore()
		require.NoError(b, err)
		benchmarkHot(b, s)
	})
	b.Run("store=shared/hot", func(b *testing.B) {
		benchmarkHot(b, testTable(b, ratelimit.DefaultMaxKeys).Store(""))
	})
}

func benchmarkTake(b *testing.B, s ratelimit.Store, nkeys int) {
	p := ratelimit.Policy{Name: "default", Limit: 1 << 30, Window: time.Minute}
	now := time.Now()
	var buf [32]byte
	for i := range nkeys {
		_, err := s.Take(context.Background(), p, string(benchKey(buf[:0], i)), now, 1)
		require.NoError(b, err)
	}
	var seq atomic.Uint64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		ctx := context.Background()
		var buf [32]byte
		i := seq.Add(7919)
		for pb.Next() {
			i += 7919
			k := benchKey(buf[:0], int(i%uint64(nkeys)))
			if _, err := s.Take(ctx, p, unsafe.String(&k[0], len(k)), now, 1); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// benchmarkHot takes one key from every core.
func benchmarkHot(b *testing.B, s ratelimit.Store) {
	p := ratelimit.Policy{Name: "default", Limit: 1 << 30, Window: time.Minute}
	now := time.Now()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		ctx := context.Background()
		for pb.Next() {
			if _, err := s.Take(ctx, p, "192.0.2.7", now, 1); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// benchKey appends the i-th client address of the benchmarks, 10.1.x.y.
func benchKey(b []byte, i int) []byte {
	b = append(b, "10.1."...)
	b = strconv.AppendInt(b, int64(i>>8), 10)
	b = append(b, '.')
	return strconv.AppendInt(b, int64(i&0xff), 10)
}

// BenchmarkTakeSerial is BenchmarkTake from one goroutine, for
// instruction and cache-miss counts under valgrind, which the noise of a
// shared machine does not move:
//
//	go test -c -o /tmp/shmtable.test ./internal/shmtable/
//	valgrind --tool=cachegrind --cache-sim=yes /tmp/shmtable.test -test.run '^$' \
//		-test.bench 'TakeSerial/store=shared/keys=100000' -test.benchtime 200000x
func BenchmarkTakeSerial(b *testing.B) {
	for _, nkeys := range []int{10_000, 100_000} {
		b.Run("store=memory/keys="+strconv.Itoa(nkeys), func(b *testing.B) {
			s, err := ratelimit.NewMemoryStore()
			require.NoError(b, err)
			benchmarkTakeSerial(b, s, nkeys)
		})
		b.Run("store=shared/keys="+strconv.Itoa(nkeys), func(b *testing.B) {
			benchmarkTakeSerial(b, testTable(b, ratelimit.DefaultMaxKeys).Store(""), nkeys)
		})
		b.Run("store=shared-fit/keys="+strconv.Itoa(nkeys), func(b *testing.B) {
			benchmarkTakeSerial(b, testTable(b, nkeys).Store(""), nkeys)
		})
	}
}

func benchmarkTakeSerial(b *testing.B, s ratelimit.Store, nkeys int) {
	p := ratelimit.Policy{Name: "default", Limit: 1 << 30, Window: time.Minute}
	now := time.Now()
	var buf [32]byte
	for i := range nkeys {
		_, err := s.Take(context.Background(), p, string(benchKey(buf[:0], i)), now, 1)
		require.NoError(b, err)
	}
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		k := benchKey(buf[:0], int(uint64(i)*7919%uint64(nkeys)))
		if _, err := s.Take(ctx, p, unsafe.String(&k[0], len(k)), now, 1); err != nil {
			b.Fatal(err)
		}
	}
}
