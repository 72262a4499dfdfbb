package cluster

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"os"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestServeFuncBadInput: ServeFunc, Serve and Run refuse what they cannot
// honour before anything starts, each error naming its cause.
func TestServeFuncBadInput(t *testing.T) {
	build := func(context.Context) (*Service, error) { return &Service{Server: &http.Server{}}, nil }
	ctx := context.Background()
	var nilCtx context.Context
	tests := []struct {
		name    string
		call    func() error
		wantErr string
	}{
		{"nil context", func() error { return ServeFunc(nilCtx, build, WithAddr("tcp", ":0")) }, "cluster: ServeFunc: nil context"},
		{"nil build", func() error { return ServeFunc(ctx, nil, WithAddr("tcp", ":0")) }, "cluster: ServeFunc: nil build function"},
		{"no address", func() error { return ServeFunc(ctx, build) }, "cluster: ServeFunc: no address; use WithAddr"},
		{"nil option", func() error { return ServeFunc(ctx, build, nil) }, "cluster: nil Option"},
		{"named address with Serve", func() error {
			return Serve(ctx, &http.Server{}, WithAddr("tcp", ":0"), WithNamedAddr("admin", "tcp", ":0"))
		}, `cluster: Serve: WithNamedAddr "admin" needs a server built in the worker; use ServeFunc`},
		{"named address with Run", func() error {
			return Run(ctx, func(context.Context, net.Listener) error { return nil }, WithAddr("tcp", ":0"), WithNamedAddr("admin", "tcp", ":0"))
		}, `cluster: Run: WithNamedAddr "admin": Run serves one listener; use ServeFunc`},
		{"bad name", func() error { return ServeFunc(ctx, build, WithAddr("tcp", ":0"), WithNamedAddr("Admin", "tcp", ":0")) },
			`cluster: WithNamedAddr: name "Admin", want 1-32 of a-z 0-9 _ -`},
		{"empty name", func() error { return ServeFunc(ctx, build, WithAddr("tcp", ":0"), WithNamedAddr("", "tcp", ":0")) },
			`cluster: WithNamedAddr: name ""`},
		{"name twice", func() error {
			return ServeFunc(ctx, build, WithAddr("tcp", ":0"), WithNamedAddr("a", "tcp", ":0"), WithNamedAddr("a", "tcp", ":1"))
		}, `cluster: WithNamedAddr: name "a" given twice`},
		{"udp", func() error { return ServeFunc(ctx, build, WithAddr("tcp", ":0"), WithNamedAddr("a", "udp", ":53")) },
			`cluster: WithNamedAddr "a": network "udp", want tcp, tcp4, tcp6 or unix`},
		{"empty address", func() error { return ServeFunc(ctx, build, WithAddr("tcp", ":0"), WithNamedAddr("a", "tcp", "")) },
			`cluster: WithNamedAddr "a": empty address`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call()
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.wantErr)
		})
	}
}

// TestServiceByListener: the servers of a Service must match the
// listeners one to one; anything else is an error that says what is
// wrong, before a server starts.
func TestServiceByListener(t *testing.T) {
	a, b := &http.Server{}, &http.Server{}
	lns := map[string]net.Listener{"": nil, "admin": nil}
	tests := []struct {
		name    string
		svc     Service
		lns     map[string]net.Listener
		wantErr string
	}{
		{"main only", Service{Server: a}, map[string]net.Listener{"": nil}, ""},
		{"main and admin", Service{Server: a, Servers: map[string]*http.Server{"admin": b}}, lns, ""},
		{"no main server", Service{Servers: map[string]*http.Server{"admin": b}}, lns, "cluster: ServeFunc: Service.Server is nil"},
		{"admin missing", Service{Server: a}, lns, `cluster: ServeFunc: WithNamedAddr "admin" has no server in Service.Servers`},
		{"unknown name", Service{Server: a, Servers: map[string]*http.Server{"admin": b, "metrics": {}}}, lns,
			`cluster: ServeFunc: Service.Servers["metrics"]: no WithNamedAddr of that name`},
		{"empty name", Service{Server: a, Servers: map[string]*http.Server{"": b}}, lns, `cluster: ServeFunc: Service.Servers[""]: no WithNamedAddr`},
		{"nil server", Service{Server: a, Servers: map[string]*http.Server{"admin": nil}}, lns, `cluster: ServeFunc: Service.Servers["admin"] is nil`},
		{"one server twice", Service{Server: a, Servers: map[string]*http.Server{"admin": a}}, lns, "serves another address too"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			servers, err := tt.svc.byListener(tt.lns)
			if tt.wantErr != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tt.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Len(t, servers, len(tt.lns))
		})
	}
}

// TestServeTLSNeedsCertificate: a TLSConfig without a certificate is an
// error that says so, not net/http's "open : no such file".
func TestServeTLSNeedsCertificate(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	c, err := newConfig(nil)
	require.NoError(t, err)
	err = httpServe(&http.Server{TLSConfig: nil}, c)(canceled(), ln)
	require.NoError(t, err, "plain HTTP, stopped at once")
	ln2, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln2.Close()
	err = httpServe(&http.Server{TLSConfig: &tls.Config{}}, c)(context.Background(), ln2)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "cluster: serve: srv.TLSConfig has no certificate")
}

func canceled() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}

// TestWorkerIncarnationEnv: WorkerIncarnation reads the variable the supervisor sets; anything
// but a positive number is no incarnation.
func TestWorkerIncarnationEnv(t *testing.T) {
	tests := []struct {
		name  string
		value string // "-" leaves it unset
		want  uint64
		ok    bool
	}{
		{"unset", "-", 0, false},
		{"one", "1", 1, true},
		{"large", "18446744073709551615", 18446744073709551615, true},
		{"zero", "0", 0, false},
		{"negative", "-3", 0, false},
		{"text", "seven", 0, false},
		{"empty", "", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.value != "-" {
				t.Setenv(EnvWorkerIncarnation, tt.value)
			}
			got, ok := WorkerIncarnation()
			assert.Equal(t, tt.ok, ok)
			assert.Equal(t, tt.want, got)
		})
	}
	t.Run("in WorkerAttr", func(t *testing.T) {
		t.Setenv(EnvWorkerID, "2")
		t.Setenv(EnvWorkerIncarnation, "9")
		assert.Equal(t, "cluster=[worker=2 incarnation=9 pid="+strconv.Itoa(os.Getpid())+"]", WorkerAttr().String())
	})
}
