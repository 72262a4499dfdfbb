package main

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"time"
)

// reportData is everything REPORT.md is made of.
type reportData struct {
	Date        time.Time
	Machine     machine
	LoadAvg     []loadAvg
	Load        loadOptions
	LoadResults []loadResult  // /hello, then /json; none when the load comparison did not run
	Node        nodePeers     // the Node peers of the load comparison, or why they are left out
	JSONWork    *figures      // the /json handler alone, in-process, on one goroutine; nil when not measured
	Profiles    []*profileTop // net/http's and shipshape's; none when not profiled
	Stacks      []stackResult // the three handlers in-process
	Layers      []layerResult // the shipshape stack built up layer by layer
	Micro       []benchResult
	MicroFailed []string // go test commands that failed
	MicroMeta   benchMeta
	MicroCount  int
}

type machine struct {
	NumCPU    int
	CPUModel  string
	GoVersion string
	Kernel    string
	Wrk       string
}

type loadAvg struct{ When, Value string }

func machineInfo(ctx context.Context, wrk string) machine {
	m := machine{NumCPU: runtime.NumCPU(), GoVersion: runtime.Version(), CPUModel: "unknown", Kernel: "unknown"}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.Lines(string(b)) {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPUModel = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = "Linux " + strings.TrimSpace(string(b))
	}
	if wrk != "" {
		// wrk -v prints its version and exits 1.
		out, _ := exec.CommandContext(ctx, wrk, "-v").CombinedOutput()
		first, _, _ := strings.Cut(string(out), "\n")
		first, _, _ = strings.Cut(first, " Copyright")
		m.Wrk = strings.TrimSpace(first)
	}
	return m
}

// loadAvgNow reads the 1, 5 and 15 minute load averages.
func loadAvgNow(when string) loadAvg {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return loadAvg{when, "unknown"}
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return loadAvg{when, "unknown"}
	}
	return loadAvg{when, strings.Join(f[:3], " ")}
}

// writeLoadPlot draws the load comparison's medians with the range of the
// rounds: a row of panels per path.
func writeLoadPlot(w io.Writer, rep reportData) error {
	var rows []plotRow
	var rounds []string
	for _, res := range rep.LoadResults {
		pick := func(f func(run) float64) (med, lo, hi []float64) {
			for _, c := range res.Configs {
				l, h := runRange(res.Runs, c, f)
				med, lo, hi = append(med, f(res.Medians[c])), append(lo, l), append(hi, h)
			}
			return med, lo, hi
		}
		rps, rpsLo, rpsHi := pick(func(r run) float64 { return r.RPS })
		p99, p99Lo, p99Hi := pick(func(r run) float64 { return float64(r.P99) / float64(time.Millisecond) })
		cpu, cpuLo, cpuHi := pick(func(r run) float64 { return r.ServerUSPR })
		var ratios []string
		for _, c := range res.Configs {
			if c != cfgShipshape {
				ratios = append(ratios, fmt.Sprintf("%s %.2f×", c, res.ratio(cfgShipshape, c)))
			}
		}
		rows = append(rows, plotRow{
			title:  fmt.Sprintf("GET %s — shipshape's throughput over %s", res.Path, strings.Join(ratios, ", ")),
			labels: res.Configs,
			panels: []panel{
				{title: "throughput, req/s (higher is better)", values: rps, lo: rpsLo, hi: rpsHi, format: formatThousands},
				{title: "p99 latency, ms (lower is better)", values: p99, lo: p99Lo, hi: p99Hi, format: formatShort},
				{title: "server CPU per request, µs (lower is better)", values: cpu, lo: cpuLo, hi: cpuHi, format: formatShort},
			},
		})
		rounds = append(rounds, fmt.Sprintf("%d on %s", res.Rounds, res.Path))
	}
	heading := "Loopback load: " + strings.Join(rep.LoadResults[0].Configs, ", ")
	caption := fmt.Sprintf("%s; medians of interleaved rounds of %s (%s; whiskers: lowest and highest round); %d CPUs shared by client and server; %s",
		clientDescription(rep.Load), rep.Load.duration, strings.Join(rounds, ", "), rep.Machine.NumCPU, rep.Date.Format("2006-01-02"))
	return writePlot(w, heading, caption, rows)
}

