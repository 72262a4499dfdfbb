package main

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// goTestOutput is what `go test -bench -benchmem -count 2` prints for two
// packages, with a sub-benchmark, custom metrics, a benchmark log and the
// trailing PASS/ok lines.
const goTestOutput = `goos: linux
goarch: amd64
pkg: github.com/shipshape-go/shipshape/ratelimit
cpu: Intel(R) Xeon(R) Processor
BenchmarkMemoryStoreTake/keys=100000-2      	20000000	        61.30 ns/op	       0 B/op	       0 allocs/op
BenchmarkMemoryStoreTake/keys=100000-2      	20000000	        59.10 ns/op	       0 B/op	       0 allocs/op
BenchmarkMemoryStoreTake/keys=10000-2       	 5000000	       241.0 ns/op	      48 B/op	       1 allocs/op
BenchmarkMemoryStoreTake/keys=10000-2       	 5000000	       239.0 ns/op	      48 B/op	       1 allocs/op
PASS
ok  	github.com/shipshape-go/shipshape/ratelimit	6.123s
goos: linux
goarch: amd64
pkg: github.com/shipshape-go/shipshape/logfile
cpu: Intel(R) Xeon(R) Processor
BenchmarkBufferedWriterFile-2   	 9000000	       130.0 ns/op	 923.08 MB/s	   7692307 lines/s	       0 B/op	       0 allocs/op
--- BENCH: BenchmarkBufferedWriterFile-2
    bench_test.go:10: a log line that is not a result
BenchmarkBufferedWriterFile-2   	 9000000	       150.0 ns/op	 800.00 MB/s	   6666666 lines/s	       2 B/op	       0 allocs/op
PASS
ok  	github.com/shipshape-go/shipshape/logfile	4.001s
`

func TestParseBench(t *testing.T) {
	cases := []struct {
		name string
		in   string
		want []benchResult
		meta benchMeta
	}{
		{
			name: "two packages, medians over -count",
			in:   goTestOutput,
			want: []benchResult{
				{Pkg: "github.com/shipshape-go/shipshape/ratelimit", Name: "BenchmarkMemoryStoreTake/keys=100000", Procs: 2, Runs: 2, NsPerOp: 60.2, BytesPerOp: 0, AllocsPerOp: 0},
				{Pkg: "github.com/shipshape-go/shipshape/ratelimit", Name: "BenchmarkMemoryStoreTake/keys=10000", Procs: 2, Runs: 2, NsPerOp: 240, BytesPerOp: 48, AllocsPerOp: 1},
				{Pkg: "github.com/shipshape-go/shipshape/logfile", Name: "BenchmarkBufferedWriterFile", Procs: 2, Runs: 2, NsPerOp: 140, BytesPerOp: 1, AllocsPerOp: 0},
			},
			meta: benchMeta{GOOS: "linux", GOARCH: "amd64", CPU: "Intel(R) Xeon(R) Processor"},
		},
		{
			name: "GOMAXPROCS 1 has no suffix, no -benchmem has no B/op",
			in:   "pkg: example.com/p\nBenchmarkX/sub_case   \t 100\t  12345 ns/op\n",
			want: []benchResult{{Pkg: "example.com/p", Name: "BenchmarkX/sub_case", Procs: 1, Runs: 1, NsPerOp: 12345, BytesPerOp: -1, AllocsPerOp: -1}},
		},
		{
			name: "odd count takes the middle run",
			in: "pkg: p\nBenchmarkY-4 1 30 ns/op 3 B/op 1 allocs/op\nBenchmarkY-4 1 10 ns/op 1 B/op 1 allocs/op\n" +
				"BenchmarkY-4 1 20 ns/op 2 B/op 1 allocs/op\n",
			want: []benchResult{{Pkg: "p", Name: "BenchmarkY", Procs: 4, Runs: 3, NsPerOp: 20, BytesPerOp: 2, AllocsPerOp: 1}},
		},
		{
			name: "failures, skips and names without figures are left out",
			in: "pkg: p\n--- FAIL: BenchmarkZ-2\n    z_test.go:3: boom\nBenchmarkSkipped-2 \t--- SKIP: BenchmarkSkipped-2\n" +
				"FAIL\nexit status 1\nFAIL\tp\t0.1s\n",
			want: []benchResult{},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, meta, err := parseBench(strings.NewReader(c.in))
			require.NoError(t, err)
			require.Len(t, got, len(c.want), "results: got %+v", got)
			for i := range c.want {
				assert.Equal(t, c.want[i].Pkg, got[i].Pkg, "package of %s", c.want[i].Name)
				assert.Equal(t, c.want[i].Name, got[i].Name)
				assert.Equal(t, c.want[i].Procs, got[i].Procs, "procs of %s", c.want[i].Name)
				assert.Equal(t, c.want[i].Runs, got[i].Runs, "runs of %s", c.want[i].Name)
				assert.InDelta(t, c.want[i].NsPerOp, got[i].NsPerOp, 1e-9, "ns/op of %s", c.want[i].Name)
				assert.InDelta(t, c.want[i].BytesPerOp, got[i].BytesPerOp, 1e-9, "B/op of %s", c.want[i].Name)
				assert.InDelta(t, c.want[i].AllocsPerOp, got[i].AllocsPerOp, 1e-9, "allocs/op of %s", c.want[i].Name)
			}
			if c.meta != (benchMeta{}) {
				assert.Equal(t, c.meta, meta)
			}
		})
	}
}

