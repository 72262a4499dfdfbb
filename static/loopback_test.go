package static_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/shipshape-go/shipshape/internal/testenv"
	"github.com/shipshape-go/shipshape/static"
)

// The loopback benchmarks answer the question: a 10 KB JavaScript
// file with a .gz variant, fetched by a client that accepts gzip, from
//
//   - static (Dir, serving the .gz variant),
//   - http.FileServer over the same directory (it has no gzip_static, so
//     it sends the 10 KB file),
//   - a bare handler writing the .gz bytes from memory with the same
//     header fields (the floor: no file system, no negotiation), and
//     bare-min, the same body with only Content-Type, Content-Encoding
//     and Content-Length,
//   - nginx with 1 worker and gzip_static on (reference).
//
// BenchmarkLoopback drives them with net/http clients (keep-alive,
// b.SetParallelism workers); BenchmarkLoopbackWrk runs wrk against each in
// interleaved rounds (use -benchtime=1x). Both only run with -bench.
var (
	wrkDuration    = flag.Duration("static.wrk.duration", 3*time.Second, "duration of each wrk run in BenchmarkLoopbackWrk")
	wrkConnections = flag.Int("static.wrk.connections", 32, "wrk connections (-c) in BenchmarkLoopbackWrk")
	wrkRounds      = flag.Int("static.wrk.rounds", 3, "interleaved rounds of wrk runs in BenchmarkLoopbackWrk")
)

const benchAsset = "js/app.3f9a1c2b.js"

// benchSite writes the benchmark directory: a 10 KB JavaScript file and
// its gzip variant. It returns the directory and the gzip bytes.
func benchSite(tb testing.TB) (string, []byte) {
	tb.Helper()
	dir := tb.TempDir()
	js := fakeJS(10 << 10)
	var gz bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&gz, gzip.BestCompression)
	_, _ = zw.Write(js)
	_ = zw.Close()
	must(tb, os.MkdirAll(filepath.Join(dir, "js"), 0o755))
	must(tb, os.WriteFile(filepath.Join(dir, benchAsset), js, 0o644))
	must(tb, os.WriteFile(filepath.Join(dir, benchAsset+".gz"), gz.Bytes(), 0o644))
	return dir, gz.Bytes()
}

// fakeJS returns n bytes of JavaScript-looking text that compresses about
// as well as a real bundle (3–4×).
func fakeJS(n int) []byte {
	rng := rand.New(rand.NewPCG(1, 2))
	words := []string{"function", "return", "const", "let", "this", "prototype", "document", "window",
		"addEventListener", "querySelector", "undefined", "null", "true", "false", "length", "push", "map"}
	var b bytes.Buffer
	for i := 0; b.Len() < n; i++ {
		fmt.Fprintf(&b, "%s _%x=%s(%d,%q);", words[rng.IntN(len(words))], rng.Uint32(), words[rng.IntN(len(words))], rng.IntN(1e6), words[rng.IntN(len(words))])
		if i%8 == 7 {
			b.WriteByte('\n')
		}
	}
	return b.Bytes()[:n]
}

func must(tb testing.TB, err error) {
	tb.Helper()
	if err != nil {
		tb.Fatal(err)
	}
}

type benchTarget struct {
	name string
	url  string
	// cpu returns the CPU time used so far by the processes serving
	// the target: the test process for the Go servers, nginx's master
	// and worker for nginx.
	cpu func() time.Duration
}

// selfCPU is the user and system CPU time of this process.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// groupCPU is the CPU time of the processes in process group pgid, from
// /proc (Linux), in clock ticks of 10 ms.
func groupCPU(pgid int) time.Duration {
	paths, _ := filepath.Glob("/proc/[0-9]*/stat")
	var ticks int64
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		// Fields after the parenthesised command: state ppid pgrp ... utime(14) stime(15).
		i := bytes.LastIndexByte(b, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(b[i+1:]))
		if len(f) < 13 || f[2] != strconv.Itoa(pgid) {
			continue
		}
		u, _ := strconv.ParseInt(f[11], 10, 64)
		s, _ := strconv.ParseInt(f[12], 10, 64)
		ticks += u + s
	}
	return time.Duration(ticks) * 10 * time.Millisecond
}

