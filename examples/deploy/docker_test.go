package deploy

import (
	"bufio"
	"bytes"
	"debug/elf"
	"encoding/json"
	"maps"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/shipshape-go/shipshape/internal/testenv"
)

// The Dockerfile and compose.yaml are checked statically here, so that a
// machine without podman still catches a broken setting, and what runs
// without an engine (the binary they build, its health check) is run.
// container_test.go and compose_test.go build and run them for real.

// instruction is one Dockerfile instruction, continuation lines joined.
type instruction struct {
	cmd  string // upper case: FROM, RUN, …
	args string
}

// stage is a build stage: FROM image [AS name] and its instructions.
type stage struct {
	image, name string
	ins         []instruction
}

func (s stage) all(cmd string) []string {
	var out []string
	for _, in := range s.ins {
		if in.cmd == cmd {
			out = append(out, in.args)
		}
	}
	return out
}

func (s stage) last(cmd string) string {
	all := s.all(cmd)
	if len(all) == 0 {
		return ""
	}
	return all[len(all)-1]
}

// env is the stage's ENV settings (key=value form, several per line).
func (s stage) env() map[string]string {
	m := map[string]string{}
	for _, a := range s.all("ENV") {
		for _, kv := range strings.Fields(a) {
			if k, v, ok := strings.Cut(kv, "="); ok {
				m[k] = v
			}
		}
	}
	return m
}

// dockerfile is a parsed Dockerfile: the ARGs before the first FROM
// (name → default) and the stages, whose images have those ARGs expanded.
type dockerfile struct {
	args   map[string]string
	stages []stage
}

func parseDockerfile(t *testing.T, text string) []stage {
	t.Helper()
	return parseDockerfileArgs(t, text).stages
}

