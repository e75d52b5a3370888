#!/usr/bin/env bash
# Vulnerability matching side by side: osv-scanner v2.5.0 and mamori on the
# same image tar with the same OSV data (../shared/data/osv), in one run.
# Prints wall time and peak RSS of each, the ratio (goal: mamori <= 0.3x
# osv-scanner), and a set comparison of (ecosystem, package, version,
# vulnerability) where two findings are the same when their ID sets
# (id + aliases) intersect; lists what only one side found.
#
# Usage: bench/vulns.sh [IMAGE.tar|--mix [OSV_DIR]]
#   IMAGE.tar  default: the reference image (bench/refimage.sh)
#   --mix      the "vulnmix" image built below (older Debian versions, PyPI,
#              Go standard library); REBUILD=1 rebuilds it
#   OSV_DIR    default: ../shared/data/osv (osv/<Ecosystem>/all.zip)
# Env: RUNS=N runs each tool N times and keeps the fastest (default 3).
source "$(dirname "$0")/lib.sh"
ensure_time
OSV="${2:-${MAMORI_OSV_DIR:-$REPO_ROOT/../shared/data/osv}}"

# build_mix_image: a second image that exercises more of the matcher than the
# reference image (whose Debian packages are current): the reference image's
# Debian 12 base with, in an upper layer, a dpkg status rewritten to older
# bookworm versions (openssl, curl, libxml2, glibc, gnutls, perl, systemd,
# sqlite3 added; a removed package left in "deinstall ... config-files"
# state; a binNMU version), PyPI dist-info of old releases (mixed-case and
# dotted names), and a Go binary built with go1.26.0 (standard library
# vulnerabilities). Written to $BENCH_DIR/vulnmix.tar.
build_mix_image() {
	local out="$BENCH_DIR/vulnmix.tar" mix="$BENCH_DIR/vulnmix"
	[ -f "$out" ] && [ "${REBUILD:-}" = "" ] && { echo "$out"; return; }
	"$REPO_ROOT/bench/refimage.sh" >/dev/null
	log "building $out"
	rm -rf "$mix" && mkdir -p "$mix/var/lib/dpkg" "$mix/usr/local/bin" "$mix/usr/lib/python3/dist-packages"
	python3 - "$BENCH_DIR/base/var/lib/dpkg/status" "$mix/var/lib/dpkg/status" <<'PY'
import sys, re
OLD = {  # binary package -> older bookworm version (source version follows unless noted)
    "libssl3": "3.0.11-1~deb12u1", "openssl": "3.0.11-1~deb12u1",
    "curl": "7.88.1-10+deb12u4", "libcurl4": "7.88.1-10+deb12u4",
    "libxml2": "2.9.14+dfsg-1.3~deb12u1",
    "libc6": "2.36-9+deb12u3", "libc-bin": "2.36-9+deb12u3",
    "libgnutls30": "3.7.9-2+deb12u1",
    "perl-base": "5.36.0-7+deb12u1",
    "tar": "1.34+dfsg-1.2",
}
stanzas = open(sys.argv[1]).read().strip("\n").split("\n\n")
out = []
for st in stanzas:
    name = re.search(r"^Package: (.+)$", st, re.M).group(1)
    if name in OLD:
        st = re.sub(r"^Version: .+$", "Version: " + OLD[name], st, flags=re.M)
    out.append(st)
# sqlite3's library, with a binNMU binary version: Debian's advisories are
# about the source version (3.40.1-2), the binary one is 3.40.1-2+b1.
out.append("""Package: libsqlite3-0
Status: install ok installed
Priority: optional
Section: libs
Installed-Size: 1700
Maintainer: Laszlo Boszormenyi (GCS) <gcs@debian.org>
Architecture: amd64
Multi-Arch: same
Source: sqlite3 (3.40.1-2)
Version: 3.40.1-2+b1
Depends: libc6 (>= 2.34)
Description: SQLite 3 shared library""")
# Removed but not purged: no files but its conffiles, not installed.
out.append("""Package: libcurl3-gnutls
Status: deinstall ok config-files
Priority: optional
Section: libs
Installed-Size: 1100
Maintainer: Alessandro Ghedini <ghedo@debian.org>
Architecture: amd64
Multi-Arch: same
Source: curl
Version: 7.88.1-10
Description: easy-to-use client-side URL transfer library (GnuTLS flavour)""")
open(sys.argv[2], "w").write("\n\n".join(out) + "\n")
PY
	local pkg
	for pkg in "requests 2.19.0" "urllib3 1.24.1" "Jinja2 2.10" "PyYAML 5.3" "zope.interface 5.0.0" "Pillow 8.0.0"; do
		set -- $pkg
		local di="$mix/usr/lib/python3/dist-packages/${1//[-.]/_}-$2.dist-info"
		mkdir -p "$di"
		printf 'Metadata-Version: 2.1\nName: %s\nVersion: %s\nSummary: bench fixture\n\n' "$1" "$2" >"$di/METADATA"
		printf '%s\n' "${1//[-.]/_}" >"$di/top_level.txt"
	done
	local src="$BENCH_DIR/gomix"
	rm -rf "$src" && mkdir -p "$src"
	(
		cd "$src"
		printf 'package main\n\nimport (\n\t"fmt"\n\t"net/http"\n\n\t"golang.org/x/net/html"\n)\n\nfunc main() { fmt.Println(html.EscapeString("x"), http.StatusOK) }\n' >main.go
		go mod init example.com/mix >/dev/null 2>&1
		go mod edit -go=1.22
		GOFLAGS=-mod=mod GOTOOLCHAIN=local go get golang.org/x/net@v0.17.0 >/dev/null 2>&1
		GOTOOLCHAIN=go1.26.0 CGO_ENABLED=0 GOFLAGS=-mod=mod go build -o "$mix/usr/local/bin/mixapp" .
	) || { log "building the Go binary of the mix image failed"; return 1; }
	(cd "$REPO_ROOT" && go run ./bench/mkimage -o "$out" -tag mamori/vulnmix:1 "$BENCH_DIR/base" "$mix")
	echo "$out"
}

