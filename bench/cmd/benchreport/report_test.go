package main

import (
	"bytes"
	"image/png"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func sampleReport() reportData {
	runs := []run{
		{Round: 1, Config: cfgBare, Requests: 800_000, RPS: 100_000, P50: 500 * time.Microsecond, P99: 5 * time.Millisecond, ServerUSPR: 10, ClientUSPR: 5},
		{Round: 1, Config: cfgShipshape, Requests: 640_000, RPS: 80_000, P50: 700 * time.Microsecond, P99: 6 * time.Millisecond, ServerUSPR: 15, ClientUSPR: 6},
		{Round: 1, Config: cfgChi, Requests: 480_000, RPS: 60_000, P50: 900 * time.Microsecond, P99: 7 * time.Millisecond, ServerUSPR: 20, ClientUSPR: 7},
	}
	return reportData{
		Date:       time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC),
		Machine:    machine{NumCPU: 2, CPUModel: "Test CPU", GoVersion: "go1.26.8", Kernel: "Linux 6", Wrk: "wrk 4.1.0"},
		LoadAvg:    []loadAvg{{"start", "0.10 0.20 0.30"}},
		Load:       loadOptions{client: "wrk", threads: 2, connections: 64, duration: 8 * time.Second, warmup: 2 * time.Second, rounds: 1},
		LoadResult: &loadResult{Runs: runs, Medians: medians(runs)},
	}
}

func TestRenderReport(t *testing.T) {
	md := renderReport(sampleReport())
	for _, want := range []string{
		"| CPUs (`nproc`) | 2 |",
		"| load average (1, 5, 15 min), start | 0.10 0.20 0.30 |",
		"`wrk -t2 -c64 -d8s --latency http://127.0.0.1:PORT/hello`",
		"| shipshape | 80,000 | 80,000–80,000 | 700 µs | 6.00 ms | 15.0 | 6.0 | 0.00 |",
		// 80k/100k = 0.80 < 0.85; 80k/60k = 1.33 ≥ 1.3.
		"| shipshape / net/http | 0.80× | 0.80×–0.80× | 0.67× | ≥ 0.85× | **missed** |",
		"| shipshape / chi+httprate | 1.33× | 1.33×–1.33× | 1.33× | ≥ 1.30× | met |",
		"![throughput, p99 latency and server CPU per request of the three configurations](loadtest.png)",
	} {
		assert.Contains(t, md, want)
	}
	assert.NotContains(t, md, "## Micro-benchmarks", "no micro-benchmark section without results")
}

// With internal/loadgen as the client, the report names it and nothing
// in the load section speaks of wrk.
func TestRenderReportLoadgenClient(t *testing.T) {
	rep := sampleReport()
	rep.Machine.Wrk = ""
	rep.Load.client, rep.Load.warmup = "loadgen", 0
	md := renderReport(rep)
	assert.Contains(t, md, "`loadgen.Run(ctx, loadgen.Config{URL: \"http://127.0.0.1:PORT/hello\", Concurrency: 64, Duration: 8s})`")
	assert.Contains(t, md, "without warm-up")
	assert.NotContains(t, md, "wrk")
}

func TestWriteLoadPlot(t *testing.T) {
	var buf bytes.Buffer
	require.NoError(t, writeLoadPlot(&buf, sampleReport()))
	img, err := png.Decode(&buf)
	require.NoError(t, err)
	assert.Equal(t, 3*440, img.Bounds().Dx(), "width: three panels")
	// Each configuration's colour is drawn (its bars).
	for i, want := range plotBars {
		found := false
		b := img.Bounds()
		for y := b.Min.Y; y < b.Max.Y && !found; y += 2 {
			for x := b.Min.X; x < b.Max.X; x += 2 {
				r, g, bl, _ := img.At(x, y).RGBA()
				if uint8(r>>8) == want.R && uint8(g>>8) == want.G && uint8(bl>>8) == want.B {
					found = true
					break
				}
			}
		}
		assert.True(t, found, "no bar in the colour of %s", configs[i])
	}
}

