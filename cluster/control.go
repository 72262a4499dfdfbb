package cluster

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// WithControl has the supervisor listen on a unix socket at path for
// control commands (default: none): [Status] of every worker, a rolling
// restart, a stop, scaling to another number of workers. [Control] is the
// client, [ControlCommand] a command line for the program's own binary
// ("app -ctl status"), and [ControlPath] a default path in the user's
// runtime directory.
//
// The supervisor creates path's directory (0700) when it is missing, and
// refuses a directory that another user owns or that others may write
// to. It creates the socket 0600 (a stale socket left by a supervisor
// that was killed is replaced; one that a running supervisor answers on
// is an error) and removes it when it stops. Each connection's peer is
// checked with SO_PEERCRED: only the supervisor's own user and root are
// answered, anyone else gets an error and is disconnected (and logged).
// The workers do not inherit the socket. It needs Linux (the peer check);
// elsewhere the supervisor does not start and returns an error wrapping
// [errors.ErrUnsupported]. An empty path is an error.
func WithControl(path string) Option {
	return func(c *config) { c.control, c.controlSet = path, true }
}

// ControlPath returns the control socket path of the program called
// name, for [WithControl] and [Control]: /run/name/control.sock for root;
// for another user $XDG_RUNTIME_DIR/name/control.sock when XDG_RUNTIME_DIR
// is set (the user's runtime directory of a login session), else
// name-<uid>/control.sock in os.TempDir().
//
// The supervisor and the client must compute the same path: root's does
// not depend on the environment, so that a service started by systemd and
// an administrator's shell agree. For a service of another user, whose
// unit has no XDG_RUNTIME_DIR and perhaps a private /tmp, give both an
// explicit path instead, such as /run/name/control.sock with
// RuntimeDirectory=name in the unit.
func ControlPath(name string) string {
	if os.Geteuid() == 0 {
		return filepath.Join("/run", name, "control.sock")
	}
	if d := os.Getenv("XDG_RUNTIME_DIR"); d != "" {
		return filepath.Join(d, name, "control.sock")
	}
	return filepath.Join(os.TempDir(), name+"-"+strconv.Itoa(os.Geteuid()), "control.sock")
}

// Worker states in [WorkerStatus].State.
const (
	// StateStarting: started, not yet accepting (see [WithReadyTimeout]).
	StateStarting = "starting"
	// StateReady: accepting connections.
	StateReady = "ready"
	// StateDraining: asked to stop, finishing its requests.
	StateDraining = "draining"
)

// Status is what a supervisor reports of itself and its workers.
type Status struct {
	PID        int               `json:"pid"`                   // the supervisor's
	Executable string            `json:"executable"`            // re-executed for every worker
	Addr       string            `json:"addr"`                  // the main address
	NamedAddrs map[string]string `json:"named_addrs,omitempty"` // WithNamedAddr, by name
	Workers    int               `json:"workers"`               // the number of worker slots (WithWorkers, or the last scale)
	Started    time.Time         `json:"started"`
	Uptime     time.Duration     `json:"uptime"` // nanoseconds in JSON
	// Processes has one entry per worker process, by worker id then
	// incarnation: one per slot, and during a replacement or a scale down
	// the ones draining too.
	Processes []WorkerStatus `json:"processes"`
}

// WorkerStatus is one worker process in a [Status].
type WorkerStatus struct {
	Worker      int           `json:"worker"`      // slot id, [WorkerID]
	Incarnation uint64        `json:"incarnation"` // [WorkerIncarnation]
	PID         int           `json:"pid"`
	State       string        `json:"state"` // StateStarting, StateReady or StateDraining
	Started     time.Time     `json:"started"`
	Uptime      time.Duration `json:"uptime"`
	// Restarts counts the slot's restarts after a crash or a failed
	// start (not rolling restarts, memory replacements or scaling).
	Restarts int `json:"restarts"`
	// LastExit is how the slot's previous process ended, if one did.
	LastExit *Exit `json:"last_exit,omitempty"`
	// RSS is the resident set size in bytes (0 where unknown: not Linux).
	RSS int64 `json:"rss"`
}

