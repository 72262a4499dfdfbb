// Command benchreport produces shipshape's performance report: the README
// "Performance" figures, in bench/ at the module root. `make bench` runs it:
//
//	go run ./bench/cmd/benchreport            # everything, 10 to 14 minutes
//	go run ./bench/cmd/benchreport -h         # the flags
//
// It does three things, on this machine, in one run:
//
//  1. A loopback load comparison of servers answering GET /hello and GET
//     /json (about 50 µs of work: a map lookup, a computation, encoding/json),
//     each in its own process (this binary re-executed with -serve): bare
//     net/http, the full shipshape stack in the recommended order, and chi
//     with its Logger, Recoverer and go-chi/httprate; beside them, when node
//     and bench/node/node_modules are there (make bench-deps), the Node stack
//     of bench/node (express, express-rate-limit, express-slow-down, morgan)
//     in one process and in cluster mode. wrk (or the in-repo
//     internal/loadgen) drives them in interleaved rounds, one set per path;
//     the report gives the medians of req/s, p50, p99, the server's CPU time
//     per request (from /proc/<pid>/stat, summed over the process tree) and
//     the ratios, and CPU profiles of the net/http and shipshape servers on
//     /hello taken in an extra run each, split by middleware.
//  2. The three Go handlers benchmarked in-process (testing.Benchmark, no
//     network), the shipshape stack built up one layer at a time, and the
//     packages' micro-benchmarks (go test -bench -benchmem), as tables of
//     ns/op, B/op and allocs/op.
//  3. A PNG plot of throughput, p99 and CPU per request, one row per path.
//
// Outputs: bench/REPORT.md, bench/loadtest.png, bench/micro.txt (raw go
// test output, for benchstat) and bench/profile-nethttp.txt and
// bench/profile-shipshape.txt (pprof's top functions). Linux only (/proc).
package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"
)

func main() {
	var (
		serve      = flag.String("serve", "", "child mode: serve configuration `name` (used by the report itself)")
		listen     = flag.String("listen", "127.0.0.1:0", "child mode: listen address")
		logDir     = flag.String("logdir", os.TempDir(), "child mode: directory of the access logs")
		cpuProfile = flag.String("cpuprofile", "", "child mode: write a CPU profile to `file`")

		out         = flag.String("out", "", "output directory (default bench/ at the module root)")
		client      = flag.String("client", "auto", "load generator: wrk, loadgen (internal/loadgen) or auto (wrk when installed)")
		threads     = flag.Int("threads", 2, "wrk threads (-t)")
		connections = flag.Int("connections", 64, "concurrent keep-alive connections (wrk -c)")
		duration    = flag.Duration("duration", 8*time.Second, "length of each measured run")
		warmup      = flag.Duration("warmup", 2*time.Second, "length of the unmeasured run per server before the rounds (0: none)")
		rounds      = flag.Int("rounds", 5, "interleaved rounds of the servers on /hello")
		jsonRounds  = flag.Int("json-rounds", 3, "interleaved rounds of the servers on /json (0: none; at most -rounds unless given)")
		withNode    = flag.Bool("node", true, "run the Node peers of bench/node too (left out with a reason when node or its node_modules is missing)")
		maxOther    = flag.Float64("max-other", 0.3, "measure a run again when other processes used more than this many cores during it")
		retries     = flag.Int("retries", 2, "how many times a disturbed run is measured again (the least disturbed counts)")
		profile     = flag.Bool("profile", true, "profile the net/http and shipshape servers in an extra run each")
		microCount  = flag.Int("count", 3, "go test -count for the micro-benchmarks (the table shows medians)")
		skipLoad    = flag.Bool("skip-load", false, "leave out the load comparison (for trying the report out)")
		skipMicro   = flag.Bool("skip-micro", false, "leave out the micro-benchmarks (for trying the report out)")
	)
	flag.Parse()
	// The /json set is the shorter one: a short try (-rounds 1) shortens it
	// too, unless -json-rounds says otherwise.
	jsonGiven := false
	flag.Visit(func(f *flag.Flag) { jsonGiven = jsonGiven || f.Name == "json-rounds" })
	if !jsonGiven {
		*jsonRounds = min(*jsonRounds, *rounds)
	}
	if *serve != "" {
		if err := serveMain(*serve, *listen, *logDir, *cpuProfile); err != nil {
			fmt.Fprintln(os.Stderr, "benchreport -serve:", err)
			os.Exit(1)
		}
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	o := options{
		out: *out, client: *client, profile: *profile, microCount: *microCount,
		skipLoad: *skipLoad, skipMicro: *skipMicro, node: *withNode,
		load: loadOptions{threads: *threads, connections: *connections, duration: *duration, warmup: *warmup, rounds: *rounds,
			jsonRounds: *jsonRounds, maxOther: *maxOther, retries: *retries, retryPause: 15 * time.Second},
	}
	if err := report(ctx, o); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

// options is the whole run's configuration.
type options struct {
	out                 string
	client              string
	profile             bool
	microCount          int
	skipLoad, skipMicro bool
	node                bool // the Node peers, when they can run
	load                loadOptions
}

// logf prints a progress line on stderr.
func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "benchreport: "+format+"\n", args...)
}

