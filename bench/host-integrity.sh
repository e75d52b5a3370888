#!/usr/bin/env bash
# Integrity monitoring of /usr: mamori (internal/host/integrity) versus
# AIDE (Debian package aide), in one run, on the same tree: baseline time
# and peak RSS, compare time and peak RSS, and the same changes found.
#
# The tree is an overlay mount of the real /usr made by this script (the
# real /usr is never written: changes land in the overlay's upper dir),
# mounted at $BENCH_DIR/fim/usr, and both tools watch that path with the
# same attributes (type, mode, inode, links, owner, size, mtime, ctime,
# SHA-256, symlink target, xattrs, ACLs, capabilities). Needs root (mount).
# Not part of CI.
#
#   bench/host-integrity.sh            # WORKERS defaults to the CPU count
#   WORKERS=1 bench/host-integrity.sh  # single-threaded for both
set -euo pipefail
source "$(dirname "$0")/lib.sh"

[ "$(id -u)" = 0 ] || { echo "needs root (overlay mount)"; exit 1; }
command -v aide >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends aide >/dev/null
[ -x /usr/bin/time ] || DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends time >/dev/null
WORKERS=${WORKERS:-$(nproc)}

W="$BENCH_DIR/fim"
MERGED="$W/usr"
cleanup() {
	mountpoint -q "$MERGED" && umount "$MERGED"
	rm -rf "$W/upper" "$W/work"
}
trap cleanup EXIT
cleanup
mkdir -p "$W/upper" "$W/work" "$MERGED"
mount -t overlay overlay -o "lowerdir=/usr,upperdir=$W/upper,workdir=$W/work" "$MERGED"

log "building the driver (bench/host-integrity, the engine with no agent around it)"
(cd "$REPO_ROOT" && go build -o "$W/mamori-fim" ./bench/host-integrity)

cat >"$W/aide.conf" <<EOF
database_in=file:$W/aide.db.gz
database_out=file:$W/aide.db.new.gz
gzip_dbout=yes
num_workers=$WORKERS
report_url=file:$W/aide.report
report_detailed_init=no
FIM = p+i+n+u+g+s+m+c+sha256+acl+xattrs+caps+ftype+l
$MERGED FIM
EOF

# timed NAME CMD...: runs CMD under GNU time; records seconds and peak RSS.
declare -A SECS RSS
timed() {
	local name=$1; shift
	/usr/bin/time -f "%e %M" -o "$W/time.$name" "$@" >"$W/out.$name" 2>&1 || {
		# aide --check exits with a bit mask of what it found (1 added, 2 removed, 4 changed).
		[ "$name" = aide-check ] || { cat "$W/out.$name"; exit 1; }
	}
	read -r SECS[$name] RSS[$name] < <(tail -1 "$W/time.$name")
	log "$name: ${SECS[$name]} s, $((RSS[$name] / 1024)) MiB peak RSS"
}

log "warming the page cache (both tools then read from memory)"
find "$MERGED" -xdev -type f -print0 | xargs -0 -P "$WORKERS" cat >/dev/null 2>&1 || true
files=$(find "$MERGED" -xdev | wc -l)
log "$files entries under $MERGED"

timed mamori-baseline "$W/mamori-fim" -path "$MERGED" -baseline "$W/mamori.fim" -workers "$WORKERS" build
timed aide-init aide --init -c "$W/aide.conf"
mv "$W/aide.db.new.gz" "$W/aide.db.gz"

log "changing the tree (in the overlay)"
bin=$(find "$MERGED/bin" -maxdepth 1 -type f -size +10k | sort | sed -n 1p)
lib=$(find "$MERGED/lib" -maxdepth 3 -type f -name '*.so*' | sort | sed -n 1p)
doc=$(find "$MERGED/share/doc" -maxdepth 2 -type f | sort | sed -n 1p)
own=$(find "$MERGED/share/man" -maxdepth 3 -type f | sort | sed -n 1p)
gone=$(find "$MERGED/share/zoneinfo" -maxdepth 2 -type f | sort | sed -n 1p)
printf 'backdoor' >>"$bin"                       # content (and size, mtime, ctime)
chmod 0777 "$lib"                                # mode
chown 1000:1000 "$own"                           # owner
touch -d '2001-01-01' "$doc"                     # mtime only
setfattr -n user.mark -v x "$(dirname "$doc")/$(ls "$(dirname "$doc")" | sort | sed -n 2p)" 2>/dev/null || true # an xattr
rm -f "$gone"                                    # removed
printf '#!/bin/sh\nid\n' >"$MERGED/bin/rootshell" && chmod 4755 "$MERGED/bin/rootshell" # new setuid file
ln -s /etc/shadow "$MERGED/bin/innocent"         # new symlink

