package logfile_test

import (
	"io"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/shipshape-go/shipshape/logfile"
)

// benchmarkBuffered writes a 120-byte access line per op from 8 goroutines
// (b.SetParallelism on GOMAXPROCS) and reports lines per second.
func benchmarkBuffered(b *testing.B, w io.Writer) {
	bw, err := logfile.NewBufferedWriter(w)
	if err != nil {
		b.Fatal(err)
	}
	line := []byte(`203.0.113.7 - - [05/Mar/2024:09:04:05 -0700] "GET /api/items/42?page=2 HTTP/1.1" 200 512 "-" "curl/8.0 (x86_64-pc-linux)"` + "\n")
	b.SetParallelism(max(1, 8/runtime.GOMAXPROCS(0)))
	b.SetBytes(int64(len(line)))
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := bw.Write(line); err != nil {
				b.Error(err)
				return
			}
		}
	})
	if err := bw.Close(); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "lines/s")
}

// BenchmarkBufferedWriterDiscard measures the BufferedWriter alone.
func BenchmarkBufferedWriterDiscard(b *testing.B) { benchmarkBuffered(b, io.Discard) }

// BenchmarkBufferedWriterFile measures the BufferedWriter on a File
// (rotating at the default 100 MiB, compressing in the background).
func BenchmarkBufferedWriterFile(b *testing.B) {
	f, err := logfile.Open(filepath.Join(b.TempDir(), "bench.log"))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	benchmarkBuffered(b, f)
}

// BenchmarkFileWrite measures File.Write alone, one 120-byte line per op
// from parallel writers: the syscall, the lock and the rotation checks
// (default 100 MiB rotation, backups not compressed so that the
// background gzip does not take the CPU the writers are measured on).
func BenchmarkFileWrite(b *testing.B) {
	f, err := logfile.Open(filepath.Join(b.TempDir(), "bench.log"), logfile.WithCompression(false))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	line := []byte(`203.0.113.7 - - [05/Mar/2024:09:04:05 -0700] "GET /api/items/42?page=2 HTTP/1.1" 200 512 "-" "curl/8.0 (x86_64-pc-linux)"` + "\n")
	b.SetBytes(int64(len(line)))
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := f.Write(line); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
