package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
)

// microSuite is one `go test -bench` run over one package.
type microSuite struct {
	pkg     string // relative to the module root
	pattern string // the -bench regexp
}

// microSuites are the per-package benchmarks of the report: the hot path of
// each middleware, its peer where the package has one, and the package's
// expensive path (a panic, a refused request). Redis-backed benchmarks are
// left out: they need a redis-server and take several seconds each.
var microSuites = []microSuite{
	{"./ratelimit", `^BenchmarkMemoryStoreTake$`},
	{"./bench", `^(BenchmarkLimiterHandler|BenchmarkHttprateLimitByIP|BenchmarkManyClients|BenchmarkHotKey)$`},
	{"./connlimit", `^BenchmarkAdmit$`},
	{"./ratelimit/redisstore", `^BenchmarkTag$`},
	{"./slowdown", `^(BenchmarkUnderThreshold|BenchmarkOverflow)$`},
	{"./accesslog", `^(BenchmarkMiddlewareCombined|BenchmarkMiddlewareJSON|BenchmarkBareJSON)$`},
	{"./logfile", `^BenchmarkBufferedWriterFile$`},
	{"./recoverer", `^(BenchmarkHappyPath|BenchmarkInsideAccesslog|BenchmarkPanic)$`},
	{"./sentryreport", `^BenchmarkPanicWithSentry$`},
	// A pattern with a sub-benchmark level runs no benchmark that has no
	// sub-benchmarks, hence two suites for static.
	{"./static", `^BenchmarkServeHTTP$/^embed/(identity|gzip_variant|304|on-the-fly_gzip_3KB)$`},
	{"./static", `^BenchmarkBareHandler$`},
}

// microWhat says in a few words what each benchmark measures, keyed by
// package path (as go test prints it, after the module path) and name
// without the GOMAXPROCS suffix.
var microWhat = map[string]string{
	"ratelimit/BenchmarkMemoryStoreTake/keys=100000":         "one sliding-window take, 100k keys (out of cache), all cores",
	"ratelimit/BenchmarkMemoryStoreTake/flood":               "a key never seen, store at its cap: each take evicts one",
	"ratelimit/BenchmarkMemoryStoreTake/flood-refused":       "the same when every key is refused: eviction scans the shard",
	"ratelimit/BenchmarkMemoryStoreTake/keys=10000":          "the same, 10k keys (in cache)",
	"bench/BenchmarkLimiterHandler/headers=ietf":             "middleware, allowed request, IETF headers",
	"bench/BenchmarkLimiterHandler/headers=both":             "the same with IETF and X-RateLimit headers",
	"bench/BenchmarkLimiterHandler/headers=none":             "the same without headers",
	"bench/BenchmarkHttprateLimitByIP":                       "peer: go-chi/httprate LimitByIP, same request",
	"bench/BenchmarkManyClients/shipshape":                   "limiter, IETF headers, 100,000 client IPs round-robin",
	"bench/BenchmarkManyClients/httprate":                    "peer: httprate LimitByIP, the same 100,000 clients",
	"bench/BenchmarkHotKey/shipshape":                        "limiter, IETF headers, one client from every core",
	"bench/BenchmarkHotKey/slowdown":                         "slowdown under the threshold, one client from every core",
	"bench/BenchmarkHotKey/httprate":                         "peer: httprate LimitByIP, one client from every core",
	"bench/BenchmarkHotKey/shipshape-floor":                  "floor: the limiter on a store that is one atomic add",
	"bench/BenchmarkHotKey/slowdown-floor":                   "floor: slowdown on a store that is one atomic add",
	"ratelimit/BenchmarkMemoryStoreTake/hot":                 "one take on one key from every core",
	"connlimit/BenchmarkAdmit":                               "layer-4 admit + release of one connection",
	"ratelimit/redisstore/BenchmarkTag/plain":                "Redis key tag of an IP key",
	"ratelimit/redisstore/BenchmarkTag/hashed":               "Redis key tag of a key that needs hashing",
	"slowdown/BenchmarkUnderThreshold":                       "middleware, request under the threshold",
	"slowdown/BenchmarkOverflow":                             "turning a request away (503) when full",
	"accesslog/BenchmarkMiddlewareCombined":                  "middleware + combined line to io.Discard",
	"accesslog/BenchmarkMiddlewareJSON":                      "middleware + slog.JSONHandler to io.Discard",
	"accesslog/BenchmarkBareJSON":                            "reference: one slog JSON record, same attributes",
	"logfile/BenchmarkBufferedWriterFile":                    "one 120-byte line through BufferedWriter into File",
	"recoverer/BenchmarkHappyPath/serial":                    "middleware, no panic, one goroutine",
	"recoverer/BenchmarkHappyPath/inside-accesslog/serial":   "the same inside accesslog (uses accesslog's recorder)",
	"recoverer/BenchmarkHappyPath/inside-accesslog/parallel": "the same inside accesslog, all cores",
	"recoverer/BenchmarkHappyPath/parallel":                  "middleware, no panic, all cores",
	"recoverer/BenchmarkPanic":                               "a recovered panic: stack, log record, 500",
	"recoverer/BenchmarkInsideAccesslog/accesslog":           "accesslog alone, line discarded before it is built",
	"recoverer/BenchmarkInsideAccesslog/accesslog+recoverer": "the same with recoverer inside (uses accesslog's writer)",
	"sentryreport/BenchmarkPanicWithSentry":                  "the same plus the Sentry event handed to the SDK",
	"static/BenchmarkServeHTTP/embed/identity":               "6 KB JS file from embed.FS",
	"static/BenchmarkServeHTTP/embed/gzip_variant":           "precompressed .gz variant",
	"static/BenchmarkServeHTTP/embed/304":                    "conditional GET answered 304",
	"static/BenchmarkServeHTTP/embed/on-the-fly_gzip_3KB":    "3 KB CSS compressed per request",
	"static/BenchmarkBareHandler":                            "floor: same headers and body from memory",
}

