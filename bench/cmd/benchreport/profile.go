package main

import (
	"bufio"
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"time"
)

// profileTop is pprof's view of one server's CPU profile.
type profileTop struct {
	Config   string
	Requests int64         // requests served while profiling
	Total    time.Duration // CPU time sampled
	Layers   []layerCost   // own cost of each middleware, outermost first
	Flat     string        // pprof -top: the functions by own time
	Full     string        // flat and cumulative views, for bench/profile-shipshape.txt
}

// layerCost is the CPU one part of the server took per request: its
// cumulative time in the profile minus that of the part it calls.
type layerCost struct {
	Name string
	Own  time.Duration
}

// A layer of the shipshape server, found in `pprof -top -cum` by the
// function that runs it (closures are named after the function that
// inlines them, hence patterns).
type layer struct {
	name string
	fn   *regexp.Regexp
}

var muxLayer = layer{"ServeMux + hello handler", regexp.MustCompile(`^net/http\.\(\*ServeMux\)\.ServeHTTP$`)}

// profileLayers are the handlers of each profiled configuration, outermost
// first, down to the mux (which includes the hello handler).
var profileLayers = map[string][]layer{
	cfgBare:      {muxLayer},
	cfgShipshape: shipshapeLayers,
}

var shipshapeLayers = []layer{
	{"chi ClientIPFromXFF", regexp.MustCompile(`middleware\.ClientIPFromXFF\.func\d+\.\d+$`)},
	{"accesslog (request path)", regexp.MustCompile(`shipshape/accesslog\.\(\*handler\)\.ServeHTTP$`)},
	{"recoverer", regexp.MustCompile(`shipshape/recoverer\.\(\*handler\)\.ServeHTTP$`)},
	{"slowdown", regexp.MustCompile(`\(\*Delayer\)\.Handler\.func\d+$`)},
	{"ratelimit", regexp.MustCompile(`\(\*Limiter\)\.Handler\.func\d+$`)},
	muxLayer,
}

var (
	pprofServerHandler = regexp.MustCompile(`^net/http\.serverHandler\.ServeHTTP$`)
	pprofConnServe     = regexp.MustCompile(`^net/http\.\(\*conn\)\.serve$`)
	pprofBufferedRun   = regexp.MustCompile(`shipshape/accesslog\.\(\*BufferedWriter\)\.run$`)
	pprofTotalRE       = regexp.MustCompile(`Total samples = (\S+)`)
	pprofLineRE        = regexp.MustCompile(`^\s*(\S+)\s+\S+%\s+\S+%\s+(\S+)\s+\S+%\s+(.+?)(?: \(inline\))?$`)
)

// parsePprofTop reads `go tool pprof -top` output: the total sampled CPU
// time and each function's cumulative time.
func parsePprofTop(out string) (total time.Duration, cum map[string]time.Duration, err error) {
	cum = map[string]time.Duration{}
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		line := sc.Text()
		if m := pprofTotalRE.FindStringSubmatch(line); m != nil {
			if total, err = time.ParseDuration(m[1]); err != nil {
				return 0, nil, fmt.Errorf("benchreport: pprof total %q: %w", m[1], err)
			}
			continue
		}
		m := pprofLineRE.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		d, err := time.ParseDuration(m[2])
		if err != nil {
			continue // the column header
		}
		cum[m[3]] = max(cum[m[3]], d)
	}
	if total == 0 {
		return 0, nil, fmt.Errorf("benchreport: no total in pprof output")
	}
	return total, cum, sc.Err()
}

// findCum is the largest cumulative time of the functions fn matches.
func findCum(cum map[string]time.Duration, fn *regexp.Regexp) (time.Duration, bool) {
	var d time.Duration
	found := false
	for name, v := range cum {
		if fn.MatchString(name) {
			d, found = max(d, v), true
		}
	}
	return d, found
}

