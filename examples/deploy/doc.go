// Package deploy holds shipshape's deployment files and the tests that
// prove them; it has no code of its own to import.
//
//	nginx.conf          nginx in front: TLS 1.2/1.3, HTTP/2, X-Forwarded-For overwritten,
//	                    static files from disk (gzip_static, expires), flood limits, keep-alive
//	haproxy.cfg         the same with HAProxy 2.6: TLS with ALPN h2, stick-table limits,
//	                    health check on /healthz
//	gen-cert.sh         a throwaway local CA and a certificate for localhost (openssl)
//	shipshape.service   systemd unit: restart policy, memory and task limits, hardening
//	Dockerfile          static binary on gcr.io/distroless/static-debian12:nonroot
//	compose.yaml        nginx + the server + Redis, hardened, memory-capped, log tmpfs capped
//
// The tests build examples/server, start it behind real nginx and HAProxy
// with these very files (only ports, paths and IPv6 listeners rewritten,
// through an explicit table that fails when a line it expects is gone) and
// check, over HTTPS from 127.0.0.2, what the files promise: the client
// address reaches the application, a spoofed X-Forwarded-For changes
// nothing, the rate limit answers 429 with its headers, static files come
// compressed with cache headers, a panic is a 500 and the server goes on.
// The unit is checked with systemd-analyze and its system-call filter
// against the calls the server really makes (strace).
//
// On podman (as root, see internal/testenv.LookPodman) the files run for
// real, with local stand-ins for the public base images (built on a
// debootstrap base, images_test.go) passed as build arguments and image
// substitutions, the files themselves unchanged: the Dockerfile is built
// and its image runs as nonroot with a HEALTHCHECK that turns unhealthy
// when /healthz hangs (container_test.go); compose.yaml comes up (nginx
// with TLS, the server, Redis; compose_run_test.go applies its keys, as
// neither podman-compose 1.0.3 nor docker-compose 1.29 runs it) and shows
// the client address in the access log, read-only roots, a restart after
// kill -9, an OOM kill at mem_limit and a full log tmpfs costing only
// counted log lines (compose_test.go); shipshape.service runs under
// systemd in a container, hardened, through kill -9, MemoryMax and a
// draining stop (systemd_run_test.go). The static checks stay, for
// machines without podman; under CI=true a missing podman fails.
//
//	go test -race ./examples/deploy/
package deploy