// goTestArgs is the go test command line of one suite.
func goTestArgs(s microSuite, count int) []string {
	return []string{"test", "-run", "^$", "-bench", s.pattern, "-benchmem", "-count", strconv.Itoa(count), s.pkg}
}

// commandLine quotes args for a POSIX shell, for the report.
func commandLine(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		if a == "" || strings.ContainsAny(a, " \t\n'\"\\$`|&;()<>*?[]{}!^#~") {
			a = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
		q[i] = a
	}
	return strings.Join(q, " ")
}

// runMicro runs every suite with goTool in dir, appends the raw output to
// raw (benchstat reads it), and returns the parsed results in suite order.
// A suite that fails (a package that does not build while someone edits
// it, a failing benchmark) is logged and reported in failed; the others
// still run.
func runMicro(ctx context.Context, goTool, dir string, count int, raw io.Writer) (all []benchResult, meta benchMeta, failed []string, err error) {
	for _, s := range microSuites {
		args := goTestArgs(s, count)
		logf("go %s", commandLine(args))
		cmd := exec.CommandContext(ctx, goTool, args...)
		cmd.Dir = dir
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		runErr := cmd.Run()
		_, _ = raw.Write(out.Bytes())
		if ctx.Err() != nil {
			return nil, meta, nil, ctx.Err()
		}
		rs, m, err := parseBench(bytes.NewReader(out.Bytes()))
		if err != nil {
			return nil, meta, nil, err
		}
		switch {
		case runErr != nil:
			logf("go %s: %v\n%s", commandLine(args), runErr, out.Bytes())
			failed = append(failed, fmt.Sprintf("`go %s`: %v", commandLine(args), runErr))
			continue
		case len(rs) == 0:
			logf("go %s ran no benchmark", commandLine(args))
			failed = append(failed, fmt.Sprintf("`go %s`: ran no benchmark", commandLine(args)))
			continue
		}
		if meta.CPU == "" {
			meta = m
		}
		for _, r := range rs {
			if _, ok := microWhat[shortPkg(r.Pkg)+"/"+r.Name]; !ok {
				logf("no description of %s/%s in microWhat: its row says nothing of what it measures", shortPkg(r.Pkg), r.Name)
			}
		}
		all = append(all, rs...)
	}
	return all, meta, failed, nil
}

// benchResult is one benchmark's figures: the median over its -count runs.
type benchResult struct {
	Pkg         string // import path
	Name        string // without the -GOMAXPROCS suffix
	Procs       int    // GOMAXPROCS, from the suffix (1 when absent)
	Runs        int
	NsPerOp     float64
	BytesPerOp  float64 // -1 when not reported
	AllocsPerOp float64 // -1 when not reported
}

// benchMeta is the header go test prints before the results.
type benchMeta struct {
	GOOS, GOARCH, CPU string
}

var benchLineRE = regexp.MustCompile(`^(Benchmark\S*?)(?:-(\d+))?\s+(\d+)\s+(.*)$`)