// layerCosts splits the profile's CPU time: each middleware's own time
// (its cumulative time minus the next layer's), the mux and handler, the
// access log's background writer, the rest of net/http's connection
// handling (reading the request, writing the response) and the runtime and
// everything else.
func layerCosts(layers []layer, total time.Duration, cum map[string]time.Duration) ([]layerCost, error) {
	var out []layerCost
	cums := make([]time.Duration, len(layers))
	for i, l := range layers {
		d, ok := findCum(cum, l.fn)
		if !ok {
			return nil, fmt.Errorf("benchreport: %s (%s) not in the profile", l.name, l.fn)
		}
		cums[i] = d
	}
	for i, l := range layers {
		own := cums[i]
		if i+1 < len(cums) {
			own -= cums[i+1]
		}
		out = append(out, layerCost{l.name, max(0, own)})
	}
	handlers, _ := findCum(cum, pprofServerHandler)
	conn, _ := findCum(cum, pprofConnServe)
	bw, ok := findCum(cum, pprofBufferedRun)
	if ok {
		out = append(out, layerCost{"accesslog background writer (to the file)", bw})
	}
	out = append(out,
		layerCost{"net/http outside the handler (read request, write response)", max(0, conn-handlers)},
		layerCost{"Go runtime (scheduler, GC) and the rest", max(0, total-conn-bw)},
	)
	return out, nil
}

// profileServer runs configuration name once more, alone, with a CPU
// profile, under the same load as a measured run, and returns what pprof
// makes of it.
func profileServer(ctx context.Context, exe, goTool string, o loadOptions, tmp, name string) (*profileTop, error) {
	layers, ok := profileLayers[name]
	if !ok {
		return nil, fmt.Errorf("benchreport: no profile layers for %q", name)
	}
	prof := filepath.Join(tmp, profileFile(name)+".pprof")
	s, err := startServer(exe, name, tmp, prof)
	if err != nil {
		return nil, err
	}
	logf("profiling %s (%s)", name, o.duration)
	r, err := measure(ctx, o, s, o.duration)
	if stopErr := s.stop(); err == nil {
		err = stopErr
	}
	if err != nil {
		return nil, err
	}
	pprof := func(args ...string) (string, error) {
		args = append([]string{"tool", "pprof"}, append(args, prof)...)
		out, err := exec.CommandContext(ctx, goTool, args...).Output()
		if err != nil {
			return "", fmt.Errorf("benchreport: go %s: %w", strings.Join(args, " "), err)
		}
		return string(out), nil
	}
	flat, err := pprof("-top", "-nodecount=25")
	if err != nil {
		return nil, err
	}
	cumOut, err := pprof("-top", "-cum", "-nodefraction=0.001", "-nodecount=300")
	if err != nil {
		return nil, err
	}
	total, cum, err := parsePprofTop(cumOut)
	if err != nil {
		return nil, err
	}
	costs, err := layerCosts(layers, total, cum)
	if err != nil {
		return nil, err
	}
	return &profileTop{
		Config:   name,
		Requests: r.Requests,
		Total:    total,
		Layers:   costs,
		Flat:     stripPprofHeader(flat),
		Full: "# go tool pprof -top -nodecount=25\n" + stripPprofHeader(flat) +
			"\n# go tool pprof -top -cum -nodefraction=0.001 -nodecount=300\n" + stripPprofHeader(cumOut),
	}, nil
}

// stripPprofHeader drops the header lines that change on every run and
// say nothing (binary name, build ID, time).
func stripPprofHeader(s string) string {
	var b strings.Builder
	for line := range strings.Lines(s) {
		if strings.HasPrefix(line, "File: ") || strings.HasPrefix(line, "Build ID: ") || strings.HasPrefix(line, "Time: ") {
			continue
		}
		b.WriteString(line)
	}
	return b.String()
}

// profileFile is the base name of a configuration's profile files.
func profileFile(config string) string {
	return "profile-" + strings.NewReplacer("/", "", "+", "-").Replace(config)
}
