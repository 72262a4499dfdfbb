//go:build linux

package deploy

import (
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/shipshape-go/shipshape/internal/testenv"
)

// compose.yaml runs on podman through the translation below, key by key,
// to the `podman create` options that Docker Compose gives the Docker
// engine for the same keys. Neither Compose implementation that Debian 12
// packages runs the file: podman-compose 1.0.3 passes network_mode
// "service:nginx" to podman as it is (podman knows "container:"), wraps
// every exec-form health check in /bin/sh -c (the distroless image has no
// shell), ignores pids_limit, stop_grace_period, memswap_limit and the
// depends_on conditions; docker-compose 1.29 refuses the top-level name
// and depends_on's restart. `podman play kube` has no init, ulimits,
// per-container restart policy or stop grace period. So the tests apply
// the file's own settings, all of them: decoding is strict (an unknown key
// fails TestCompose) and TestComposeTranslationCoversEveryKey fails when a
// key has no translation here.

// stack is compose.yaml brought up on podman under a project name of the
// test's.
type stack struct {
	p       *testenv.Podman
	project string
	dir     string // of compose.yaml: relative paths are relative to it
	file    composeFile
	// What the test substitutes, per service: local images for public
	// ones, loopback ports for the published ones, bind-mount sources,
	// extra environment (debug flags). Each substitution must match a
	// setting in the file.
	images map[string]string
	ports  map[string][]string
	binds  map[string]string
	env    map[string]map[string]string

	network string
	ids     map[string]string // service → container id
	nofile  uint64            // this machine's hard limit of open files
}