// parseBench reads `go test -bench -benchmem` output (one or more packages,
// any -count) and returns one result per package and benchmark, in the
// order of first appearance, with the median of each figure over the runs.
// Lines other than results and the goos/goarch/pkg/cpu header are ignored.
func parseBench(r io.Reader) ([]benchResult, benchMeta, error) {
	type acc struct {
		res               benchResult
		ns, bytes, allocs []float64
	}
	var (
		meta  benchMeta
		pkg   string
		order []string
		by    = map[string]*acc{}
	)
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), " \t\r")
		if k, v, ok := strings.Cut(line, ": "); ok && !strings.HasPrefix(line, "Benchmark") {
			switch k {
			case "goos":
				meta.GOOS = v
			case "goarch":
				meta.GOARCH = v
			case "cpu":
				meta.CPU = v
			case "pkg":
				pkg = v
			}
			continue
		}
		m := benchLineRE.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		procs := 1
		if m[2] != "" {
			procs, _ = strconv.Atoi(m[2])
		}
		ns, bytes, allocs, ok := benchFigures(m[4])
		if !ok {
			continue // a "--- BENCH" log line or a benchmark that printed no figures
		}
		key := pkg + "\x00" + m[1]
		a := by[key]
		if a == nil {
			a = &acc{res: benchResult{Pkg: pkg, Name: m[1], Procs: procs}}
			by[key] = a
			order = append(order, key)
		}
		a.ns = append(a.ns, ns)
		a.bytes = append(a.bytes, bytes)
		a.allocs = append(a.allocs, allocs)
	}
	if err := sc.Err(); err != nil {
		return nil, meta, err
	}
	out := make([]benchResult, 0, len(order))
	for _, k := range order {
		a := by[k]
		a.res.Runs = len(a.ns)
		a.res.NsPerOp = median(a.ns)
		a.res.BytesPerOp = median(a.bytes)
		a.res.AllocsPerOp = median(a.allocs)
		out = append(out, a.res)
	}
	return out, meta, nil
}

// benchFigures reads the value-unit pairs after the iteration count.
// Units other than ns/op, B/op and allocs/op (MB/s, custom metrics) are
// skipped. ok is false when there is no ns/op.
func benchFigures(s string) (ns, bytes, allocs float64, ok bool) {
	bytes, allocs = -1, -1
	f := strings.Fields(s)
	for i := 0; i+1 < len(f); i += 2 {
		v, err := strconv.ParseFloat(f[i], 64)
		if err != nil {
			return 0, 0, 0, false
		}
		switch f[i+1] {
		case "ns/op":
			ns, ok = v, true
		case "B/op":
			bytes = v
		case "allocs/op":
			allocs = v
		}
	}
	return ns, bytes, allocs, ok
}

// shortPkg is the import path after the module path.
func shortPkg(pkg string) string {
	const module = "github.com/shipshape-go/shipshape/"
	return strings.TrimPrefix(pkg, module)
}

// microTable renders the results as one markdown table.
func microTable(rs []benchResult) string {
	var b strings.Builder
	b.WriteString("| package | benchmark | what it measures | ns/op | B/op | allocs/op |\n")
	b.WriteString("| --- | --- | --- | ---: | ---: | ---: |\n")
	for _, r := range rs {
		p := shortPkg(r.Pkg)
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s |\n", p, strings.TrimPrefix(r.Name, "Benchmark"),
			microWhat[p+"/"+r.Name], formatNs(r.NsPerOp), formatCount(r.BytesPerOp), formatCount(r.AllocsPerOp))
	}
	return b.String()
}

// formatNs prints ns/op with three significant figures at most, and no
// decimals above 100.
func formatNs(v float64) string {
	switch {
	case v >= 100:
		return groupThousands(strconv.FormatFloat(v, 'f', 0, 64))
	case v >= 10:
		return strconv.FormatFloat(v, 'f', 1, 64)
	default:
		return strconv.FormatFloat(v, 'f', 2, 64)
	}
}

func formatCount(v float64) string {
	if v < 0 {
		return "–"
	}
	return groupThousands(strconv.FormatFloat(v, 'f', 0, 64))
}

// groupThousands puts a comma between groups of three digits of an
// integer string.
func groupThousands(s string) string {
	if len(s) <= 3 {
		return s
	}
	var b strings.Builder
	pre := len(s) % 3
	if pre > 0 {
		b.WriteString(s[:pre])
	}
	for i := pre; i < len(s); i += 3 {
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(s[i : i+3])
	}
	return b.String()
}
