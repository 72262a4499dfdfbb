package cluster

import (
	"strconv"
	"strings"
)

// Limits of the parser: the runtime prints at most 100 frames per
// goroutine, but a crash dump may hold any number of goroutines.
const (
	maxGoroutines = 10000
	maxFrames     = 200
)

// The worker frames a memory dump (see writeMemoryDump) with these lines,
// so that the parser tells it from the runtime's own output.
const (
	memoryDumpBegin = "cluster: memory dump"
	memoryDumpEnd   = "cluster: end of memory dump"
)

// crashText is what parseCrash reads from crash output.
type crashText struct {
	message    string // the first panic or fatal error line, else the first signal line
	goroutines []Goroutine
	heap       []Allocation
	// crashed reports a crash of the runtime: a message, or goroutines
	// outside a memory dump (a fatal error's crash output lacks its
	// message, see stderrTap).
	crashed bool
}

// parseCrash reads the text of a Go crash: the runtime's report of a
// panic, fatal error or fatal signal (message lines, then goroutine
// sections: a header "goroutine 7 [running]:", pairs of a call line and a
// tab-indented "file:line +0x1d" line, "created by …" and a blank line at
// the end), and the memory dumps the workers write. It accepts anything,
// keeping what it recognises: the text comes from a crashing process, cut
// at any byte when the supervisor's cap was reached. module is the main
// module's path, for Frame.InApp.
func parseCrash(text, module string) crashText {
	var out crashText
	var signal string
	lines := strings.Split(text, "\n")
	inDump := false
	crashedSet := false
	for i := 0; i < len(lines); i++ {
		line := strings.TrimSuffix(lines[i], "\r")
		switch {
		case line == memoryDumpBegin:
			inDump = true
		case line == memoryDumpEnd:
			inDump = false
		case strings.HasPrefix(line, "goroutine ") && strings.HasSuffix(line, ":"):
			g, ok := goroutineHeader(line)
			if !ok {
				continue
			}
			var next int
			g.Frames, g.CreatedBy, g.Elided, next = parseFrames(lines, i+1, module)
			i = next - 1
			if len(out.goroutines) >= maxGoroutines {
				continue
			}
			if !inDump {
				out.crashed = true
			}
			if !inDump && !crashedSet {
				// The runtime prints the goroutine that crashed first;
				// a SIGQUIT dump has none that crashed.
				g.Crashed = !strings.HasPrefix(out.message, "SIGQUIT") && !strings.HasPrefix(signal, "SIGQUIT")
				crashedSet = true
			}
			out.goroutines = append(out.goroutines, g)
		case strings.HasPrefix(line, "allocation [") && strings.HasSuffix(line, "]:"):
			a, ok := allocationHeader(line)
			if !ok {
				continue
			}
			var next int
			a.Frames, _, _, next = parseFrames(lines, i+1, module)
			i = next - 1
			out.heap = append(out.heap, a)
		case inDump:
		case out.message == "" && (strings.HasPrefix(line, "panic: ") || strings.HasPrefix(line, "fatal error: ")):
			out.message = line
		case signal == "" && isSignalLine(line):
			signal = line
		}
	}
	if out.message == "" {
		out.message = signal
	}
	out.crashed = out.crashed || out.message != ""
	return out
}

// isSignalLine reports whether line is the runtime's report of a fatal
// signal: "SIGSEGV: segmentation violation".
func isSignalLine(line string) bool {
	name, _, ok := strings.Cut(line, ": ")
	if !ok || len(name) < 4 || !strings.HasPrefix(name, "SIG") {
		return false
	}
	for i := 3; i < len(name); i++ {
		if c := name[i]; c < 'A' || c > 'Z' {
			return false
		}
	}
	return true
}

// goroutineHeader parses "goroutine 7 [chan receive, 2 minutes]:" and
// "goroutine 1 gp=0xc000002380 m=0 mp=0x5a4c40 [running]:".
func goroutineHeader(line string) (Goroutine, bool) {
	rest := strings.TrimPrefix(line, "goroutine ")
	idText, rest, _ := strings.Cut(rest, " ")
	id, err := strconv.Atoi(idText)
	if err != nil || id < 0 {
		return Goroutine{}, false
	}
	g := Goroutine{ID: id}
	if open := strings.IndexByte(rest, '['); open >= 0 {
		if end := strings.LastIndexByte(rest, ']'); end > open {
			g.State = rest[open+1 : end]
		}
	}
	return g, true
}

