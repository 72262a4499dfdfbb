//go:build linux

package testenv

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Podman runs the podman command for tests, as root, with a
// containers.conf of its own (see [LookPodman]). Its methods are safe for
// concurrent use.
type Podman struct {
	bin     string
	env     []string
	conf    string
	dir     string // working directory of the podman commands
	ulimits []string
}

var podman struct {
	once sync.Once
	p    *Podman
	err  error
	skip string // why podman cannot run here (not a failure outside CI)
}

// PodmanLabel marks every container a test starts; its value is the pid of
// the test process, so that a later run removes what a killed one left.
const PodmanLabel = "io.shipshape.test.pid"

// LookPodman returns the podman of this machine set up for tests, or skips
// the test (fails it under CI=true) when podman or runc is missing or
// podman cannot run containers here (it must run as root).
//
// The setup is what the deploy tests found they need on the test
// machines, in a containers.conf that only the tests' podman commands read
// (CONTAINERS_CONF): the runc runtime and the cgroupfs manager (the
// machines use cgroup v1, which crun refuses, and run no systemd), catatonit
// as the init of `--init`, events in a file, and default ulimits no higher
// than this process's own hard limits (runc cannot raise them; podman's
// default nofile of 1048576 is refused).
func LookPodman(t testing.TB) *Podman {
	t.Helper()
	bin := LookPath(t, "podman", "podman")
	LookPath(t, "runc", "runc")
	podman.once.Do(func() { podman.p, podman.skip, podman.err = setupPodman(bin) })
	if podman.err != nil {
		t.Fatal(podman.err)
	}
	if podman.skip != "" {
		if InCI() {
			t.Fatal(podman.skip + "; CI=true, so this is a failure")
		}
		t.Skip(podman.skip)
	}
	return podman.p
}

func setupPodman(bin string) (*Podman, string, error) {
	if os.Geteuid() != 0 {
		return nil, "testenv: the podman tests run containers as root (cgroup limits, --privileged systemd); run them as root", nil
	}
	var nofile, nproc unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &nofile); err != nil {
		return nil, "", fmt.Errorf("testenv: getrlimit: %w", err)
	}
	if err := unix.Getrlimit(unix.RLIMIT_NPROC, &nproc); err != nil {
		return nil, "", fmt.Errorf("testenv: getrlimit: %w", err)
	}
	// conmon runs with at most 32768 processes whatever this process has,
	// and runc cannot raise a limit: stay below both.
	procs := min(nproc.Max, 4096)
	initPath := "/usr/bin/catatonit"
	if !isExecutable(initPath) {
		initPath = "/usr/libexec/podman/catatonit"
	}
	ulimits := []string{fmt.Sprintf("nofile=%d:%d", nofile.Max, nofile.Max), fmt.Sprintf("nproc=%d:%d", procs, procs)}
	conf := fmt.Sprintf(`# Written by internal/testenv for the tests' podman commands only.
[containers]
default_ulimits = [%q, %q]
init_path = %q
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
`, ulimits[0], ulimits[1], initPath)
	// One file per content, shared by the runs that need the same: none
	// is left behind per run. Written under another name and renamed, so
	// that a concurrent run never reads half of it.
	sum := sha256.Sum256([]byte(conf))
	path := filepath.Join(os.TempDir(), "shipshape-podman-"+hex.EncodeToString(sum[:8])+".conf")
	tmp, err := os.CreateTemp(os.TempDir(), "shipshape-podman-*.tmp")
	if err != nil {
		return nil, "", fmt.Errorf("testenv: %w", err)
	}
	_, err = tmp.WriteString(conf)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp.Name(), 0o644)
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return nil, "", fmt.Errorf("testenv: %w", err)
	}
	dir := filepath.Join(os.TempDir(), "shipshape-podman")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, "", fmt.Errorf("testenv: %w", err)
	}
	p := &Podman{bin: bin, conf: path, dir: dir, env: append(os.Environ(), "CONTAINERS_CONF="+path), ulimits: ulimits}
	if out, err := p.output(context.Background(), nil, "info", "--format", "{{.Host.OCIRuntime.Name}} {{.Host.CgroupManager}}"); err != nil {
		return nil, fmt.Sprintf("testenv: podman cannot run here: %v", err), nil
	} else if got := strings.TrimSpace(out); got != "runc cgroupfs" {
		return nil, "", fmt.Errorf("testenv: podman runs with %q, want runc cgroupfs (%s)", got, path)
	}
	p.removeLeftovers()
	return p, "", nil
}

