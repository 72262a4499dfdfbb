package cluster

import (
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shipshape-go/shipshape/internal/loadgen"
	"github.com/shipshape-go/shipshape/internal/shmring"
	"github.com/shipshape-go/shipshape/logfile"
)

// benchLine is a 120-byte access line, as in logfile's benchmarks.
var benchLine = []byte(`203.0.113.7 - - [05/Mar/2024:09:04:05 -0700] "GET /api/items/42?page=2 HTTP/1.1" 200 512 "-" "curl/8.0 (x86_64-pc-linux)"` + "\n")

// benchmarkLines writes benchLine per op from 8 goroutines (SetParallelism
// on GOMAXPROCS), as logfile's BenchmarkBufferedWriterFile does, and
// reports lines per second.
func benchmarkLines(b *testing.B, w io.Writer) {
	b.SetParallelism(max(1, 8/runtime.GOMAXPROCS(0)))
	b.SetBytes(int64(len(benchLine)))
	b.ReportAllocs()
	cpu0 := processCPU(b)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := w.Write(benchLine); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "lines/s")
	// The CPU time of the whole process (writers, background writer or
	// sink, gzip) per line: on a machine shared with other jobs it varies
	// less than the wall time.
	b.ReportMetric(float64(processCPU(b)-cpu0)/float64(b.N), "cpu-ns/line")
}

// processCPU is the user and system CPU time this process used so far.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	require.NoError(b, syscall.Getrusage(syscall.RUSAGE_SELF, &ru))
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkLogLine is the cost of one access line on each path, in one
// run (ns/op, and the CPU time of the process per line), every path
// ending in a logfile.File (default rotation at 100 MiB,
// gzip in the background):
//
//   - BufferedWriterFile: a BufferedWriter on the File, in the process
//     (today's path without a supervisor; a kill -9 loses what it holds);
//
//   - Sink: a worker's LogWriter, its ring drained by the supervisor's
//     log sink into the File (the path of WithLog; the sink runs in this
//     process here, on the same cores);
//
//   - Pipe: the alternative of a pipe per worker that the supervisor reads
//     and copies into the File: one write(2) per line;
//
//   - FileWrite: File.Write directly, one write(2) per line.
//
//     go test -run '^$' -bench LogLine -benchmem -count 5 ./cluster/
func BenchmarkLogLine(b *testing.B) {
	b.Run("BufferedWriterFile", func(b *testing.B) {
		f := benchFile(b)
		bw, err := logfile.NewBufferedWriter(f)
		require.NoError(b, err)
		benchmarkLines(b, bw)
		require.NoError(b, bw.Close())
	})
	b.Run("Sink", func(b *testing.B) {
		path := filepath.Join(b.TempDir(), "access.log")
		c, err := newConfig([]Option{WithLog("access", path)})
		require.NoError(b, err)
		sink, err := newLogSink(c)
		require.NoError(b, err)
		defer sink.close()
		// A worker as the supervisor makes one: its ring, mapped a second
		// time as the worker maps it.
		p := &proc{cmd: &exec.Cmd{}, done: make(chan struct{})}
		files, err := sink.prepare(p)
		require.NoError(b, err)
		var ring, bell *os.File
		for _, f := range files {
			switch f.name {
			case "log:access":
				ring = f.f
			case logBellName:
				bell = f.f
			}
		}
		r, err := shmring.Map(ring)
		require.NoError(b, err)
		defer r.Close()
		p.started()
		benchmarkLines(b, &ringWriter{w: shmring.NewWriter(r, bell, logWait)})
		p.abandon() // drains what is left, as when a worker exits
	})
	b.Run("Pipe", func(b *testing.B) {
		f := benchFile(b)
		pr, pw, err := os.Pipe()
		require.NoError(b, err)
		done := make(chan struct{})
		go func() {
			defer close(done)
			buf := make([]byte, 64<<10)
			for {
				n, err := pr.Read(buf)
				if n > 0 {
					_, _ = f.Write(buf[:n])
				}
				if err != nil {
					return
				}
			}
		}()
		benchmarkLines(b, pw)
		pw.Close()
		<-done
		pr.Close()
	})
	b.Run("FileWrite", func(b *testing.B) {
		benchmarkLines(b, benchFile(b))
	})
}

func benchFile(b *testing.B) *logfile.File {
	f, err := logfile.Open(filepath.Join(b.TempDir(), "access.log"))
	require.NoError(b, err)
	b.Cleanup(func() { f.Close() })
	return f
}

// BenchmarkLogStack compares, in one run, the throughput of two workers
// that log every request (accesslog, combined format) into one access log
// through the supervisor (WithLog, LogWriter) against two workers that
// each write their own file through a File and a BufferedWriter. The
// load generator runs in this process on the same machine, closed loop
// over 64 keep-alive connections for 5s per case; the cases alternate
// with -count:
//
//	go test -run '^$' -bench LogStack -benchtime 1x -count 5 ./cluster/
//
// Build without -race: the figures of a race-enabled build are
// meaningless.
func BenchmarkLogStack(b *testing.B) {
	for _, bc := range []struct{ name, mode string }{{"OneLog", ""}, {"PerWorkerFiles", "files"}} {
		b.Run(bc.name, func(b *testing.B) {
			dir := b.TempDir()
			c := startProgram(b, "", "logs", 2, "CLUSTER_TEST_WORKERS=2", "CLUSTER_TEST_LOGDIR="+dir,
				"CLUSTER_TEST_LOG_MODE="+bc.mode)
			pids := append([]int{c.cmd.Process.Pid}, pidsOf(c.waitReady(0, 2, time.Second))...)
			cpu0 := cpuTime(b, pids)
			var res loadgen.Result
			for b.Loop() {
				var err error
				res, err = loadgen.Run(context.Background(), loadgen.Config{URL: c.url + "/req?id=1", Concurrency: 64, Duration: 5 * time.Second})
				require.NoError(b, err)
			}
			cpu := cpuTime(b, pids) - cpu0
			require.Zero(b, res.Failed(), "failed requests")
			b.ReportMetric(res.Throughput, "req/s")
			b.ReportMetric(float64(res.P99.Microseconds()), "p99-µs")
			b.ReportMetric(float64(cpu.Microseconds())/float64(res.Requests), "server-cpu-µs/req")
			b.ReportMetric(0, "ns/op")
			lines := 0
			names, _ := filepath.Glob(filepath.Join(dir, "access*.log"))
			for _, n := range names {
				data, _ := os.ReadFile(n)
				lines += strings.Count(string(data), "\n")
			}
			b.Logf("%s: %v; server CPU %v; %d lines in %d files (before the workers stopped)", bc.name, res, cpu, lines, len(names))
		})
	}
}