case "${1:-}" in
--mix) IMG=$(build_mix_image) || exit 1 ;;
"") IMG=$("$REPO_ROOT/bench/refimage.sh") ;;
*) IMG=$1 ;;
esac
RUNS="${RUNS:-3}"
[ -d "$OSV" ] || { echo "no OSV data at $OSV" >&2; exit 2; }
OSV=$(cd "$OSV" && pwd)
MAMORI=$(build_mamori)
OSVS=$(peer_osv_scanner)

# osv-scanner's offline layout: <dir>/osv-scalibr/<Ecosystem>/all.zip. Trap
# (../shared/data/README.md): if the zip of ANY ecosystem it sees in the
# image is missing it reports zero vulnerabilities for all and exits 0, so
# the run below fails loudly on "could not load db".
OSVDB="$BENCH_DIR/osvdb"
mkdir -p "$OSVDB" && ln -sfn "$OSV" "$OSVDB/osv-scalibr"

# mamori's DB is built once from the same directory (import time printed,
# not part of the scan time: osv-scanner loads its zips on every run, mamori
# keeps an indexed store; both are what a user of each tool does).
MDB="$BENCH_DIR/mamori-db"
rm -rf "$MDB"
imp=$(measure mamori-db-import "$MAMORI" db import --db-dir "$MDB" "$OSV")
log "mamori db import: $imp"

# best LABEL CMD...: the fastest of $RUNS runs (wall, with that run's RSS).
best() {
	local label=$1; shift
	local b="" r
	for _ in $(seq "$RUNS"); do
		r=$(measure "$label" "$@")
		if [ -z "$b" ] || awk -v a="$(echo "$r" | cut -d' ' -f2)" -v c="$(echo "$b" | cut -d' ' -f2)" 'BEGIN{exit !(a<c)}'; then
			b=$r
			cp "$BENCH_DIR/$label.out" "$BENCH_DIR/$label.best.out"
		fi
	done
	echo "$b"
}

