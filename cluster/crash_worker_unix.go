//go:build unix

package cluster

import (
	"bytes"
	"cmp"
	"fmt"
	"math"
	"os"
	"runtime"
	"runtime/debug"
	"slices"
)

// takeCrashOutput has the runtime write its crash report (an unrecovered
// panic, a fatal error, a fatal signal) to the supervisor's crash pipe as
// well as to standard error. It runs at package initialisation, so that a
// crash in main, before Run or Serve, is reported too.
func takeCrashOutput(f *os.File) {
	if f != nil {
		_ = debug.SetCrashOutput(f, debug.CrashOptions{})
	}
}

// Bounds of a memory dump.
const (
	dumpSites      = 5
	maxDumpStacks  = maxCrashOutput
	firstDumpStack = 1 << 20
)

// writeMemoryDump writes, for the supervisor that is replacing this worker
// over its memory cap, the allocation sites that hold the most memory
// (from the runtime's sampled heap profile, after a collection so that it
// is current) and every goroutine's stack, framed by memoryDumpBegin and
// memoryDumpEnd, to the crash pipe.
func writeMemoryDump(f *os.File) {
	if f == nil {
		return
	}
	var b bytes.Buffer
	b.WriteString(memoryDumpBegin + "\n")
	// The heap profile publishes an allocation only once the collection
	// cycle after the one it was made in has ended ("up to two garbage
	// collection cycles old", runtime.MemProfile): two collections make
	// the allocations that crossed the cap visible, even when they were
	// all made since the last one.
	runtime.GC()
	runtime.GC()
	writeHeapSites(&b, dumpSites)
	stacks := make([]byte, firstDumpStack)
	for {
		n := runtime.Stack(stacks, true)
		if n < len(stacks) || len(stacks) >= maxDumpStacks {
			stacks = stacks[:n]
			break
		}
		stacks = make([]byte, 2*len(stacks))
	}
	b.Write(stacks)
	b.WriteString("\n\n" + memoryDumpEnd + "\n")
	_, _ = f.Write(b.Bytes())
}

// writeHeapSites writes the n allocation sites with the most memory in
// use, in the format parseCrash reads: "allocation [B bytes in use, N
// objects]:", then the calls, innermost first, as tracebacks print them.
func writeHeapSites(b *bytes.Buffer, n int) {
	var recs []runtime.MemProfileRecord
	for {
		k, _ := runtime.MemProfile(nil, false)
		recs = make([]runtime.MemProfileRecord, k+50)
		k, ok := runtime.MemProfile(recs, false)
		if ok {
			recs = recs[:k]
			break
		}
	}
	rate := int64(runtime.MemProfileRate)
	type site struct {
		bytes, objects int64
		stack          []uintptr
	}
	sites := make([]site, 0, len(recs))
	for i := range recs {
		r := &recs[i]
		objects, size := scaleHeapSample(r.InUseObjects(), r.InUseBytes(), rate)
		if size > 0 {
			sites = append(sites, site{size, objects, r.Stack()})
		}
	}
	slices.SortFunc(sites, func(a, b site) int { return cmp.Compare(b.bytes, a.bytes) })
	for _, s := range sites[:min(n, len(sites))] {
		fmt.Fprintf(b, "allocation [%d bytes in use, %d objects]:\n", s.bytes, s.objects)
		frames := runtime.CallersFrames(s.stack)
		for {
			fr, more := frames.Next()
			if fr.Function != "" {
				fmt.Fprintf(b, "%s(...)\n\t%s:%d\n", fr.Function, fr.File, fr.Line)
			}
			if !more {
				break
			}
		}
		b.WriteString("\n")
	}
}

// scaleHeapSample estimates the objects and bytes that a sample of the
// heap profile stands for, the way runtime/pprof does: an allocation of
// size s is sampled with probability 1-exp(-s/rate).
func scaleHeapSample(count, size, rate int64) (int64, int64) {
	if count == 0 || size == 0 {
		return 0, 0
	}
	if rate <= 1 {
		return count, size
	}
	avg := float64(size) / float64(count)
	scale := 1 / (1 - math.Exp(-avg/float64(rate)))
	return int64(float64(count) * scale), int64(float64(size) * scale)
}
