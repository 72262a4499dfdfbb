// Package sentrytest runs a loopback Sentry ingestion endpoint, for tests of
// code that reports to Sentry: a real sentry-go client, pointed at
// [Server.DSN], sends its envelopes over HTTP to a local httptest.Server
// that decodes them (envelope header line, item headers, payloads) and
// keeps the events for assertions. No part of the SDK is mocked, so a test
// sees exactly what would reach Sentry, serialized by the SDK: scrubbing,
// BeforeSend, tags and the scope included.
//
//	srv := sentrytest.NewServer(t)
//	client := sentrytest.NewClient(t, srv.DSN(), sentry.ClientOptions{})
//	hub := sentry.NewHub(client, sentry.NewScope())
//	… code under test reports through hub …
//	client.Flush(5 * time.Second) // the transport is asynchronous
//	events := srv.Events()
//
// A request the server cannot decode fails the test that created it.
// [WithDelay] plays a slow Sentry and [ClosedDSN] one that is down.
//
// Examples: [Example].
package sentrytest

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/getsentry/sentry-go"
)

const (
	publicKey = "sentrytest"
	projectID = "1"
	maxBody   = 20 << 20
)

// Envelope is one decoded envelope, as the SDK sent it.
type Envelope struct {
	Header EnvelopeHeader
	Items  []Item
	// Raw is the whole envelope as received (after gzip), for assertions
	// on what was sent anywhere in it: headers, every item, every field.
	Raw []byte
}

// EnvelopeHeader is the first line of an envelope.
type EnvelopeHeader struct {
	EventID string    `json:"event_id"`
	SentAt  time.Time `json:"sent_at"`
	DSN     string    `json:"dsn"`
	SDK     struct {
		Name    string `json:"name"`
		Version string `json:"version"`
	} `json:"sdk"`
}

// Item is one item of an envelope: its type ("event", "transaction",
// "client_report", "attachment"…) and its payload bytes.
type Item struct {
	Type    string
	Payload []byte
}

// Server is a loopback Sentry endpoint. Its methods are safe for concurrent
// use.
type Server struct {
	tb      testing.TB // nil for a server from Start
	srv     *httptest.Server
	delay   time.Duration
	closing chan struct{}
	once    sync.Once

	mu        sync.Mutex
	envelopes []Envelope
	errs      []error
}

// Option configures [NewServer].
type Option func(*Server)

// WithDelay makes the server wait d before it answers each envelope, like a
// slow or overloaded Sentry. The wait ends early when the server closes, so
// that tests do not outlive it.
func WithDelay(d time.Duration) Option {
	return func(s *Server) { s.delay = d }
}

// NewServer starts a server on 127.0.0.1 and closes it when the test ends.
// What it cannot decode fails the test.
func NewServer(tb testing.TB, opts ...Option) *Server {
	tb.Helper()
	s, err := start(tb, opts)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(s.Close)
	return s
}

// Start starts a server on 127.0.0.1 outside a test: in an example, or a
// program that wants to see what it would send to Sentry. Close it when
// done. What it cannot decode is answered 400 and returned by [Server.Err].
func Start(opts ...Option) (*Server, error) {
	return start(nil, opts)
}

func start(tb testing.TB, opts []Option) (*Server, error) {
	s := &Server{tb: tb, closing: make(chan struct{})}
	for _, o := range opts {
		if o == nil {
			return nil, errors.New("sentrytest: nil Option")
		}
		o(s)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("sentrytest: %w", err)
	}
	s.srv = httptest.NewUnstartedServer(http.HandlerFunc(s.serve))
	s.srv.Listener = ln
	s.srv.Start()
	return s, nil
}

// fail records what the server could not decode, and fails the test of
// NewServer.
func (s *Server) fail(err error) {
	s.mu.Lock()
	s.errs = append(s.errs, err)
	s.mu.Unlock()
	if s.tb != nil {
		s.tb.Errorf("%v", err)
	}
}

// Err returns what the server could not decode so far (requests that are
// no envelope of its project, event payloads that are no event), nil when
// everything was.
func (s *Server) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return errors.Join(s.errs...)
}

// DSN returns the DSN of the server, for sentry.ClientOptions.Dsn.
func (s *Server) DSN() string {
	return "http://" + publicKey + "@" + strings.TrimPrefix(s.srv.URL, "http://") + "/" + projectID
}

// Close stops the server; it is idempotent. Requests waiting because of
// [WithDelay] are answered at once.
func (s *Server) Close() {
	s.once.Do(func() {
		close(s.closing)
		s.srv.CloseClientConnections()
		s.srv.Close()
	})
}

// Envelopes returns a copy of the envelopes received so far, in arrival
// order.
func (s *Server) Envelopes() []Envelope {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Envelope(nil), s.envelopes...)
}

// Events returns the error events received so far (items of type "event"),
// decoded, in arrival order. Call the client's Flush first: the SDK sends
// from a background goroutine.
func (s *Server) Events() []*sentry.Event {
	var events []*sentry.Event
	for _, env := range s.Envelopes() {
		for _, it := range env.Items {
			if it.Type != "event" {
				continue
			}
			ev := new(sentry.Event)
			if err := json.Unmarshal(it.Payload, ev); err != nil {
				s.fail(fmt.Errorf("sentrytest: event payload: %w", err))
				continue
			}
			events = append(events, ev)
		}
	}
	return events
}