// benchTargets starts the four servers on loopback ports.
func benchTargets(b *testing.B) []benchTarget {
	b.Helper()
	dir, gz := benchSite(b)
	fsys, err := static.Dir(dir)
	must(b, err)
	srv, err := static.New(fsys)
	must(b, err)
	// bare sends the response static sends (same body, same header
	// fields, values fixed); bare-min only what a gzip body needs.
	fi, err := os.Stat(filepath.Join(dir, benchAsset+".gz"))
	must(b, err)
	lastModified := fi.ModTime().UTC().Format(http.TimeFormat)
	bare := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Type", "text/javascript; charset=utf-8")
		h.Set("Cache-Control", static.CacheImmutable)
		h.Set("Etag", `"0123456789abcdefghijkl-gz"`)
		h.Set("Vary", "Accept-Encoding")
		h.Set("Last-Modified", lastModified)
		h.Set("Content-Length", strconv.Itoa(len(gz)))
		h.Set("Accept-Ranges", "bytes")
		h.Set("Content-Encoding", "gzip")
		_, _ = w.Write(gz)
	})
	bareMin := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Type", "text/javascript; charset=utf-8")
		h.Set("Content-Encoding", "gzip")
		h.Set("Content-Length", strconv.Itoa(len(gz)))
		_, _ = w.Write(gz)
	})
	targets := []benchTarget{
		{"static", serveLoopback(b, srv), selfCPU},
		{"fileserver", serveLoopback(b, http.FileServer(http.Dir(dir))), selfCPU},
		{"bare", serveLoopback(b, bare), selfCPU},
		{"bare-min", serveLoopback(b, bareMin), selfCPU},
	}
	if _, err := exec.LookPath("nginx"); err == nil || testenv.InCI() || fileExists("/usr/sbin/nginx") {
		ng := testenv.StartNginx(b, "listen {{ADDR}};\nroot "+dir+";\naccess_log off;\ngzip_static on;\netag on;\n")
		pgid := ng.Process().Pid()
		targets = append(targets, benchTarget{"nginx", "http://" + ng.Addr, func() time.Duration { return groupCPU(pgid) }})
	}
	for i := range targets {
		targets[i].url += "/" + benchAsset
		checkTarget(b, targets[i])
	}
	return targets
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

func serveLoopback(b *testing.B, h http.Handler) string {
	b.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(b, err)
	hs := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = hs.Serve(ln) }()
	b.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = hs.Shutdown(ctx)
	})
	return "http://" + ln.Addr().String()
}

// checkTarget makes sure each server answers 200 with the expected
// encoding before it is measured.
func checkTarget(b *testing.B, t benchTarget) {
	b.Helper()
	req, _ := http.NewRequest(http.MethodGet, t.url, nil)
	req.Header.Set("Accept-Encoding", "gzip")
	resp, err := (&http.Transport{DisableCompression: true}).RoundTrip(req)
	must(b, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	want := "gzip"
	if t.name == "fileserver" {
		want = ""
	}
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Encoding") != want {
		b.Fatalf("%s: status %d, Content-Encoding %q (want 200, %q), %d bytes", t.name, resp.StatusCode, resp.Header.Get("Content-Encoding"), want, len(body))
	}
}

