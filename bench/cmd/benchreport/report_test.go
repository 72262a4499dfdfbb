package main

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/image/font"
)

// sampleReport is a one-round report of the Go configurations on /hello
// and /json, the Node peers left out.
func sampleReport() reportData {
	hello := []run{
		{Round: 1, Config: cfgBare, Requests: 800_000, RPS: 100_000, P50: 500 * time.Microsecond, P99: 5 * time.Millisecond, ServerUSPR: 10, ClientUSPR: 5},
		{Round: 1, Config: cfgShipshape, Requests: 640_000, RPS: 80_000, P50: 700 * time.Microsecond, P99: 6 * time.Millisecond, ServerUSPR: 15, ClientUSPR: 6},
		{Round: 1, Config: cfgChi, Requests: 480_000, RPS: 60_000, P50: 900 * time.Microsecond, P99: 7 * time.Millisecond, ServerUSPR: 20, ClientUSPR: 7},
		{Round: 1, Config: cfgFloor, Requests: 680_000, RPS: 85_000, P50: 600 * time.Microsecond, P99: 6 * time.Millisecond, ServerUSPR: 13, ClientUSPR: 6},
	}
	json := []run{
		{Round: 1, Config: cfgBare, Requests: 240_000, RPS: 30_000, P50: 2 * time.Millisecond, P99: 9 * time.Millisecond, ServerUSPR: 60, ClientUSPR: 5},
		{Round: 1, Config: cfgShipshape, Requests: 216_000, RPS: 27_000, P50: 2 * time.Millisecond, P99: 10 * time.Millisecond, ServerUSPR: 66, ClientUSPR: 6},
		{Round: 1, Config: cfgChi, Requests: 200_000, RPS: 25_000, P50: 3 * time.Millisecond, P99: 11 * time.Millisecond, ServerUSPR: 70, ClientUSPR: 7},
		{Round: 1, Config: cfgFloor, Requests: 224_000, RPS: 28_000, P50: 2 * time.Millisecond, P99: 10 * time.Millisecond, ServerUSPR: 63, ClientUSPR: 6},
	}
	return reportData{
		Date:    time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC),
		Machine: machine{NumCPU: 2, CPUModel: "Test CPU", GoVersion: "go1.26.8", Kernel: "Linux 6", Wrk: "wrk 4.1.0"},
		LoadAvg: []loadAvg{{"start", "0.10 0.20 0.30"}},
		Load:    loadOptions{client: "wrk", threads: 2, connections: 64, duration: 8 * time.Second, warmup: 2 * time.Second, rounds: 1, jsonRounds: 1},
		LoadResults: []loadResult{
			{Path: pathHello, Configs: configs, Rounds: 1, Runs: hello, Medians: medians(hello)},
			{Path: pathJSON, Configs: configs, Rounds: 1, Runs: json, Medians: medians(json)},
		},
		Node:     nodePeers{Missing: "node not found (install Node.js 18 or later, then make bench-deps)"},
		JSONWork: &figures{ns: 50_300, bytes: 1600, allocs: 12},
	}
}

// withNode adds the Node peers' runs to a sampleReport.
func withNode(rep reportData) reportData {
	rep.Node = nodePeers{Command: "/usr/bin/node", Dir: "bench/node", Version: "v20.20.2", Packages: "express 5.3.0, express-rate-limit 8.7.5"}
	add := map[string][]run{
		pathHello: {
			{Round: 1, Config: cfgNode, Requests: 160_000, RPS: 20_000, P50: 3 * time.Millisecond, P99: 8 * time.Millisecond, ServerUSPR: 50, ClientUSPR: 9},
			{Round: 1, Config: cfgNodeCluster, Requests: 256_000, RPS: 32_000, P50: 2 * time.Millisecond, P99: 12 * time.Millisecond, ServerUSPR: 55, ClientUSPR: 8},
		},
		pathJSON: {
			{Round: 1, Config: cfgNode, Requests: 80_000, RPS: 10_000, P50: 6 * time.Millisecond, P99: 9 * time.Millisecond, ServerUSPR: 100, ClientUSPR: 9},
			{Round: 1, Config: cfgNodeCluster, Requests: 108_000, RPS: 13_500, P50: 4 * time.Millisecond, P99: 20 * time.Millisecond, ServerUSPR: 110, ClientUSPR: 8},
		},
	}
	for i, res := range rep.LoadResults {
		runs := append(slices.Clone(res.Runs), add[res.Path]...)
		rep.LoadResults[i] = loadResult{Path: res.Path, Configs: append(slices.Clone(configs), nodeConfigs...), Rounds: res.Rounds, Runs: runs, Medians: medians(runs)}
	}
	return rep
}

