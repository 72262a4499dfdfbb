package accesslog_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/go-chi/chi/v5/middleware"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/trace"

	"github.com/shipshape-go/shipshape/accesslog"
	"github.com/shipshape-go/shipshape/reqlog"
)

// at is the time of the golden records: 5 March 2024 09:04:05 at UTC-7.
var at = time.Date(2024, 3, 5, 9, 4, 5, 123456789, time.FixedZone("MST", -7*3600))

// accessRecord is a record as the middleware writes it, with attrs
// replacing or adding to the defaults; slog.Any(key, nil) removes one.
func accessRecord(attrs ...slog.Attr) slog.Record {
	r := slog.NewRecord(at, slog.LevelInfo, accesslog.Message, 0)
	base := []slog.Attr{
		slog.String(reqlog.KeyMethod, "GET"),
		slog.String(reqlog.KeyPath, "/items/42"),
		slog.String(reqlog.KeyProtocol, "1.1"),
		slog.Int(reqlog.KeyStatus, 200),
		slog.Int64(reqlog.KeyRequestSize, 0),
		slog.Int64(reqlog.KeyResponseSize, 512),
		slog.String(reqlog.KeyClient, "203.0.113.9"),
		slog.String(reqlog.KeyPeer, "10.0.0.1"),
		slog.Duration(reqlog.KeyDuration, 1234567*time.Nanosecond),
		slog.Duration(reqlog.KeyTTFB, time.Millisecond),
	}
outer:
	for _, a := range attrs {
		for i := range base {
			if base[i].Key == a.Key {
				if a.Value.Kind() == slog.KindAny && a.Value.Any() == nil {
					base = append(base[:i], base[i+1:]...)
				} else {
					base[i] = a
				}
				continue outer
			}
		}
		base = append(base, a)
	}
	r.AddAttrs(base...)
	return r
}

func format(t *testing.T, newHandler func(w *bytes.Buffer) slog.Handler, r slog.Record) string {
	t.Helper()
	var buf bytes.Buffer
	require.NoError(t, newHandler(&buf).Handle(context.Background(), r))
	return buf.String()
}

func combined(w *bytes.Buffer) slog.Handler { return accesslog.NewCombinedHandler(w, nil) }
func common(w *bytes.Buffer) slog.Handler   { return accesslog.NewCommonHandler(w, nil) }
func dev(w *bytes.Buffer) slog.Handler      { return accesslog.NewDevHandler(w, nil) }
func colorDev(w *bytes.Buffer) slog.Handler { return accesslog.NewColorDevHandler(w, nil) }

