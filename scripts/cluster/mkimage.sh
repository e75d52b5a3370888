#!/usr/bin/env bash
# mkimage.sh NAME ROOTFS ENTRYPOINT_JSON OUT.tar
# Writes a single-layer linux/amd64 image as an OCI image-layout tar (what
# `ctr images import` reads). The layer is built with fixed owners, times and
# order, so the same rootfs gives the same digests on every machine.
set -euo pipefail
[ $# -eq 4 ] || { echo "usage: $0 NAME ROOTFS ENTRYPOINT_JSON OUT.tar" >&2; exit 2; }
name=$1 rootfs=$2 ep=$3 out=$4
w=$(mktemp -d)
trap 'rm -rf "$w"' EXIT
mkdir -p "$w/blobs/sha256"
blob() { # move FILE into blobs/, print its hex digest
	local h
	h=$(sha256sum "$1" | cut -d' ' -f1)
	mv "$1" "$w/blobs/sha256/$h"
	echo "$h"
}
tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner --format=gnu -C "$rootfs" -cf "$w/layer.tar" .
diffid=$(sha256sum "$w/layer.tar" | cut -d' ' -f1)
gzip -n -6 "$w/layer.tar"
lsize=$(stat -c%s "$w/layer.tar.gz")
lh=$(blob "$w/layer.tar.gz")
printf '{"architecture":"amd64","os":"linux","config":{"Entrypoint":%s,"Env":["PATH=/bin:/usr/bin:/sbin:/usr/sbin"]},"rootfs":{"type":"layers","diff_ids":["sha256:%s"]},"history":[{"created":"1970-01-01T00:00:00Z","created_by":"scripts/cluster/mkimage.sh"}]}' \
	"$ep" "$diffid" >"$w/config.json"
csize=$(stat -c%s "$w/config.json")
ch=$(blob "$w/config.json")
printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%s},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:%s","size":%s}]}' \
	"$ch" "$csize" "$lh" "$lsize" >"$w/manifest.json"
msize=$(stat -c%s "$w/manifest.json")
mh=$(blob "$w/manifest.json")
printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%s,"annotations":{"io.containerd.image.name":"%s","org.opencontainers.image.ref.name":"%s"}}]}' \
	"$mh" "$msize" "$name" "${name##*:}" >"$w/index.json"
echo '{"imageLayoutVersion":"1.0.0"}' >"$w/oci-layout"
tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -C "$w" -cf "$out.tmp" oci-layout index.json blobs
mv "$out.tmp" "$out"