// Conf is the path of the containers.conf the tests' podman reads.
func (p *Podman) Conf() string { return p.conf }

// DefaultUlimits are the ulimits of the tests' containers, as `--ulimit`
// values (nofile=N:N, nproc=N:N). A container given any --ulimit loses
// them all: podman then sets nproc to 1048576, which runc cannot set here,
// so a test that passes one passes these for the others.
func (p *Podman) DefaultUlimits() []string { return slices.Clone(p.ulimits) }

// removeLeftovers removes the containers, then the networks, of test
// processes that are gone (killed before their cleanup ran).
func (p *Podman) removeLeftovers() {
	for _, kind := range []struct {
		list   []string
		remove []string
	}{
		{[]string{"ps", "-a", "--format", "{{.ID}} {{index .Labels \"" + PodmanLabel + "\"}}"}, []string{"rm", "-f", "-t", "0"}},
		{[]string{"network", "ls", "--format", "{{.Name}} {{index .Labels \"" + PodmanLabel + "\"}}"}, []string{"network", "rm", "-f"}},
	} {
		out, err := p.output(context.Background(), nil, append(kind.list, "--filter", "label="+PodmanLabel)...)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
			f := strings.Fields(line)
			if len(f) != 2 {
				continue
			}
			pid, err := strconv.Atoi(f[1])
			if err == nil && pid != os.Getpid() && syscall.Kill(pid, 0) == nil {
				continue // its test process is still running
			}
			_, _ = p.output(context.Background(), nil, append(kind.remove, f[0])...)
		}
	}
}

// Label is the --label option that marks a container or network as this
// test process's (see [PodmanLabel]).
func Label() string { return PodmanLabel + "=" + strconv.Itoa(os.Getpid()) }

// Command returns a podman command with the tests' configuration. It runs
// in a directory of its own: conmon leaves files in its working directory
// (an empty "oom" after an OOM kill), which would otherwise be the test's
// package directory.
func (p *Podman) Command(ctx context.Context, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, p.bin, args...)
	cmd.Env = p.env
	cmd.Dir = p.dir
	return cmd
}

func (p *Podman) output(ctx context.Context, stdin io.Reader, args ...string) (string, error) {
	cmd := p.Command(ctx, args...)
	cmd.Stdin = stdin
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("podman %s: %w\n%s%s", strings.Join(args, " "), err, stdout.Bytes(), stderr.Bytes())
	}
	return stdout.String(), nil
}

// Try runs podman and returns its standard output, trimmed, or an error
// with everything it printed.
func (p *Podman) Try(args ...string) (string, error) {
	out, err := p.output(context.Background(), nil, args...)
	return strings.TrimSpace(out), err
}