func TestGoldenLines(t *testing.T) {
	tests := []struct {
		name    string
		handler func(*bytes.Buffer) slog.Handler
		attrs   []slog.Attr
		want    string
	}{
		{"combined, missing referer and user agent", combined, nil,
			`203.0.113.9 - - [05/Mar/2024:09:04:05 -0700] "GET /items/42 HTTP/1.1" 200 512 "-" "-"` + "\n"},
		{"combined, all fields", combined, []slog.Attr{
			slog.String(reqlog.KeyQuery, "page=2"),
			slog.String(reqlog.KeyUser, "alice"),
			slog.String(reqlog.KeyReferer, "https://example.com/"),
			slog.String(reqlog.KeyUserAgent, "curl/8.0"),
		}, `203.0.113.9 - alice [05/Mar/2024:09:04:05 -0700] "GET /items/42?page=2 HTTP/1.1" 200 512 "https://example.com/" "curl/8.0"` + "\n"},
		{"combined, empty user agent is \"\"", combined, []slog.Attr{slog.String(reqlog.KeyUserAgent, "")},
			`203.0.113.9 - - [05/Mar/2024:09:04:05 -0700] "GET /items/42 HTTP/1.1" 200 512 "-" ""` + "\n"},
		{"combined, HTTP/2 is HTTP/2.0 and 0 bytes is 0", combined, []slog.Attr{
			slog.String(reqlog.KeyProtocol, "2"), slog.Int64(reqlog.KeyResponseSize, 0), slog.Int(reqlog.KeyStatus, 304),
		}, `203.0.113.9 - - [05/Mar/2024:09:04:05 -0700] "GET /items/42 HTTP/2.0" 304 0 "-" "-"` + "\n"},
		{"combined, peer when no client address", combined, []slog.Attr{slog.Any(reqlog.KeyClient, nil)},
			`10.0.0.1 - - [05/Mar/2024:09:04:05 -0700] "GET /items/42 HTTP/1.1" 200 512 "-" "-"` + "\n"},
		{"common, no address, no size", common, []slog.Attr{slog.Any(reqlog.KeyClient, nil), slog.Any(reqlog.KeyPeer, nil), slog.Any(reqlog.KeyResponseSize, nil)},
			`- - - [05/Mar/2024:09:04:05 -0700] "GET /items/42 HTTP/1.1" 200 -` + "\n"},
		{"common", common, []slog.Attr{slog.String(reqlog.KeyQuery, "a=1&b=2"), slog.String(reqlog.KeyUserAgent, "ignored")},
			`203.0.113.9 - - [05/Mar/2024:09:04:05 -0700] "GET /items/42?a=1&b=2 HTTP/1.1" 200 512` + "\n"},
		{"common, 499 of a client that left", common, []slog.Attr{slog.Int(reqlog.KeyStatus, 499), slog.Int64(reqlog.KeyResponseSize, 0)},
			`203.0.113.9 - - [05/Mar/2024:09:04:05 -0700] "GET /items/42 HTTP/1.1" 499 0` + "\n"},
		{"dev", dev, []slog.Attr{slog.String(reqlog.KeyQuery, "page=2")},
			"GET /items/42?page=2 200 1.235 ms - 512\n"},
		{"dev, aborted", dev, []slog.Attr{slog.Int(reqlog.KeyStatus, 500), slog.String(reqlog.KeyAborted, "panic")},
			"GET /items/42 500 1.235 ms - 512 aborted=panic\n"},
		{"dev colour 2xx", colorDev, nil, "GET /items/42 \x1b[32m200\x1b[0m 1.235 ms - 512\n"},
		{"dev colour 3xx", colorDev, []slog.Attr{slog.Int(reqlog.KeyStatus, 301)}, "GET /items/42 \x1b[36m301\x1b[0m 1.235 ms - 512\n"},
		{"dev colour 4xx", colorDev, []slog.Attr{slog.Int(reqlog.KeyStatus, 404)}, "GET /items/42 \x1b[33m404\x1b[0m 1.235 ms - 512\n"},
		{"dev colour 5xx", colorDev, []slog.Attr{slog.Int(reqlog.KeyStatus, 503)}, "GET /items/42 \x1b[31m503\x1b[0m 1.235 ms - 512\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, format(t, tt.handler, accessRecord(tt.attrs...)))
		})
	}
}

func TestClientAddressFromChiIsFormatted(t *testing.T) {
	// The middleware passes a client IP that differs from the peer as a
	// LogValuer; every handler must print it as the address.
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.RemoteAddr = "10.0.0.1:1234"
	r.Header.Set("X-Forwarded-For", "2001:db8::7")
	var clf, js bytes.Buffer
	h := mustNew(t, slog.New(accesslog.NewCommonHandler(&clf, nil)))(http.NotFoundHandler())
	h = clientIPFromXFF(h)
	h.ServeHTTP(httptest.NewRecorder(), r)
	assert.True(t, strings.HasPrefix(clf.String(), "2001:db8::7 - - ["), "common line %q", clf.String())

	h = clientIPFromXFF(mustNew(t, slog.New(slog.NewJSONHandler(&js, nil)))(http.NotFoundHandler()))
	h.ServeHTTP(httptest.NewRecorder(), r)
	assert.Contains(t, js.String(), `"client.address":"2001:db8::7"`)
	assert.Contains(t, js.String(), `"network.peer.address":"10.0.0.1"`)
}

