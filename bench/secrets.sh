#!/usr/bin/env bash
# Secret detection side by side, in one run: gitleaks v8.30.1 on the
# unpacked root fs of the reference image vs mamori on the same root fs
# (`mamori rootfs`) and on the image tar (`mamori image --scanners secret`);
# trivy's secret scanner on the tar as well when trivy is already built.
# Prints wall time, peak RSS, the ratio (goal: mamori <= 0.3x gitleaks),
# which tool found each of the 16 planted secrets (bench/refimage.sh), and
# every other finding of each tool (not planted: false positives or real
# secrets shipped by upstream packages), grouped by file.
#
# Usage: bench/secrets.sh   (uses $MAMORI_BENCH_DIR/ref.tar and reffs)
# Env: RUNS=N keeps the fastest of N runs (default 3; gitleaks, which takes
# minutes, runs GL_RUNS=1 time unless told); NO_TRIVY=1 skips trivy.
source "$(dirname "$0")/lib.sh"
ensure_time
IMG=$("$REPO_ROOT/bench/refimage.sh")
FS="$BENCH_DIR/reffs"
[ -f "$FS/root/.aws/credentials" ] || { echo "no reference root fs at $FS (run bench/refimage.sh -f)" >&2; exit 2; }
RUNS="${RUNS:-3}"
MAMORI=$(build_mamori)
GITLEAKS=$(peer_gitleaks)
TRIVY=""
if [ -z "${NO_TRIVY:-}" ] && [ -x "$PEER_BIN/trivy" ]; then TRIVY="$PEER_BIN/trivy"; fi

best() {
	local label=$1; shift
	local b="" r n=$RUNS
	[ "$label" = gitleaks ] && n=${GL_RUNS:-1}
	for _ in $(seq "$n"); do
		r=$(measure "$label" "$@")
		if [ -z "$b" ] || awk -v a="$(echo "$r" | cut -d' ' -f2)" -v c="$(echo "$b" | cut -d' ' -f2)" 'BEGIN{exit !(a<c)}'; then
			b=$r
			cp "$BENCH_DIR/$label.out" "$BENCH_DIR/$label.best.out"
		fi
	done
	echo "$b"
}

GL_REPORT="$BENCH_DIR/gitleaks-report.json"
g=$(best gitleaks "$GITLEAKS" dir "$FS" --report-format json --report-path "$GL_REPORT" --no-banner --log-level error --exit-code 0)
mi=$(best mamori-secret-image "$MAMORI" image --quiet --no-cache --input "$IMG" --scanners secret --format json)
mr=$(best mamori-secret-rootfs "$MAMORI" rootfs --quiet --no-cache "$FS" --scanners secret --format json)
t=""
if [ -n "$TRIVY" ]; then
	t=$(best trivy-secret "$TRIVY" image --input "$IMG" --scanners secret --format json --quiet --skip-db-update --skip-check-update --offline-scan --skip-version-check --disable-telemetry --cache-dir "$BENCH_DIR/trivy-cache" --cache-backend memory)
fi

python3 - "$BENCH_DIR" "$FS" "$g" "$mi" "$mr" "$t" <<'PY'
import json, sys, collections
d, fs = sys.argv[1], sys.argv[2].rstrip("/") + "/"
rows = [a.split() for a in sys.argv[3:] if a]
res = {r[0]: (float(r[1]), int(r[2]) / 1024) for r in rows if len(r) == 3}
print(f"{'tool':<22}{'wall s':>8}{'peak MB':>9}")
for k, (w, m) in res.items():
    print(f"{k:<22}{w:>8.2f}{m:>9.1f}")
if "gitleaks" in res:
    for k in ("mamori-secret-rootfs", "mamori-secret-image"):
        if k in res:
            print(f"{k}/gitleaks wall ratio: {res[k][0] / res['gitleaks'][0]:.3f}  (goal <= 0.3)")
    if "trivy-secret" in res:
        print(f"trivy-secret/gitleaks wall ratio: {res['trivy-secret'][0] / res['gitleaks'][0]:.3f}")

