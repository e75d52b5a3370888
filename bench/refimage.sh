#!/usr/bin/env bash
# Builds the reference image of ../shared/docs/PEERS.md ("Test images
# without a registry") into $MAMORI_BENCH_DIR/ref.tar, once:
#   layer 1: Debian 12 minbase + curl, openssl, libxml2, python3-minimal
#   layer 2: an npm app of old versions, a Go binary with old modules,
#            planted secrets of 12+ kinds, and EICAR (plain and zipped).
# Also leaves the unpacked root file system in $MAMORI_BENCH_DIR/reffs for
# the directory-scanning peers (gitleaks).
source "$(dirname "$0")/lib.sh"
OUT="$BENCH_DIR/ref.tar"
[ -f "$OUT" ] && [ "${1:-}" != "-f" ] && { echo "$OUT"; exit 0; }

command -v debootstrap >/dev/null || { apt-get update -qq && apt-get install -y -qq debootstrap >/dev/null; }
MIRROR=$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
MIRROR=${MIRROR:-http://deb.debian.org/debian}

ROOTFS="$BENCH_DIR/base"
if [ ! -f "$ROOTFS/etc/os-release" ]; then
	log "debootstrap bookworm (about 80 s)"
	rm -rf "$ROOTFS"
	debootstrap --variant=minbase --include=curl,openssl,libxml2,python3-minimal bookworm "$ROOTFS" "$MIRROR" >"$BENCH_DIR/debootstrap.log" 2>&1
	rm -rf "$ROOTFS"/var/cache/apt/archives/*.deb "$ROOTFS"/dev/*
fi

APP="$BENCH_DIR/app"
rm -rf "$APP" && mkdir -p "$APP/srv/app" "$APP/usr/local/bin" "$APP/root/.aws" "$APP/root/.ssh" "$APP/root/.docker" "$APP/home/app"
log "npm app (old versions)"
(
	cd "$APP/srv/app"
	cat >package.json <<'JSON'
{ "name": "ref-app", "version": "1.0.0", "private": true,
  "dependencies": { "express": "4.17.1", "lodash": "4.17.20", "minimist": "1.2.5", "debug": "2.6.8" } }
JSON
	npm install --no-audit --no-fund --loglevel=error >/dev/null
)
log "Go binary (old golang.org/x/text)"
GOSRC="$BENCH_DIR/gosrc"
rm -rf "$GOSRC" && mkdir -p "$GOSRC"
(
	cd "$GOSRC"
	cat >main.go <<'GO'
package main

import (
	"fmt"

	"golang.org/x/text/language"
)

func main() { fmt.Println(language.English) }
GO
	go mod init example.com/refapp >/dev/null 2>&1
	GOFLAGS=-mod=mod go get golang.org/x/text@v0.3.5 >/dev/null 2>&1
	CGO_ENABLED=0 GOFLAGS=-mod=mod go build -o "$APP/usr/local/bin/refapp" .
)

log "planted secrets and EICAR"
# Every value is built from pieces, so this script is not itself a finding.
A=AKIA; S=wJalrXUtnFEMI; GK=AIza
cat >"$APP/root/.aws/credentials" <<EOT
[default]
aws_access_key_id = ${A}IOSFODNN7REFIMGQ
aws_secret_access_key = ${S}/K7MDENG/bPxRfiCYREFIMAGEK1
EOT
openssl genrsa -traditional 2048 2>/dev/null >"$APP/root/.ssh/id_rsa"
openssl ecparam -name prime256v1 -genkey -noout 2>/dev/null >"$APP/srv/app/ec.key"
openssl genpkey -algorithm ed25519 2>/dev/null >"$APP/srv/app/pkcs8.pem"
PK=$(openssl genpkey -algorithm rsa -pkeyopt rsa_keygen_bits:1024 2>/dev/null | awk '{printf "%s\\n", $0}')
cat >"$APP/srv/app/gcp-sa.json" <<EOT
{ "type": "service_account", "project_id": "ref-project", "private_key_id": "3f1c2b9e8d7a6f5e4d3c2b1a0f9e8d7c6b5a4f3e",
  "private_key": "$PK", "client_email": "ref@ref-project.iam.gserviceaccount.com", "client_id": "112233445566778899001" }
EOT
G=ghp_; SL=xoxb; ST=sk_live_; SG=SG.; NP=npm_; PY=pypi-AgEIcHlwaS5vcmc
cat >"$APP/srv/app/.env" <<EOT
GITHUB_TOKEN=${G}R3fImAg3T0k3nAbCdEfGhIjKlMnOpQrStUv1
SLACK_BOT_TOKEN=${SL}-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx
STRIPE_SECRET_KEY=${ST}51HrefImageAbCdEfGhIjKlMn0pQrStUvWxYz
SENDGRID_API_KEY=${SG}ngeVfQFYQlKU0ufo8x5d1A.TwL2iGABf9DHoTf-09kqeF8tAmbihYzrnopKc-1s5cr
GCP_API_KEY=${GK}SyD-REFimage0123456789abcdefghijklm
DB_PASSWORD=Zx9!qR7#tL2@vK5m
EOT
echo "//registry.npmjs.org/:_authToken=${NP}R3fImAg3NpmT0k3nAbCdEfGhIjKlMnOpQrSt" >"$APP/root/.npmrc"
cat >"$APP/root/.pypirc" <<EOT
[pypi]
username = __token__
password = ${PY}CJGRkYjEyMzQ1LTY3ODktNDAxMi1hYmNkLWVmMDEyMzQ1Njc4OQACKlsz
EOT
AUTH=$(printf 'refuser:R3fPassw0rd!' | base64)
echo "{\"auths\":{\"registry.example.com\":{\"auth\":\"$AUTH\"}}}" >"$APP/root/.docker/config.json"
JH=$(printf '{"alg":"HS256","typ":"JWT"}' | base64 -w0 | tr -d '=' | tr '/+' '_-')
JP=$(printf '{"sub":"1234567890","name":"ref","iat":1516239022}' | base64 -w0 | tr -d '=' | tr '/+' '_-')
echo "session=$JH.$JP.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c" >"$APP/home/app/session.txt"
E1='X5O!P%@AP[4\PZX54(P^)7CC)7}$'; E2='EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*'
printf '%s%s' "$E1" "$E2" >"$APP/srv/app/eicar.com.txt"
(cd "$APP/srv/app" && python3 -c "import zipfile; z=zipfile.ZipFile('eicar.zip','w'); z.write('eicar.com.txt'); z.close()")

rm -rf "$BENCH_DIR/reffs" && mkdir -p "$BENCH_DIR/reffs"
cp -a "$ROOTFS/." "$BENCH_DIR/reffs/" && cp -a "$APP/." "$BENCH_DIR/reffs/"

log "packing $OUT"
(cd "$REPO_ROOT" && go run ./bench/mkimage -o "$OUT" -tag mamori/reference:1 "$ROOTFS" "$APP")
ls -la "$OUT" >&2
echo "$OUT"