func clientDescription(o loadOptions) string {
	if o.client == "wrk" {
		return fmt.Sprintf("wrk -t%d -c%d", o.threads, o.connections)
	}
	return fmt.Sprintf("internal/loadgen, %d connections", o.connections)
}

// loadCommand is the client command line of a measured run on path, for
// the report.
func loadCommand(o loadOptions, path string) string {
	url := "http://127.0.0.1:PORT" + path
	if o.client == "wrk" {
		return "wrk " + commandLine(wrkArgs(o, url, o.duration))
	}
	return fmt.Sprintf("loadgen.Run(ctx, loadgen.Config{URL: %q, Concurrency: %d, Duration: %s})", url, o.connections, o.duration)
}

// Issue 19's targets: shipshape's throughput over that of another
// configuration, on the paths named (none: every path). chi's is for /hello
// only: on /json the handler's work dilutes what the middleware costs.
var targets = []struct {
	other string
	paths []string
	min   float64
}{
	{cfgBare, nil, 0.85},
	{cfgChi, []string{pathHello}, 1.5},
}

// targetFor is the target of shipshape over other on path, if there is one.
func targetFor(path, other string) (float64, bool) {
	for _, t := range targets {
		if t.other == other && (t.paths == nil || slices.Contains(t.paths, path)) {
			return t.min, true
		}
	}
	return 0, false
}

func verdict(got, want float64) string {
	if got >= want {
		return "met"
	}
	return "**missed**"
}

// maxMiddlewareAllocs is issue 19's target for the allocations of the
// whole shipshape middleware per request.
const maxMiddlewareAllocs = 3

// renderReport writes REPORT.md.
func renderReport(rep reportData) string {
	var b bytes.Buffer
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	p("# shipshape performance report\n\n")
	p("Generated by `make bench` (`go run ./bench/cmd/benchreport`) on %s. ", rep.Date.Format("2006-01-02 15:04 MST"))
	p("Every figure below comes from this one run on this one machine; treat them as indicative: the machine is small and shared.\n\n")

	p("## Machine\n\n| | |\n| --- | --- |\n")
	p("| CPUs (`nproc`) | %d |\n| CPU | %s |\n| Go | %s |\n| OS | %s |\n", rep.Machine.NumCPU, rep.Machine.CPUModel, rep.Machine.GoVersion, rep.Machine.Kernel)
	if rep.Machine.Wrk != "" {
		p("| load generator | %s |\n", rep.Machine.Wrk)
	}
	if len(rep.LoadResults) > 0 && rep.Node.Missing == "" {
		p("| Node | %s |\n", rep.Node.Version)
	}
	for _, l := range rep.LoadAvg {
		p("| load average (1, 5, 15 min), %s | %s |\n", l.When, l.Value)
	}
	p("\n")

	if len(rep.LoadResults) > 0 {
		renderLoad(&b, rep)
	}
	if rep.Micro != nil || rep.Stacks != nil {
		renderMicro(&b, rep)
	}
	return b.String()
}