# The 16 planted kinds of bench/refimage.sh: (kind, path, line).
PLANTED = [  # (kind, path, first line, last line): multi-line keys may be reported on any of their lines
    ("AWS access key ID", "root/.aws/credentials", 2, 2),
    ("AWS secret access key", "root/.aws/credentials", 3, 3),
    ("RSA private key (PEM, traditional)", "root/.ssh/id_rsa", 1, 999),
    ("EC private key (SEC1 PEM)", "srv/app/ec.key", 1, 99),
    ("Ed25519 private key (PKCS#8 PEM)", "srv/app/pkcs8.pem", 1, 99),
    ("GCP service-account JSON key", "srv/app/gcp-sa.json", 1, 3),
    ("GitHub personal access token", "srv/app/.env", 1, 1),
    ("Slack bot token", "srv/app/.env", 2, 2),
    ("Stripe live secret key", "srv/app/.env", 3, 3),
    ("SendGrid API key", "srv/app/.env", 4, 4),
    ("Google API key", "srv/app/.env", 5, 5),
    ("password assignment (DB_PASSWORD)", "srv/app/.env", 6, 6),
    ("npm access token (.npmrc)", "root/.npmrc", 1, 1),
    ("PyPI upload token (.pypirc)", "root/.pypirc", 3, 3),
    ("Docker config auth (config.json)", "root/.docker/config.json", 1, 1),
    ("JWT", "home/app/session.txt", 1, 1),
]
def planted(p, l):
    return any(p == pp and a <= l <= b for _, pp, a, b in PLANTED)

def load_gitleaks():
    out = []
    for f in json.load(open(f"{d}/gitleaks-report.json")):
        p = f["File"]
        p = p[len(fs):] if p.startswith(fs) else p.lstrip("/")
        out.append((f["RuleID"], p, f["StartLine"]))
    return out
def load_mamori(label):
    r = json.load(open(f"{d}/{label}.best.out"))
    return [(f["id"], f["location"].get("path", ""), f["location"].get("startLine", 0))
            for f in r["findings"] if f["kind"] == "secret"]
def load_trivy():
    r = json.load(open(f"{d}/trivy-secret.best.out"))
    out = []
    for res_ in r.get("Results") or []:
        for s in res_.get("Secrets") or []:
            out.append((s["RuleID"], res_["Target"].lstrip("/"), s.get("StartLine", 0)))
    return out

tools = {}
for name, fn in (("gitleaks", load_gitleaks), ("mamori-rootfs", lambda: load_mamori("mamori-secret-rootfs")),
                 ("mamori-image", lambda: load_mamori("mamori-secret-image")), ("trivy", load_trivy)):
    try:
        tools[name] = fn()
    except FileNotFoundError:
        pass
    except Exception as e:
        print(f"{name}: cannot read its output: {e}")

print(f"\nplanted secrets ({len(PLANTED)} kinds): rule that found it, '-' = missed")
names = list(tools)
print(f"{'kind':<36}" + "".join(f"{n:<24}" for n in names))
found_n = collections.Counter()
for kind, p, a, b in PLANTED:
    cells = []
    for n in names:
        hit = sorted({rid for rid, fp, fl in tools[n] if fp == p and a <= fl <= b})
        if hit:
            found_n[n] += 1
        cells.append(",".join(hit) or "-")
    print(f"{kind:<36}" + "".join(f"{c:<24}" for c in cells))
print(f"{'found':<36}" + "".join(f"{str(found_n[n]) + '/' + str(len(PLANTED)):<24}" for n in names))

print("\nnot planted (false positives, or real secrets shipped by upstream packages):")
for n in names:
    extra = [(rid, p, l) for rid, p, l in tools[n] if not planted(p, l)]
    by = collections.defaultdict(list)
    for rid, p, l in extra:
        by[(rid, p)].append(l)
    print(f"  {n}: {len(extra)}")
    for (rid, p), ls in sorted(by.items()):
        print(f"    {rid:<22} {p}  lines {','.join(map(str, sorted(ls)[:6]))}{' …' if len(ls) > 6 else ''}")
PY
