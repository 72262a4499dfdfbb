package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/shipshape-go/shipshape/internal/loadgen"
)

// loadOptions describe the loopback comparison.
type loadOptions struct {
	client      string        // "wrk" or "loadgen"
	wrk         string        // path of wrk
	threads     int           // wrk -t
	connections int           // wrk -c, loadgen Concurrency
	duration    time.Duration // of one measured run
	warmup      time.Duration // of the unmeasured run per server and path before its rounds
	rounds      int           // on /hello
	jsonRounds  int           // on /json (0: none)
	logDir      string        // where the servers write their access logs
	// node is the node command and nodeDir bench/node with its
	// node_modules; node is "" when the Node peers are left out.
	node, nodeDir string
	// A run during which other processes used more than maxOther cores is
	// measured again, up to retries times, after retryPause; the least
	// disturbed one counts.
	maxOther   float64
	retries    int
	retryPause time.Duration
}

// The paths every server answers, each measured in its own set of rounds.
const (
	pathHello = "/hello"
	pathJSON  = "/json"
)

// server is one configuration running in its own process (a Node cluster:
// in its own process tree).
type server struct {
	name string
	base string // http://127.0.0.1:PORT
	url  string // what measure loads: base + /hello, or the path at chose
	cmd  *exec.Cmd
	done chan error
}

// startServer re-executes this binary in serve mode for Go configuration
// name and waits for it to listen.
func startServer(exe, name, logDir, cpuProfile string) (*server, error) {
	args := []string{"-serve", name, "-listen", "127.0.0.1:0", "-logdir", logDir}
	if cpuProfile != "" {
		args = append(args, "-cpuprofile", cpuProfile)
	}
	return launch(name, exec.Command(exe, args...))
}

// startNodeServer runs bench/node/server.js (in dir) for configuration
// cfgNode or cfgNodeCluster and waits for it to listen. The port is chosen
// here: the workers of a cluster share one port, which an ephemeral one
// chosen by each of them would not be.
func startNodeServer(node, dir, name, logDir string) (*server, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	args := []string{"server.js", "--port", strconv.Itoa(port), "--logdir", logDir}
	if name == cfgNodeCluster {
		args = append(args, "--cluster")
	}
	cmd := exec.Command(node, args...)
	cmd.Dir = dir
	return launch(name, cmd)
}

// freePort is a loopback TCP port that was free a moment ago.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// launch starts cmd, reads the "listening ADDR" line it prints on stdout
// and checks that it answers both paths as it should.
func launch(name string, cmd *exec.Cmd) (*server, error) {
	cmd.Stderr = os.Stderr
	dieWithParent(cmd)
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	s := &server{name: name, cmd: cmd, done: make(chan error, 1)}
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		if sc.Scan() {
			addr <- strings.TrimPrefix(sc.Text(), "listening ")
		}
		close(addr)
		_, _ = io.Copy(io.Discard, out)
		s.done <- cmd.Wait()
	}()
	select {
	case a, ok := <-addr:
		if !ok {
			return nil, fmt.Errorf("benchreport: %s server exited before listening: %v", name, <-s.done)
		}
		s.base = "http://" + a
		s.url = s.base + pathHello
	case <-time.After(30 * time.Second):
		_ = s.stop()
		return nil, fmt.Errorf("benchreport: %s server did not listen within 30s", name)
	}
	if err := checkServer(s.base); err != nil {
		_ = s.stop()
		return nil, fmt.Errorf("benchreport: %s: %w", name, err)
	}
	return s, nil
}

// at is s loaded at path instead of /hello.
func (s *server) at(path string) *server {
	c := *s
	c.url = s.base + path
	return &c
}

// checkServer makes sure a server answers 200 with the expected body and
// Content-Type on both paths before it is measured: the same work on
// every server, Node's included.
func checkServer(base string) error {
	c := &http.Client{Timeout: 5 * time.Second}
	for _, want := range []struct{ path, contentType, body string }{
		{pathHello, "text/plain; charset=utf-8", helloBody},
		{pathJSON, "application/json; charset=utf-8", jsonBody()},
	} {
		url := base + want.path
		resp, err := c.Get(url)
		if err != nil {
			return err
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return err
		}
		if ct := resp.Header.Get("Content-Type"); resp.StatusCode != http.StatusOK || ct != want.contentType || string(b) != want.body {
			return fmt.Errorf("GET %s: %d %s %q, want 200 %s %q", url, resp.StatusCode, ct, b, want.contentType, want.body)
		}
	}
	return nil
}

func (s *server) pid() int { return s.cmd.Process.Pid }