# osv-scanner exits 1 when it finds vulnerabilities: only >1 is a failure.
o=$(best osv-scanner bash -c '"$0" "$@"; r=$?; [ $r -le 1 ]' "$OSVS" scan image --archive "$IMG" --offline --local-db-path "$OSVDB" --all-packages --format json --verbosity error)
if grep -qi "could not load db\|no offline version" "$BENCH_DIR/osv-scanner.err"; then
	log "osv-scanner could not load an ecosystem DB (it then reports nothing at all):"
	grep -i "could not load db\|no offline version" "$BENCH_DIR/osv-scanner.err" >&2
	exit 1
fi
# Cold: no layer cache (what osv-scanner does every time); warm: a rescan
# of the same image with mamori's layer cache (inventory reused, re-matched).
mc=$(best mamori-cold "$MAMORI" image --quiet --no-cache --db-dir "$MDB" --input "$IMG" --scanners vuln --format json)
rm -rf "$BENCH_DIR/cache-vulns"
"$MAMORI" image --quiet --cache-dir "$BENCH_DIR/cache-vulns" --db-dir "$MDB" --input "$IMG" --scanners vuln --format json >/dev/null
mw=$(best mamori-warm "$MAMORI" image --quiet --cache-dir "$BENCH_DIR/cache-vulns" --db-dir "$MDB" --input "$IMG" --scanners vuln --format json)

python3 - "$BENCH_DIR" "$OSV" "$o" "$mc" "$mw" <<'PY'
import json, sys, re, collections, zipfile, subprocess, shutil
d, osvdir = sys.argv[1], sys.argv[2]
rows = [a.split() for a in sys.argv[3:]]
res = {r[0]: (float(r[1]), int(r[2]) / 1024) for r in rows if len(r) == 3}
print(f"{'tool':<14}{'wall s':>8}{'peak MB':>9}")
for k, (w, m) in res.items():
    print(f"{k:<14}{w:>8.2f}{m:>9.1f}")
for k in ("mamori-cold", "mamori-warm"):
    if k in res and "osv-scanner" in res:
        print(f"{k}/osv-scanner wall ratio: {res[k][0] / res['osv-scanner'][0]:.3f} (goal <= 0.3)   RSS ratio: {res[k][1] / res['osv-scanner'][1]:.2f}")

def norm(eco, name, ver):
    eco = eco.split(":")[0]
    if eco == "PyPI":
        name = re.sub(r"[-_.]+", "-", name).lower()
    if eco == "Go":
        ver = ver[1:] if ver.startswith("v") else ver
    return eco, name, ver

# osv-scanner: results[].packages[] {package{name, os_package_name, version,
# ecosystem}, vulnerabilities[] (full OSV records)}.
o = json.load(open(f"{d}/osv-scanner.best.out"))
O, Opk, Orec = {}, set(), {}
for r in o.get("results") or []:
    for p in r.get("packages") or []:
        pk = p["package"]
        key = norm(pk.get("ecosystem", ""), pk.get("os_package_name") or pk["name"], pk.get("version", ""))
        Opk.add(key)
        for v in p.get("vulnerabilities") or []:
            O[key + (v["id"],)] = set(v.get("aliases") or [])
            Orec[v["id"]] = v
m = json.load(open(f"{d}/mamori-cold.best.out"))
M, Mpk = {}, set()
for p in m["inventory"]["packages"]:
    Mpk.add(norm(p.get("ecosystem") or "", p["name"], p["version"]))
for v in m["vulnerabilities"]:
    pk = v["package"]
    key = norm(v.get("dataSource") or pk.get("ecosystem", ""), pk["name"], pk["version"])
    M[key + (v["id"],)] = set(v.get("aliases") or [])

def ids(rec):
    return {rec.get("id")} | set(rec.get("aliases") or []) | set(rec.get("upstream") or [])
print(f"\nvulnerability rows (package x advisory): osv-scanner {len(O)}, mamori {len(M)}, both {len(O.keys() & M.keys())}")
c = collections.Counter(k[0] for k in O); cm = collections.Counter(k[0] for k in M)
print("  per ecosystem  " + "  ".join(f"{e}: {c.get(e, 0)}/{cm.get(e, 0)}" for e in sorted(set(c) | set(cm))) + "   (osv-scanner/mamori)")
def other_side(key, other, otherpk):
    pk = key[:3]
    same = [k[3] for k, al in other.items() if k[:3] == pk and ({key[3]} | (O.get(key) or M.get(key) or set())) & ({k[3]} | al)]
    inv = "inventoried" if pk in otherpk else "NOT inventoried"
    return f"[other side: package {inv}" + (f"; same vuln as {', '.join(same)}]" if same else "]")