// RawEvents returns the JSON payloads of the error events received so far,
// for assertions on what was sent at all ("no Cookie anywhere").
func (s *Server) RawEvents() [][]byte {
	var raw [][]byte
	for _, env := range s.Envelopes() {
		for _, it := range env.Items {
			if it.Type == "event" {
				raw = append(raw, it.Payload)
			}
		}
	}
	return raw
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	if s.delay > 0 {
		timer := time.NewTimer(s.delay)
		select {
		case <-timer.C:
		case <-s.closing:
		case <-r.Context().Done():
		}
		timer.Stop()
	}
	if err := s.accept(w, r); err != nil {
		s.fail(fmt.Errorf("sentrytest: %s %s: %w", r.Method, r.URL.Path, err))
		http.Error(w, "bad envelope", http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = io.WriteString(w, `{}`)
}

// accept checks that r is an envelope for this server's project, decodes
// it and stores it.
func (s *Server) accept(w http.ResponseWriter, r *http.Request) error {
	if r.Method != http.MethodPost {
		return errors.New("want POST")
	}
	if want := "/api/" + projectID + "/envelope/"; r.URL.Path != want {
		return fmt.Errorf("path: want %s", want)
	}
	if auth := r.Header.Get("X-Sentry-Auth"); !strings.Contains(auth, "sentry_key="+publicKey) {
		return fmt.Errorf("X-Sentry-Auth %q: want sentry_key=%s", auth, publicKey)
	}
	var body io.Reader = http.MaxBytesReader(w, r.Body, maxBody)
	if r.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(body)
		if err != nil {
			return fmt.Errorf("gzip: %w", err)
		}
		defer func() { _ = zr.Close() }()
		body = zr
	}
	data, err := io.ReadAll(body)
	if err != nil {
		return fmt.Errorf("body: %w", err)
	}
	env, err := parseEnvelope(data)
	if err != nil {
		return err
	}
	env.Raw = data
	s.mu.Lock()
	s.envelopes = append(s.envelopes, env)
	s.mu.Unlock()
	return nil
}

// itemHeader is the JSON line before each item's payload.
type itemHeader struct {
	Type   string `json:"type"`
	Length *int   `json:"length"`
}

// parseEnvelope decodes the envelope format: a JSON header line, then items,
// each a JSON header line and a payload that is either "length" bytes long
// (followed by a newline, or the end) or, without a length, runs to the next
// newline. See https://develop.sentry.dev/sdk/data-model/envelopes/.
func parseEnvelope(data []byte) (Envelope, error) {
	var env Envelope
	line, rest, ok := bytes.Cut(data, []byte("\n"))
	if !ok && len(line) == 0 {
		return env, errors.New("envelope: empty")
	}
	if err := json.Unmarshal(line, &env.Header); err != nil {
		return env, fmt.Errorf("envelope header: %w", err)
	}
	for len(rest) > 0 {
		if len(bytes.TrimSpace(rest)) == 0 {
			break // trailing newlines
		}
		line, rest, _ = bytes.Cut(rest, []byte("\n"))
		var h itemHeader
		if err := json.Unmarshal(line, &h); err != nil {
			return env, fmt.Errorf("item %d header: %w", len(env.Items), err)
		}
		if h.Type == "" {
			return env, fmt.Errorf("item %d: no type", len(env.Items))
		}
		var payload []byte
		if h.Length != nil {
			n := *h.Length
			if n < 0 || n > len(rest) {
				return env, fmt.Errorf("item %d: length %d, %d bytes left", len(env.Items), n, len(rest))
			}
			payload, rest = rest[:n], rest[n:]
			if len(rest) > 0 {
				if rest[0] != '\n' {
					return env, fmt.Errorf("item %d: no newline after %d bytes of payload", len(env.Items), n)
				}
				rest = rest[1:]
			}
		} else {
			payload, rest, _ = bytes.Cut(rest, []byte("\n"))
		}
		env.Items = append(env.Items, Item{Type: h.Type, Payload: bytes.Clone(payload)})
	}
	return env, nil
}

// ClosedDSN returns a DSN whose port on 127.0.0.1 nothing listens on, like
// a Sentry that is down: connections are refused at once. On Unix the port
// stays reserved until the test ends, so no server of the test gets it.
func ClosedDSN(tb testing.TB) string {
	tb.Helper()
	return "http://" + publicKey + "@127.0.0.1:" + strconv.Itoa(closedPort(tb)) + "/" + projectID
}

// NewClient returns a real sentry-go client for dsn, with opts otherwise as
// given (opts.Dsn is overwritten). Unless opts.HTTPTransport is set, it gets
// its own *http.Transport so that the test can close its idle connections:
// when the test ends the client is closed (which flushes for up to 5s and
// stops the SDK's goroutines) and the transport's connections with it, so
// goleak finds nothing. Close a slow [Server] before that (defer
// srv.Close()), or the final flush waits for it.
func NewClient(tb testing.TB, dsn string, opts sentry.ClientOptions) *sentry.Client {
	tb.Helper()
	opts.Dsn = dsn
	var tr *http.Transport
	if opts.HTTPTransport == nil && opts.HTTPClient == nil {
		tr = &http.Transport{MaxIdleConnsPerHost: 4}
		opts.HTTPTransport = tr
	}
	client, err := sentry.NewClient(opts)
	if err != nil {
		tb.Fatalf("sentrytest: sentry.NewClient: %v", err)
	}
	tb.Cleanup(func() {
		client.Close()
		if tr != nil {
			tr.CloseIdleConnections()
		}
	})
	return client
}
