#!/usr/bin/env bash
# Vulnerability prioritisation (issue 15), measured before and after in one
# run: the same image and the same data scanned by mamori at OLD_REF (before
# issue 15) and by this tree.
#
#   image: the reference image's Debian 12 base (bench/refimage.sh) plus a
#          layer with a Go binary built with go1.19.13 against old
#          golang.org/x modules (internal/match/testdata/prio/oldapp) and
#          old Python packages (PyYAML 5.3, Jinja2 2.10, urllib3 1.24.1,
#          requests 2.19.0)
#   data:  ../shared/data/osv (every ecosystem, GO- and PYSEC- records
#          included) and the real GHSA records that alias them
#          (../shared/data/ghsa-sample); this tree also gets the KEV
#          catalogue and the EPSS rows
#
# Prints, for each side: findings, findings with severity UNKNOWN (share),
# the same vulnerability reported twice on one package (IDs or aliases
# intersect), the exit code of --fail-on high, and for this tree the
# findings whose severity came from another record, known exploited, with
# EPSS, and the top of the priority order.
#
# Usage: bench/prio.sh      Env: OLD_REF (default 55be1c4, main before issue 15)
source "$(dirname "$0")/lib.sh"
OLD_REF="${OLD_REF:-55be1c4}"
DATA="$REPO_ROOT/../shared/data"
[ -d "$DATA/osv" ] || DATA=/work/shared/data
[ -d "$DATA/osv" ] && [ -d "$DATA/ghsa-sample" ] || { echo "no shared data at $DATA" >&2; exit 2; }
W="$BENCH_DIR/prio"
mkdir -p "$W"

[ -f "$BENCH_DIR/base/etc/os-release" ] || "$REPO_ROOT/bench/refimage.sh" >/dev/null

log "image: Debian base + oldapp (go1.19.13) + old Python packages"
UP="$W/upper"
rm -rf "$UP" && mkdir -p "$UP/usr/local/bin" "$UP/usr/lib/python3/dist-packages"
gzip -dc "$REPO_ROOT/internal/match/testdata/prio/oldapp/oldapp.gz" >"$UP/usr/local/bin/oldapp"
chmod 755 "$UP/usr/local/bin/oldapp"
for pkg in "PyYAML 5.3" "Jinja2 2.10" "urllib3 1.24.1" "requests 2.19.0"; do
	set -- $pkg
	di="$UP/usr/lib/python3/dist-packages/$1-$2.dist-info"
	mkdir -p "$di"
	printf 'Metadata-Version: 2.1\nName: %s\nVersion: %s\nSummary: bench fixture\n\n' "$1" "$2" >"$di/METADATA"
done
IMG="$W/prio.tar"
(cd "$REPO_ROOT" && go run ./bench/mkimage -o "$IMG" -tag mamori/prio:1 "$BENCH_DIR/base" "$UP")

log "data: osv + ghsa-sample (both sides); KEV + EPSS (this tree)"
D="$W/data"
rm -rf "$D" && mkdir -p "$D/ghsa"
cp -r "$DATA/osv" "$D/osv"
cp "$DATA"/ghsa-sample/GHSA-*.json "$D/ghsa/"

log "building mamori at $OLD_REF and this tree"
OLD_SRC="$W/old-src-$OLD_REF"
if [ ! -f "$OLD_SRC/go.mod" ]; then
	mkdir -p "$OLD_SRC"
	git -C "$REPO_ROOT" archive "$OLD_REF" | tar -x -C "$OLD_SRC"
fi
(cd "$OLD_SRC" && go build -o "$W/mamori-old" ./cmd/mamori)
(cd "$REPO_ROOT" && go build -o "$W/mamori-new" ./cmd/mamori)

rm -rf "$W/db-old" "$W/db-new"
"$W/mamori-old" --quiet --db-dir "$W/db-old" db import "$D" >"$W/import-old.out"
"$W/mamori-new" --quiet --db-dir "$W/db-new" db import "$D" \
	--kev "$DATA/kev/known_exploited_vulnerabilities.json" --epss "$DATA/epss-sample/epss_scores-subset.csv" >"$W/import-new.out"
cat "$W/import-old.out" "$W/import-new.out" >&2

scan() { # SIDE FLAGS... -> exit code; JSON in $W/SIDE.json
	local side=$1; shift
	set +e
	"$W/mamori-$side" --quiet --cache-dir "$W/cache-$side" --db-dir "$W/db-$side" image --input "$IMG" \
		--scanners vuln --offline --format json --output "$W/$side.json" "$@" 2>"$W/$side.err"
	local rc=$?
	set -e
	echo $rc
}
for side in old new; do
	rc_plain=$(scan $side)
	rc_high=$(scan $side --fail-on high)
	echo "$side $rc_plain $rc_high" >>"$W/rc.txt.tmp"
done
mv "$W/rc.txt.tmp" "$W/rc.txt"

python3 - "$W" <<'PY'
import json, sys, collections
w = sys.argv[1]
rc = {l.split()[0]: l.split()[1:] for l in open(f"{w}/rc.txt")}
def load(side):
    return json.load(open(f"{w}/{side}.json"))["vulnerabilities"]
def dupes(vs):
    by = collections.defaultdict(list)
    for v in vs:
        p = v["package"]
        by[(p["type"], p["name"], p["version"], p.get("path", ""))].append({v["id"]} | set(v.get("aliases") or []))
    n = 0
    for sets in by.values():
        for i in range(len(sets)):
            for j in range(i + 1, len(sets)):
                if sets[i] & sets[j]:
                    n += 1
    return n
print(f"{'':6}{'findings':>10}{'UNKNOWN':>9}{'share':>8}{'dup pairs':>11}{'--fail-on high':>16}")
res = {}
for side in ("old", "new"):
    vs = load(side)
    res[side] = vs
    unk = sum(1 for v in vs if v["severity"] == "UNKNOWN")
    code = rc[side][1]
    print(f"{side:6}{len(vs):>10}{unk:>9}{100*unk/max(len(vs),1):>7.1f}%{dupes(vs):>11}{'exit ' + code:>16}")
for side in ("old", "new"):
    by = collections.Counter((v["package"]["type"], v["severity"] == "UNKNOWN") for v in res[side])
    types = sorted({t for t, _ in by})
    print(f"{side} UNKNOWN by package type: " + ", ".join(f"{t} {by[(t, True)]}/{by[(t, True)] + by[(t, False)]}" for t in types))
new = res["new"]
src = collections.Counter(v["severitySource"].split("-")[0] for v in new if v.get("severitySource"))
print(f"new: severity from another record: {sum(src.values())} ({dict(src)}); known exploited: "
      f"{sum(1 for v in new if v.get('kev'))}; with EPSS: {sum(1 for v in new if v.get('epss'))}")
left = collections.Counter(v["id"].split("-")[0] for v in new if v["severity"] == "UNKNOWN")
print(f"new: still UNKNOWN by record kind: {dict(left)}")
print("new: top 8 by priority:")
for v in sorted(new, key=lambda v: -v["priority"]["score"])[:8]:
    print(f"  {v['priority']['score']:5.1f}  {v['package']['name']:22.22} {v['id']:22} {v['priority']['reason']}")
PY