only_o = sorted(O.keys() - M.keys()); only_m = sorted(M.keys() - O.keys())
print(f"only osv-scanner ({len(only_o)}):")
for k in only_o:
    print("  ", " ".join(k), other_side(k, M, Mpk))
print(f"only mamori ({len(only_m)}):")
for k in only_m:
    print("  ", " ".join(k), other_side(k, O, Opk))
# Alias lists: osv-scanner prints the record's `aliases`; mamori's aliases
# should be the same set (plus `upstream` IDs, which Debian records use for
# the CVE). `related` IDs are other vulnerabilities, not aliases.
diff = []
for k in sorted(O.keys() & M.keys()):
    rec = Orec.get(k[3], {})
    want = (set(rec.get("aliases") or []) | set(rec.get("upstream") or [])) - {k[3]}
    if M[k] != want:
        extra, miss = M[k] - want, want - M[k]
        rel = extra & set(rec.get("related") or [])
        diff.append(f"   {' '.join(k)}: mamori extra {sorted(extra)}{' (from related)' if rel else ''}, missing {sorted(miss)}")
print(f"alias-list differences on common rows ({len(diff)}):")
print("\n".join(diff))
pk_only_o = sorted(Opk - Mpk); pk_only_m = sorted(Mpk - Opk)
print(f"\npackages: osv-scanner {len(Opk)}, mamori {len(Mpk)}; only osv-scanner {len(pk_only_o)}: {pk_only_o[:30]}")
print(f"only mamori {len(pk_only_m)}: {pk_only_m[:30]}")

# Independent check of the Debian rows: the OSV "Evaluation" algorithm
# (https://ossf.github.io/osv-schema/#evaluation) run here with dpkg's own
# version comparison, on the source name/version of every installed deb,
# against every Debian:<release> entry (plus explicit `versions` lists).
osrel = (m["inventory"].get("os") or {}).get("versionID", "").split(".")[0]
if shutil.which("dpkg") and osrel and any(p["type"] == "deb" for p in m["inventory"]["packages"]):
    cache = {}
    def cmp(a, op, b):
        k = (a, op, b)
        if k not in cache:
            cache[k] = subprocess.run(["dpkg", "--compare-versions", a, op, b]).returncode == 0
        return cache[k]
    def affected(v, aff):
        if v in (aff.get("versions") or []):
            return True
        for rg in aff.get("ranges") or []:
            if rg["type"] != "ECOSYSTEM":
                continue
            state = False
            for e in rg["events"]:  # Debian's records list events in version order
                (kind, ver), = e.items()
                if kind == "introduced" and (ver == "0" or cmp(v, "ge", ver)):
                    state = True
                elif kind in ("fixed", "last_affected") and state:
                    if (kind == "fixed" and cmp(v, "ge", ver)) or (kind == "last_affected" and cmp(v, "gt", ver)):
                        state = False
            if state:
                return True
        return False
    z = zipfile.ZipFile(f"{osvdir}/Debian/all.zip")
    recs = [json.loads(z.read(n)) for n in z.namelist() if n.endswith(".json")]
    exp = set()
    for p in m["inventory"]["packages"]:
        if p["type"] != "deb":
            continue
        src, sv = p.get("sourceName") or p["name"], p.get("sourceVersion") or p["version"]
        for r in recs:
            if r.get("withdrawn"):
                continue
            for a in r["affected"]:
                if a["package"]["ecosystem"] == f"Debian:{osrel}" and a["package"]["name"] == src and affected(sv, a):
                    exp.add(("Debian", p["name"], p["version"], r["id"]))
    for side, S in (("osv-scanner", O), ("mamori", M)):
        got = {k for k in S if k[0] == "Debian"}
        print(f"Debian rows vs independent dpkg evaluation ({len(exp)} expected): {side} missing {sorted(exp - got)}, extra {sorted(got - exp)}")
PY
