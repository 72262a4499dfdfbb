package accesslog_test

import (
	"bufio"
	"encoding/base64"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/shipshape-go/shipshape/accesslog"
	"github.com/shipshape-go/shipshape/internal/testenv"
)

// nginxRequests are sent byte for byte to nginx and to the Go server.
var nginxRequests = []struct {
	name string
	raw  string
}{
	{"plain", "GET / HTTP/1.1\r\nHost: x\r\nUser-Agent: curl/8.0\r\n"},
	{"no user agent", "GET /index.html HTTP/1.1\r\nHost: x\r\n"},
	{"empty user agent and referer", "GET / HTTP/1.1\r\nHost: x\r\nUser-Agent: \r\nReferer: \r\n"},
	{"quotes and backslashes in user agent", "GET / HTTP/1.1\r\nHost: x\r\nUser-Agent: Mozilla/5.0 \"quoted\" \\back\\slash\r\n"},
	{"UTF-8 in user agent", "GET / HTTP/1.1\r\nHost: x\r\nUser-Agent: K\xc3\xa4se/1.0 \xe2\x98\x83\r\n"},
	{"tab in user agent", "GET / HTTP/1.1\r\nHost: x\r\nUser-Agent: a\tb\r\n"},
	{"obs-text bytes in user agent", "GET / HTTP/1.1\r\nHost: x\r\nUser-Agent: \x80\xfe\xff\x7e\r\n"},
	{"referer with query and UTF-8", "GET /page HTTP/1.1\r\nHost: x\r\nReferer: https://example.com/s?q=\"a b\"&x=caf\xc3\xa9\r\nUser-Agent: ua\r\n"},
	{"percent-encoded path and query", "GET /caf%C3%A9/%2F?x=%22y%22&z=a+b HTTP/1.1\r\nHost: x\r\n"},
	{"raw UTF-8 path", "GET /caf\xc3\xa9 HTTP/1.1\r\nHost: x\r\n"},
	{"quote in path", "GET /a\"b HTTP/1.1\r\nHost: x\r\n"},
	{"backslash in path", "GET /back\\slash HTTP/1.1\r\nHost: x\r\n"},
	{"encoded space and tab in path", "GET /a%20b%09c HTTP/1.1\r\nHost: x\r\n"},
	{"bare question mark", "GET /x? HTTP/1.1\r\nHost: x\r\n"},
	{"odd but valid characters", "GET /~user/!$&'()*+,;=:@[]{}|^`/p?a[]=1&b={2} HTTP/1.1\r\nHost: x\r\n"},
	{"404", "GET /missing/thing HTTP/1.1\r\nHost: x\r\nUser-Agent: ua\r\n"},
	{"HEAD", "HEAD / HTTP/1.1\r\nHost: x\r\nUser-Agent: ua\r\n"},
	{"POST with body", "POST /form HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: 3\r\n\r\nabc"},
	{"DELETE", "DELETE /items/1 HTTP/1.1\r\nHost: x\r\n"},
	{"basic auth user", "GET / HTTP/1.1\r\nHost: x\r\nAuthorization: Basic " + base64.StdEncoding.EncodeToString([]byte("alice:s3cret")) + "\r\n"},
	{"basic auth user with quote and UTF-8", "GET / HTTP/1.1\r\nHost: x\r\nAuthorization: Basic " + base64.StdEncoding.EncodeToString([]byte("b\"\xc3\xb6b:pw")) + "\r\n"},
	{"HTTP/1.0 without Host", "GET /old HTTP/1.0\r\nUser-Agent: old/1.0\r\n"},
	{"long path", "GET /" + strings.Repeat("abcdefghij", 200) + " HTTP/1.1\r\nHost: x\r\n"},
}

// nginxApp answers like the nginx configuration of the test: "hello" (5
// bytes), "nope" with 404 under /missing.
func nginxApp(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, "/missing") {
		w.WriteHeader(http.StatusNotFound)
		_, _ = io.WriteString(w, "nope")
		return
	}
	_, _ = io.WriteString(w, "hello")
}

var clfStamp = regexp.MustCompile(`\[(\d{2}/[A-Z][a-z]{2}/\d{4}:\d{2}:\d{2}:\d{2} [+-]\d{4})\]`)

