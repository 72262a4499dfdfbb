#!/bin/sh
# gen-cert.sh [DIR] — make a throwaway local CA and a server certificate
# signed by it for localhost, 127.0.0.1 and ::1, to try the deploy configs on
# one machine. In production use your CA or ACME (certbot, lego, acme.sh).
#
# Writes into DIR (default ./tls), all with OpenSSL 1.1.1 or later:
#   ca.pem         the CA certificate: trust this one (curl --cacert, a
#                  browser's or the OS's trust store, a Go client's RootCAs)
#   cert.pem       the server certificate, ECDSA P-256 (nginx ssl_certificate)
#   key.pem        its private key, mode 0600 (nginx ssl_certificate_key)
#   shipshape.pem  cert.pem then key.pem, mode 0600 (HAProxy crt)
#
# The CA's private key is deleted as soon as the certificate is signed, so
# the CA you were asked to trust can never sign anything else. Both
# certificates are valid for DAYS days (default 30). Run it again to renew.
set -eu
dir=${1:-./tls}
days=${DAYS:-30}

mkdir -p "$dir" # 0755: the files below carry their own modes
umask 077
tmp=$(mktemp -d "$dir/.gen-cert.XXXXXX") # same file system: mv is a rename
trap 'rm -rf "$tmp"' EXIT
trap 'exit 130' INT TERM

# quiet runs a command with its stderr kept aside, shown only if it fails.
quiet() {
    "$@" 2>"$tmp/stderr" || {
        cat "$tmp/stderr" >&2
        exit 1
    }
}

quiet openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -days "$days" -subj "/CN=shipshape local CA" \
    -addext "basicConstraints=critical,CA:TRUE,pathlen:0" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -keyout "$tmp/ca-key.pem" -out "$tmp/ca.pem"

quiet openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -subj "/CN=localhost" -keyout "$tmp/key.pem" -out "$tmp/req.pem"

cat > "$tmp/ext.cnf" <<'EOF'
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost, IP:127.0.0.1, IP:::1
EOF
quiet openssl x509 -req -in "$tmp/req.pem" -CA "$tmp/ca.pem" -CAkey "$tmp/ca-key.pem" \
    -set_serial "0x$(openssl rand -hex 16)" -days "$days" -sha256 \
    -extfile "$tmp/ext.cnf" -out "$tmp/cert.pem"

# Move into place only once everything succeeded: a failed run leaves the
# previous pair untouched. Certificates are public, keys are not.
chmod 0644 "$tmp/ca.pem" "$tmp/cert.pem"
cat "$tmp/cert.pem" "$tmp/key.pem" > "$tmp/shipshape.pem"
for f in ca.pem cert.pem key.pem shipshape.pem; do
    mv -f "$tmp/$f" "$dir/$f"
done
echo "wrote $dir/ca.pem (trust this), $dir/cert.pem, $dir/key.pem and $dir/shipshape.pem"
