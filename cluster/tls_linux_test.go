package cluster

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/shipshape-go/shipshape/internal/loadgen"
)

// testCert writes a self-signed certificate for 127.0.0.1 and its key to
// dir and returns their paths and a pool that trusts it.
func testCert(t *testing.T, dir string) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "cluster test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	kder, err := x509.MarshalECPrivateKey(key)
	require.NoError(t, err)
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	require.NoError(t, os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600))
	require.NoError(t, os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600))
	cert, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

// TestServeTLS: Serve with srv.TLSConfig set serves HTTPS, HTTP/2 by ALPN
// as net/http does and HTTP/1.1 to a client that offers only that, and
// both workers answer each.
func TestServeTLS(t *testing.T) {
	dir := t.TempDir()
	cert, key, pool := testCert(t, dir)
	c := startProgram(t, "", "serve", 2, "CLUSTER_TEST_WORKERS=2",
		"CLUSTER_TEST_TLS_CERT="+cert, "CLUSTER_TEST_TLS_KEY="+key)
	ready := c.waitReady(0, 2, 10*time.Second)
	url := "https://" + c.addr + "/"

	tests := []struct {
		name      string
		transport func() *http.Transport
		proto     string
	}{
		{"HTTP/2", func() *http.Transport {
			return &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, ForceAttemptHTTP2: true}
		}, "HTTP/2.0"},
		{"HTTP/1.1", func() *http.Transport {
			return &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool},
				TLSNextProto: map[string]func(string, *tls.Conn) http.RoundTripper{}}
		}, "HTTP/1.1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pids := map[int]int{}
			// A new transport, and so a new connection and handshake, per
			// request: each goes through the shared accept queue.
			for i := 0; i < 200 && len(pids) < 2; i++ {
				tr := tt.transport()
				client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
				resp, err := client.Get(url)
				require.NoError(t, err)
				body, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				tr.CloseIdleConnections()
				require.NoError(t, err)
				require.Equal(t, http.StatusOK, resp.StatusCode)
				assert.Equal(t, tt.proto, resp.Proto, "protocol the client saw")
				f := strings.Fields(string(body))
				require.Len(t, f, 4, "body %q", body)
				assert.Equal(t, tt.proto, f[3], "protocol the worker saw")
				pid, _ := strconv.Atoi(f[0])
				pids[pid]++
			}
			assert.ElementsMatch(t, pidsOf(ready), keys(pids), "workers that answered over TLS")
		})
	}

	t.Run("plain HTTP on the TLS port", func(t *testing.T) {
		resp, err := fresh().Get("http://" + c.addr + "/")
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, http.StatusBadRequest, resp.StatusCode, "net/http's answer to HTTP on a TLS port")
	})
}

func keys(m map[int]int) []int {
	var out []int
	for k := range m {
		out = append(out, k)
	}
	return out
}

// TestServeTLSRollingRestart: HTTP/2 clients, which keep their
// connections and send many requests on each, lose nothing while SIGHUP
// replaces every worker: a draining worker's connections end with a
// GOAWAY after their requests, and the clients go on on new ones.
func TestServeTLSRollingRestart(t *testing.T) {
	dir := t.TempDir()
	cert, key, pool := testCert(t, dir)
	c := startProgram(t, "", "serve", 2, "CLUSTER_TEST_WORKERS=2",
		"CLUSTER_TEST_TLS_CERT="+cert, "CLUSTER_TEST_TLS_KEY="+key)
	old := c.waitReady(0, 2, 10*time.Second)
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, ForceAttemptHTTP2: true}
	defer tr.CloseIdleConnections()
	load := startLoad(t, loadgen.Config{URL: "https://" + c.addr + "/", Concurrency: 8, Rate: 500,
		Duration: 3 * time.Second, Transport: tr})
	time.Sleep(500 * time.Millisecond) // liveness only: the load is running
	from := c.mark()
	c.signal(syscall.SIGHUP)
	c.waitEvent(from, 30*time.Second, func(e event) bool { return e.Msg == "cluster: rolling restart done" })
	renewed := c.waitReady(from, 2, time.Second)
	res := load.wait()
	t.Logf("HTTP/2 load during the rolling restart: %v", res)
	assert.Zero(t, res.Failed(), "failed requests (%v)", res.ErrorSamples)
	assert.Greater(t, res.Status[200], int64(1000), "answered requests")
	for id, e := range renewed {
		assert.NotContains(t, pidsOf(old), e.PID, "worker %d replaced", id)
	}
}
