package main

import (
	"strings"
	"testing"
)

// The parsers read the output of other programs; whatever it holds, they
// must not panic, and what they return must be coherent.

func FuzzParseBench(f *testing.F) {
	f.Add(goTestOutput)
	f.Add("pkg: p\nBenchmarkX-2 10 5 ns/op 1 B/op 1 allocs/op\n")
	f.Add("BenchmarkY 1 NaN ns/op\nBenchmark-3 1 1e400 ns/op\n")
	f.Fuzz(func(t *testing.T, in string) {
		rs, _, err := parseBench(strings.NewReader(in))
		if err != nil {
			return
		}
		for _, r := range rs {
			if !strings.HasPrefix(r.Name, "Benchmark") || r.Runs < 1 {
				t.Fatalf("result %+v: name without Benchmark or no runs", r)
			}
		}
	})
}

func FuzzParseWrk(f *testing.F) {
	f.Add(wrkSample)
	f.Add("1 requests in 1s\nRequests/sec: 1\n 50% 1us\n 99% 2h\n")
	f.Fuzz(func(t *testing.T, in string) {
		w, err := parseWrk([]byte(in))
		if err != nil {
			return
		}
		if w.P50 == 0 || w.P99 == 0 {
			t.Fatalf("parsed %+v without both percentiles", w)
		}
	})
}