func TestRenderReport(t *testing.T) {
	md := renderReport(sampleReport())
	for _, want := range []string{
		"| CPUs (`nproc`) | 2 |",
		"| load average (1, 5, 15 min), start | 0.10 0.20 0.30 |",
		"## Loopback load: net/http, shipshape, chi + httprate\n",
		"`wrk -t2 -c64 -d8s --latency http://127.0.0.1:PORT/hello`",
		"`wrk -t2 -c64 -d8s --latency http://127.0.0.1:PORT/json`",
		"The /json handler alone costs 50.3 µs of CPU per request in Go, in-process",
		"1,600 B and 12 allocations per request",
		"The Node peers (bench/node) are left out of this run: node not found (install Node.js 18 or later, then make bench-deps).",
		"### GET /hello (1 rounds)",
		"| shipshape | 80,000 | 80,000–80,000 | 700 µs | 6.00 ms | 15.0 | 6.0 | 0.00 |",
		// 80k/100k = 0.80 < 0.85; 80k/60k = 1.33 < 1.5.
		"| shipshape / net/http | 0.80× | 0.80×–0.80× | 0.67× | ≥ 0.85× | **missed** |",
		"| shipshape / chi+httprate | 1.33× | 1.33×–1.33× | 1.33× | ≥ 1.50× | **missed** |",
		"| net/http + 3 µs / net/http (the floor) | 0.85× | 0.85×–0.85× | 0.77× | – | |",
		"| shipshape / net/http + 3 µs | 0.94× |",
		"### GET /json (1 rounds)",
		"| shipshape | 27,000 | 27,000–27,000 | 2.00 ms | 10.00 ms | 66.0 | 6.0 | 0.00 |",
		// 27k/30k = 0.90 ≥ 0.85; chi has no target on /json.
		"| shipshape / net/http | 0.90× | 0.90×–0.90× | 0.91× | ≥ 0.85× | met |",
		"| shipshape / chi+httprate | 1.08× | 1.08×–1.08× | 1.06× | – |  |",
		"<details><summary>Every run on /json</summary>",
		"![throughput, p99 latency and server CPU per request of each configuration, on /hello and on /json](loadtest.png)",
	} {
		assert.Contains(t, md, want)
	}
	for _, unwanted := range []string{"node express", "| Node |"} {
		assert.NotContains(t, md, unwanted, "no Node rows when the peers are left out")
	}
	assert.NotContains(t, md, "## Micro-benchmarks", "no micro-benchmark section without results")
	assert.Less(t, strings.Index(md, "### GET /hello"), strings.Index(md, "### GET /json"), "/hello first")
}