// composeKeys translates each key of composeService into podman create
// options; keys without options of their own (image, command, build,
// depends_on) are handled by create and up, and listed with nil.
var composeKeys = map[string]func(s *stack, name string, svc composeService) []string{
	"image":      nil,
	"build":      nil,
	"command":    nil,
	"depends_on": nil,
	"entrypoint": func(_ *stack, _ string, svc composeService) []string {
		if svc.Entrypoint == nil {
			return nil
		}
		b, _ := json.Marshal(svc.Entrypoint)
		return []string{"--entrypoint", string(b)}
	},
	"restart": func(_ *stack, _ string, svc composeService) []string { return opt("--restart", svc.Restart) },
	"ports": func(s *stack, name string, svc composeService) []string {
		ports := svc.Ports
		if sub, ok := s.ports[name]; ok {
			ports = sub
		}
		var out []string
		for _, p := range ports {
			out = append(out, "-p", p)
		}
		return out
	},
	"volumes": func(s *stack, _ string, svc composeService) []string {
		var out []string
		for _, v := range svc.Volumes {
			f := strings.SplitN(v, ":", 2)
			src := f[0]
			switch {
			case s.binds[src] != "":
				src = s.binds[src]
			case strings.HasPrefix(src, ".") || strings.HasPrefix(src, "/"):
				src = filepath.Join(s.dir, src)
			default: // a named volume of the project
				src = s.project + "_" + src
			}
			out = append(out, "-v", src+":"+f[1])
		}
		return out
	},
	"tmpfs": func(_ *stack, _ string, svc composeService) []string {
		var out []string
		for _, m := range svc.Tmpfs {
			out = append(out, "--tmpfs", m)
		}
		return out
	},
	"read_only": func(_ *stack, _ string, svc composeService) []string {
		if !svc.ReadOnly {
			return nil
		}
		// podman's --read-only also mounts tmpfs on /tmp, /var/tmp and
		// /run unless told not to; Docker's does not.
		return []string{"--read-only", "--read-only-tmpfs=false"}
	},
	"user": func(_ *stack, _ string, svc composeService) []string { return opt("--user", svc.User) },
	"cap_drop": func(_ *stack, _ string, svc composeService) []string {
		var out []string
		for _, c := range svc.CapDrop {
			out = append(out, "--cap-drop", c)
		}
		return out
	},
	"cap_add": func(_ *stack, _ string, svc composeService) []string {
		var out []string
		for _, c := range svc.CapAdd {
			out = append(out, "--cap-add", c)
		}
		return out
	},
	"security_opt": func(_ *stack, _ string, svc composeService) []string {
		var out []string
		for _, o := range svc.Security {
			out = append(out, "--security-opt", o)
		}
		return out
	},
	"init": func(_ *stack, _ string, svc composeService) []string {
		if svc.Init {
			return []string{"--init"}
		}
		return nil
	},
	"stop_grace_period": func(_ *stack, _ string, svc composeService) []string {
		d, err := time.ParseDuration(svc.StopGrace)
		if err != nil {
			return nil
		}
		return []string{"--stop-timeout", strconv.Itoa(int(math.Ceil(d.Seconds())))}
	},
	"mem_limit":     func(_ *stack, _ string, svc composeService) []string { return opt("--memory", svc.MemLimit) },
	"memswap_limit": func(_ *stack, _ string, svc composeService) []string { return opt("--memory-swap", svc.MemSwap) },
	"pids_limit": func(_ *stack, _ string, svc composeService) []string {
		if svc.PidsLimit == 0 {
			return nil
		}
		return []string{"--pids-limit", strconv.Itoa(svc.PidsLimit)}
	},
	"ulimits": func(s *stack, _ string, svc composeService) []string {
		if len(svc.Ulimits) == 0 {
			return nil
		}
		// Any --ulimit replaces podman's defaults: keep those the file
		// does not set (see testenv.Podman.DefaultUlimits).
		limits := map[string]string{}
		for _, d := range s.p.DefaultUlimits() {
			name, value, _ := strings.Cut(d, "=")
			limits[name] = value
		}
		for name, l := range svc.Ulimits {
			soft, hard := uint64(l.Soft), uint64(l.Hard)
			// A limit above this machine's hard limit cannot be set by
			// runc without CAP_SYS_RESOURCE, which the test machines'
			// sandbox lacks: it is lowered to the hard limit (see
			// docs/deploy.md, troubleshooting).
			if name == "nofile" && hard > s.nofile {
				soft, hard = min(soft, s.nofile), s.nofile
			}
			limits[name] = fmt.Sprintf("%d:%d", soft, hard)
		}
		var out []string
		for _, name := range slices.Sorted(maps.Keys(limits)) {
			out = append(out, "--ulimit", name+"="+limits[name])
		}
		return out
	},
	"healthcheck": func(_ *stack, _ string, svc composeService) []string {
		h := svc.Health
		if h == nil {
			return nil
		}
		// podman takes an exec-form command as a JSON array without the
		// leading "CMD" (and reads a one-element array as a shell
		// command: the files use none).
		b, _ := json.Marshal(h.Test[1:])
		out := []string{"--health-cmd", string(b)}
		out = append(out, opt("--health-interval", h.Interval)...)
		out = append(out, opt("--health-timeout", h.Timeout)...)
		out = append(out, opt("--health-start-period", h.StartPeriod)...)
		if h.Retries > 0 {
			out = append(out, "--health-retries", strconv.Itoa(h.Retries))
		}
		return out
	},
	"logging": func(_ *stack, _ string, svc composeService) []string {
		if svc.Logging == nil {
			return nil
		}
		out := opt("--log-driver", svc.Logging.Driver)
		for _, k := range slices.Sorted(maps.Keys(svc.Logging.Options)) {
			out = append(out, "--log-opt", k+"="+svc.Logging.Options[k])
		}
		return out
	},
	"network_mode": func(s *stack, name string, svc composeService) []string {
		if other, ok := strings.CutPrefix(svc.Network, "service:"); ok {
			return []string{"--network", "container:" + s.containerName(other)}
		}
		return []string{"--network", s.network, "--network-alias", name}
	},
	"environment": func(s *stack, name string, svc composeService) []string {
		env := maps.Clone(svc.Env)
		if env == nil {
			env = map[string]string{}
		}
		maps.Copy(env, s.env[name])
		var out []string
		for _, k := range slices.Sorted(maps.Keys(env)) {
			out = append(out, "-e", k+"="+env[k])
		}
		return out
	},
}

func opt(flag, value string) []string {
	if value == "" {
		return nil
	}
	return []string{flag, value}
}

func (s *stack) containerName(service string) string { return s.project + "-" + service + "-1" }

