package deploy

import (
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestApplyRewrites(t *testing.T) {
	conf := "listen 80; # listen 80 in a comment\nroot /srv/a;\nroot /srv/b;\n"
	tests := []struct {
		name      string
		table     []rewrite
		pathsOnly bool
		want      string
		wantErr   string
	}{
		{
			name:  "replaces outside comments",
			table: []rewrite{{old: "listen 80;", new: "listen 127.0.0.1:1;", n: 1}},
			want:  "listen 127.0.0.1:1; # listen 80 in a comment\nroot /srv/a;\nroot /srv/b;\n",
		},
		{
			name:  "exact count of several",
			table: []rewrite{{old: "/srv/", new: "/tmp/x/", n: 2, pathOnly: true}},
			want:  "listen 80; # listen 80 in a comment\nroot /tmp/x/a;\nroot /tmp/x/b;\n",
		},
		{
			name:    "a token that is gone fails",
			table:   []rewrite{{old: "listen 443;", new: "x", n: 1}},
			wantErr: `"listen 443;" occurs 0 times in the config, the rewrite table expects 1`,
		},
		{
			name:    "a token only in a comment counts as gone",
			table:   []rewrite{{old: "in a comment", new: "x", n: 1}},
			wantErr: `occurs 0 times`,
		},
		{
			name:    "a token that appears more often than expected fails",
			table:   []rewrite{{old: "root ", new: "root /x", n: 1}},
			wantErr: `"root " occurs 2 times in the config, the rewrite table expects 1`,
		},
		{
			name:      "pathsOnly skips the other rewrites",
			table:     []rewrite{{old: "listen 80;", new: "listen 1;", n: 1}, {old: "/srv/a", new: "/tmp/a", n: 1, pathOnly: true}},
			pathsOnly: true,
			want:      "listen 80; # listen 80 in a comment\nroot /tmp/a;\nroot /srv/b;\n",
		},
		{
			name:  "a line commented out by a rewrite is left alone by the next",
			table: []rewrite{{old: "root /srv/a;", new: "# root /srv/a;", n: 1}, {old: "/srv/", new: "/tmp/", n: 1}},
			want:  "listen 80; # listen 80 in a comment\n# root /srv/a;\nroot /tmp/b;\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := applyRewrites(conf, tt.table, tt.pathsOnly)
			if tt.wantErr != "" {
				assert.ErrorContains(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestLeftovers(t *testing.T) {
	tests := []struct {
		name    string
		conf    string
		keyword string
		want    []string
	}{
		{name: "clean", conf: "listen 127.0.0.1:1 ssl;\nroot /tmp/t1/static;\ninclude /etc/nginx/mime.types;\n", keyword: "listen"},
		{name: "system log path", conf: "access_log /var/log/nginx/x.log;\n", keyword: "listen", want: []string{"/var/log/nginx/x.log"}},
		{name: "quoted path", conf: `ssl_dhparam "/etc/ssl/dh.pem";` + "\n", keyword: "listen", want: []string{"/etc/ssl/dh.pem"}},
		{name: "path in a comment is fine", conf: "# see /var/log/x\n", keyword: "listen"},
		{name: "public listener", conf: "listen 8443 ssl;\n", keyword: "listen", want: []string{"listen 8443 ssl;"}},
		{name: "haproxy bind on all addresses", conf: "    bind :8443 ssl crt /tmp/t1/x.pem\n", keyword: "bind", want: []string{"bind :8443 ssl crt /tmp/t1/x.pem"}},
		{name: "a URI is not a path", conf: "location /static/ {\nreturn 301 https://$host$request_uri;\n", keyword: "listen"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, leftovers(tt.conf, tt.keyword, "/tmp/t1", "/etc/nginx/mime.types"))
		})
	}
}

// TestRewriteTablesMatchConfigs applies the real rewrite tables to the
// shipped configs without any binary, so that a config edit that breaks a
// rewrite fails here even where nginx or haproxy is not installed.
func TestRewriteTablesMatchConfigs(t *testing.T) {
	const dir, certDir, root = "/tmp/t1", "/tmp/t1/tls", "/tmp/t1/root"
	tests := []struct {
		name, file, keyword string
		table               []rewrite
		allowed             []string
	}{
		{"nginx.conf", "nginx.conf", "listen", nginxRewrites(dir, certDir, root, 1, 2, 3), []string{dir, mimeTypes}},
		{"haproxy.cfg", "haproxy.cfg", "bind", haproxyRewrites(certDir, dir, 1, 2, 3), []string{dir}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			shipped := readFile(t, tt.file)
			for _, pathsOnly := range []bool{true, false} {
				_, err := applyRewrites(shipped, tt.table, pathsOnly)
				assert.NoError(t, err, "pathsOnly %v", pathsOnly)
			}
			got, err := applyRewrites(shipped, tt.table, false)
			require.NoError(t, err)
			assert.Empty(t, leftovers(got, tt.keyword, tt.allowed...), "left on the host after rewriting")
			for _, line := range strings.Split(got, "\n") {
				code, _ := splitComment(line)
				assert.NotContains(t, code, ":8080", "the application's production port is left in %q", line)
			}
		})
	}
}

// TestShippedConfigsMentionNoTestPaths guards the other direction: the
// files users copy must not carry a test's paths or ports.
func TestShippedConfigsMentionNoTestPaths(t *testing.T) {
	for _, name := range []string{"nginx.conf", "haproxy.cfg", "shipshape.service", "compose.yaml", "Dockerfile"} {
		t.Run(name, func(t *testing.T) {
			b, err := os.ReadFile(name)
			require.NoError(t, err)
			for _, bad := range []string{"/tmp/", "user root;", "daemon off;\n", "127.0.0.2"} {
				if name == "compose.yaml" && bad == "daemon off;\n" {
					continue // the container's entrypoint runs nginx in the foreground
				}
				assert.NotContains(t, string(b), bad, "%s in the shipped %s", strings.TrimSpace(bad), name)
			}
		})
	}
}
