package sentrytest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/getsentry/sentry-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestServerReceivesEventsFromRealClient(t *testing.T) {
	srv := NewServer(t)
	client := NewClient(t, srv.DSN(), sentry.ClientOptions{})
	hub := sentry.NewHub(client, sentry.NewScope())

	id := hub.CaptureException(errors.New("boom"))
	require.NotNil(t, id, "CaptureException returned no event id")
	hub.CaptureMessage("hello")
	require.True(t, client.Flush(5*time.Second), "Flush timed out")

	events := srv.Events()
	require.Len(t, events, 2, "events: got %d, want 2", len(events))
	var exc, msg *sentry.Event
	for _, ev := range events {
		if len(ev.Exception) > 0 {
			exc = ev
		} else {
			msg = ev
		}
	}
	require.NotNil(t, exc, "no exception event among %d", len(events))
	require.NotNil(t, msg, "no message event among %d", len(events))
	assert.Equal(t, string(*id), string(exc.EventID), "event id: got %s, want %s", exc.EventID, *id)
	assert.Equal(t, "boom", exc.Exception[len(exc.Exception)-1].Value, "exception value")
	assert.Equal(t, "hello", msg.Message, "message")

	var headerIDs []string
	for _, env := range srv.Envelopes() {
		headerIDs = append(headerIDs, env.Header.EventID)
		assert.NotEmpty(t, env.Header.SDK.Name, "envelope header sdk name")
		first, _, _ := bytes.Cut(env.Raw, []byte("\n"))
		assert.Contains(t, string(first), env.Header.EventID, "Raw holds the envelope as sent, header line first")
		for _, it := range env.Items {
			assert.True(t, bytes.Contains(env.Raw, it.Payload), "Raw holds every item's payload")
		}
	}
	assert.Contains(t, headerIDs, string(*id), "envelope header event ids %v, want one %s", headerIDs, *id)
	assert.Len(t, srv.RawEvents(), 2, "raw events")
}

func TestDSNPointsAtServer(t *testing.T) {
	srv := NewServer(t)
	u, err := url.Parse(srv.DSN())
	require.NoError(t, err, "DSN %q", srv.DSN())
	assert.Equal(t, "http", u.Scheme, "scheme")
	assert.Equal(t, publicKey, u.User.Username(), "public key")
	assert.Equal(t, "/"+projectID, u.Path, "project path")
	host, _, err := net.SplitHostPort(u.Host)
	require.NoError(t, err, "host %q", u.Host)
	assert.Equal(t, "127.0.0.1", host, "loopback host")
}

// recordingTB catches the errors the server reports, so that a test can
// check that a bad request would fail the test using the server.
type recordingTB struct {
	testing.TB
	mu   sync.Mutex
	errs []string
}

func (r *recordingTB) Errorf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}

func (r *recordingTB) errors() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.errs...)
}

func TestServerRejectsWhatIsNotAnEnvelope(t *testing.T) {
	tests := []struct {
		name   string
		method string
		path   string
		auth   string
		body   string
		want   string
	}{
		{"wrong method", http.MethodPut, "/api/1/envelope/", "Sentry sentry_key=sentrytest", "{}\n", "want POST"},
		{"wrong project", http.MethodPost, "/api/2/envelope/", "Sentry sentry_key=sentrytest", "{}\n", "path"},
		{"wrong key", http.MethodPost, "/api/1/envelope/", "Sentry sentry_key=other", "{}\n", "X-Sentry-Auth"},
		{"bad header", http.MethodPost, "/api/1/envelope/", "Sentry sentry_key=sentrytest", "not json\n", "envelope header"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rtb := &recordingTB{TB: t}
			srv := NewServer(rtb)
			base := strings.TrimSuffix(strings.Replace(srv.DSN(), publicKey+"@", "", 1), "/"+projectID)
			req, err := http.NewRequest(tt.method, base+tt.path, strings.NewReader(tt.body))
			require.NoError(t, err)
			req.Header.Set("X-Sentry-Auth", tt.auth)
			res, err := srv.srv.Client().Do(req)
			require.NoError(t, err)
			_ = res.Body.Close()
			assert.Equal(t, http.StatusBadRequest, res.StatusCode, "status: got %d, want 400", res.StatusCode)
			errs := rtb.errors()
			require.Len(t, errs, 1, "reported errors: %v", errs)
			assert.Contains(t, errs[0], tt.want, "reported error")
			assert.Empty(t, srv.Envelopes(), "stored envelopes")
		})
	}
}

