//go:build linux

package deploy

import (
	"archive/tar"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shipshape-go/shipshape/internal/testenv"
)

// No image registry is reachable from the test machines: the tests build
// local stand-ins for the public images that Dockerfile and compose.yaml
// name, on a Debian base made with debootstrap, and hand them to the
// shipped files as build arguments and image substitutions. Each is built
// once per test process, and kept in podman's storage under a
// content-addressed tag for the next run (testenv.Podman.Build).

// Containerfiles of the stand-ins. Each says which public image it stands
// for and what of it the shipped files rely on.
const (
	// golang:1.26: the Go toolchain running the tests, at the path and
	// with the GOPATH of the official image.
	golangContainerfile = `FROM {{base}}
COPY . /usr/local/go
ENV GOPATH=/go PATH=/go/bin:/usr/local/go/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
WORKDIR /go
`
	// nginx:stable (Debian-based): nginx with http_v2 and gzip_static,
	// /etc/nginx/mime.types, a www-data user, curl for the health check,
	// and the access and error logs sent to stdout and stderr, as the
	// official image does.
	nginxContainerfile = `FROM {{base}}
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends nginx curl \
 && rm -rf /var/lib/apt/lists/* \
 && ln -sf /dev/stdout /var/log/nginx/access.log \
 && ln -sf /dev/stderr /var/log/nginx/error.log
EXPOSE 80
STOPSIGNAL SIGQUIT
CMD ["nginx", "-g", "daemon off;"]
`
	// redis:7-bookworm: redis-server and redis-cli on PATH, a redis user
	// and group 999, /data as the working directory, and protected mode
	// off by default (the official image builds Redis so, since a
	// container is reached from other addresses by design).
	redisContainerfile = `FROM {{base}}
RUN groupadd -r -g 999 redis && useradd -r -g redis -u 999 -d /data redis \
 && apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends redis-server redis-tools \
 && rm -rf /var/lib/apt/lists/* \
 && mkdir /data && chown redis:redis /data \
 && printf '#!/bin/sh\nexec /usr/bin/redis-server --protected-mode no "$@"\n' > /usr/local/bin/redis-server \
 && chmod 755 /usr/local/bin/redis-server
WORKDIR /data
EXPOSE 6379
CMD ["redis-server"]
`
	// A host with systemd as PID 1, for shipshape.service.
	systemdContainerfile = `FROM {{base}}
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends systemd systemd-sysv dbus \
 && rm -rf /var/lib/apt/lists/*
STOPSIGNAL SIGRTMIN+3
CMD ["/sbin/init"]
`
)

// localImage builds the stand-in named name from its Containerfile on
// the Debian base.
func localImage(t testing.TB, p *testenv.Podman, name, containerfile string, img testenv.Image) string {
	t.Helper()
	base := p.DebianBase(t)
	img.Name = name
	img.Containerfile = strings.ReplaceAll(containerfile, "{{base}}", base)
	img.From = append(img.From, base)
	return p.Build(t, img)
}

func nginxImage(t testing.TB, p *testenv.Podman) string {
	return localImage(t, p, "nginx", nginxContainerfile, testenv.Image{})
}

func redisImage(t testing.TB, p *testenv.Podman) string {
	return localImage(t, p, "redis", redisContainerfile, testenv.Image{})
}

func systemdImage(t testing.TB, p *testenv.Podman) string {
	return localImage(t, p, "systemd", systemdContainerfile, testenv.Image{})
}

// golangImage stands for golang:1.26: the toolchain of this test run,
// copied in.
func golangImage(t testing.TB, p *testenv.Podman) string {
	t.Helper()
	goBin, err := goTool()
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(goBin, "env", "GOROOT", "GOVERSION").Output()
	if err != nil {
		t.Fatalf("go env: %v", err)
	}
	f := strings.Fields(string(out))
	if len(f) != 2 {
		t.Fatalf("go env GOROOT GOVERSION: %q", out)
	}
	return localImage(t, p, "golang", golangContainerfile, testenv.Image{Context: f[0], Key: f[1] + " " + f[0]})
}

// distrolessUsers are the accounts of gcr.io/distroless/static-debian12.
const (
	distrolessPasswd = "root:x:0:0:root:/root:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n"
	distrolessGroup  = "root:x:0:\nnobody:x:65534:\nnonroot:x:65532:\n"
)