func renderLoad(b *bytes.Buffer, rep reportData) {
	p := func(format string, args ...any) { fmt.Fprintf(b, format, args...) }
	o := rep.Load
	node := rep.Node.Missing == ""
	if node {
		p("## Loopback load: net/http, shipshape, chi + httprate, Node express\n\n")
	} else {
		p("## Loopback load: net/http, shipshape, chi + httprate\n\n")
	}
	p("Every server answers `GET /hello` (a 13-byte text body) and `GET /json` (a %d-byte document: a product and its %d neighbours ", len(jsonBody()), jsonRelated)
	p("looked up in a %s-entry map, a score of %d × 64 xorshift steps, encoded with `encoding/json`, or `res.json` in Node) ", groupThousands(fmt.Sprint(catalogueSize)), jsonRounds)
	p("with the same work, each in its own process; the report checks before measuring that every server answers both paths with the same bytes and Content-Type.")
	if w := rep.JSONWork; w != nil {
		p(" The /json handler alone costs %.1f µs of CPU per request in Go, in-process (`testing.Benchmark` on one goroutine, %s B and %s allocations per request; `BenchmarkJSONHandler` in bench/cmd/benchreport).",
			w.ns/1e3, formatCount(w.bytes), formatCount(w.allocs))
	}
	p(" The Go servers run with GOMAXPROCS %d in the same hardened `http.Server` (read/write/idle timeouts, header limit):\n\n", rep.Machine.NumCPU)
	p("- **net/http**: a bare `http.ServeMux`.\n")
	p("- **shipshape**: the full stack in the recommended order with every feature on, chi `ClientIPFromXFF` (loopback trusted) → ")
	p("`accesslog` with its request id (`WithRequestID`, where chi's `RequestID` used to be) in the combined format, `BufferedWriter` over a `File` in a temp dir ")
	p("that rotates daily, gzip'd, 14 kept, at a size the run does not reach → `recoverer` → ")
	p("`slowdown` (threshold never reached) → `ratelimit` (IETF headers; memory store shared with slowdown, limit never reached) → `ServeMux`.\n")
	p("- **chi+httprate**: what a Go user picks today, a chi router with chi `RequestID` → chi `Logger` (default formatter, to a file) → ")
	p("chi `Recoverer` → `httprate.LimitByIP` (same limit and window).\n")
	p("- **%s**: no middleware, the floor: the bare mux behind a wrapper that only keeps the CPU busy for %s ", cfgFloor, floorWork)
	p("(about what the shipshape middleware costs in-process on one goroutine: see the layer table below) and sets the two RateLimit fields ")
	p("the shipshape stack sends, as fixed strings. Its ratio to net/http is the most that any middleware of that cost sending those fields can reach here; ")
	p("shipshape / %s near 1 means the stack costs the server no more than its own CPU time and headers.\n", cfgFloor)
	if node {
		p("- **node express**: what the same service is in Node (bench/node/server.js; node %s, %s): ", rep.Node.Version, rep.Node.Packages)
		p("`morgan` (\"combined\", to a file) → `express-slow-down` (threshold never reached) → `express-rate-limit` (draft-7 headers, same limit and window, ")
		p("its memory store) → routes, express's defaults otherwise (ETag, X-Powered-By); one process, so one thread of JavaScript.\n")
		p("- **node express cluster**: the same under `node:cluster`, with `os.availableParallelism()` workers (%d here) sharing the port ", rep.Machine.NumCPU)
		p("(the primary accepts the connections and hands them to the workers in turn, Node's default on Linux); each worker has its own limiter stores, ")
		p("and the server CPU time is that of the primary and the workers together.\n")
	}
	p("\n")
	if !node {
		p("The Node peers (bench/node) are left out of this run: %s.\n\n", rep.Node.Missing)
	}
	p("The client connects from 127.0.0.1 without X-Forwarded-For, so every limiter sees one client (one key). ")
	p("Client: `%s` per run (`%s` for /json); the servers are run one after the other in interleaved rounds ", loadCommand(o, pathHello), loadCommand(o, pathJSON))
	warmup := "without warm-up"
	if o.warmup > 0 {
		warmup = fmt.Sprintf("after a %s warm-up each on each path", o.warmup)
	}
	p("(round k starts with a different server), %s; figures are the medians over the rounds. ", warmup)
	p("Client and servers share the machine's %d CPUs, so the throughput is that of the whole machine; ", rep.Machine.NumCPU)
	p("the server CPU time per request (utime+stime of the server's processes from `/proc/<pid>/stat`, over the requests the client completed) ")
	p("is the figure other load disturbs least. *Other load* is the CPU the rest of the machine used during the runs ")
	p("(busy time from `/proc/stat` minus the server's and the client's); a run with more than %.2f cores of it was measured again ", o.maxOther)
	repeated := 0
	for _, res := range rep.LoadResults {
		repeated += res.Repeated
	}
	p("(up to %d times, %d in all; the least disturbed run counts): %d run(s) were repeated.\n\n", o.retries, maxRepeats, repeated)

	for _, res := range rep.LoadResults {
		renderLoadPath(b, res)
	}
	p("CPU per request ratios are the other server's CPU time per request over shipshape's (above 1: shipshape spends less). ")
	p("The targets are issue 19's; shipshape / chi+httprate has one on /hello only, where the middleware is most of the work. ")
	p("With the CPUs saturated and shared, p99 mostly shows how the scheduler interleaves the client's and the server's threads ")
	p("(and the GC's), not the work per request: compare it between configurations with care.\n\n")
	p("![throughput, p99 latency and server CPU per request of each configuration, on /hello and on /json](loadtest.png)\n\n")

	if len(rep.Profiles) > 0 {
		renderProfiles(b, rep)
	}
}

