package app

import (
	"fmt"
	"net/http"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
)

// The debug routes make the failures that deployment limits and health
// checks exist for happen on demand, so that the deploy tests can show
// what the container engine or systemd does about them. Each is off by
// default and has a flag of its own.

// HealthRoutes returns the handler of GET /healthz and, with
// cfg.DebugHang, the handler of GET /debug/hang that makes it hang (nil
// without): every router of the examples serves the two the same way.
func HealthRoutes(cfg Config) (healthz, debugHang http.Handler) {
	healthz = http.HandlerFunc(Healthz)
	if !cfg.DebugHang {
		return healthz, nil
	}
	h := &hang{}
	return h.wrap(healthz), http.HandlerFunc(h.start)
}

// hang makes /healthz stop answering once GET /debug/hang was called
// (-debug-hang): the process is alive and accepts connections, but is no
// longer healthy, as a deadlocked one would be.
type hang struct{ on atomic.Bool }

func (h *hang) start(w http.ResponseWriter, _ *http.Request) {
	h.on.Store(true)
	w.Header().Set("Cache-Control", "no-store")
	fmt.Fprintln(w, "/healthz hangs from now on")
}

// wrap holds the health check until its client gives up (or the server
// shuts down) once the hang has started.
func (h *hang) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if h.on.Load() {
			<-r.Context().Done()
			return
		}
		next.ServeHTTP(w, r)
	})
}

// leak holds what Alloc allocated, for the life of the process.
var leak struct {
	sync.Mutex
	chunks [][]byte
}

// maxAllocMiB bounds one /debug/alloc request.
const maxAllocMiB = 1 << 16

// Alloc allocates mib MiB (GET /debug/alloc?mib=N, -debug-alloc), writes to
// every page so that the kernel really backs them, and never frees them:
// repeated calls grow the process until its memory limit (a container's
// mem_limit, systemd's MemoryMax) gets it killed. It answers with the total
// held, if it lives to.
func Alloc(w http.ResponseWriter, r *http.Request) {
	mib, err := strconv.Atoi(r.URL.Query().Get("mib"))
	if err != nil || mib < 1 || mib > maxAllocMiB {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": fmt.Sprintf("mib must be an integer from 1 to %d", maxAllocMiB)})
		return
	}
	page := os.Getpagesize()
	leak.Lock()
	for range mib {
		b := make([]byte, 1<<20)
		for i := 0; i < len(b); i += page {
			b[i] = 1
		}
		leak.chunks = append(leak.chunks, b)
	}
	held := len(leak.chunks)
	leak.Unlock()
	writeJSON(w, http.StatusOK, map[string]int{"held_mib": held})
}