func TestLogInjectionIsEscaped(t *testing.T) {
	forged := "x\" 200 1 \"-\" \"-\"\r\n127.0.0.1 - - [01/Jan/2000:00:00:00 +0000] \"GET /admin HTTP/1.1\" 200 0 \"-\" \"evil"
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.Header.Set("User-Agent", forged)
	r.Header.Set("Referer", "\x1b[2J\x1b[31mred\x1b[0m\x07")
	r.RequestURI = "/?q=\x1b]0;title\x07" // as a lenient front end could pass it on
	ownColours := regexp.MustCompile("^(.* )\x1b\\[3[1236]m(\\d+)\x1b\\[0m( .*)$")
	for name, h := range map[string]func(*bytes.Buffer) slog.Handler{"combined": combined, "common": common, "dev": dev, "colour dev": colorDev} {
		t.Run(name, func(t *testing.T) {
			var buf bytes.Buffer
			mustNew(t, slog.New(h(&buf)))(http.NotFoundHandler()).ServeHTTP(httptest.NewRecorder(), r)
			line := buf.String()
			require.Equal(t, 1, strings.Count(line, "\n"), "one line: %q", line)
			require.True(t, strings.HasSuffix(line, "\n"))
			body := strings.TrimSuffix(line, "\n")
			if name == "colour dev" {
				body = ownColours.ReplaceAllString(body, "$1$2$3") // its own escapes only
			}
			for i := 0; i < len(body); i++ {
				assert.Truef(t, body[i] >= 0x20 && body[i] < 0x7f, "raw byte %#x in %q", body[i], line)
			}
		})
	}
	var buf bytes.Buffer
	mustNew(t, slog.New(accesslog.NewCombinedHandler(&buf, nil)))(http.NotFoundHandler()).ServeHTTP(httptest.NewRecorder(), r)
	line := buf.String()
	assert.Contains(t, line, `"\x1B[2J\x1B[31mred\x1B[0m\x07"`)
	assert.Contains(t, line, `\x0D\x0A127.0.0.1`)
	assert.Equal(t, 6, strings.Count(line, `"`), "only the format's own quotes are raw: %q", line)
}

// TestBasicAuthUserField checks %u of the text formats and user.name of
// JSON through the middleware: "-" and absent unless the user opted in, as
// an API key sent as the Basic auth user name must not reach the log.
func TestBasicAuthUserField(t *testing.T) {
	json := func(w *bytes.Buffer) slog.Handler { return slog.NewJSONHandler(w, nil) }
	tests := []struct {
		name       string
		newHandler func(*bytes.Buffer) slog.Handler
		opts       []accesslog.Option
		want       string // prefix of the line, or a substring of JSON
		never      string
	}{
		{"combined, default", combined, nil, "192.0.2.1 - - [", "sk_live"},
		{"common, default", common, nil, "192.0.2.1 - - [", "sk_live"},
		{"JSON, default", json, nil, `"network.peer.address":"192.0.2.1","duration"`, "sk_live"},
		{"combined, opted in", combined, []accesslog.Option{accesslog.WithBasicAuthUser(true)}, "192.0.2.1 - sk_live_51Habc [", "pw"},
		{"common, opted in", common, []accesslog.Option{accesslog.WithBasicAuthUser(true)}, "192.0.2.1 - sk_live_51Habc [", "pw"},
		{"JSON, opted in", json, []accesslog.Option{accesslog.WithBasicAuthUser(true)}, `"user.name":"sk_live_51Habc"`, "pw"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			r.SetBasicAuth("sk_live_51Habc", "pw")
			mustNew(t, slog.New(tt.newHandler(&buf)), tt.opts...)(http.NotFoundHandler()).ServeHTTP(httptest.NewRecorder(), r)
			line := buf.String()
			assert.Contains(t, line, tt.want, "got %q", line)
			assert.NotContains(t, line, tt.never, "got %q", line)
		})
	}
	t.Run("a user name the handler adds is logged without the opt-in", func(t *testing.T) {
		var buf bytes.Buffer
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.SetBasicAuth("sk_live_51Habc", "pw")
		mustNew(t, slog.New(accesslog.NewCombinedHandler(&buf, nil)))(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			reqlog.AddAttrs(r.Context(), slog.String(reqlog.KeyUser, "account-42"))
		})).ServeHTTP(httptest.NewRecorder(), r)
		assert.True(t, strings.HasPrefix(buf.String(), "192.0.2.1 - account-42 ["), "got %q", buf.String())
	})
}

func TestFallbackForOtherRecords(t *testing.T) {
	for name, newHandler := range map[string]func(*bytes.Buffer) slog.Handler{"combined": combined, "common": common, "dev": dev} {
		t.Run(name, func(t *testing.T) {
			var buf bytes.Buffer
			logger := slog.New(newHandler(&buf)).With("svc", "api")
			logger.Info("starting", "port", 8080)
			logger.WithGroup("db").Error("query failed", "err", "timeout\nwith newline")
			lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
			require.Len(t, lines, 2, "one line per record: %q", buf.String())
			assert.Regexp(t, `^time=\S+ level=INFO msg=starting svc=api port=8080$`, lines[0])
			assert.Regexp(t, `^time=\S+ level=ERROR msg="query failed" svc=api db.err="timeout\\nwith newline"$`, lines[1])
		})
	}
}