// Run runs podman and returns its standard output, trimmed; an error fails
// the test.
func (p *Podman) Run(t testing.TB, args ...string) string {
	t.Helper()
	out, err := p.Try(args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// Start runs `podman run -d` with args (options, image, command), labels
// the container as the test's, and removes it when the test ends. It
// returns the container id.
func (p *Podman) Start(t testing.TB, args ...string) string {
	t.Helper()
	return p.Create(t, "run", append([]string{"-d"}, args...)...)
}

// Create runs `podman <verb> args…` for a verb that makes a container (run,
// create), labels it as the test's, removes it when the test ends and
// returns its id.
func (p *Podman) Create(t testing.TB, verb string, args ...string) string {
	t.Helper()
	full := append([]string{verb, "--label", Label(), "--pull=never"}, args...)
	id, err := p.Try(full...)
	if id != "" {
		id = lastLine(id)
		t.Cleanup(func() {
			if t.Failed() {
				t.Logf("testenv: last output of container %.12s:\n%s", id, p.Logs(id, 100))
			}
			_, _ = p.Try("rm", "-f", "-t", "0", id)
		})
	}
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// Logs is the last n lines a container wrote to stdout and stderr, in
// order (or why they cannot be read).
func (p *Podman) Logs(id string, n int) string {
	args := []string{"logs"}
	if n > 0 {
		args = append(args, "--tail", strconv.Itoa(n))
	}
	out, err := p.Command(context.Background(), append(args, id)...).CombinedOutput()
	if err != nil {
		return fmt.Sprintf("podman logs: %v\n%s", err, out)
	}
	return string(out)
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return s[i+1:]
	}
	return s
}

// Inspect returns a field of a container, an image or a network in the Go
// template syntax of `podman inspect --format`.
func (p *Podman) Inspect(t testing.TB, name, format string) string {
	t.Helper()
	return p.Run(t, "inspect", "--format", format, name)
}

// ImageExists reports whether the image is in local storage.
func (p *Podman) ImageExists(name string) bool {
	_, err := p.Try("image", "exists", name)
	return err == nil
}

// Image is an image the tests build locally, from a Containerfile or by
// importing a file system. Its tag is content-addressed (see [Podman.Build])
// so that a run reuses what an earlier run built from the same inputs.
type Image struct {
	// Name of the image: localhost/shipshape-test/<Name>:<hash>.
	Name string
	// Containerfile is the text to build from (empty when Import is set).
	Containerfile string
	// Context is the build context directory ("" for none).
	Context string
	// From lists the images Containerfile builds on: their ids are part
	// of the tag, so that a rebuilt base rebuilds what is on it.
	From []string
	// Key is any other input the image depends on (a toolchain version,
	// the content of the context).
	Key string
	// BuildArgs are extra options of podman build (--build-arg …, -v …).
	BuildArgs []string
	// Import, instead of a build, writes the image's file system as a tar
	// stream; ImportChanges are `podman import --change` instructions.
	Import        func(tw *tar.Writer) error
	ImportChanges []string
}

var builds struct {
	mu   sync.Mutex
	once map[string]*buildOnce
}

type buildOnce struct {
	once sync.Once
	err  error
	took time.Duration
}

// imageRecipe is bumped when the way images are built changes in a way
// their inputs do not show.
const imageRecipe = "1"

// Build builds img once per test process and returns its tag. The tag is
// a hash of everything the image is made from, so that when an earlier run
// (of this process or another) built the same inputs, the image in local
// storage is used as it is: images survive between runs on one machine.
// Older tags of the same name are removed once the new one is built.
func (p *Podman) Build(t testing.TB, img Image) string {
	t.Helper()
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%s\x00%s\x00%s\x00%q\x00%q\x00", imageRecipe, img.Name, img.Containerfile, img.Key, img.BuildArgs, img.ImportChanges)
	for _, from := range img.From {
		id, err := p.Try("image", "inspect", "--format", "{{.Id}}", from)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(h, "%s=%s\x00", from, id)
	}
	repo := "localhost/shipshape-test/" + img.Name
	tag := repo + ":" + hex.EncodeToString(h.Sum(nil))[:16]

	builds.mu.Lock()
	if builds.once == nil {
		builds.once = map[string]*buildOnce{}
	}
	b := builds.once[tag]
	if b == nil {
		b = &buildOnce{}
		builds.once[tag] = b
	}
	builds.mu.Unlock()
	b.once.Do(func() {
		if p.ImageExists(tag) {
			return
		}
		start := time.Now()
		b.err = p.build(img, tag)
		b.took = time.Since(start)
		if b.err == nil {
			fmt.Fprintf(os.Stderr, "testenv: built %s in %v\n", tag, b.took.Round(100*time.Millisecond))
			p.removeOtherTags(repo, tag)
		}
	})
	if b.err != nil {
		t.Fatal(b.err)
	}
	return tag
}

func (p *Podman) build(img Image, tag string) error {
	ctx := context.Background()
	if img.Import != nil {
		pr, pw := io.Pipe()
		go func() {
			tw := tar.NewWriter(pw)
			err := img.Import(tw)
			if err == nil {
				err = tw.Close()
			}
			pw.CloseWithError(err)
		}()
		args := []string{"import"}
		for _, c := range img.ImportChanges {
			args = append(args, "--change", c)
		}
		_, err := p.output(ctx, pr, append(args, "-", tag)...)
		pr.CloseWithError(err)
		return err
	}
	dir, err := os.MkdirTemp("", "shipshape-build-")
	if err != nil {
		return fmt.Errorf("testenv: %w", err)
	}
	defer os.RemoveAll(dir)
	file := filepath.Join(dir, "Containerfile")
	if err := os.WriteFile(file, []byte(img.Containerfile), 0o644); err != nil {
		return fmt.Errorf("testenv: %w", err)
	}
	context := img.Context
	if context == "" {
		context = dir
	}
	// --network=host: apt in a RUN reaches the Debian mirror the way the
	// host's apt does, with no bridge or NAT in between. --pull=never:
	// every base is local (no registry is reachable).
	args := append([]string{"build", "--pull=never", "--network=host", "--format", "docker", "-f", file, "-t", tag}, img.BuildArgs...)
	_, err = p.output(ctx, nil, append(args, context)...)
	return err
}

func (p *Podman) removeOtherTags(repo, keep string) {
	out, err := p.Try("images", "--format", "{{.Repository}}:{{.Tag}}", repo)
	if err != nil {
		return
	}
	for _, name := range strings.Fields(out) {
		if name != keep && strings.HasPrefix(name, repo+":") {
			_, _ = p.Try("rmi", name)
		}
	}
}

// DebianSuite is the Debian release the local base image is made of: the
// one the test machines run.
const DebianSuite = "bookworm"

// DebianBase returns a minimal Debian image made by debootstrap
// (--variant=minbase) from the mirror this machine's apt uses, built once
// and kept in podman's storage under a tag that names the recipe and the
// mirror's Release date (the snapshot): a new point release builds a new
// base, and every image built on it is rebuilt. It takes about a minute
// the first time. No image registry is needed: base images for nginx,
// Redis and systemd are built on it with apt.
func (p *Podman) DebianBase(t testing.TB) string {
	t.Helper()
	debootstrap := LookPath(t, "debootstrap", "debootstrap")
	mirror := debianMirror()
	return p.Build(t, Image{
		Name: "debian",
		Key:  fmt.Sprintf("debootstrap --variant=minbase %s %s (release %s)", DebianSuite, mirror, releaseDate(mirror)),
		Import: func(tw *tar.Writer) error {
			return debootstrapInto(tw, debootstrap, mirror)
		},
		ImportChanges: []string{`CMD ["/bin/bash"]`},
	})
}

// debootstrapInto runs debootstrap into a temporary directory and writes
// the result as a tar stream.
func debootstrapInto(tw *tar.Writer, debootstrap, mirror string) error {
	dir, err := os.MkdirTemp("/var/tmp", "shipshape-debootstrap-")
	if err != nil {
		return fmt.Errorf("testenv: %w", err)
	}
	defer os.RemoveAll(dir)
	root := filepath.Join(dir, "root")
	out, err := exec.Command(debootstrap, "--variant=minbase", DebianSuite, root, mirror).CombinedOutput()
	if err != nil {
		return fmt.Errorf("testenv: debootstrap %s %s: %w\n%s", DebianSuite, mirror, err, out)
	}
	cmd := exec.Command("tar", "-C", root, "--numeric-owner", "-c", ".")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("testenv: tar: %w", err)
	}
	copyErr := copyTar(tw, tar.NewReader(stdout))
	if err := cmd.Wait(); err != nil {
		return fmt.Errorf("testenv: tar: %w\n%s", err, stderr.Bytes())
	}
	return copyErr
}

// copyTar copies every entry of tr to tw (the writer is closed by the
// caller).
func copyTar(tw *tar.Writer, tr *tar.Reader) error {
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if _, err := io.Copy(tw, tr); err != nil {
			return err
		}
	}
}