// Exit is how a worker process ended, in [WorkerStatus].
type Exit struct {
	PID         int    `json:"pid"`
	Incarnation uint64 `json:"incarnation"`
	// Cause is what ended it: "crash" (or an exit of its own), "failed to
	// start", "rolling restart", "memory limit" or "scale".
	Cause  string    `json:"cause"`
	Status string    `json:"status"` // "exit status 2", "signal: killed"
	Time   time.Time `json:"time"`
}

// WriteTable writes st as a short table for people, one line per worker
// process.
func (st *Status) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "supervisor pid %d, %d workers, up %s, %s\n", st.PID, st.Workers, st.Uptime.Round(time.Second), st.Addr)
	fmt.Fprintln(tw, "WORKER\tINC\tPID\tSTATE\tUPTIME\tRESTARTS\tRSS\tLAST EXIT")
	for _, p := range st.Processes {
		last := "-"
		if e := p.LastExit; e != nil {
			last = fmt.Sprintf("%s (%s) %s ago", e.Cause, e.Status, time.Since(e.Time).Round(time.Second))
		}
		rss := "-"
		if p.RSS > 0 {
			rss = fmt.Sprintf("%.1f MiB", float64(p.RSS)/(1<<20))
		}
		fmt.Fprintf(tw, "%d\t%d\t%d\t%s\t%s\t%d\t%s\t%s\n", p.Worker, p.Incarnation, p.PID, p.State,
			p.Uptime.Round(time.Second), p.Restarts, rss, last)
	}
	return tw.Flush()
}

// The control protocol: one JSON object per line each way, a request
// and its response, on a connection that may carry several.
type controlRequest struct {
	Cmd     string `json:"cmd"`               // "status", "reload", "stop", "scale"
	Workers int    `json:"workers,omitempty"` // scale
}

type controlResponse struct {
	OK     bool    `json:"ok"`
	Error  string  `json:"error,omitempty"`
	Status *Status `json:"status,omitempty"`
}

// ControlClient talks to a supervisor's control socket ([WithControl]).
// Each call opens a connection of its own; a ControlClient is safe for
// concurrent use.
type ControlClient struct {
	path string
}

// Control returns a client of the control socket at path. It does not
// connect: each call does.
func Control(path string) *ControlClient { return &ControlClient{path: path} }

// Status returns the supervisor's status.
func (cc *ControlClient) Status(ctx context.Context) (*Status, error) {
	resp, err := cc.do(ctx, controlRequest{Cmd: "status"}, false)
	if err != nil {
		return nil, err
	}
	if resp.Status == nil {
		return nil, errors.New("cluster: control: status: empty answer")
	}
	return resp.Status, nil
}

// Reload has the supervisor replace its workers one at a time, as SIGHUP
// does, and returns once that rolling restart is done, or its error when
// it was abandoned (a new worker did not become ready; the remaining old
// ones keep serving).
func (cc *ControlClient) Reload(ctx context.Context) error {
	_, err := cc.do(ctx, controlRequest{Cmd: "reload"}, false)
	return err
}

// Stop has the supervisor drain and stop every worker and exit, as SIGTERM
// does, and returns once the supervisor has closed the control socket (it
// is about to exit), or when ctx is done. A second Stop during the drain,
// like a second SIGTERM, kills the workers at once.
func (cc *ControlClient) Stop(ctx context.Context) error {
	_, err := cc.do(ctx, controlRequest{Cmd: "stop"}, true)
	return err
}

// Scale sets the number of workers to n (n >= 1) and returns once the
// change is done: new workers are started one at a time, each ready
// before the next (one that does not become ready stops the scale-up
// there, with its error); workers beyond n are drained one at a time,
// highest id first, as a rolling restart drains them. The number holds
// until the next Scale or a restart of the supervisor.
func (cc *ControlClient) Scale(ctx context.Context, n int) error {
	if n < 1 {
		return fmt.Errorf("cluster: control: scale: %d workers, want >= 1", n)
	}
	_, err := cc.do(ctx, controlRequest{Cmd: "scale", Workers: n}, false)
	return err
}