// renderLoadPath writes the tables of one path.
func renderLoadPath(b *bytes.Buffer, res loadResult) {
	p := func(format string, args ...any) { fmt.Fprintf(b, format, args...) }
	p("### GET %s (%d rounds)\n\n", res.Path, res.Rounds)
	p("| configuration | req/s | range over rounds | p50 | p99 | server CPU µs/req | client CPU µs/req | other load (cores) |\n")
	p("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n")
	for _, c := range res.Configs {
		m := res.Medians[c]
		lo, hi := runRange(res.Runs, c, func(r run) float64 { return r.RPS })
		p("| %s | %s | %s–%s | %s | %s | %.1f | %.1f | %.2f |\n", c, groupThousands(fmt.Sprintf("%.0f", m.RPS)),
			groupThousands(fmt.Sprintf("%.0f", lo)), groupThousands(fmt.Sprintf("%.0f", hi)),
			formatLatency(m.P50), formatLatency(m.P99), m.ServerUSPR, m.ClientUSPR, m.OtherCores)
	}
	p("\n| ratio on %s | throughput (medians) | within a round, lowest–highest | CPU per request | target (throughput) | |\n", res.Path)
	p("| --- | ---: | ---: | ---: | ---: | --- |\n")
	for _, other := range res.Configs {
		if other == cfgShipshape || !res.has(cfgShipshape) {
			continue
		}
		v := res.ratio(cfgShipshape, other)
		lo, hi := res.roundRatios(cfgShipshape, other)
		target, met := "–", ""
		if t, ok := targetFor(res.Path, other); ok {
			target, met = fmt.Sprintf("≥ %.2f×", t), verdict(v, t)
		}
		p("| shipshape / %s | %.2f× | %.2f×–%.2f× | %.2f× | %s | %s |\n", other, v, lo, hi, res.cpuRatio(cfgShipshape, other), target, met)
	}
	if res.has(cfgFloor) && res.has(cfgBare) {
		lo, hi := res.roundRatios(cfgFloor, cfgBare)
		p("| %s / net/http (the floor) | %.2f× | %.2f×–%.2f× | %.2f× | – | |\n", cfgFloor, res.ratio(cfgFloor, cfgBare), lo, hi, res.cpuRatio(cfgFloor, cfgBare))
	}
	p("\n<details><summary>Every run on %s</summary>\n\n", res.Path)
	p("| round | configuration | req/s | p50 | p99 | server CPU µs/req | client CPU µs/req | other load (cores) |\n")
	p("| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |\n")
	for _, r := range res.Runs {
		p("| %d | %s | %s | %s | %s | %.1f | %.1f | %.2f |\n", r.Round, r.Config, groupThousands(fmt.Sprintf("%.0f", r.RPS)),
			formatLatency(r.P50), formatLatency(r.P99), r.ServerUSPR, r.ClientUSPR, r.OtherCores)
	}
	p("\n</details>\n\n")
}