func TestMicroTable(t *testing.T) {
	rs, _, err := parseBench(strings.NewReader(goTestOutput))
	require.NoError(t, err)
	rs = append(rs, benchResult{Pkg: "example.com/other", Name: "BenchmarkSlow", NsPerOp: 1234567.8, BytesPerOp: -1, AllocsPerOp: -1})
	got := microTable(rs)
	want := `| package | benchmark | what it measures | ns/op | B/op | allocs/op |
| --- | --- | --- | ---: | ---: | ---: |
| ratelimit | MemoryStoreTake/keys=100000 | one sliding-window take, 100k keys (out of cache), all cores | 60.2 | 0 | 0 |
| ratelimit | MemoryStoreTake/keys=10000 | the same, 10k keys (in cache) | 240 | 48 | 1 |
| logfile | BufferedWriterFile | one 120-byte line through BufferedWriter into File | 140 | 1 | 0 |
| example.com/other | Slow |  | 1,234,568 | – | – |
`
	assert.Equal(t, want, got)
}

// Every suite's benchmarks are described in the table: a renamed
// benchmark shows up here rather than as an empty cell in the report.
func TestMicroWhatCoversSuites(t *testing.T) {
	for key := range microWhat {
		pkg, _, _ := strings.Cut(key, "/Benchmark")
		found := false
		for _, s := range microSuites {
			if strings.TrimPrefix(s.pkg, "./") == pkg {
				found = true
			}
		}
		assert.True(t, found, "microWhat key %q names no suite package", key)
	}
}

func TestGoTestArgs(t *testing.T) {
	s := microSuite{"./static", `^(BenchmarkServeHTTP)$/^(embed/304)?$`}
	got := commandLine(append([]string{"go"}, goTestArgs(s, 3)...))
	assert.Equal(t, `go test -run '^$' -bench '^(BenchmarkServeHTTP)$/^(embed/304)?$' -benchmem -count 3 ./static`, got)
}

func TestCommandLine(t *testing.T) {
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"plain", []string{"wrk", "-t2", "-c64", "http://127.0.0.1:1/hello"}, "wrk -t2 -c64 http://127.0.0.1:1/hello"},
		{"empty and spaces", []string{"a", "", "b c"}, "a '' 'b c'"},
		{"single quote", []string{"it's"}, `'it'\''s'`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			assert.Equal(t, c.want, commandLine(c.args))
		})
	}
}

// wrkSample is real wrk 4.1.0 output with --latency.
const wrkSample = `Running 8s test @ http://127.0.0.1:18182/hello
  2 threads and 64 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   505.29us    1.06ms  13.07ms   90.09%
    Req/Sec    49.09k     9.95k   87.08k    90.48%
  Latency Distribution
     50%  126.00us
     75%  299.00us
     90%    1.55ms
     99%    4.50ms
  102426 requests in 1.10s, 12.70MB read
Requests/sec:  93131.73
Transfer/sec:     11.55MB
`