// createArgs are the podman create options, image and command of a
// service.
func (s *stack) createArgs(t *testing.T, name string) []string {
	t.Helper()
	svc := s.file.Services[name]
	args := []string{"--name", s.containerName(name), "--label", "com.docker.compose.project=" + s.project, "--label", "com.docker.compose.service=" + name}
	typ := reflect.TypeOf(svc)
	for i := range typ.NumField() {
		key := strings.Split(typ.Field(i).Tag.Get("yaml"), ",")[0]
		fn, ok := composeKeys[key]
		if !ok {
			t.Fatalf("compose key %q has no podman translation (composeKeys)", key)
		}
		if fn != nil {
			args = append(args, fn(s, name, svc)...)
		}
	}
	image := svc.Image
	if sub, ok := s.images[name]; ok {
		image = sub
	} else if svc.Build != nil {
		t.Fatalf("service %s is built from a Dockerfile: the test must give its image", name)
	}
	return append(append(args, image), svc.Command...)
}

// order is the services with every one after what it depends on.
func (s *stack) order(t *testing.T) []string {
	t.Helper()
	var out []string
	seen := map[string]int{} // 1 visiting, 2 done
	var visit func(name string)
	visit = func(name string) {
		switch seen[name] {
		case 1:
			t.Fatalf("compose.yaml: dependency cycle through %s", name)
		case 2:
			return
		}
		seen[name] = 1
		svc := s.file.Services[name]
		deps := slices.Sorted(maps.Keys(svc.DependsOn))
		if other, ok := strings.CutPrefix(svc.Network, "service:"); ok && !slices.Contains(deps, other) {
			deps = append(deps, other)
		}
		for _, d := range deps {
			visit(d)
		}
		seen[name] = 2
		out = append(out, name)
	}
	for _, name := range slices.Sorted(maps.Keys(s.file.Services)) {
		visit(name)
	}
	return out
}

// up creates the project's network and starts the services in order,
// waiting for each dependency's condition (service_healthy: its health
// check passes, run every 500ms since podman cannot schedule it here).
// Every substitution must have matched the file.
func (s *stack) up(t *testing.T) {
	t.Helper()
	var nofile syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &nofile); err != nil {
		t.Fatal(err)
	}
	s.nofile = nofile.Max
	for name := range s.images {
		if _, ok := s.file.Services[name]; !ok {
			t.Fatalf("image substitution for %s, which compose.yaml does not have", name)
		}
	}
	for name, ports := range s.ports {
		if len(s.file.Services[name].Ports) != len(ports) {
			t.Fatalf("port substitution for %s: %v for %v", name, ports, s.file.Services[name].Ports)
		}
	}
	for src := range s.binds {
		found := false
		for _, svc := range s.file.Services {
			for _, v := range svc.Volumes {
				found = found || strings.HasPrefix(v, src+":")
			}
		}
		if !found {
			t.Fatalf("bind substitution for %s, which no service mounts", src)
		}
	}
	s.network = s.project + "_default"
	s.p.Run(t, "network", "create", "--label", testenv.Label(), "--label", "com.docker.compose.project="+s.project, s.network)
	t.Cleanup(func() { _, _ = s.p.Try("network", "rm", "-f", s.network) })
	s.ids = map[string]string{}
	for _, name := range s.order(t) {
		for dep, d := range s.file.Services[name].DependsOn {
			if d.Condition == "service_healthy" {
				s.waitHealthy(t, dep, time.Minute)
			}
		}
		args := s.createArgs(t, name)
		t.Logf("%s: podman create %s", name, strings.Join(args, " "))
		id := s.p.Create(t, "create", args...)
		s.ids[name] = id
		if h := s.file.Services[name].Health; h != nil {
			var got []string
			if err := json.Unmarshal([]byte(s.p.Inspect(t, id, "{{json .Config.Healthcheck.Test}}")), &got); err != nil || !slices.Equal(got, h.Test) {
				t.Fatalf("%s: podman made the health check %q of %q", name, got, h.Test)
			}
		}
		s.p.Run(t, "start", id)
	}
}

// waitHealthy runs a service's health check until it passes.
func (s *stack) waitHealthy(t *testing.T, name string, timeout time.Duration) {
	t.Helper()
	id := s.ids[name]
	if _, err := testenv.WaitFor(name+" healthy", timeout, 500*time.Millisecond, func() bool {
		return runHealthCheck(s.p, id) == nil
	}); err != nil {
		out, _ := s.p.Try("healthcheck", "run", id)
		t.Fatalf("%v (last check: %s)", err, out)
	}
}