timed mamori-compare "$W/mamori-fim" -path "$MERGED" -baseline "$W/mamori.fim" -events "$W/mamori.events" -workers "$WORKERS" compare
timed mamori-rehash "$W/mamori-fim" -path "$MERGED" -baseline "$W/mamori.fim" -events "$W/mamori-rehash.events" -workers "$WORKERS" -rehash compare
timed aide-check aide --check -c "$W/aide.conf"

# Changed paths each found. AIDE also lists the directories whose entries
# changed (mtime/ctime/links of the parent): mamori reports the entry
# itself and, by design, not a directory's own size/times/links, so
# directories are left out of both sides.
jq -r 'select(.kind=="file") | select(.after.type != "directory" and .before.type != "directory") | .key' "$W/mamori.events" | sort -u >"$W/found.mamori"
jq -r 'select(.kind=="file") | select(.after.type != "directory" and .before.type != "directory") | .key' "$W/mamori-rehash.events" | sort -u >"$W/found.mamori-rehash"
awk '/^(Added|Removed|Changed) entries:/{on=1; next} /^(Detailed information|The attributes)/{on=0} on && /^[^d-][^:]*: \//{sub(/^[^:]*: /,""); print}' "$W/aide.report" | sort -u >"$W/found.aide"

echo
echo "| /usr, $files entries, $WORKERS workers | mamori | AIDE $(aide --version 2>&1 | head -1 | awk '{print $2}') | mamori / AIDE |"
echo "|---|---|---|---|"
ratio() { awk -v a="$1" -v b="$2" 'BEGIN{ if (b > 0) printf "%.2fx", a/b; else print "-" }'; }
echo "| baseline time | ${SECS[mamori-baseline]} s | ${SECS[aide-init]} s | $(ratio "${SECS[mamori-baseline]}" "${SECS[aide-init]}") |"
echo "| baseline peak RSS | $((RSS[mamori-baseline] / 1024)) MiB | $((RSS[aide-init] / 1024)) MiB | $(ratio "${RSS[mamori-baseline]}" "${RSS[aide-init]}") |"
echo "| compare time | ${SECS[mamori-compare]} s (unchanged files not reread) | ${SECS[aide-check]} s | $(ratio "${SECS[mamori-compare]}" "${SECS[aide-check]}") |"
echo "| compare time, every file reread | ${SECS[mamori-rehash]} s | ${SECS[aide-check]} s | $(ratio "${SECS[mamori-rehash]}" "${SECS[aide-check]}") |"
echo "| compare peak RSS | $((RSS[mamori-compare] / 1024)) MiB | $((RSS[aide-check] / 1024)) MiB | $(ratio "${RSS[mamori-compare]}" "${RSS[aide-check]}") |"
echo "| baseline file | $(($(stat -c %s "$W/mamori.fim") / 1024)) KiB | $(($(stat -c %s "$W/aide.db.gz") / 1024)) KiB | |"
echo "| changed paths found (not directories) | $(wc -l <"$W/found.mamori") | $(wc -l <"$W/found.aide") | |"
echo
if diff -u "$W/found.aide" "$W/found.mamori" >"$W/found.diff"; then
	echo "Same changes found:"
	sed 's/^/  /' "$W/found.mamori"
else
	echo "Differences (- AIDE only, + mamori only):"
	sed 's/^/  /' "$W/found.diff"
fi
diff -q "$W/found.mamori" "$W/found.mamori-rehash" >/dev/null || echo "note: the rehash compare found a different set (see $W/found.mamori-rehash)"