func TestParseWrk(t *testing.T) {
	cases := []struct {
		name    string
		in      string
		want    wrkOutput
		wantErr string
	}{
		{
			name: "clean run",
			in:   wrkSample,
			want: wrkOutput{Requests: 102426, RPS: 93131.73, P50: 126 * time.Microsecond, P99: 4500 * time.Microsecond},
		},
		{
			name: "error lines, p99 in seconds",
			in: strings.Replace(strings.Replace(wrkSample, "     99%    4.50ms", "     99%    1.20s", 1),
				"Requests/sec:", "  Socket errors: connect 0, read 3, write 0, timeout 1\n  Non-2xx or 3xx responses: 17\nRequests/sec:", 1),
			want: wrkOutput{Requests: 102426, RPS: 93131.73, P50: 126 * time.Microsecond, P99: 1200 * time.Millisecond,
				Non2xx: 17, SocketErrors: "connect 0, read 3, write 0, timeout 1"},
		},
		{
			name:    "no --latency",
			in:      strings.Replace(wrkSample, "     50%  126.00us\n", "", 1),
			wantErr: "latency distribution",
		},
		{
			name:    "not wrk",
			in:      "unable to connect to 127.0.0.1:1 Connection refused\n",
			wantErr: "request count",
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := parseWrk([]byte(c.in))
			if c.wantErr != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), c.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, c.want, got)
		})
	}
}

func TestMedian(t *testing.T) {
	cases := []struct {
		name string
		in   []float64
		want float64
	}{
		{"empty", nil, 0},
		{"one", []float64{7}, 7},
		{"odd", []float64{3, 1, 2}, 2},
		{"even", []float64{4, 1, 3, 2}, 2.5},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			assert.InDelta(t, c.want, median(c.in), 1e-12)
		})
	}
}

func TestMedians(t *testing.T) {
	runs := []run{
		{Config: "a", RPS: 10, P99: 3 * time.Millisecond, ServerUSPR: 5},
		{Config: "a", RPS: 30, P99: 1 * time.Millisecond, ServerUSPR: 4},
		{Config: "a", RPS: 20, P99: 2 * time.Millisecond, ServerUSPR: 6},
		{Config: "b", RPS: 40, P99: 9 * time.Millisecond, ServerUSPR: 2},
	}
	m := medians(runs)
	assert.InDelta(t, 20.0, m["a"].RPS, 1e-9, "req/s")
	assert.Equal(t, 2*time.Millisecond, m["a"].P99, "p99: each figure is its own median")
	assert.InDelta(t, 5.0, m["a"].ServerUSPR, 1e-9, "server µs/req")
	assert.InDelta(t, 40.0, m["b"].RPS, 1e-9)
	res := loadResult{Runs: runs, Medians: m}
	assert.InDelta(t, 0.5, res.ratio("a", "b"), 1e-9, "ratio of req/s")
	assert.InDelta(t, 0.4, res.cpuRatio("a", "b"), 1e-9, "b's CPU per request over a's")
}

func TestRoundRatios(t *testing.T) {
	res := loadResult{Runs: []run{
		{Round: 1, Config: "a", RPS: 80}, {Round: 1, Config: "b", RPS: 100},
		{Round: 2, Config: "b", RPS: 100}, {Round: 2, Config: "a", RPS: 90},
		{Round: 3, Config: "a", RPS: 70}, {Round: 3, Config: "b", RPS: 50},
		{Round: 4, Config: "a", RPS: 1}, // b missing: not a round to compare
	}}
	lo, hi := res.roundRatios("a", "b")
	assert.InDelta(t, 0.8, lo, 1e-9, "lowest ratio within a round")
	assert.InDelta(t, 1.4, hi, 1e-9, "highest ratio within a round")
}

func TestGroupThousands(t *testing.T) {
	for in, want := range map[string]string{"0": "0", "999": "999", "1000": "1,000", "123456": "123,456", "1234567": "1,234,567"} {
		assert.Equal(t, want, groupThousands(in), "groupThousands(%q)", in)
	}
}

func TestFormatTick(t *testing.T) {
	for v, want := range map[float64]string{0: "0", 0.25: "0.25", 2.5: "2.5", 1000: "1k", 2500: "2.5k", 150000: "150k", 0.1 + 0.2: "0.3"} {
		assert.Equal(t, want, formatTick(v), "formatTick(%v)", v)
	}
}