// validate checks the flags before anything starts, so that a bad one
// fails at once rather than after the servers started (wrk, say, refuses
// -d0s and fewer connections than threads).
func (o options) validate() error {
	if o.load.rounds < 1 || o.load.connections < 1 || o.load.threads < 1 || o.microCount < 1 {
		return errors.New("benchreport: -rounds, -connections, -threads and -count must be ≥ 1")
	}
	if o.load.jsonRounds < 0 {
		return errors.New("benchreport: -json-rounds must be ≥ 0")
	}
	if o.load.threads > o.load.connections {
		return errors.New("benchreport: -threads must be ≤ -connections (wrk needs a connection per thread)")
	}
	// wrk counts in whole seconds: another duration would run for a time
	// other than the report says.
	if o.load.duration < time.Second || o.load.duration%time.Second != 0 || o.load.warmup < 0 || o.load.warmup%time.Second != 0 {
		return errors.New("benchreport: -duration must be whole seconds ≥ 1s, -warmup whole seconds (0 for none)")
	}
	if o.load.retries < 0 || o.load.maxOther <= 0 {
		return errors.New("benchreport: -retries must be ≥ 0 and -max-other > 0")
	}
	return nil
}

// report runs everything and writes the outputs.
func report(ctx context.Context, o options) error {
	if runtime.GOOS != "linux" {
		return errors.New("benchreport: needs Linux (server CPU time comes from /proc)")
	}
	if err := o.validate(); err != nil {
		return err
	}
	// The go command runs the micro-benchmarks and pprof: $GO when set
	// (as the Makefile's GO variable can be), else go on the PATH.
	goTool, err := exec.LookPath(cmp.Or(os.Getenv("GO"), "go"))
	if err != nil {
		return fmt.Errorf("benchreport: the go command: %w", err)
	}
	root, err := moduleRoot(ctx, goTool)
	if err != nil {
		return err
	}
	if o.out == "" {
		o.out = filepath.Join(root, "bench")
	}
	if err := os.MkdirAll(o.out, 0o755); err != nil {
		return err
	}
	switch o.client {
	case "auto", "wrk":
		w, err := exec.LookPath("wrk")
		if err == nil {
			o.load.client, o.load.wrk = "wrk", w
		} else if o.client == "wrk" {
			return errors.New("benchreport: wrk not found (make bench-deps installs it), or use -client loadgen")
		} else {
			logf("wrk not found: using internal/loadgen (less throughput per client CPU)")
			o.load.client = "loadgen"
		}
	case "loadgen":
		o.load.client = "loadgen"
	default:
		return fmt.Errorf("benchreport: -client must be wrk, loadgen or auto, not %q", o.client)
	}

	rep := reportData{
		Date:    time.Now().UTC(),
		Machine: machineInfo(ctx, o.load.wrk),
		Load:    o.load,
	}
	rep.LoadAvg = append(rep.LoadAvg, loadAvgNow("start"))
	logf("machine: %s, %d CPUs, %s; load average %s", rep.Machine.CPUModel, rep.Machine.NumCPU, rep.Machine.GoVersion, rep.LoadAvg[0].Value)

	if !o.skipLoad {
		exe, err := os.Executable()
		if err != nil {
			return err
		}
		tmp, err := os.MkdirTemp("", "benchreport-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		o.load.logDir = tmp
		if o.node {
			rep.Node = findNode(ctx, filepath.Join(root, "bench", "node"))
		} else {
			rep.Node = nodePeers{Missing: "left out with -node=false"}
		}
		if rep.Node.Missing != "" {
			logf("Node peers left out: %s", rep.Node.Missing)
		} else {
			o.load.node, o.load.nodeDir = rep.Node.Command, rep.Node.Dir
			logf("Node peers: node %s, %s", rep.Node.Version, rep.Node.Packages)
		}
		rep.Load = o.load
		if o.load.jsonRounds > 0 {
			w, err := benchHandler(http.HandlerFunc(jsonHandler), 1, false)
			if err != nil {
				return fmt.Errorf("benchreport: the /json handler %w", err)
			}
			rep.JSONWork = &w
			logf("the /json handler alone, in-process: %.1f µs/request, %.0f allocs", w.ns/1e3, w.allocs)
		}
		res, err := runLoad(ctx, exe, o.load)
		if err != nil {
			return err
		}
		rep.LoadResults = res
		rep.LoadAvg = append(rep.LoadAvg, loadAvgNow("after the load rounds"))
		if o.profile {
			for _, name := range []string{cfgBare, cfgShipshape} {
				top, err := profileServer(ctx, exe, goTool, o.load, tmp, name)
				if err != nil {
					return err
				}
				rep.Profiles = append(rep.Profiles, top)
				if err := os.WriteFile(filepath.Join(o.out, profileFile(name)+".txt"), []byte(top.Full), 0o644); err != nil {
					return err
				}
			}
		}
		var png strings.Builder
		if err := writeLoadPlot(&png, rep); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(o.out, "loadtest.png"), []byte(png.String()), 0o644); err != nil {
			return err
		}
	}

	if !o.skipMicro {
		tmp, err := os.MkdirTemp("", "benchreport-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		stacks, err := benchStacks(tmp, o.microCount)
		if err != nil {
			return err
		}
		rep.Stacks = stacks
		layers, err := benchLayers(tmp, o.microCount)
		if err != nil {
			return err
		}
		rep.Layers = layers
		var raw strings.Builder
		rs, meta, failed, err := runMicro(ctx, goTool, root, o.microCount, &raw)
		if err != nil {
			return err
		}
		rep.MicroFailed = failed
		if err := os.WriteFile(filepath.Join(o.out, "micro.txt"), []byte(raw.String()), 0o644); err != nil {
			return err
		}
		rep.Micro, rep.MicroMeta, rep.MicroCount = rs, meta, o.microCount
		rep.LoadAvg = append(rep.LoadAvg, loadAvgNow("after the micro-benchmarks"))
	}

	md := renderReport(rep)
	path := filepath.Join(o.out, "REPORT.md")
	if err := os.WriteFile(path, []byte(md), 0o644); err != nil {
		return err
	}
	logf("wrote %s", path)
	if n := len(rep.MicroFailed); n > 0 {
		return fmt.Errorf("benchreport: %d micro-benchmark command(s) failed; the report lists them", n)
	}
	return nil
}

// nodePeers is what the report knows of the Node peers.
type nodePeers struct {
	Command  string // the node command
	Dir      string // bench/node
	Version  string // node --version
	Packages string // bench/node/package.json's dependencies: "express 5.3.0, …"
	Missing  string // why they are left out; "" when they run
}

// findNode looks for node (18 or later, as express 5 needs) and the
// node_modules that make bench-deps installs in dir.
func findNode(ctx context.Context, dir string) nodePeers {
	n := nodePeers{Dir: dir}
	node, err := exec.LookPath("node")
	if err != nil {
		n.Missing = "node not found (install Node.js 18 or later, then make bench-deps)"
		return n
	}
	out, err := exec.CommandContext(ctx, node, "--version").Output()
	if err != nil {
		n.Missing = fmt.Sprintf("node --version: %v", err)
		return n
	}
	n.Command, n.Version = node, strings.TrimSpace(string(out))
	var major int
	if _, err := fmt.Sscanf(n.Version, "v%d.", &major); err != nil || major < 18 {
		n.Missing = fmt.Sprintf("node %s is older than express 5 needs (18)", n.Version)
		return n
	}
	b, err := os.ReadFile(filepath.Join(dir, "package.json"))
	if err != nil {
		n.Missing = err.Error()
		return n
	}
	var pkg struct{ Dependencies map[string]string }
	if err := json.Unmarshal(b, &pkg); err != nil {
		n.Missing = fmt.Sprintf("%s: %v", filepath.Join(dir, "package.json"), err)
		return n
	}
	var deps []string
	for _, name := range slices.Sorted(maps.Keys(pkg.Dependencies)) {
		deps = append(deps, name+" "+pkg.Dependencies[name])
		if _, err := os.Stat(filepath.Join(dir, "node_modules", name, "package.json")); err != nil {
			n.Missing = fmt.Sprintf("%s is not installed in %s (make bench-deps runs npm ci there)", name, filepath.Join(dir, "node_modules"))
		}
	}
	n.Packages = strings.Join(deps, ", ")
	return n
}

// moduleRoot is the directory of the main module's go.mod.
func moduleRoot(ctx context.Context, goTool string) (string, error) {
	out, err := exec.CommandContext(ctx, goTool, "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("benchreport: go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", errors.New("benchreport: run from inside the shipshape module")
	}
	return filepath.Dir(gomod), nil
}
