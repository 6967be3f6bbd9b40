#!/usr/bin/env bash
# Make what deploy/compose.sasl-ssl.yml mounts, for trying the SASL_SSL listener out: a
# throwaway CA, the broker's certificate for the host name `kafka` in a PKCS#12 keystore,
# the broker's SCRAM login module, and a random SASL password for the `slawatch` user.
# Production uses certificates from your own CA and a password from your secret store.
#
#   deploy/kafka-tls/make-dev-certs.sh [FOLDER]     # default: this script's folder
set -euo pipefail

out="${1:-$(cd "$(dirname "$0")" && pwd)}"
mkdir -p "$out/ca" "$out/broker" "$out/client"  # ca/: the CA key and the work files
cd "$out"
umask 077
days=365

openssl req -x509 -newkey rsa:2048 -nodes -days "$days" -subj "/CN=slawatch dev Kafka CA" \
  -keyout ca/ca.key -out client/ca.pem 2>/dev/null
openssl req -newkey rsa:2048 -nodes -subj "/CN=kafka" \
  -keyout ca/kafka.key -out ca/kafka.csr 2>/dev/null
printf 'subjectAltName=DNS:kafka,DNS:localhost\n' > ca/kafka.ext
openssl x509 -req -in ca/kafka.csr -CA client/ca.pem -CAkey ca/ca.key \
  -CAserial ca/ca.srl -CAcreateserial -days "$days" -extfile ca/kafka.ext \
  -out ca/kafka.pem 2>/dev/null

# The image reads the keystore's password from a file (KAFKA_SSL_KEYSTORE_CREDENTIALS).
openssl rand -hex 16 > broker/keystore-password
openssl pkcs12 -export -in ca/kafka.pem -inkey ca/kafka.key -certfile client/ca.pem \
  -name kafka -out broker/kafka.p12 -passout "file:broker/keystore-password"

# SCRAM users live in the cluster's metadata (compose.sasl-ssl.yml's kafka-users adds
# them); the login module itself holds no secret.
cat > broker/kafka_server_jaas.conf <<'JAAS'
KafkaServer {
  org.apache.kafka.common.security.scram.ScramLoginModule required;
};
JAAS

# SCRAM passwords must not contain `,` or `=` (kafka-configs' syntax): hex has neither.
[ -s sasl-password ] || openssl rand -hex 24 > sasl-password
chmod 644 client/ca.pem broker/kafka_server_jaas.conf
# The broker runs as an unprivileged user in its container.
chmod 644 broker/kafka.p12 broker/keystore-password sasl-password
echo "made: $out/{broker,client}/ and $out/sasl-password"
