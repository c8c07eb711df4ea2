#!/bin/sh
# tests/fakes/mkcerts.sh DIR — generates the throwaway test PKI for the
# loopback fakes (openssl CLI, P-256 keys, valid 2 days):
#   ca.pem/ca.key          test CA ("entrasync test CA")
#   server.pem/server.key  localhost + 127.0.0.1, signed by the test CA
#   bad.pem/bad.key        localhost + 127.0.0.1, self-signed: trusted by nobody
#   other-ca.pem           a second, unrelated CA (to prove anchors add up)
# Keys are test-only and never leave DIR.
set -eu
dir=${1:?usage: mkcerts.sh DIR}
mkdir -p "$dir"
cd "$dir"
umask 077
curve="-newkey ec -pkeyopt ec_paramgen_curve:prime256v1"
san="subjectAltName=DNS:localhost,IP:127.0.0.1"

# shellcheck disable=SC2086
openssl req -x509 $curve -nodes -days 2 -subj "/CN=entrasync test CA" \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
  -keyout ca.key -out ca.pem 2>/dev/null

# shellcheck disable=SC2086
openssl req $curve -nodes -subj "/CN=localhost" -keyout server.key -out server.csr 2>/dev/null
printf '%s\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n' "$san" > server.ext
openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 \
  -extfile server.ext -out server.pem 2>/dev/null
rm -f server.csr server.ext ca.srl

# shellcheck disable=SC2086
openssl req -x509 $curve -nodes -days 2 -subj "/CN=localhost" -addext "$san" \
  -keyout bad.key -out bad.pem 2>/dev/null

# shellcheck disable=SC2086
openssl req -x509 $curve -nodes -days 2 -subj "/CN=entrasync other test CA" \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
  -keyout other-ca.key -out other-ca.pem 2>/dev/null
rm -f other-ca.key
chmod 644 ca.pem server.pem bad.pem other-ca.pem
openssl verify -CAfile ca.pem server.pem >/dev/null