func TestHandlerOptions(t *testing.T) {
	t.Run("level", func(t *testing.T) {
		var buf bytes.Buffer
		h := accesslog.NewCombinedHandler(&buf, &slog.HandlerOptions{Level: slog.LevelWarn})
		assert.False(t, h.Enabled(context.Background(), slog.LevelInfo))
		assert.True(t, h.Enabled(context.Background(), slog.LevelWarn))
		assert.True(t, accesslog.NewCombinedHandler(&buf, nil).Enabled(context.Background(), slog.LevelInfo))
		assert.False(t, accesslog.NewCombinedHandler(&buf, nil).Enabled(context.Background(), slog.LevelDebug))
	})
	t.Run("ReplaceAttr anonymises the client", func(t *testing.T) {
		got := format(t, func(w *bytes.Buffer) slog.Handler {
			return accesslog.NewCommonHandler(w, &slog.HandlerOptions{ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
				if a.Key == reqlog.KeyClient {
					return slog.String(a.Key, "203.0.113.0")
				}
				return a
			}})
		}, accessRecord())
		assert.True(t, strings.HasPrefix(got, "203.0.113.0 - - "), "got %q", got)
	})
	t.Run("WithAttrs can carry the user", func(t *testing.T) {
		var buf bytes.Buffer
		h := accesslog.NewCommonHandler(&buf, nil).WithAttrs([]slog.Attr{slog.String(reqlog.KeyUser, "svc-account")})
		require.NoError(t, h.Handle(context.Background(), accessRecord()))
		assert.Contains(t, buf.String(), " - svc-account [")
	})
	t.Run("groups do not hide access records", func(t *testing.T) {
		var buf bytes.Buffer
		logger := slog.New(accesslog.NewCombinedHandler(&buf, nil)).WithGroup("http")
		mustNew(t, logger)(http.NotFoundHandler()).ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/g", nil))
		assert.Regexp(t, `^192\.0\.2\.1 - - \[.*\] "GET /g HTTP/1\.1" 404 19 "-" "-"\n$`, buf.String())
	})
	t.Run("an empty-key group is inlined", func(t *testing.T) {
		r := slog.NewRecord(at, slog.LevelInfo, accesslog.Message, 0)
		r.AddAttrs(slog.Attr{Key: "", Value: slog.GroupValue(
			slog.String(reqlog.KeyMethod, "PUT"), slog.String(reqlog.KeyPath, "/x"), slog.Int(reqlog.KeyStatus, 201),
		)})
		assert.Equal(t, `- - - [05/Mar/2024:09:04:05 -0700] "PUT /x" 201 -`+"\n", format(t, common, r))
	})
}

func TestTimeZoneFromRecord(t *testing.T) {
	for _, tz := range []struct {
		loc  *time.Location
		want string
	}{
		{time.UTC, "[05/Mar/2024:16:04:05 +0000]"},
		{time.FixedZone("IST", 5*3600+1800), "[05/Mar/2024:21:34:05 +0530]"},
		{time.FixedZone("NST", -(3*3600 + 1800)), "[05/Mar/2024:12:34:05 -0330]"},
	} {
		t.Run(tz.loc.String(), func(t *testing.T) {
			var buf bytes.Buffer
			h := accesslog.NewCommonHandler(&buf, nil)
			for _, when := range []time.Time{at.In(tz.loc), at.In(tz.loc)} { // the second hits the cache
				r := accessRecord()
				r.Time = when
				require.NoError(t, h.Handle(context.Background(), r))
			}
			for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
				assert.Contains(t, line, tz.want)
			}
		})
	}
}

func clientIPFromXFF(h http.Handler) http.Handler { return middleware.ClientIPFromXFF("10.0.0.0/8")(h) }