func parseDockerfileArgs(t *testing.T, text string) dockerfile {
	t.Helper()
	df := dockerfile{args: map[string]string{}}
	var stages []stage
	var logical string
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, "#") || (line == "" && logical == "") {
			continue
		}
		if rest, ok := strings.CutSuffix(line, `\`); ok {
			logical += rest + " "
			continue
		}
		logical += line
		cmd, args, _ := strings.Cut(strings.TrimSpace(logical), " ")
		logical = ""
		in := instruction{cmd: strings.ToUpper(cmd), args: strings.Join(strings.Fields(args), " ")}
		if in.cmd == "ARG" && len(stages) == 0 {
			name, def, _ := strings.Cut(in.args, "=")
			df.args[name] = def
			continue
		}
		if in.cmd == "FROM" {
			f := strings.Fields(in.args)
			st := stage{image: os.Expand(f[0], func(name string) string { return df.args[name] })}
			if len(f) == 3 && strings.EqualFold(f[1], "AS") {
				st.name = f[2]
			}
			stages = append(stages, st)
			continue
		}
		require.NotEmpty(t, stages, "%s before FROM", in.cmd)
		stages[len(stages)-1].ins = append(stages[len(stages)-1].ins, in)
	}
	require.NoError(t, sc.Err())
	df.stages = stages
	return df
}

// execForm decodes an exec-form (JSON array) command.
func execForm(t *testing.T, what, s string) []string {
	t.Helper()
	var argv []string
	require.NoError(t, json.Unmarshal([]byte(s), &argv), "%s must be in exec form (a JSON array, no shell in distroless): %s", what, s)
	require.NotEmpty(t, argv, what)
	return argv
}

// healthcheckArgv is the exec-form command of a HEALTHCHECK instruction.
func healthcheckArgv(t *testing.T, args string) []string {
	t.Helper()
	_, cmd, ok := strings.Cut(args, "CMD ")
	require.True(t, ok, "HEALTHCHECK without CMD: %s", args)
	return execForm(t, "HEALTHCHECK CMD", cmd)
}

func portOf(t *testing.T, addr string) string {
	t.Helper()
	_, port, err := net.SplitHostPort(addr)
	require.NoError(t, err, "address %q", addr)
	return port
}

func TestDockerfile(t *testing.T) {
	text := readFile(t, "Dockerfile")
	df := parseDockerfileArgs(t, text)
	stages := df.stages
	require.Len(t, stages, 2, "stages: build, then the runtime image")
	build, final := stages[0], stages[1]
	entry := execForm(t, "ENTRYPOINT", final.last("ENTRYPOINT"))

	tests := []struct {
		name  string
		check func(t *testing.T)
	}{
		{"builds with Go 1.26", func(t *testing.T) {
			assert.Equal(t, "golang:1.26", build.image, "build image")
			assert.Equal(t, "build", build.name, "build stage name")
		}},
		{"the base images are build arguments with the public images as defaults", func(t *testing.T) {
			assert.Equal(t, map[string]string{"GO_IMAGE": "golang:1.26", "RUNTIME_IMAGE": "gcr.io/distroless/static-debian12:nonroot"}, df.args, "ARGs before the first FROM")
			var froms []string
			for _, line := range strings.Split(text, "\n") {
				if f := strings.Fields(line); len(f) > 1 && f[0] == "FROM" {
					froms = append(froms, f[1])
				}
			}
			assert.Equal(t, []string{"${GO_IMAGE}", "${RUNTIME_IMAGE}"}, froms, "FROM lines name the arguments")
			assert.Contains(t, build.all("ARG"), "GOPROXY", "a module proxy can be given (the tests use the host's module cache)")
		}},
		{"static, path-free binary of the examples module's server", func(t *testing.T) {
			var goBuild string
			for _, r := range build.all("RUN") {
				if strings.Contains(r, "go build") {
					goBuild = r
				}
			}
			require.NotEmpty(t, goBuild, "no RUN … go build")
			for _, want := range []string{"CGO_ENABLED=0", "-trimpath", `-ldflags="-s -w"`, "./server", "-o /out/shipshape"} {
				assert.Contains(t, goBuild, want, "go build command")
			}
			assert.Equal(t, "/src/examples", build.last("WORKDIR"), "built in the examples module")
			assert.Equal(t, "off", build.env()["GOWORK"], "GOWORK=off: the examples module's own go.sum, not the workspace's")
			for _, mod := range []string{"examples", "ratelimit/redisstore", "sentryreport"} {
				assert.Contains(t, build.all("COPY"), mod+"/go.mod "+mod+"/go.sum ./"+mod+"/", "go.mod of %s copied before go mod download", mod)
			}
		}},
		{"runs on distroless static as nonroot", func(t *testing.T) {
			assert.Equal(t, "gcr.io/distroless/static-debian12:nonroot", final.image, "runtime image")
			assert.Contains(t, []string{"nonroot", "nonroot:nonroot", "65532", "65532:65532"}, final.last("USER"), "USER")
			assert.Contains(t, final.all("COPY"), "--from=build /out/shipshape "+entry[0], "the binary is copied from the build stage to the entrypoint")
			assert.Equal(t, "SIGTERM", final.last("STOPSIGNAL"), "STOPSIGNAL")
		}},
		{"the health check is the binary's own, on the exposed port", func(t *testing.T) {
			argv := healthcheckArgv(t, final.last("HEALTHCHECK"))
			require.Len(t, argv, 3, "HEALTHCHECK CMD %q", argv)
			assert.Equal(t, entry[0], argv[0], "health check binary is the entrypoint")
			assert.Equal(t, "-healthcheck", argv[1])
			u, err := url.Parse(argv[2])
			require.NoError(t, err)
			assert.Equal(t, "127.0.0.1", u.Hostname(), "health check host")
			assert.Equal(t, "/healthz", u.Path, "health check path")
			assert.Equal(t, final.last("EXPOSE"), u.Port(), "health check port is the exposed one")
			assert.Equal(t, final.last("EXPOSE"), portOf(t, final.env()["ADDR"]), "ADDR port is the exposed one")
			assert.Contains(t, final.last("HEALTHCHECK"), "--timeout=", "a hung check must time out")
		}},
		{"the log directory belongs to nonroot", func(t *testing.T) {
			dir := final.env()["LOG_DIR"]
			require.NotEmpty(t, dir, "ENV LOG_DIR")
			found := false
			for _, c := range final.all("COPY") {
				f := strings.Fields(c)
				dst := strings.TrimSuffix(f[len(f)-1], "/")
				if slices.Contains(f, "--chown=65532:65532") && (dst == dir || dst == path.Dir(dir)) {
					found = true
				}
			}
			assert.True(t, found, "no COPY --chown=65532:65532 … %s: a named volume there would be root's (TestDockerImage checks the result)", dir)
		}},
		{"the build context leaves out .git and binaries", func(t *testing.T) {
			ignore := readFile(t, "Dockerfile.dockerignore")
			for _, want := range []string{".git", "examples/server/server", "examples/deploy/tls"} {
				assert.Contains(t, strings.Fields(ignore), want, "Dockerfile.dockerignore")
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, tt.check)
	}
}

// TestProductionBinaryIsStatic checks the binary built as the Dockerfile
// builds it: distroless static has no dynamic loader and no libc.
func TestProductionBinaryIsStatic(t *testing.T) {
	f, err := elf.Open(productionBinary(t))
	require.NoError(t, err)
	defer f.Close()
	for _, p := range f.Progs {
		assert.NotEqual(t, elf.PT_INTERP, p.Type, "the binary asks for a dynamic loader")
	}
	libs, err := f.ImportedLibraries()
	require.NoError(t, err)
	assert.Empty(t, libs, "shared libraries the binary needs")
}

// TestHealthCheckCommand runs the command of the Dockerfile's HEALTHCHECK
// (and compose's) against a real server: exit 0 only for a 2xx answer.
func TestHealthCheckCommand(t *testing.T) {
	bin := productionBinary(t)
	port := testenv.FreePort(t)
	addr := testenv.Addr(port)
	cmd := exec.Command(bin, "-addr", addr, "-log-dir", "", "-log-format", "none")
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	testenv.Start(t, "shipshape", cmd, addr)
	closed := testenv.FreePort(t)

	tests := []struct {
		name string
		url  string
		want int
	}{
		{"healthy", "http://" + addr + "/healthz", 0},
		{"not 2xx", "http://" + addr + "/nope", 1},
		{"nothing listening", "http://" + testenv.Addr(closed) + "/healthz", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := exec.Command(bin, "-healthcheck", tt.url)
			c.Env = []string{"PATH=" + os.Getenv("PATH")}
			start := time.Now()
			out, _ := c.CombinedOutput()
			assert.Equal(t, tt.want, c.ProcessState.ExitCode(), "exit status; output:\n%s", out)
			assert.Less(t, time.Since(start), 5*time.Second, "the check must finish before HEALTHCHECK --timeout")
		})
	}
}

// composeFile is the part of the Compose specification compose.yaml uses;
// decoding with KnownFields makes a misspelt key (read_onyl) an error
// instead of a silently missing setting.
type composeFile struct {
	Name     string                    `yaml:"name"`
	Services map[string]composeService `yaml:"services"`
	Volumes  map[string]any            `yaml:"volumes"`
}

type composeService struct {
	Image      string            `yaml:"image"`
	Build      *composeBuild     `yaml:"build"`
	Entrypoint []string          `yaml:"entrypoint"`
	Command    []string          `yaml:"command"`
	Restart    string            `yaml:"restart"`
	Ports      []string          `yaml:"ports"`
	Volumes    []string          `yaml:"volumes"`
	Tmpfs      []string          `yaml:"tmpfs"`
	ReadOnly   bool              `yaml:"read_only"`
	User       string            `yaml:"user"`
	CapDrop    []string          `yaml:"cap_drop"`
	CapAdd     []string          `yaml:"cap_add"`
	Security   []string          `yaml:"security_opt"`
	Init       bool              `yaml:"init"`
	StopGrace  string            `yaml:"stop_grace_period"`
	MemLimit   string            `yaml:"mem_limit"`
	MemSwap    string            `yaml:"memswap_limit"`
	PidsLimit  int               `yaml:"pids_limit"`
	Ulimits    map[string]limit  `yaml:"ulimits"`
	Health     *composeHealth    `yaml:"healthcheck"`
	Logging    *composeLogging   `yaml:"logging"`
	Network    string            `yaml:"network_mode"`
	DependsOn  map[string]depend `yaml:"depends_on"`
	Env        map[string]string `yaml:"environment"`
}

type composeBuild struct {
	Context    string `yaml:"context"`
	Dockerfile string `yaml:"dockerfile"`
}

type limit struct {
	Soft int `yaml:"soft"`
	Hard int `yaml:"hard"`
}

type composeHealth struct {
	Test        []string `yaml:"test"`
	Interval    string   `yaml:"interval"`
	Timeout     string   `yaml:"timeout"`
	Retries     int      `yaml:"retries"`
	StartPeriod string   `yaml:"start_period"`
}

type composeLogging struct {
	Driver  string            `yaml:"driver"`
	Options map[string]string `yaml:"options"`
}

type depend struct {
	Condition string `yaml:"condition"`
	Restart   bool   `yaml:"restart"`
}

// tmpfsSize is the size= of the service's tmpfs at path; a tmpfs without
// one, or none at path, fails the test.
func tmpfsSize(t *testing.T, s composeService, path string) int64 {
	t.Helper()
	for _, m := range s.Tmpfs {
		target, opts, _ := strings.Cut(m, ":")
		if target != path {
			continue
		}
		for _, o := range strings.Split(opts, ",") {
			if v, ok := strings.CutPrefix(o, "size="); ok {
				return bytesOf(t, strings.ToUpper(v))
			}
		}
		t.Fatalf("tmpfs %s has no size=: the root file system is read-only, and the log directory needs a cap", m)
	}
	t.Fatalf("no tmpfs at %s (tmpfs: %v): the root file system is read-only", path, s.Tmpfs)
	return 0
}

// mounts maps a service's bind and volume mount targets to their sources.
func (s composeService) mounts() map[string]string {
	m := map[string]string{}
	for _, v := range s.Volumes {
		f := strings.Split(v, ":")
		if len(f) >= 2 {
			m[f[1]] = f[0]
		}
	}
	return m
}

// nginxDirective returns the arguments of every `name …;` in nginx.conf.
func nginxDirective(conf, name string) []string {
	var out []string
	for _, m := range regexp.MustCompile(`(?m)^\s*`+regexp.QuoteMeta(name)+`\s+([^;{}\n]+);`).FindAllStringSubmatch(conf, -1) {
		out = append(out, strings.TrimSpace(m[1]))
	}
	return out
}

func TestCompose(t *testing.T) {
	var cf composeFile
	dec := yaml.NewDecoder(bytes.NewReader([]byte(readFile(t, "compose.yaml"))))
	dec.KnownFields(true)
	require.NoError(t, dec.Decode(&cf), "compose.yaml")
	require.ElementsMatch(t, []string{"app", "nginx", "redis"}, slices.Collect(maps.Keys(cf.Services)), "services")
	app, ngx, redis := cf.Services["app"], cf.Services["nginx"], cf.Services["redis"]
	nginxConf := readFile(t, "nginx.conf")
	image := parseDockerfile(t, readFile(t, "Dockerfile"))[1]

	for name, s := range cf.Services {
		t.Run(name+" is hardened, capped and supervised", func(t *testing.T) {
			assert.Equal(t, "always", s.Restart, "restart")
			assert.True(t, s.ReadOnly, "read_only")
			assert.Equal(t, []string{"ALL"}, s.CapDrop, "cap_drop")
			assert.Contains(t, s.Security, "no-new-privileges:true", "security_opt")
			assert.True(t, s.Init, "init")
			grace, err := time.ParseDuration(s.StopGrace)
			if assert.NoError(t, err, "stop_grace_period %q", s.StopGrace) {
				assert.Greater(t, grace, 12*time.Second, "stop_grace_period: 10s of drain plus margin")
			}
			assert.NotEmpty(t, s.MemLimit, "mem_limit")
			assert.Equal(t, s.MemLimit, s.MemSwap, "memswap_limit = mem_limit: no swap")
			assert.Positive(t, s.PidsLimit, "pids_limit")
			if assert.NotNil(t, s.Health, "healthcheck") && assert.NotEmpty(t, s.Health.Test, "healthcheck test") {
				assert.Equal(t, "CMD", s.Health.Test[0], "healthcheck in exec form")
				assert.NotEmpty(t, s.Health.Timeout, "healthcheck timeout")
			}
			if assert.NotNil(t, s.Logging, "logging") {
				assert.NotEmpty(t, s.Logging.Options["max-size"], "log rotation (max-size)")
			}
			assert.NotEqual(t, "0", s.User, "user: not root")
		})
	}

	t.Run("app: built from the Dockerfile, checked like the image", func(t *testing.T) {
		require.NotNil(t, app.Build, "build")
		assert.FileExists(t, filepath.Join(app.Build.Context, app.Build.Dockerfile), "build.context + build.dockerfile")
		assert.FileExists(t, filepath.Join(app.Build.Context, "go.mod"), "the build context is the module root")
		require.NotNil(t, app.Health, "healthcheck")
		assert.Equal(t, append([]string{"CMD"}, healthcheckArgv(t, image.last("HEALTHCHECK"))...), app.Health.Test, "the same health check as the image")
		assert.Equal(t, "65532:65532", app.User, "user: the image's nonroot")
		assert.Equal(t, image.env()["LOG_DIR"], app.Env["LOG_DIR"], "LOG_DIR")
		logCap := tmpfsSize(t, app, app.Env["LOG_DIR"])
		rotate := bytesOf(t, app.Env["LOG_MAX_SIZE"])
		backups, err := strconv.Atoi(app.Env["LOG_MAX_BACKUPS"])
		require.NoError(t, err, "LOG_MAX_BACKUPS")
		// The current file, one rotated file being compressed, and the
		// backups (counted uncompressed, the worst case).
		assert.LessOrEqual(t, rotate*int64(backups+2), logCap, "LOG_MAX_SIZE × (LOG_MAX_BACKUPS+2) within the log tmpfs: rotation keeps the files below the cap")
		assert.Less(t, bytesOf(t, app.Env["GOMEMLIMIT"])+logCap, bytesOf(t, strings.ToUpper(app.MemLimit)), "GOMEMLIMIT + the log tmpfs (memory too) < mem_limit")
	})

	t.Run("app: behind nginx on loopback, trusting nginx only", func(t *testing.T) {
		assert.Equal(t, "service:nginx", app.Network, "network_mode: shares nginx's network namespace")
		assert.Empty(t, app.Ports, "the application publishes no port: only nginx reaches it")
		upstream := nginxDirective(nginxConf, "server")
		assert.Contains(t, upstream, app.Env["ADDR"], "nginx.conf's upstream is the application's ADDR")
		assert.Equal(t, "127.0.0.1/32", app.Env["TRUSTED_PROXIES"], "TRUSTED_PROXIES: nginx's address in the shared namespace")
		require.NotNil(t, app.Health, "healthcheck")
		require.NotEmpty(t, app.Health.Test, "healthcheck test")
		u, err := url.Parse(app.Health.Test[len(app.Health.Test)-1])
		require.NoError(t, err, "health check URL")
		assert.Equal(t, app.Env["ADDR"], u.Host, "health check address")
		assert.Equal(t, depend{Condition: "service_started", Restart: true}, app.DependsOn["nginx"], "depends_on nginx: restarted with it")
	})

	t.Run("app: rate limits in redis", func(t *testing.T) {
		u, err := url.Parse(app.Env["REDIS_URL"])
		require.NoError(t, err, "REDIS_URL")
		assert.Equal(t, "redis", u.Scheme)
		assert.Contains(t, cf.Services, u.Hostname(), "REDIS_URL names a service")
		assert.Equal(t, "service_healthy", app.DependsOn[u.Hostname()].Condition, "waits for a healthy redis")
		assert.Contains(t, redis.Command, "--maxmemory", "redis memory cap")
		assert.Equal(t, []string{"CMD", "redis-cli", "ping"}, redis.Health.Test, "redis healthcheck")
	})

	t.Run("nginx: runs the tested nginx.conf with its paths mounted", func(t *testing.T) {
		m := ngx.mounts()
		assert.Equal(t, "./nginx.conf", m["/etc/nginx/nginx.conf"], "nginx.conf mount")
		for _, c := range append(nginxDirective(nginxConf, "ssl_certificate"), nginxDirective(nginxConf, "ssl_certificate_key")...) {
			assert.Equal(t, "./tls", m[path.Dir(c)], "mount for %s (gen-cert.sh writes ./tls)", c)
		}
		roots := nginxDirective(nginxConf, "root")
		require.Len(t, roots, 1, "root directives")
		src, ok := m[roots[0]+"/static"]
		if assert.True(t, ok, "mount at %s/static", roots[0]) {
			assert.DirExists(t, src, "static files mounted into nginx")
			assert.FileExists(t, filepath.Join(src, fingerprinted), "static files mounted into nginx")
		}
		writable := append(nginxDirective(nginxConf, "pid"), nginxDirective(nginxConf, "client_body_temp_path")...)
		writable = append(writable, nginxDirective(nginxConf, "proxy_temp_path")...)
		for _, w := range writable {
			covered := false
			for _, tmp := range ngx.Tmpfs {
				if strings.HasPrefix(w, strings.TrimSuffix(tmp, "/")+"/") {
					covered = true
				}
			}
			assert.True(t, covered, "%s is written by nginx but on the read-only root (tmpfs: %v)", w, ngx.Tmpfs)
		}
		assert.ElementsMatch(t, []string{"80:80", "443:443"}, ngx.Ports, "published ports")
		assert.Equal(t, []string{"nginx", "-g", "daemon off;"}, ngx.Entrypoint, "entrypoint: nginx in the foreground")
		assert.Subset(t, []string{"CHOWN", "SETGID", "SETUID", "NET_BIND_SERVICE"}, ngx.CapAdd, "cap_add: only what the master needs")
	})
}