// runtimeImage stands for gcr.io/distroless/static-debian12:nonroot: no
// shell, no package manager, no libc; the accounts root, nobody and
// nonroot (65532), /tmp, the CA certificates, and user 65532 with
// /home/nonroot as the working directory. A shell that slipped into the
// image's health check or entrypoint would fail here as it would there.
func runtimeImage(t testing.TB, p *testenv.Podman) string {
	t.Helper()
	const caFile = "/etc/ssl/certs/ca-certificates.crt"
	ca, err := os.ReadFile(caFile)
	if err != nil {
		ca = nil // the image then has no CA bundle; the server does not need one
	}
	return p.Build(t, testenv.Image{
		Name:          "distroless-static",
		Key:           string(ca),
		ImportChanges: []string{"USER 65532", "WORKDIR /home/nonroot"},
		Import: func(tw *tar.Writer) error {
			now := time.Unix(0, 0)
			dir := func(name string, mode int64, uid int) error {
				return tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: name + "/", Mode: mode, Uid: uid, Gid: uid, ModTime: now})
			}
			file := func(name string, body []byte) error {
				if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Size: int64(len(body)), ModTime: now}); err != nil {
					return err
				}
				_, err := tw.Write(body)
				return err
			}
			for _, d := range []struct {
				name string
				mode int64
				uid  int
			}{
				{"etc", 0o755, 0}, {"etc/ssl", 0o755, 0}, {"etc/ssl/certs", 0o755, 0},
				{"home", 0o755, 0}, {"home/nonroot", 0o700, 65532}, {"root", 0o700, 0},
				{"tmp", 0o1777, 0}, {"var", 0o755, 0},
			} {
				if err := dir(d.name, d.mode, d.uid); err != nil {
					return err
				}
			}
			for name, body := range map[string][]byte{
				"etc/passwd":                    []byte(distrolessPasswd),
				"etc/group":                     []byte(distrolessGroup),
				"etc/nsswitch.conf":             []byte("hosts: files dns\n"),
				strings.TrimPrefix(caFile, "/"): ca,
			} {
				if err := file(name, body); err != nil {
					return err
				}
			}
			return nil
		},
	})
}

// The image of the Dockerfile, built once per test process.
var appImageBuild struct {
	once sync.Once
	tag  string
	err  error
	took time.Duration
}

// appImageTag is the tag the tests give the Dockerfile's image; each run
// builds it again (the build cache makes that quick when little changed).
const appImageTag = "localhost/shipshape-test/app:latest"

// appImage builds examples/deploy/Dockerfile from the repository root, as
// its comment says, with the local stand-ins as GO_IMAGE and RUNTIME_IMAGE
// and this machine's module cache as GOPROXY (mounted read-only into the
// build, falling back to the network for what it does not hold). The
// Dockerfile itself is used as it is.
func appImage(t testing.TB, p *testenv.Podman) string {
	t.Helper()
	golang, runtime := golangImage(t, p), runtimeImage(t, p)
	appImageBuild.once.Do(func() {
		start := time.Now()
		// --layers=false: podman 4.3 (buildah 1.28) takes a COPY --from
		// layer from its cache although the stage it copies from was
		// rebuilt, which would ship a stale binary. The Dockerfile's cache
		// mounts still keep the module and build caches between builds.
		args := []string{"build", "--layers=false", "--pull=never", "--network=host", "--format", "docker",
			"-f", "examples/deploy/Dockerfile",
			"--ignorefile", "examples/deploy/Dockerfile.dockerignore",
			"--build-arg", "GO_IMAGE=" + golang,
			"--build-arg", "RUNTIME_IMAGE=" + runtime,
			"-t", appImageTag}
		if cache := moduleDownloadCache(); cache != "" {
			args = append(args, "-v", cache+":/goproxy:ro", "--build-arg", "GOPROXY=file:///goproxy,https://proxy.golang.org")
		}
		root, err := filepath.Abs("../..")
		if err != nil {
			appImageBuild.err = err
			return
		}
		previous, _ := p.Try("image", "inspect", "--format", "{{.Id}}", appImageTag)
		cmd := p.Command(t.Context(), append(args, ".")...)
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			appImageBuild.err = err
			t.Logf("podman build:\n%s", out)
			return
		}
		// The image this tag had is no one's now: remove it, or every run
		// would leave one behind.
		if current, _ := p.Try("image", "inspect", "--format", "{{.Id}}", appImageTag); previous != "" && previous != current {
			_, _ = p.Try("rmi", previous)
		}
		appImageBuild.tag = appImageTag
		appImageBuild.took = time.Since(start)
	})
	if appImageBuild.err != nil {
		t.Fatalf("podman build of the Dockerfile: %v", appImageBuild.err)
	}
	return appImageBuild.tag
}

// moduleDownloadCache is this machine's Go module download cache, which
// `GOPROXY=file://…` serves as a module proxy.
func moduleDownloadCache() string {
	goBin, err := goTool()
	if err != nil {
		return ""
	}
	out, err := exec.Command(goBin, "env", "GOMODCACHE").Output()
	if err != nil {
		return ""
	}
	dir := filepath.Join(strings.TrimSpace(string(out)), "cache", "download")
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		return ""
	}
	return dir
}