func TestParseEnvelope(t *testing.T) {
	tests := []struct {
		name      string
		in        string
		wantID    string
		wantTypes []string
		wantLoads []string
		wantErr   string
	}{
		{
			name:      "event with length",
			in:        `{"event_id":"abc"}` + "\n" + `{"type":"event","length":9}` + "\n" + `{"a":"b"}` + "\n",
			wantID:    "abc",
			wantTypes: []string{"event"},
			wantLoads: []string{`{"a":"b"}`},
		},
		{
			name:      "payload containing a newline, with length",
			in:        "{}\n" + `{"type":"attachment","length":3}` + "\na\nb\n",
			wantTypes: []string{"attachment"},
			wantLoads: []string{"a\nb"},
		},
		{
			name:      "without length, to the newline",
			in:        "{}\n" + `{"type":"event"}` + "\n{}\n" + `{"type":"client_report"}` + "\n{\"x\":1}",
			wantTypes: []string{"event", "client_report"},
			wantLoads: []string{"{}", `{"x":1}`},
		},
		{
			name:      "length, no trailing newline",
			in:        "{}\n" + `{"type":"event","length":2}` + "\n{}",
			wantTypes: []string{"event"},
			wantLoads: []string{"{}"},
		},
		{name: "header only", in: `{"event_id":"x"}`, wantID: "x"},
		{name: "empty", in: "", wantErr: "empty"},
		{name: "bad envelope header", in: "nope\n", wantErr: "envelope header"},
		{name: "bad item header", in: "{}\nnope\n", wantErr: "item 0 header"},
		{name: "item without type", in: "{}\n{}\n{}\n", wantErr: "no type"},
		{name: "length past the end", in: "{}\n" + `{"type":"event","length":50}` + "\n{}\n", wantErr: "length 50"},
		{name: "negative length", in: "{}\n" + `{"type":"event","length":-1}` + "\n{}\n", wantErr: "length -1"},
		{name: "payload longer than length", in: "{}\n" + `{"type":"event","length":1}` + "\n{}\n", wantErr: "no newline"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env, err := parseEnvelope([]byte(tt.in))
			if tt.wantErr != "" {
				require.Error(t, err, "want an error containing %q", tt.wantErr)
				assert.Contains(t, err.Error(), tt.wantErr, "error")
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.wantID, env.Header.EventID, "event id")
			var types, loads []string
			for _, it := range env.Items {
				types = append(types, it.Type)
				loads = append(loads, string(it.Payload))
			}
			assert.Equal(t, tt.wantTypes, types, "item types")
			assert.Equal(t, tt.wantLoads, loads, "payloads")
		})
	}
}

// FuzzParseEnvelope checks that no input makes the parser panic, and that
// what it accepts survives a round trip through the length-prefixed form.
func FuzzParseEnvelope(f *testing.F) {
	f.Add([]byte("{}\n" + `{"type":"event","length":2}` + "\n{}\n"))
	f.Add([]byte("{}\n" + `{"type":"event"}` + "\n{}\n"))
	f.Add([]byte(`{"event_id":"x"}`))
	f.Add([]byte("{}\n" + `{"type":"a","length":0}` + "\n\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		env, err := parseEnvelope(data)
		if err != nil {
			return
		}
		var b bytes.Buffer
		b.WriteString("{}\n")
		for _, it := range env.Items {
			typ, err := json.Marshal(it.Type)
			require.NoError(t, err)
			b.WriteString(`{"type":` + string(typ) + `,"length":` + strconv.Itoa(len(it.Payload)) + "}\n")
			b.Write(it.Payload)
			b.WriteByte('\n')
		}
		again, err := parseEnvelope(b.Bytes())
		require.NoError(t, err, "round trip of %q", b.String())
		require.Len(t, again.Items, len(env.Items), "items after round trip")
		for i := range env.Items {
			assert.Equal(t, env.Items[i].Type, again.Items[i].Type, "item %d type after round trip", i)
			assert.Equal(t, string(env.Items[i].Payload), string(again.Items[i].Payload), "item %d payload after round trip", i)
		}
	})
}

func TestWithDelayEndsWhenServerCloses(t *testing.T) {
	srv := NewServer(t, WithDelay(time.Hour))
	client := NewClient(t, srv.DSN(), sentry.ClientOptions{})
	hub := sentry.NewHub(client, sentry.NewScope())
	hub.CaptureMessage("slow")

	flushed := make(chan bool, 1)
	go func() { flushed <- client.Flush(time.Hour) }()
	select {
	case <-flushed:
		t.Fatal("Flush returned while the server was still delaying its answer")
	case <-time.After(200 * time.Millisecond):
		// Still waiting, as a slow Sentry makes it.
	}
	srv.Close()
	select {
	case <-flushed:
	case <-time.After(10 * time.Second):
		t.Fatal("Flush still blocked 10s after the server closed: the delay did not end")
	}
}

func TestClosedDSNRefusesConnections(t *testing.T) {
	dsn := ClosedDSN(t)
	u, err := url.Parse(dsn)
	require.NoError(t, err, "DSN %q", dsn)
	_, err = net.DialTimeout("tcp", u.Host, 2*time.Second)
	require.Error(t, err, "dial %s: want connection refused", u.Host)

	client := NewClient(t, dsn, sentry.ClientOptions{})
	hub := sentry.NewHub(client, sentry.NewScope())
	require.NotNil(t, hub.CaptureMessage("nobody listens"), "capture must still return an id")
	client.Flush(5 * time.Second) // fails fast; must not hang or panic
}

// TestStartOutsideATest: a server from Start decodes like one from
// NewServer, and keeps what it cannot decode for Err instead of failing a
// test.
func TestStartOutsideATest(t *testing.T) {
	srv, err := Start()
	require.NoError(t, err)
	defer srv.Close()
	client := NewClient(t, srv.DSN(), sentry.ClientOptions{})
	sentry.NewHub(client, sentry.NewScope()).CaptureMessage("hello")
	require.True(t, client.Flush(5*time.Second), "Flush timed out")
	events := srv.Events()
	require.Len(t, events, 1, "events")
	assert.Equal(t, "hello", events[0].Message, "message")
	require.NoError(t, srv.Err(), "nothing undecodable yet")

	base := strings.TrimSuffix(strings.Replace(srv.DSN(), publicKey+"@", "", 1), "/"+projectID)
	res, err := http.Post(base+"/api/1/envelope/", "text/plain", strings.NewReader("not json\n"))
	require.NoError(t, err)
	_ = res.Body.Close()
	assert.Equal(t, http.StatusBadRequest, res.StatusCode, "status")
	require.Error(t, srv.Err(), "the bad request is kept")
	assert.Contains(t, srv.Err().Error(), "X-Sentry-Auth", "error")

	_, err = Start(nil)
	assert.EqualError(t, err, "sentrytest: nil Option", "nil option")
}