// unescapeNginx reverses nginx's \xHH escaping.
func unescapeNginx(t *testing.T, s string) string {
	t.Helper()
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) && s[i+1] == 'x' {
			n, err := strconv.ParseUint(s[i+2:i+4], 16, 8)
			require.NoError(t, err)
			b.WriteByte(byte(n))
			i += 3
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

var combinedLine = regexp.MustCompile(`^(\S*) - (.*) \[(\d{2}/[A-Z][a-z]{2}/\d{4}:\d{2}:\d{2}:\d{2} [+-]\d{4})\] "([^"]*)" (\d+) (\d+) "([^"]*)" "([^"]*)"\n$`)

// FuzzCombinedLine formats arbitrary strings as the fields of a combined
// line: it never panics, the output is one line of printable ASCII, and
// every field reads back as the input.
func FuzzCombinedLine(f *testing.F) {
	f.Add("/", "", "curl/8.0", "", "")
	f.Add("/a\"b\\c", "q=\"x\"", "Mozilla \"5.0\"", "https://example.com/?q=1", "alice")
	f.Add("/caf\xc3\xa9", "x=\xff", "\x1b[31mred\x1b[0m", "\r\nforged", "b\"ob")
	f.Add("/\x00\x7f", "\n", "\t", "\x80", " [")
	f.Fuzz(func(t *testing.T, path, query, ua, referer, user string) {
		var buf bytes.Buffer
		err := accesslog.NewCombinedHandler(&buf, nil).Handle(context.Background(), accessRecord(
			slog.String(reqlog.KeyPath, path),
			slog.String(reqlog.KeyQuery, query),
			slog.String(reqlog.KeyUserAgent, ua),
			slog.String(reqlog.KeyReferer, referer),
			slog.String(reqlog.KeyUser, user),
		))
		require.NoError(t, err)
		line := buf.String()
		require.True(t, strings.HasSuffix(line, "\n"), "line ends with a newline: %q", line)
		for i := 0; i < len(line)-1; i++ {
			require.Truef(t, line[i] >= 0x20 && line[i] < 0x7f, "raw byte %#x at %d in %q", line[i], i, line)
		}
		m := combinedLine.FindStringSubmatch(line)
		require.NotNilf(t, m, "not a combined line: %q", line)
		assert.Equal(t, user, unescapeNginx(t, m[2]), "user")
		assert.Equal(t, fmt.Sprintf("GET %s?%s HTTP/1.1", path, query), unescapeNginx(t, m[4]), "request line")
		assert.Equal(t, referer, unescapeNginx(t, m[7]), "referer")
		assert.Equal(t, ua, unescapeNginx(t, m[8]), "user agent")
	})
}

// opaque hides the type of the handler it wraps from the middleware, which
// then builds a slog.Record instead of handing its fields over directly.
type opaque struct{ slog.Handler }

func TestDirectPathWritesWhatTheRecordPathWrites(t *testing.T) {
	requests := map[string]func() *http.Request{
		"plain": func() *http.Request { return httptest.NewRequest(http.MethodGet, "/a?b=1&token=x", nil) },
		"headers and basic auth": func() *http.Request {
			r := httptest.NewRequest(http.MethodPost, "/form", strings.NewReader("abc"))
			r.Header.Set("User-Agent", "K\u00e4se \"1\"")
			r.Header.Set("Referer", "https://example.com/\x1b")
			r.SetBasicAuth("alice", "pw")
			return r
		},
		"chi client IP": func() *http.Request {
			r := httptest.NewRequest(http.MethodGet, "/c", nil)
			r.RemoteAddr = "10.0.0.9:1"
			r.Header.Set("X-Forwarded-For", "198.51.100.1")
			return r
		},
		"user from AddAttrs": func() *http.Request { return httptest.NewRequest(http.MethodGet, "/override", nil) },
		"OpenTelemetry span": func() *http.Request {
			r := httptest.NewRequest(http.MethodGet, "/traced", nil)
			return r.WithContext(trace.ContextWithSpanContext(r.Context(), trace.NewSpanContext(trace.SpanContextConfig{
				TraceID: trace.TraceID{1}, SpanID: trace.SpanID{2},
			})))
		},
	}
	app := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/override" {
			reqlog.AddAttrs(r.Context(), slog.String(reqlog.KeyUser, "from-handler"), slog.String("other", "x"))
		}
		time.Sleep(1500 * time.Microsecond)
		w.WriteHeader(http.StatusAccepted)
	})
	for fname, newHandler := range map[string]func(*bytes.Buffer) slog.Handler{"combined": combined, "common": common, "dev": dev, "colour dev": colorDev} {
		for rname, req := range requests {
			t.Run(fname+"/"+rname, func(t *testing.T) {
				synctest.Test(t, func(t *testing.T) {
					var direct, viaRecord bytes.Buffer
					pre := []slog.Attr{slog.String(reqlog.KeyUser, "from-WithAttrs")}
					for _, h := range []slog.Handler{
						newHandler(&direct).WithAttrs(pre),
						opaque{newHandler(&viaRecord).WithAttrs(pre)},
					} {
						clientIPFromXFF(mustNew(t, slog.New(h), accesslog.WithBasicAuthUser(true))(app)).ServeHTTP(httptest.NewRecorder(), req())
					}
					require.NotEmpty(t, direct.String())
					assert.Equal(t, viaRecord.String(), direct.String())
				})
			})
		}
	}
}