func TestRenderReportNode(t *testing.T) {
	md := renderReport(withNode(sampleReport()))
	for _, want := range []string{
		"| Node | v20.20.2 |",
		"## Loopback load: net/http, shipshape, chi + httprate, Node express\n",
		"- **node express**: what the same service is in Node (bench/node/server.js; node v20.20.2, express 5.3.0, express-rate-limit 8.7.5)",
		"`os.availableParallelism()` workers (2 here)",
		"| node express | 20,000 | 20,000–20,000 | 3.00 ms | 8.00 ms | 50.0 | 9.0 | 0.00 |",
		"| node express cluster | 32,000 | 32,000–32,000 | 2.00 ms | 12.00 ms | 55.0 | 8.0 | 0.00 |",
		// 80k/20k, 80k/32k; CPU 50/15, 55/15.
		"| shipshape / node express | 4.00× | 4.00×–4.00× | 3.33× | – |  |",
		"| shipshape / node express cluster | 2.50× | 2.50×–2.50× | 3.67× | – |  |",
		// On /json: 27k/10k, 27k/13.5k.
		"| shipshape / node express | 2.70× | 2.70×–2.70× | 1.52× | – |  |",
		"| shipshape / node express cluster | 2.00× | 2.00×–2.00× | 1.67× | – |  |",
		"| 1 | node express cluster | 13,500 | 4.00 ms | 20.00 ms | 110.0 | 8.0 | 0.00 |",
	} {
		assert.Contains(t, md, want)
	}
	assert.NotContains(t, md, "left out of this run")
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

// Without /json rounds (-json-rounds 0) there is no /json table, and no
// in-process figure.
func TestRenderReportHelloOnly(t *testing.T) {
	rep := sampleReport()
	rep.LoadResults, rep.JSONWork = rep.LoadResults[:1], nil
	md := renderReport(rep)
	assert.Contains(t, md, "### GET /hello")
	assert.NotContains(t, md, "### GET /json")
	assert.NotContains(t, md, "The /json handler alone")
}

func TestTargetFor(t *testing.T) {
	cases := []struct {
		path, other string
		want        float64
		ok          bool
	}{
		{pathHello, cfgBare, 0.85, true},
		{pathJSON, cfgBare, 0.85, true},
		{pathHello, cfgChi, 1.5, true},
		{pathJSON, cfgChi, 0, false},
		{pathHello, cfgNode, 0, false},
	}
	for _, c := range cases {
		got, ok := targetFor(c.path, c.other)
		assert.Equal(t, c.ok, ok, "target of shipshape / %s on %s", c.other, c.path)
		assert.InDelta(t, c.want, got, 1e-12, "target of shipshape / %s on %s", c.other, c.path)
	}
}

// decodePlot renders rep's plot and decodes it.
func decodePlot(t *testing.T, rep reportData) image.Image {
	t.Helper()
	var buf bytes.Buffer
	require.NoError(t, writeLoadPlot(&buf, rep))
	img, err := png.Decode(&buf)
	require.NoError(t, err)
	return img
}

// hasColour tells whether c is drawn anywhere in img.
func hasColour(img image.Image, c color.RGBA) bool {
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y += 2 {
		for x := b.Min.X; x < b.Max.X; x += 2 {
			r, g, bl, _ := img.At(x, y).RGBA()
			if uint8(r>>8) == c.R && uint8(g>>8) == c.G && uint8(bl>>8) == c.B {
				return true
			}
		}
	}
	return false
}

func TestWriteLoadPlot(t *testing.T) {
	cases := []struct {
		name    string
		rep     reportData
		configs []string
		width   int
	}{
		{"Go only", sampleReport(), configs, 3 * (92 + len(configs)*100)},
		{"with Node", withNode(sampleReport()), append(slices.Clone(configs), nodeConfigs...), 3 * (92 + (len(configs)+len(nodeConfigs))*100)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			img := decodePlot(t, c.rep)
			assert.Equal(t, c.width, img.Bounds().Dx(), "width: three panels of the bars")
			assert.Equal(t, 44+2*(34+420)+40, img.Bounds().Dy(), "height: a row per path")
			for _, config := range c.configs {
				assert.True(t, hasColour(img, plotBars[config]), "no bar in the colour of %s", config)
			}
			if len(c.configs) == len(configs) {
				assert.False(t, hasColour(img, plotBars[cfgNode]), "a Node bar without Node runs")
			}
		})
	}
}

func TestWritePlotMismatch(t *testing.T) {
	err := writePlot(&bytes.Buffer{}, "h", "c", []plotRow{{title: "r", labels: configs, panels: []panel{{title: "t", values: []float64{1}, format: formatShort}}}})
	require.Error(t, err)
	assert.True(t, strings.Contains(err.Error(), fmt.Sprintf("1 values for %d labels", len(configs))), "got %v", err)
}

func TestWrapLabel(t *testing.T) {
	fs, err := loadFonts()
	require.NoError(t, err)
	wide := font.MeasureString(fs.label, "node express cluster").Round()
	short := font.MeasureString(fs.label, "node express").Round()
	cases := []struct {
		name  string
		label string
		width int
		want  []string
	}{
		{"fits", "node express cluster", wide, []string{"node express cluster"}},
		{"two lines", "node express cluster", short, []string{"node express", "cluster"}},
		{"a word wider than the line", "chi+httprate", 10, []string{"chi+httprate"}},
		{"one word a line", "node express cluster", 1, []string{"node", "express", "cluster"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			assert.Equal(t, c.want, wrapLabel(fs.label, c.label, c.width))
		})
	}
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
		"| chi ClientIPFromXFF | – | 0.70 |",
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
	rep.LoadResults = nil
	rep.Stacks = []stackResult{{Config: cfgBare, NsPerOp: 150, BytesPerOp: 32, AllocsPerOp: 2}, {Config: cfgShipshape, NsPerOp: 1600, BytesPerOp: 1100, AllocsPerOp: 11}}
	rep.Layers = []layerResult{
		{Added: "ServeMux + hello handler", NsPerOp: 150, BytesPerOp: 32, AllocsPerOp: 2},
		{Added: "ratelimit", NsPerOp: 400, BytesPerOp: 144, AllocsPerOp: 3},
	}
	md := renderReport(rep)
	assert.Contains(t, md, "| shipshape | 1,600 | +1,450 | 1,100 | 11 |")
	assert.Contains(t, md, "| ServeMux + hello handler | 150 | – | 32 | 2 | – |")
	assert.Contains(t, md, "| + ratelimit | 400 | +250 | 144 | 3 | +1 |")
	assert.Contains(t, md, "**9 allocations per request** (target ≤ 3: **missed**)", "the middleware's own allocations")
	rep.Stacks[1].AllocsPerOp = 5
	assert.Contains(t, renderReport(rep), "**3 allocations per request** (target ≤ 3: met)")
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