func TestNiceStep(t *testing.T) {
	cases := []struct{ in, want float64 }{
		{0, 0}, {0.7, 1}, {1, 1}, {1.5, 2}, {2.2, 2.5}, {3, 5}, {7, 10}, {24000, 25000}, {0.031, 0.05},
	}
	for _, c := range cases {
		assert.InDelta(t, c.want, niceStep(c.in), c.want*1e-9, "niceStep(%v)", c.in)
	}
}

// pprofSample is `go tool pprof -top -cum` output of the shipshape server,
// cut down to the lines layerCosts reads and a few it must skip.
const pprofSample = `File: benchreport
Type: cpu
Duration: 5.11s, Total samples = 6.40s (125.11%)
Showing nodes accounting for 4.41s, 68.96% of 6.40s total
      flat  flat%   sum%        cum   cum%
     0.01s  0.16%  0.16%      5.00s 78.13%  net/http.(*conn).serve
     0.02s  0.31%  0.47%      2.00s 31.25%  net/http.serverHandler.ServeHTTP
     0.02s  0.31%  0.78%      1.90s 29.69%  github.com/go-chi/chi/v5/middleware.ClientIPFromXFF.func1.1
     0.05s  0.78%  1.56%      1.20s 18.75%  github.com/shipshape-go/shipshape/accesslog.(*handler).ServeHTTP
         0     0%  1.56%      1.10s 17.19%  github.com/shipshape-go/shipshape/recoverer.(*handler).ServeHTTP
         0     0%  1.56%      1.00s 15.63%  main.shipshapeStack.(*Delayer).Handler.func6
         0     0%  1.56%      0.95s 14.84%  github.com/shipshape-go/shipshape/slowdown.(*Delayer).serve
         0     0%  1.56%      0.60s  9.38%  main.shipshapeStack.(*Limiter).Handler.func5
         0     0%  1.56%      0.30s  4.69%  net/http.(*ServeMux).ServeHTTP
         0     0%  1.56%     40ms  0.63%  github.com/shipshape-go/shipshape/accesslog.(*BufferedWriter).run
     0.10s  1.56%  3.12%      0.10s  1.56%  time.runtimeNow (inline)
`

func TestLayerCosts(t *testing.T) {
	total, cum, err := parsePprofTop(pprofSample)
	require.NoError(t, err)
	assert.Equal(t, 6400*time.Millisecond, total)
	assert.Equal(t, 100*time.Millisecond, cum["time.runtimeNow"], "(inline) is not part of the name")
	layers, err := layerCosts(shipshapeLayers, total, cum)
	require.NoError(t, err)
	want := []layerCost{
		{"chi ClientIPFromXFF", 700 * time.Millisecond},
		{"accesslog (request path)", 100 * time.Millisecond},
		{"recoverer", 100 * time.Millisecond},
		{"slowdown", 400 * time.Millisecond},
		{"ratelimit", 300 * time.Millisecond},
		{"ServeMux + hello handler", 300 * time.Millisecond},
		{"accesslog background writer (to the file)", 40 * time.Millisecond},
		{"net/http outside the handler (read request, write response)", 3000 * time.Millisecond},
		{"Go runtime (scheduler, GC) and the rest", 1360 * time.Millisecond},
	}
	require.Len(t, layers, len(want))
	for i := range want {
		assert.Equal(t, want[i].Name, layers[i].Name)
		assert.InDelta(t, want[i].Own, layers[i].Own, float64(time.Microsecond), "own time of %s", want[i].Name)
	}
}

func TestLayerCostsMissingLayer(t *testing.T) {
	in := strings.Replace(pprofSample, "recoverer.(*handler).ServeHTTP", "somethingelse", 1)
	total, cum, err := parsePprofTop(in)
	require.NoError(t, err)
	_, err = layerCosts(shipshapeLayers, total, cum)
	require.Error(t, err, "a layer missing from the profile must not give a silent zero")
	assert.Contains(t, err.Error(), "recoverer")
}

func TestStripPprofHeader(t *testing.T) {
	got := stripPprofHeader("File: x\nBuild ID: 1\nType: cpu\nTime: now\nDuration: 1s\n")
	assert.Equal(t, "Type: cpu\nDuration: 1s\n", got)
}
