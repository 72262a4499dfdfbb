//go:build unix

package testenv

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// Nginx is an nginx started for one test in the foreground, with its prefix,
// pid file, temp paths and logs in a temporary directory.
type Nginx struct {
	Addr string // 127.0.0.1:port of the listener in the server block
	Port int
	Dir  string // prefix directory: conf, logs and temp paths live here
	Conf string // path of the nginx.conf that was written

	proc *Process
}

// StartNginx starts nginx with a single http server block. In server, the
// placeholders {{ADDR}} (127.0.0.1:port), {{PORT}} and {{DIR}} (the prefix
// directory) are replaced before the configuration is written. The access
// log of the block is {{DIR}}/access.log unless server sets its own.
//
//	ng := testenv.StartNginx(t, `
//	    listen {{ADDR}};
//	    root /srv/www;
//	`)
func StartNginx(t testing.TB, server string) *Nginx {
	t.Helper()
	port := FreePort(t)
	http := "server {\n" + server + "\n}\n"
	return StartNginxHTTP(t, http, port)
}

// StartNginxHTTP starts nginx with http as the whole content of its http {}
// block (placeholders as in [StartNginx]; {{ADDR}} and {{PORT}} refer to
// port) and waits until 127.0.0.1:port accepts connections. Use it when a
// test needs upstreams, several servers or its own log formats.
func StartNginxHTTP(t testing.TB, http string, port int) *Nginx {
	t.Helper()
	dir := t.TempDir()
	// Running as root, nginx workers would switch to nobody and could not
	// read the test's 0700 temp directories.
	user := ""
	if os.Geteuid() == 0 {
		user = "user root;\n"
	}
	conf := user + "daemon off;\nmaster_process on;\nworker_processes 1;\npid {{DIR}}/nginx.pid;\nerror_log {{DIR}}/error.log warn;\n" +
		"events { worker_connections 1024; }\n" +
		"http {\n" +
		"  client_body_temp_path {{DIR}}/client_body;\n" +
		"  proxy_temp_path {{DIR}}/proxy;\n" +
		"  fastcgi_temp_path {{DIR}}/fastcgi;\n" +
		"  uwsgi_temp_path {{DIR}}/uwsgi;\n" +
		"  scgi_temp_path {{DIR}}/scgi;\n" +
		"  access_log {{DIR}}/access.log combined;\n" +
		"  default_type application/octet-stream;\n" +
		"  types { text/html html; text/css css; application/javascript js; application/json json; text/plain txt; image/png png; image/svg+xml svg; }\n" +
		http + "}\n"
	return StartNginxConf(t, conf, dir, port)
}

// StartNginxConf starts nginx with conf as its whole configuration (the
// placeholders {{ADDR}}, {{PORT}} and {{DIR}} are replaced), after checking
// it with `nginx -t`, and waits until every port in waitPorts accepts
// connections on 127.0.0.1. dir is the prefix directory (a t.TempDir()).
func StartNginxConf(t testing.TB, conf, dir string, port int, waitPorts ...int) *Nginx {
	t.Helper()
	bin := LookPath(t, "nginx", "nginx")
	ng := &Nginx{Port: port, Addr: Addr(port), Dir: dir, Conf: filepath.Join(dir, "nginx.conf")}
	conf = strings.NewReplacer("{{ADDR}}", ng.Addr, "{{PORT}}", strconv.Itoa(port), "{{DIR}}", dir).Replace(conf)
	if err := os.WriteFile(ng.Conf, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(bin, "-t", "-p", dir, "-c", ng.Conf).CombinedOutput(); err != nil {
		t.Fatalf("testenv: nginx -t: %v\n%s\nconfiguration:\n%s", err, out, conf)
	}
	addrs := []string{ng.Addr}
	for _, p := range waitPorts {
		addrs = append(addrs, Addr(p))
	}
	ng.proc = Start(t, "nginx", exec.Command(bin, "-p", dir, "-c", ng.Conf), addrs...)
	return ng
}

// AccessLog returns the content of {{DIR}}/access.log.
func (n *Nginx) AccessLog(t testing.TB) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(n.Dir, "access.log"))
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return string(b)
}

// Process is the nginx master process.
func (n *Nginx) Process() *Process { return n.proc }