// stop sends SIGTERM and waits for the server to drain and exit (killing it
// after 10s).
func (s *server) stop() error {
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-s.done:
		return err
	case <-time.After(10 * time.Second):
		_ = s.cmd.Process.Kill()
		return fmt.Errorf("benchreport: %s server did not stop within 10s: %v", s.name, <-s.done)
	}
}

// run is one measured load run against one server.
type run struct {
	Round      int
	Config     string
	Requests   int64
	RPS        float64
	P50, P99   time.Duration
	ServerCPU  time.Duration // CPU time the server's processes used during the run
	ClientCPU  time.Duration // CPU time the load generator used
	ServerUSPR float64       // server CPU µs per request
	ClientUSPR float64       // client CPU µs per request
	// OtherCores is the CPU time the rest of the machine (other processes,
	// kernel work not charged to these two) used during the run, in cores:
	// how disturbed the run was.
	OtherCores float64
}

// loadResult is the comparison on one path: every run, and the medians
// per configuration.
type loadResult struct {
	Path     string   // what the servers answered: /hello or /json
	Configs  []string // the configurations measured, in the order of the report
	Rounds   int
	Runs     []run
	Medians  map[string]run
	Repeated int // runs measured again because other processes were busy
}

// has tells whether configuration c was measured.
func (r loadResult) has(c string) bool { return slices.Contains(r.Configs, c) }

// ratio is median req/s of a over b.
func (r loadResult) ratio(a, b string) float64 {
	if r.Medians[b].RPS == 0 {
		return 0
	}
	return r.Medians[a].RPS / r.Medians[b].RPS
}