func TestWritePlotMismatch(t *testing.T) {
	err := writePlot(&bytes.Buffer{}, "h", "c", configs, []panel{{title: "t", values: []float64{1}, format: formatShort}})
	require.Error(t, err)
	assert.True(t, strings.Contains(err.Error(), "1 values for 3 labels"), "got %v", err)
}

func TestRenderProfiles(t *testing.T) {
	rep := sampleReport()
	total, cum, err := parsePprofTop(pprofSample)
	require.NoError(t, err)
	ship, err := layerCosts(shipshapeLayers, total, cum)
	require.NoError(t, err)
	bare, err := layerCosts(profileLayers[cfgBare], 4*time.Second,
		map[string]time.Duration{"net/http.(*conn).serve": 3 * time.Second, "net/http.serverHandler.ServeHTTP": time.Second, "net/http.(*ServeMux).ServeHTTP": 800 * time.Millisecond})
	require.NoError(t, err)
	rep.Profiles = []*profileTop{
		{Config: cfgBare, Requests: 1_000_000, Total: 4 * time.Second, Layers: bare, Flat: "bare top\n"},
		{Config: cfgShipshape, Requests: 1_000_000, Total: total, Layers: ship, Flat: "shipshape top\n"},
	}
	md := renderReport(rep)
	for _, want := range []string{
		"| part of the server, CPU µs/request | net/http | shipshape |",
		"| chi ClientIPFromXFF | – | 0.10 |",
		"| ServeMux + hello handler | 0.80 | 0.30 |",
		"| accesslog background writer (to the file) | – | 0.04 |",
		"| net/http outside the handler (read request, write response) | 2.00 | 3.00 |",
		"| Go runtime (scheduler, GC) and the rest | 1.00 | 1.36 |",
		"| **total** (CPU sampled / requests) | **4.00** | **6.40** |",
		"[profile-nethttp.txt](profile-nethttp.txt) and [profile-shipshape.txt](profile-shipshape.txt)",
		"```\nshipshape top\n```",
	} {
		assert.Contains(t, md, want)
	}
	assert.Less(t, strings.Index(md, "| chi ClientIPFromXFF |"), strings.Index(md, "| ServeMux + hello handler |"), "rows in stack order")
	assert.NotContains(t, md, "bare top", "only shipshape's top functions are shown")
}

func TestRenderLayers(t *testing.T) {
	rep := sampleReport()
	rep.LoadResult = nil
	rep.Stacks = []stackResult{{Config: cfgBare, NsPerOp: 150, BytesPerOp: 32, AllocsPerOp: 2}, {Config: cfgShipshape, NsPerOp: 1600, BytesPerOp: 1100, AllocsPerOp: 11}}
	rep.Layers = []layerResult{
		{Added: "ServeMux + hello handler", NsPerOp: 150, BytesPerOp: 32, AllocsPerOp: 2},
		{Added: "ratelimit", NsPerOp: 400, BytesPerOp: 144, AllocsPerOp: 3},
	}
	md := renderReport(rep)
	assert.Contains(t, md, "| shipshape | 1,600 | +1,450 | 1,100 | 11 |")
	assert.Contains(t, md, "| ServeMux + hello handler | 150 | – | 32 | 2 | – |")
	assert.Contains(t, md, "| + ratelimit | 400 | +250 | 144 | 3 | +1 |")
}

func TestRunRange(t *testing.T) {
	runs := []run{
		{Config: "a", RPS: 20, P99: 3}, {Config: "b", RPS: 99, P99: 9}, {Config: "a", RPS: 10, P99: 5}, {Config: "a", RPS: 30, P99: 4},
	}
	lo, hi := runRange(runs, "a", func(r run) float64 { return r.RPS })
	assert.Equal(t, [2]float64{10, 30}, [2]float64{lo, hi}, "req/s range of a")
	lo, hi = runRange(runs, "a", func(r run) float64 { return float64(r.P99) })
	assert.Equal(t, [2]float64{3, 5}, [2]float64{lo, hi}, "p99 range of a")
	lo, hi = runRange(runs, "c", func(r run) float64 { return r.RPS })
	assert.Equal(t, [2]float64{0, 0}, [2]float64{lo, hi}, "no runs")
}