func renderProfiles(b *bytes.Buffer, rep reportData) {
	p := func(format string, args ...any) { fmt.Fprintf(b, format, args...) }
	p("### Where the servers spend their CPU\n\n")
	p("CPU profiles of the net/http and shipshape servers, each alone in one more %s run on /hello under the same load. ", rep.Load.duration)
	p("Each middleware's own cost is its cumulative time in `go tool pprof -top -cum` minus that of the handler it calls; ")
	p("what a middleware makes net/http do later (write its response headers, copy the request it put a context value in, ")
	p("collect its garbage) shows in the last rows, hence the comparison with the bare server. ")
	p("The profiler's own overhead is included, and sampling at 100 Hz makes small rows approximate (±0.1 µs).\n\n")
	p("| part of the server, CPU µs/request |")
	for _, pr := range rep.Profiles {
		p(" %s |", pr.Config)
	}
	p("\n| --- |%s\n", strings.Repeat(" ---: |", len(rep.Profiles)))
	var names []string
	for _, pr := range rep.Profiles {
		for _, l := range pr.Layers {
			if !slices.Contains(names, l.Name) {
				names = append(names, l.Name)
			}
		}
	}
	// Layers first, in the order of the longest stack, then the rows every
	// profile has.
	slices.SortStableFunc(names, func(a, b string) int { return cmp.Compare(layerRank(rep.Profiles, a), layerRank(rep.Profiles, b)) })
	for _, name := range names {
		p("| %s |", name)
		for _, pr := range rep.Profiles {
			i := slices.IndexFunc(pr.Layers, func(l layerCost) bool { return l.Name == name })
			if i < 0 {
				p(" – |")
				continue
			}
			p(" %.2f |", perRequest(pr.Layers[i].Own, pr.Requests))
		}
		p("\n")
	}
	p("| **total** (CPU sampled / requests) |")
	for _, pr := range rep.Profiles {
		p(" **%.2f** |", perRequest(pr.Total, pr.Requests))
	}
	p("\n\n")
	for _, pr := range rep.Profiles {
		if pr.Config != cfgShipshape {
			continue
		}
		p("Top functions of the shipshape server by own time (%s requests profiled; the cumulative views are in ", groupThousands(fmt.Sprint(pr.Requests)))
		for i, q := range rep.Profiles {
			if i > 0 {
				p(" and ")
			}
			p("[%s.txt](%s.txt)", profileFile(q.Config), profileFile(q.Config))
		}
		p("):\n\n```\n%s```\n\n", pr.Flat)
	}
}

// layerRank orders the rows of the profile table: the position in the
// profile with the most layers.
func layerRank(profiles []*profileTop, name string) int {
	longest := profiles[0]
	for _, pr := range profiles {
		if len(pr.Layers) > len(longest.Layers) {
			longest = pr
		}
	}
	if i := slices.IndexFunc(longest.Layers, func(l layerCost) bool { return l.Name == name }); i >= 0 {
		return i
	}
	return len(longest.Layers)
}

func renderLayers(b *bytes.Buffer, rep reportData) {
	p := func(format string, args ...any) { fmt.Fprintf(b, format, args...) }
	p("\nThe shipshape stack built up one layer at a time from the mux, innermost first (the reverse of the request's path), ")
	p("on one goroutine, so that ns/request is CPU time; each row is the whole stack so far, and *added* is what its layer costs:\n\n")
	p("| stack so far | ns/request | added | B/request | allocs/request | added allocs |\n| --- | ---: | ---: | ---: | ---: | ---: |\n")
	for i, l := range rep.Layers {
		name, addNs, addAllocs := l.Added, "–", "–"
		if i > 0 {
			prev := rep.Layers[i-1]
			name = "+ " + name
			addNs = fmt.Sprintf("%+.0f", l.NsPerOp-prev.NsPerOp)
			addAllocs = fmt.Sprintf("%+.0f", l.AllocsPerOp-prev.AllocsPerOp)
		}
		p("| %s | %s | %s | %s | %s | %s |\n", name, formatNs(l.NsPerOp), addNs, formatCount(l.BytesPerOp), formatCount(l.AllocsPerOp), addAllocs)
	}
}