// debianMirror is the first Debian mirror in this machine's apt sources,
// or Debian's own redirector.
func debianMirror() string {
	for _, path := range []string{"/etc/apt/sources.list.d/debian.sources", "/etc/apt/sources.list"} {
		f, err := os.Open(path)
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			fields := strings.Fields(sc.Text())
			switch {
			case len(fields) >= 2 && fields[0] == "URIs:" && !strings.Contains(fields[1], "security"):
				f.Close()
				return strings.TrimSuffix(fields[1], "/")
			case len(fields) >= 3 && fields[0] == "deb" && fields[2] == DebianSuite:
				f.Close()
				return strings.TrimSuffix(fields[1], "/")
			}
		}
		f.Close()
	}
	return "http://deb.debian.org/debian"
}

// releaseDate is the Date of the suite's Release file in apt's lists, when
// apt has fetched it: the snapshot the base image is keyed by.
func releaseDate(mirror string) string {
	host := strings.TrimPrefix(strings.TrimPrefix(mirror, "http://"), "https://")
	name := strings.ReplaceAll(host, "/", "_") + "_dists_" + DebianSuite + "_InRelease"
	b, err := os.ReadFile(filepath.Join("/var/lib/apt/lists", name))
	if err != nil {
		return "unknown"
	}
	for _, line := range strings.Split(string(b), "\n") {
		if d, ok := strings.CutPrefix(line, "Date: "); ok {
			return strings.TrimSpace(d)
		}
	}
	return "unknown"
}

// WaitFor polls cond every interval until it returns true or the timeout
// passes; it returns the time it took, or an error naming what.
func WaitFor(what string, timeout, interval time.Duration, cond func() bool) (time.Duration, error) {
	start := time.Now()
	for {
		if cond() {
			return time.Since(start), nil
		}
		if time.Since(start) > timeout {
			return time.Since(start), fmt.Errorf("testenv: %s: not within %v", what, timeout)
		}
		time.Sleep(interval)
	}
}