// roundRatios returns the lowest and highest ratio of a's req/s over b's
// within one round, over the rounds: how much the verdict moves from
// round to round.
func (r loadResult) roundRatios(a, b string) (lo, hi float64) {
	type key struct {
		round  int
		config string
	}
	rps := map[key]float64{}
	rounds := 0
	for _, x := range r.Runs {
		rps[key{x.Round, x.Config}] = x.RPS
		rounds = max(rounds, x.Round)
	}
	first := true
	for round := 1; round <= rounds; round++ {
		va, okA := rps[key{round, a}]
		vb, okB := rps[key{round, b}]
		if !okA || !okB || vb == 0 {
			continue
		}
		v := va / vb
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

// cpuRatio is b's server CPU per request over a's: above 1, a spends less
// CPU per request than b.
func (r loadResult) cpuRatio(a, b string) float64 {
	if r.Medians[a].ServerUSPR == 0 {
		return 0
	}
	return r.Medians[b].ServerUSPR / r.Medians[a].ServerUSPR
}

// maxRepeats bounds the runs measured again in one report (both paths
// together), so that a machine that stays busy does not make `make bench`
// take much longer.
const maxRepeats = 6

// runLoad starts the servers (the Go configurations, then the Node peers
// when o.node is set) and measures them on /hello, then on /json, each in
// interleaved rounds: round k starts with configuration k mod n, so that
// load from other processes on the machine falls on all of them alike.
func runLoad(ctx context.Context, exe string, o loadOptions) ([]loadResult, error) {
	var servers []*server
	defer func() {
		for _, s := range servers {
			if err := s.stop(); err != nil {
				logf("stop %s: %v", s.name, err)
			}
		}
	}()
	for _, name := range configs {
		s, err := startServer(exe, name, o.logDir, "")
		if err != nil {
			return nil, err
		}
		servers = append(servers, s)
	}
	if o.node != "" {
		for _, name := range nodeConfigs {
			s, err := startNodeServer(o.node, o.nodeDir, name, o.logDir)
			if err != nil {
				return nil, err
			}
			servers = append(servers, s)
		}
	}
	repeated := 0
	var out []loadResult
	for _, set := range []struct {
		path   string
		rounds int
	}{{pathHello, o.rounds}, {pathJSON, o.jsonRounds}} {
		if set.rounds == 0 {
			continue
		}
		res, err := runRounds(ctx, o, servers, set.path, set.rounds, &repeated)
		if err != nil {
			return nil, err
		}
		out = append(out, res)
	}
	return out, nil
}

// runRounds warms each server up on path, then measures them in rounds
// interleaved rounds; *repeated counts the runs measured again, over every
// path, against maxRepeats.
func runRounds(ctx context.Context, o loadOptions, servers []*server, path string, rounds int, repeated *int) (loadResult, error) {
	res := loadResult{Path: path, Rounds: rounds}
	var targets []*server
	for _, s := range servers {
		targets = append(targets, s.at(path))
		res.Configs = append(res.Configs, s.name)
	}
	for _, s := range targets {
		if o.warmup == 0 {
			continue
		}
		logf("warm-up %s on %s (%s)", s.name, path, o.warmup)
		if _, err := measure(ctx, o, s, o.warmup); err != nil {
			return loadResult{}, err
		}
	}
	for round := range rounds {
		for i := range targets {
			s := targets[(i+round)%len(targets)]
			var best run
			for attempt := 0; ; attempt++ {
				r, err := measure(ctx, o, s, o.duration)
				if err != nil {
					return loadResult{}, err
				}
				r.Round = round + 1
				logf("%s round %d %-20s %8.0f req/s  p50 %-9s p99 %-9s server %5.1f µs/req  client %5.1f µs/req  other %.2f cores",
					path, r.Round, r.Config, r.RPS, r.P50.Round(time.Microsecond), r.P99.Round(10*time.Microsecond), r.ServerUSPR, r.ClientUSPR, r.OtherCores)
				if attempt == 0 || r.OtherCores < best.OtherCores {
					best = r
				}
				if r.OtherCores <= o.maxOther || attempt >= o.retries || *repeated >= maxRepeats {
					break
				}
				// Another process took a share of the CPUs: give its burst
				// (a build, a test run) time to pass, then measure again.
				*repeated++
				res.Repeated++
				logf("other processes used %.2f cores (> %.2f): again in %s", r.OtherCores, o.maxOther, o.retryPause)
				select {
				case <-ctx.Done():
					return loadResult{}, ctx.Err()
				case <-time.After(o.retryPause):
				}
			}
			res.Runs = append(res.Runs, best)
		}
	}
	res.Medians = medians(res.Runs)
	return res, nil
}

// medians returns, per configuration, the median of each figure over its
// runs (each figure on its own).
func medians(runs []run) map[string]run {
	by := map[string][]run{}
	for _, r := range runs {
		by[r.Config] = append(by[r.Config], r)
	}
	out := map[string]run{}
	for name, rs := range by {
		pick := func(f func(run) float64) float64 {
			v := make([]float64, len(rs))
			for i, r := range rs {
				v[i] = f(r)
			}
			return median(v)
		}
		out[name] = run{
			Config:     name,
			Requests:   int64(pick(func(r run) float64 { return float64(r.Requests) })),
			RPS:        pick(func(r run) float64 { return r.RPS }),
			P50:        time.Duration(pick(func(r run) float64 { return float64(r.P50) })),
			P99:        time.Duration(pick(func(r run) float64 { return float64(r.P99) })),
			ServerCPU:  time.Duration(pick(func(r run) float64 { return float64(r.ServerCPU) })),
			ClientCPU:  time.Duration(pick(func(r run) float64 { return float64(r.ClientCPU) })),
			ServerUSPR: pick(func(r run) float64 { return r.ServerUSPR }),
			ClientUSPR: pick(func(r run) float64 { return r.ClientUSPR }),
			OtherCores: pick(func(r run) float64 { return r.OtherCores }),
		}
	}
	return out
}

// median of v (the mean of the middle two for an even count); v is sorted
// in place.
func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	slices.Sort(v)
	if len(v)%2 == 1 {
		return v[len(v)/2]
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2
}

// measure runs the load generator against s.url for d and reads the CPU
// time of the server's process tree (all the processes of a Node cluster)
// before and after.
func measure(ctx context.Context, o loadOptions, s *server, d time.Duration) (run, error) {
	cpu0, _, err := procTree(s.pid())
	if err != nil {
		return run{}, err
	}
	busy0, err := machineBusy()
	if err != nil {
		return run{}, err
	}
	start := time.Now()
	var r run
	switch o.client {
	case "wrk":
		r, err = runWrk(ctx, o, s.url, d)
	default:
		r, err = runLoadgen(ctx, o, s.url, d)
	}
	if err != nil {
		return run{}, fmt.Errorf("benchreport: %s: %w", s.name, err)
	}
	cpu1, _, err := procTree(s.pid())
	if err != nil {
		return run{}, err
	}
	busy1, err := machineBusy()
	if err != nil {
		return run{}, err
	}
	wall := time.Since(start)
	r.Config = s.name
	r.ServerCPU = cpu1 - cpu0
	r.OtherCores = max(0, float64(busy1-busy0-r.ServerCPU-r.ClientCPU)/float64(wall))
	if r.Requests > 0 {
		r.ServerUSPR = float64(r.ServerCPU.Nanoseconds()) / 1e3 / float64(r.Requests)
		r.ClientUSPR = float64(r.ClientCPU.Nanoseconds()) / 1e3 / float64(r.Requests)
	}
	return r, nil
}

// wrkArgs is the wrk command line of one run.
func wrkArgs(o loadOptions, url string, d time.Duration) []string {
	return []string{"-t" + strconv.Itoa(o.threads), "-c" + strconv.Itoa(o.connections),
		"-d" + strconv.Itoa(int(d.Round(time.Second)/time.Second)) + "s", "--latency", url}
}

func runWrk(ctx context.Context, o loadOptions, url string, d time.Duration) (run, error) {
	cmd := exec.CommandContext(ctx, o.wrk, wrkArgs(o, url, d)...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return run{}, fmt.Errorf("wrk: %w\n%s", err, out.Bytes())
	}
	w, err := parseWrk(out.Bytes())
	if err != nil {
		return run{}, err
	}
	if w.Non2xx > 0 || w.SocketErrors != "" {
		return run{}, fmt.Errorf("wrk saw errors (non-2xx %d, socket errors %q):\n%s", w.Non2xx, w.SocketErrors, out.Bytes())
	}
	return run{
		Requests:  w.Requests,
		RPS:       w.RPS,
		P50:       w.P50,
		P99:       w.P99,
		ClientCPU: cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime(),
	}, nil
}

func runLoadgen(ctx context.Context, o loadOptions, url string, d time.Duration) (run, error) {
	self := os.Getpid()
	cpu0, err := procCPU(self)
	if err != nil {
		return run{}, err
	}
	res, err := loadgen.Run(ctx, loadgen.Config{URL: url, Concurrency: o.connections, Duration: d})
	if err != nil {
		return run{}, err
	}
	if n := res.Failed(); n > 0 {
		return run{}, fmt.Errorf("loadgen: %d failed requests: %s", n, res)
	}
	cpu1, err := procCPU(self)
	if err != nil {
		return run{}, err
	}
	return run{Requests: res.Requests, RPS: res.Throughput, P50: res.P50, P99: res.P99, ClientCPU: cpu1 - cpu0}, nil
}

// wrkOutput is what parseWrk reads from wrk's report.
type wrkOutput struct {
	Requests     int64
	RPS          float64
	P50, P99     time.Duration
	Non2xx       int64
	SocketErrors string // "connect 0, read 1, write 0, timeout 0" when wrk printed the line
}

var (
	wrkRequestsRE = regexp.MustCompile(`(?m)^\s*(\d+) requests in `)
	wrkRPSRE      = regexp.MustCompile(`(?m)^Requests/sec:\s+([0-9.]+)`)
	wrkPctRE      = regexp.MustCompile(`(?m)^\s+(50|99)(?:\.0+)?%\s+([0-9.]+)(us|ms|s|m|h)\s*$`)
	wrkNon2xxRE   = regexp.MustCompile(`(?m)^\s*Non-2xx or 3xx responses:\s+(\d+)`)
	wrkSocketRE   = regexp.MustCompile(`(?m)^\s*Socket errors:\s+(.*)$`)
)

// parseWrk reads the request count, requests per second, p50 and p99 (wrk
// --latency) and the error lines from wrk's output.
func parseWrk(out []byte) (wrkOutput, error) {
	var w wrkOutput
	m := wrkRequestsRE.FindSubmatch(out)
	if m == nil {
		return w, errors.New("benchreport: no request count in wrk output")
	}
	w.Requests, _ = strconv.ParseInt(string(m[1]), 10, 64)
	if m = wrkRPSRE.FindSubmatch(out); m == nil {
		return w, errors.New("benchreport: no Requests/sec in wrk output")
	}
	w.RPS, _ = strconv.ParseFloat(string(m[1]), 64)
	for _, m := range wrkPctRE.FindAllSubmatch(out, -1) {
		v, err := strconv.ParseFloat(string(m[2]), 64)
		if err != nil {
			return w, fmt.Errorf("benchreport: wrk latency %q: %w", m[0], err)
		}
		unit := map[string]time.Duration{"us": time.Microsecond, "ms": time.Millisecond, "s": time.Second, "m": time.Minute, "h": time.Hour}[string(m[3])]
		d := time.Duration(v * float64(unit))
		if string(m[1]) == "50" {
			w.P50 = d
		} else {
			w.P99 = d
		}
	}
	if w.P50 == 0 || w.P99 == 0 {
		return w, errors.New("benchreport: no latency distribution in wrk output (run wrk with --latency)")
	}
	if m = wrkNon2xxRE.FindSubmatch(out); m != nil {
		w.Non2xx, _ = strconv.ParseInt(string(m[1]), 10, 64)
	}
	if m = wrkSocketRE.FindSubmatch(out); m != nil {
		w.SocketErrors = strings.TrimSpace(string(m[1]))
	}
	return w, nil
}
