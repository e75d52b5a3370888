#!/usr/bin/env bash
# Inventory (SBOM) side by side: mamori vs syft vs trivy on the same image
# tar, in one run. Prints wall time and peak RSS of each, the ratios, the
# warm-cache rescan speed-up, and package counts per ecosystem (mamori vs
# syft). Usage: bench/inventory.sh [IMAGE.tar]  (default: the reference image)
source "$(dirname "$0")/lib.sh"
ensure_time
IMG="${1:-$("$REPO_ROOT/bench/refimage.sh")}"
MAMORI=$(build_mamori)
SYFT=$(peer_syft)
TRIVY=$(peer_trivy)
CACHE="$BENCH_DIR/cache-inventory"

RUNS="${RUNS:-3}"
# best LABEL PREP CMD...: the fastest of $RUNS runs of CMD, each after PREP
# (which empties the caches for the cold runs).
best() {
	local label=$1 prep=$2; shift 2
	local out="" r
	for _ in $(seq "$RUNS"); do
		eval "$prep"
		r=$(measure "$label" "$@")
		if [ -z "$out" ] || awk -v a="$r" -v b="$out" 'BEGIN{split(a,x," ");split(b,y," ");exit !(x[2]<y[2])}'; then out=$r; fi
	done
	echo "$out"
}
# The pure-Go build too (no ISA-L), for machines without libisal2.
(cd "$REPO_ROOT" && make -s build ISAL=0 >/dev/null 2>&1 && cp bin/mamori "$BENCH_DIR/mamori-go" && make -s build >/dev/null 2>&1)

# Cold runs for all: trivy caches layers too.
m_cold=$(best mamori-cold 'rm -rf "$CACHE"' "$MAMORI" sbom --quiet --cache-dir "$CACHE" --input "$IMG" --format json)
m_warm=$(best mamori-warm ':' "$MAMORI" sbom --quiet --cache-dir "$CACHE" --input "$IMG" --format json)
g_cold=$(best mamori-go-cold 'rm -rf "$CACHE-go"' "$BENCH_DIR/mamori-go" sbom --quiet --cache-dir "$CACHE-go" --input "$IMG" --format json)
s=$(best syft ':' "$SYFT" "docker-archive:$IMG" -o json -q)
t=$(best trivy 'rm -rf "$BENCH_DIR/trivy-cache"' "$TRIVY" image --input "$IMG" --format cyclonedx --quiet --skip-db-update --offline-scan --skip-version-check --disable-telemetry --cache-dir "$BENCH_DIR/trivy-cache")

python3 - "$BENCH_DIR" "$m_cold" "$m_warm" "$g_cold" "$s" "$t" <<'PY'
import json, sys, collections
d = sys.argv[1]
rows = [a.split() for a in sys.argv[2:]]
res = {r[0]: (float(r[1]), int(r[2]) / 1024) for r in rows if len(r) == 3}
print(f"{'tool':<14}{'wall s':>8}{'peak MB':>9}")
for k, (w, m) in res.items():
    print(f"{k:<14}{w:>8.2f}{m:>9.1f}")
mc = res.get("mamori-cold")
for mine in ("mamori-cold", "mamori-go-cold"):
    for peer in ("syft", "trivy"):
        if mine in res and peer in res:
            print(f"{mine}/{peer} wall ratio: {res[mine][0] / res[peer][0]:.2f}   RSS ratio: {res[mine][1] / res[peer][1]:.2f}")
if mc and "mamori-warm" in res:
    print(f"warm rescan speed-up: {mc[0] / max(res['mamori-warm'][0], 0.01):.1f}x")

def eco_mamori():
    r = json.load(open(f"{d}/mamori-cold.out"))
    c = collections.Counter(p["type"] for p in r["inventory"]["packages"])
    keys = [(p["type"], p["name"], p["version"], p.get("arch", ""), p["locations"][0]["path"] if p["locations"] else "") for p in r["inventory"]["packages"]]
    dup = len(keys) - len(set(keys))
    return c, dup, {(p["type"], p["name"], p["version"]) for p in r["inventory"]["packages"]}
def eco_syft():
    r = json.load(open(f"{d}/syft.out"))
    c = collections.Counter()
    s = set()
    for a in r["artifacts"]:
        purl = a.get("purl", "")
        t = purl[4:].split("/")[0] if purl.startswith("pkg:") else a["type"]
        c[t] += 1
        s.add((t, a["name"], a["version"]))
    return c, s
try:
    mcnt, dup, mset = eco_mamori()
    scnt, sset = eco_syft()
    print(f"\n{'type':<10}{'mamori':>8}{'syft':>8}")
    for t in sorted(set(mcnt) | set(scnt)):
        print(f"{t:<10}{mcnt.get(t, 0):>8}{scnt.get(t, 0):>8}")
    print(f"{'total':<10}{sum(mcnt.values()):>8}{sum(scnt.values()):>8}   mamori duplicates: {dup}")
    norm = lambda s: {(t, n.lower(), v) for t, n, v in s}
    only_s = sorted(norm(sset) - norm(mset))
    only_m = sorted(norm(mset) - norm(sset))
    print(f"only syft ({len(only_s)}):", only_s[:40])
    print(f"only mamori ({len(only_m)}):", only_m[:40])
except Exception as e:
    print("package comparison failed:", e)
PY