// do sends one request and reads its response; untilClosed then waits for
// the supervisor to close the connection.
func (cc *ControlClient) do(ctx context.Context, req controlRequest, untilClosed bool) (*controlResponse, error) {
	if ctx == nil {
		return nil, errors.New("cluster: control: nil context")
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", cc.path)
	if err != nil {
		return nil, fmt.Errorf("cluster: control: %w", err)
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Now()) })
	defer stop()
	b, _ := json.Marshal(req)
	_, werr := conn.Write(append(b, '\n'))
	// A refused peer is answered and disconnected at once, which can
	// break the write: the answer, when there is one, says why.
	r := bufio.NewReader(conn)
	line, err := r.ReadBytes('\n')
	if err != nil && werr != nil {
		return nil, fmt.Errorf("cluster: control: %s: %w", req.Cmd, ctxErr(ctx, werr))
	}
	if err != nil {
		if errors.Is(err, io.EOF) {
			err = errors.New("connection closed without an answer")
		}
		return nil, fmt.Errorf("cluster: control: %s: %w", req.Cmd, ctxErr(ctx, err))
	}
	var resp controlResponse
	if err := json.Unmarshal(line, &resp); err != nil {
		return nil, fmt.Errorf("cluster: control: %s: malformed answer: %w", req.Cmd, err)
	}
	if !resp.OK {
		return nil, fmt.Errorf("cluster: control: %s: %s", req.Cmd, resp.Error)
	}
	if untilClosed {
		if _, err := io.Copy(io.Discard, r); err != nil {
			return nil, fmt.Errorf("cluster: control: %s: waiting for the supervisor to exit: %w", req.Cmd, ctxErr(ctx, err))
		}
	}
	return &resp, nil
}

// ctxErr prefers the context's error to the deadline error it caused.
func ctxErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}

// ControlCommand runs one control command against the socket at path and
// writes its result to out: the command line of a program's own binary
// (see examples/cluster, "app -ctl status"). args is one of
//
//	status          the table of WriteTable
//	status -json    the Status as JSON
//	reload          rolling restart; returns when done
//	stop            drain and stop; returns when the supervisor is gone
//	scale N         set the number of workers; returns when done
//
// Anything else is an error that says the usage.
func ControlCommand(ctx context.Context, path string, args []string, out io.Writer) error {
	cc := Control(path)
	usage := errors.New("cluster: control: usage: status [-json] | reload | stop | scale N")
	if len(args) == 0 {
		return usage
	}
	switch cmd := args[0]; {
	case cmd == "status" && len(args) == 1, cmd == "status" && len(args) == 2 && strings.TrimLeft(args[1], "-") == "json":
		st, err := cc.Status(ctx)
		if err != nil {
			return err
		}
		if len(args) == 2 {
			enc := json.NewEncoder(out)
			enc.SetIndent("", "  ")
			return enc.Encode(st)
		}
		return st.WriteTable(out)
	case cmd == "reload" && len(args) == 1:
		if err := cc.Reload(ctx); err != nil {
			return err
		}
		_, err := fmt.Fprintln(out, "rolling restart done")
		return err
	case cmd == "stop" && len(args) == 1:
		if err := cc.Stop(ctx); err != nil {
			return err
		}
		_, err := fmt.Fprintln(out, "stopped")
		return err
	case cmd == "scale" && len(args) == 2:
		n, err := strconv.Atoi(args[1])
		if err != nil || n < 1 {
			return fmt.Errorf("cluster: control: scale %q: want a number of workers >= 1", args[1])
		}
		if err := cc.Scale(ctx, n); err != nil {
			return err
		}
		_, err = fmt.Fprintf(out, "%d workers\n", n)
		return err
	}
	return usage
}