// perRequest is d over n requests, in µs.
func perRequest(d time.Duration, n int64) float64 {
	if n == 0 {
		return 0
	}
	return float64(d.Nanoseconds()) / 1e3 / float64(n)
}

// runRange is the lowest and highest f over the runs of config.
func runRange(runs []run, config string, f func(run) float64) (lo, hi float64) {
	first := true
	for _, r := range runs {
		if r.Config != config {
			continue
		}
		v := f(r)
		if first || v < lo {
			lo = v
		}
		if first || v > hi {
			hi = v
		}
		first = false
	}
	return lo, hi
}

// formatLatency prints d in ms with two decimals, or in µs below 1 ms.
func formatLatency(d time.Duration) string {
	if d < time.Millisecond {
		return fmt.Sprintf("%.0f µs", float64(d)/float64(time.Microsecond))
	}
	return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond))
}

func renderMicro(b *bytes.Buffer, rep reportData) {
	p := func(format string, args ...any) { fmt.Fprintf(b, format, args...) }
	procs := 0
	if len(rep.Micro) > 0 {
		procs = rep.Micro[0].Procs
	}
	p("## Micro-benchmarks\n\n")
	if len(rep.Stacks) > 0 {
		p("### The three handlers, in-process\n\n")
		p("The same three handlers called directly (`testing.Benchmark`, `RunParallel`, GOMAXPROCS %d, median of %d runs of 1s), ", rep.Machine.NumCPU, rep.MicroCount)
		p("with a response writer that discards the body and reuses its header map, so that only the handler chains are counted: ")
		p("no connection, no kernel, no load generator. The access logs go to files in a temp dir, as in the load test; ")
		p("every request comes from 127.0.0.1, one rate-limit key, as in the load test. ")
		p("ns/request is wall time with %d goroutines serving at once (one per CPU), so CPU time per request is about %d× it.\n\n", rep.Machine.NumCPU, rep.Machine.NumCPU)
		p("| configuration | ns/request | over net/http | B/request | allocs/request |\n| --- | ---: | ---: | ---: | ---: |\n")
		var bare, bareAllocs, shipAllocs float64
		haveShip := false
		for _, s := range rep.Stacks {
			switch s.Config {
			case cfgBare:
				bare, bareAllocs = s.NsPerOp, s.AllocsPerOp
			case cfgShipshape:
				shipAllocs, haveShip = s.AllocsPerOp, true
			}
		}
		for _, s := range rep.Stacks {
			over := "–"
			if s.Config != cfgBare && bare > 0 {
				over = "+" + formatNs(s.NsPerOp-bare)
			}
			p("| %s | %s | %s | %s | %s |\n", s.Config, formatNs(s.NsPerOp), over, formatCount(s.BytesPerOp), formatCount(s.AllocsPerOp))
		}
		if haveShip {
			mw := shipAllocs - bareAllocs
			v := "met"
			if mw > maxMiddlewareAllocs {
				v = "**missed**"
			}
			p("\nThe shipshape middleware alone (its allocations over the bare server's, which are the handler's): **%s allocations per request** (target ≤ %d: %s).\n",
				formatCount(mw), maxMiddlewareAllocs, v)
		}
		if len(rep.Layers) > 0 {
			renderLayers(b, rep)
		}
		p("\n### Per package\n\n")
	}
	p("The packages' own benchmarks (no network), GOMAXPROCS %d, each figure the median of %d runs ", procs, rep.MicroCount)
	p("(raw output in [micro.txt](micro.txt), readable by `benchstat`). Parallel benchmarks (`RunParallel`) report wall time per operation across all cores. Commands, from the module root:\n\n```sh\n")
	for _, s := range microSuites {
		p("go %s\n", commandLine(goTestArgs(s, rep.MicroCount)))
	}
	p("```\n\n")
	b.WriteString(microTable(rep.Micro))
	p("\n")
	if len(rep.MicroFailed) > 0 {
		p("**Not in the table**, because the command failed (see the output in micro.txt):\n\n")
		for _, f := range rep.MicroFailed {
			p("- %s\n", f)
		}
		p("\n")
	}
}
