#!/usr/bin/env bash
# The main job on the embedded default, offline: mamori server on embedded
# SQLite with something to look at — the bundled demo image scanned (every
# scanner) against the bundled OSV subset and uploaded through the API.
# Open the printed URL and log in with the printed token. Ctrl-C stops it.
#   MAMORI_DEMO_DIR   where the demo lives (default ./.demo)
#   MAMORI_DEMO_LISTEN address (default 127.0.0.1:8443)
#   MAMORI_DEMO_ONLINE=1 runs `mamori db update` first (needs the internet)
set -euo pipefail
cd "$(dirname "$0")/.."
DIR="${MAMORI_DEMO_DIR:-$PWD/.demo}"
LISTEN="${MAMORI_DEMO_LISTEN:-127.0.0.1:8443}"
BIN="$PWD/bin/mamori"
mkdir -p "$DIR"
"$BIN" demo-prepare --dir "$DIR"
if [ "${MAMORI_DEMO_ONLINE:-0}" = 1 ]; then
	"$BIN" db update --db-dir "$DIR/db"
fi
# A fresh token per demo run, created by the server on first start.
TOKEN_FILE="$DIR/admin-token"
if [ ! -s "$TOKEN_FILE" ]; then
	rm -rf "$DIR/data"
	(umask 077; head -c 32 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' | head -c 43 | sed 's/^/mmr_/' >"$TOKEN_FILE")
fi
TOKEN=$(cat "$TOKEN_FILE")
MAMORI_BOOTSTRAP_TOKEN="$TOKEN" "$BIN" server --data-dir "$DIR/data" --db-dir "$DIR/db" --cache-dir "$DIR/cache" --listen "$LISTEN" &
SERVER=$!
trap 'kill $SERVER 2>/dev/null; wait $SERVER 2>/dev/null' EXIT INT TERM
for _ in $(seq 1 50); do
	[ -s "$DIR/data/tls-cert.pem" ] && curl -fsS --cacert "$DIR/data/tls-cert.pem" "https://$LISTEN/healthz" >/dev/null 2>&1 && break
	sleep 0.2
done
MAMORI_TOKEN="$TOKEN" "$BIN" image --quiet --db-dir "$DIR/db" --cache-dir "$DIR/cache" --input "$DIR/demo-image.tar" \
	--scanners vuln,secret,malware,misconfig --server "https://$LISTEN" --server-ca "$DIR/data/tls-cert.pem" --format json --output "$DIR/demo-scan.json"
cat <<MSG

  mamori console:  https://$LISTEN/   (self-signed certificate: $DIR/data/tls-cert.pem)
  admin token:     $(cat "$TOKEN_FILE")   (also in $TOKEN_FILE)
  scan result:     $DIR/demo-scan.json

  Scan more and upload:  MAMORI_TOKEN=\$(cat $TOKEN_FILE) bin/mamori image --input IMAGE.tar \\
                           --db-dir $DIR/db --server https://$LISTEN --server-ca $DIR/data/tls-cert.pem
  Ctrl-C stops the server.
MSG
wait $SERVER