// allocationHeader parses "allocation [262144000 bytes in use, 1 objects]:".
func allocationHeader(line string) (Allocation, bool) {
	inner := strings.TrimSuffix(strings.TrimPrefix(line, "allocation ["), "]:")
	bytesText, objectsText, ok := strings.Cut(inner, " bytes in use, ")
	if !ok {
		return Allocation{}, false
	}
	b, err1 := strconv.ParseInt(bytesText, 10, 64)
	o, err2 := strconv.ParseInt(strings.TrimSuffix(objectsText, " objects"), 10, 64)
	if err1 != nil || err2 != nil || b < 0 || o < 0 {
		return Allocation{}, false
	}
	return Allocation{Bytes: b, Objects: o}, true
}

// parseFrames reads the frames of one section from lines[i:] up to the
// blank line (or anything that is not a frame) that ends it, and returns
// the index of the first line it did not consume.
func parseFrames(lines []string, i int, module string) (frames []Frame, createdBy *Frame, elided bool, next int) {
	for i < len(lines) {
		line := strings.TrimSuffix(lines[i], "\r")
		switch {
		case line == "":
			return frames, createdBy, elided, i + 1
		case strings.HasPrefix(line, "...") && strings.HasSuffix(line, "elided..."):
			elided = true
			i++
			continue
		case strings.HasPrefix(line, "\t"):
			i++ // "goroutine running on other thread; stack unavailable", or a stray location
			continue
		}
		if i+1 >= len(lines) || !strings.HasPrefix(lines[i+1], "\t") {
			// A call without its location: the text was cut here, or this
			// is not a frame (a register dump after a signal).
			return frames, createdBy, elided, i + 1
		}
		file, lineNo := location(strings.TrimSuffix(lines[i+1], "\r"))
		if fn, ok := strings.CutPrefix(line, "created by "); ok {
			if at := strings.Index(fn, " in goroutine "); at >= 0 {
				fn = fn[:at]
			}
			f := newFrame(fn, file, lineNo, module)
			createdBy = &f
		} else if len(frames) < maxFrames {
			frames = append(frames, newFrame(callName(line), file, lineNo, module))
		} else {
			elided = true
		}
		i += 2
	}
	return frames, createdBy, elided, i
}

// callName strips the argument list from a call line:
// "main.(*T).M(0xc000010000, {0x1, 0x2})" is "main.(*T).M".
func callName(line string) string {
	if !strings.HasSuffix(line, ")") {
		return line
	}
	depth := 0
	for j := len(line) - 1; j >= 0; j-- {
		switch line[j] {
		case ')':
			depth++
		case '(':
			depth--
			if depth == 0 {
				if j == 0 {
					return line
				}
				return line[:j]
			}
		}
	}
	return line
}

// location parses "\t/src/app/main.go:42 +0x1d fp=0x… sp=0x… pc=0x…" (the
// offset and the registers are optional).
func location(line string) (string, int) {
	s := strings.TrimPrefix(line, "\t")
	if at := strings.Index(s, " +0x"); at >= 0 {
		s = s[:at]
	} else if at := strings.Index(s, " fp="); at >= 0 {
		s = s[:at]
	}
	colon := strings.LastIndexByte(s, ':')
	if colon < 0 {
		return s, 0
	}
	n, err := strconv.Atoi(s[colon+1:])
	if err != nil || n < 0 {
		return s, 0
	}
	return s[:colon], n
}

// newFrame builds a Frame, deciding whether it is in the main module.
func newFrame(function, file string, line int, module string) Frame {
	pkg := packageOf(function)
	return Frame{Function: function, Package: pkg, File: file, Line: line, InApp: inModule(pkg, module)}
}

// packageOf returns the import path of a qualified function name: up to
// the first dot after the last slash ("github.com/acme/app.(*T).M" is
// "github.com/acme/app"), or "" when there is none ("panic").
func packageOf(function string) string {
	// A generic instantiation's brackets may hold slashes and dots.
	name := function
	if b := strings.IndexByte(name, '['); b >= 0 {
		name = name[:b]
	}
	slash := strings.LastIndexByte(name, '/')
	dot := strings.IndexByte(name[slash+1:], '.')
	if dot < 0 {
		return ""
	}
	return name[:slash+1+dot]
}

// inModule reports whether the package pkg belongs to module: the main
// package, the module's packages, and their external test packages
// ("example.com/app_test" for the module root's).
func inModule(pkg, module string) bool {
	switch {
	case pkg == "":
		return false
	case pkg == "main":
		return true
	case module == "":
		return false
	}
	return pkg == module || pkg == module+"_test" || strings.HasPrefix(pkg, module+"/")
}