// BenchmarkLoopback measures requests per second over real loopback
// connections with net/http clients (keep-alive, 8 workers per CPU).
//
//	go test -run '^$' -bench 'Loopback$' -benchtime 3s ./static/
func BenchmarkLoopback(b *testing.B) {
	for _, t := range benchTargets(b) {
		b.Run(t.name, func(b *testing.B) {
			tr := &http.Transport{DisableCompression: true, MaxIdleConnsPerHost: 256}
			defer tr.CloseIdleConnections()
			client := &http.Client{Transport: tr}
			b.SetParallelism(8)
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				req, _ := http.NewRequest(http.MethodGet, t.url, nil)
				req.Header.Set("Accept-Encoding", "gzip")
				for pb.Next() {
					resp, err := client.Do(req)
					if err != nil {
						b.Error(err)
						return
					}
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != http.StatusOK {
						b.Errorf("status %d", resp.StatusCode)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
		})
	}
}

var (
	wrkRPS      = regexp.MustCompile(`Requests/sec:\s+([0-9.]+)`)
	wrkRequests = regexp.MustCompile(`(\d+) requests in`)
)

// BenchmarkLoopbackWrk runs wrk (2 threads, -static.wrk.connections
// connections, -static.wrk.duration per run) against every server, in
// -static.wrk.rounds interleaved rounds (the starting server rotates), so
// that load from other processes hits all of them alike. It reports the
// median requests per second of each server and static's ratio to the
// others, and the server's CPU time per request (wrk excluded), which
// other load on the machine disturbs much less than throughput. One
// iteration is the whole set of runs:
//
//	go test -run '^$' -bench LoopbackWrk -benchtime 1x ./static
func BenchmarkLoopbackWrk(b *testing.B) {
	wrk := testenv.LookPath(b, "wrk", "wrk")
	targets := benchTargets(b)
	b.ResetTimer()
	for range b.N {
		rps, cpu := map[string][]float64{}, map[string][]float64{}
		for round := range *wrkRounds {
			for i := range targets {
				t := targets[(i+round)%len(targets)]
				cpu0 := t.cpu()
				out, err := exec.Command(wrk, "-t2", "-c"+strconv.Itoa(*wrkConnections), "-d"+wrkDuration.String(),
					"-H", "Accept-Encoding: gzip", t.url).CombinedOutput()
				if err != nil {
					b.Fatalf("wrk: %v\n%s", err, out)
				}
				if strings.Contains(string(out), "Non-2xx") || strings.Contains(string(out), "Socket errors") {
					b.Fatalf("wrk saw errors against %s:\n%s", t.name, out)
				}
				m := wrkRPS.FindSubmatch(out)
				if m == nil {
					b.Fatal(errors.New("no Requests/sec in wrk output:\n" + string(out)))
				}
				used := t.cpu() - cpu0
				v, _ := strconv.ParseFloat(string(m[1]), 64)
				rps[t.name] = append(rps[t.name], v)
				if n := wrkRequests.FindSubmatch(out); n != nil {
					reqs, _ := strconv.ParseFloat(string(n[1]), 64)
					cpu[t.name] = append(cpu[t.name], float64(used.Microseconds())/reqs)
				}
			}
		}
		median := func(v []float64) float64 {
			if len(v) == 0 {
				return 0
			}
			slices.Sort(v)
			return v[len(v)/2]
		}
		med, medCPU := map[string]float64{}, map[string]float64{}
		for _, t := range targets {
			med[t.name], medCPU[t.name] = median(rps[t.name]), median(cpu[t.name])
			b.ReportMetric(med[t.name], t.name+"_req/s")
			b.ReportMetric(medCPU[t.name], t.name+"_cpu-µs/req")
			b.Logf("%-10s median %8.0f req/s %6.2f CPU µs/req   runs %.0f   CPU %.2f", t.name, med[t.name], medCPU[t.name], rps[t.name], cpu[t.name])
		}
		for _, other := range []string{"fileserver", "bare", "bare-min", "nginx"} {
			if med[other] > 0 {
				b.ReportMetric(med["static"]/med[other], "static/"+other)
			}
			if medCPU["static"] > 0 {
				// > 1: static spends less CPU per request than other.
				b.ReportMetric(medCPU[other]/medCPU["static"], "cpu:"+other+"/static")
			}
		}
	}
}
