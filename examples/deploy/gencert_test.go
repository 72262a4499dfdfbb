package deploy

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/shipshape-go/shipshape/internal/testenv"
)

func parseCert(t *testing.T, path string) *x509.Certificate {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	blk, _ := pem.Decode(b)
	require.NotNil(t, blk, "no PEM block in %s", path)
	c, err := x509.ParseCertificate(blk.Bytes)
	require.NoError(t, err, path)
	return c
}

func TestGenCert(t *testing.T) {
	testenv.LookPath(t, "openssl", "openssl")
	dir := filepath.Join(t.TempDir(), "tls") // created by the script
	cmd := exec.Command("sh", "gen-cert.sh", dir)
	cmd.Env = append(os.Environ(), "DAYS=7")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "gen-cert.sh: %s", out)
	ca := parseCert(t, filepath.Join(dir, "ca.pem"))
	leaf := parseCert(t, filepath.Join(dir, "cert.pem"))

	tests := []struct {
		name  string
		check func(t *testing.T)
	}{
		{"only the four files, no CA key, no temp dir", func(t *testing.T) {
			entries, err := os.ReadDir(dir)
			require.NoError(t, err)
			var names []string
			for _, e := range entries {
				names = append(names, e.Name())
			}
			assert.ElementsMatch(t, []string{"ca.pem", "cert.pem", "key.pem", "shipshape.pem"}, names, "files in %s", dir)
		}},
		{"private keys are 0600, certificates 0644", func(t *testing.T) {
			for name, want := range map[string]os.FileMode{"key.pem": 0o600, "shipshape.pem": 0o600, "cert.pem": 0o644, "ca.pem": 0o644} {
				st, err := os.Stat(filepath.Join(dir, name))
				require.NoError(t, err)
				assert.Equal(t, want, st.Mode().Perm(), "mode of %s", name)
			}
		}},
		{"the certificate verifies against the CA for every local name", func(t *testing.T) {
			roots := x509.NewCertPool()
			roots.AddCert(ca)
			for _, name := range []string{"localhost", "127.0.0.1", "::1"} {
				_, err := leaf.Verify(x509.VerifyOptions{DNSName: name, Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
				assert.NoError(t, err, "verify for %s", name)
			}
			_, err := leaf.Verify(x509.VerifyOptions{DNSName: "example.com", Roots: roots})
			assert.Error(t, err, "verify for a name it does not hold")
		}},
		{"a server-only leaf and a CA that signs no further CA", func(t *testing.T) {
			assert.False(t, leaf.IsCA, "leaf IsCA")
			assert.Equal(t, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, leaf.ExtKeyUsage, "leaf extended key usage")
			assert.Equal(t, x509.KeyUsageDigitalSignature, leaf.KeyUsage, "leaf key usage")
			assert.True(t, ca.IsCA, "CA IsCA")
			assert.True(t, ca.MaxPathLenZero, "CA pathlen:0")
		}},
		{"ECDSA P-256, valid DAYS days", func(t *testing.T) {
			pub, ok := leaf.PublicKey.(*ecdsa.PublicKey)
			require.True(t, ok, "leaf key type %T", leaf.PublicKey)
			assert.Equal(t, elliptic.P256(), pub.Curve, "curve")
			assert.Equal(t, 7*24*time.Hour, leaf.NotAfter.Sub(leaf.NotBefore), "leaf validity")
			assert.Equal(t, 7*24*time.Hour, ca.NotAfter.Sub(ca.NotBefore), "CA validity")
		}},
		{"key.pem and shipshape.pem hold the certificate's key", func(t *testing.T) {
			_, err := tls.LoadX509KeyPair(filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem"))
			assert.NoError(t, err, "cert.pem + key.pem")
			pair := filepath.Join(dir, "shipshape.pem")
			kp, err := tls.LoadX509KeyPair(pair, pair)
			if assert.NoError(t, err, "shipshape.pem") {
				assert.Equal(t, leaf.Raw, kp.Certificate[0], "certificate in shipshape.pem")
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, tt.check)
	}

	t.Run("a second run renews everything in place", func(t *testing.T) {
		out, err := exec.Command("sh", "gen-cert.sh", dir).CombinedOutput()
		require.NoError(t, err, "gen-cert.sh: %s", out)
		again := parseCert(t, filepath.Join(dir, "cert.pem"))
		assert.NotEqual(t, leaf.SerialNumber, again.SerialNumber, "serial of the renewed certificate")
		entries, err := os.ReadDir(dir)
		require.NoError(t, err)
		assert.Len(t, entries, 4, "files after a second run")
	})
}