// sendRaw writes raw (with "Connection: close" and the end of the header
// added where needed) and reads the response to the end.
func sendRaw(t *testing.T, addr, raw string) {
	t.Helper()
	if !strings.Contains(raw, "\r\n\r\n") {
		raw += "Connection: close\r\n\r\n"
	} else {
		raw = strings.Replace(raw, "\r\n\r\n", "\r\nConnection: close\r\n\r\n", 1)
	}
	conn, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer conn.Close()
	require.NoError(t, conn.SetDeadline(time.Now().Add(10*time.Second)))
	_, err = io.WriteString(conn, raw)
	require.NoError(t, err)
	_, err = io.Copy(io.Discard, bufio.NewReader(conn))
	require.NoError(t, err)
}

func logLines(s string) []string {
	lines := strings.SplitAfter(s, "\n")
	return lines[:len(lines)-1] // after the last "\n", or the empty log
}

// lastLine waits until log() has n lines and returns the last one.
func lastLine(t *testing.T, what string, n int, log func() string) string {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		lines := logLines(log())
		if len(lines) >= n {
			require.Lenf(t, lines, n, "%s wrote more lines than requests", what)
			return lines[n-1]
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s wrote %d lines, want %d:\n%s", what, len(lines), n, log())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestCombinedAndCommonMatchNginx sends the same raw requests to nginx (its
// predefined combined format, and the common format written out) and to a
// Go server logging with NewCombinedHandler and NewCommonHandler through a
// slog.NewMultiHandler fan-out, and compares the lines byte for byte, except the time
// stamp, which is checked for its format.
func TestCombinedAndCommonMatchNginx(t *testing.T) {
	port := testenv.FreePort(t)
	ng := testenv.StartNginxHTTP(t, `
		log_format common '$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent';
		server {
			listen {{ADDR}};
			access_log {{DIR}}/access.log combined;
			access_log {{DIR}}/common.log common;
			location / { return 200 "hello"; }
			location /missing { return 404 "nope"; }
		}
	`, port)
	var goCombined, goCommon testenv.Buffer
	logger := slog.New(slog.NewMultiHandler(
		accesslog.NewCombinedHandler(&goCombined, nil),
		accesslog.NewCommonHandler(&goCommon, nil),
	))
	// nginx logs the Basic auth user ($remote_user); accesslog only on opt-in.
	srv := httptest.NewServer(mustNew(t, logger, accesslog.WithBasicAuthUser(true))(http.HandlerFunc(nginxApp)))
	defer srv.Close()

	nginxCombined := func() string { return ng.AccessLog(t) }
	nginxCommon := func() string {
		b, err := os.ReadFile(filepath.Join(ng.Dir, "common.log"))
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		return string(b)
	}
	for _, tt := range nginxRequests {
		t.Run(tt.name, func(t *testing.T) {
			logs := []struct {
				format      string
				nginx, ours func() string
				before      [2]int
			}{
				{format: "combined", nginx: nginxCombined, ours: goCombined.String},
				{format: "common", nginx: nginxCommon, ours: goCommon.String},
			}
			for i := range logs {
				logs[i].before = [2]int{len(logLines(logs[i].nginx())), len(logLines(logs[i].ours()))}
			}
			sendRaw(t, ng.Addr, tt.raw)
			sendRaw(t, srv.Listener.Addr().String(), tt.raw)
			for _, l := range logs {
				want := lastLine(t, "nginx "+l.format, l.before[0]+1, l.nginx)
				got := lastLine(t, "accesslog "+l.format, l.before[1]+1, l.ours)
				for _, line := range []string{want, got} {
					m := clfStamp.FindStringSubmatch(line)
					require.Lenf(t, m, 2, "no [time] in %q", line)
					_, err := time.Parse("02/Jan/2006:15:04:05 -0700", m[1])
					require.NoError(t, err)
				}
				assert.Equalf(t, clfStamp.ReplaceAllString(want, "[T]"), clfStamp.ReplaceAllString(got, "[T]"),
					"%s line: got (accesslog) vs want (nginx)", l.format)
			}
		})
	}
}
