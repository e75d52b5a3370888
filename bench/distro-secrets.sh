#!/usr/bin/env bash
# Secrets in distribution-owned files (issue 14), side by side in one run:
# a Debian image of Ruby, Python and Perl exactly as this machine's dpkg
# installed them (bench/mkdistro stages it, bench/mkimage packs it), plus
# the same image with one secret planted into a packaged Ruby file after
# install. mamori (default, and --show-packaged-secrets), gitleaks on the
# root fs and trivy's secret scanner on the image: findings per tool, and
# whether the planted one is reported (and at what severity).
#
# Usage: bench/distro-secrets.sh       Env: NO_TRIVY=1 skips trivy.
source "$(dirname "$0")/lib.sh"
ensure_time
pick() { dpkg-query -W -f '${Package} ${db:Status-Status}\n' | awk -v re="$1" '!f && $2=="installed" && $1 ~ re {print $1; f=1}'; }
PKGS="$(pick '^libruby3\.[0-9]+$') $(pick '^libpython3\.[0-9]+-stdlib$') $(pick '^perl-modules-5\.[0-9]+$')"
[ "$(echo $PKGS | wc -w)" = 3 ] || { echo "install ruby, python3 and perl first (have: $PKGS)" >&2; exit 2; }
D="$BENCH_DIR/distro"
rm -rf "$D" && mkdir -p "$D"
(cd "$REPO_ROOT" && go run ./bench/mkdistro -o "$D/clean" $PKGS)
cp -a "$D/clean" "$D/planted"
TARGET=$(cd "$D/planted" && find usr/lib/ruby -path '*/uri/*.rb' | sort | head -1)
printf '\nAWS_ACCESS_KEY_ID = "%s"\n' "AK""IAT3QWZP2MLX7N5VBQ" >> "$D/planted/$TARGET"
(cd "$REPO_ROOT" && go run ./bench/mkimage -o "$D/clean.tar" -tag bench/distro:clean "$D/clean" && \
	go run ./bench/mkimage -o "$D/planted.tar" -tag bench/distro:planted "$D/planted")
MAMORI=$(build_mamori)
GITLEAKS=$(peer_gitleaks)
TRIVY=""
[ -n "${NO_TRIVY:-}" ] || TRIVY=$(peer_trivy)

for v in clean planted; do
	measure "mamori-$v" "$MAMORI" image --quiet --no-cache --input "$D/$v.tar" --scanners secret --format json --skip-db-update >/dev/null
	measure "mamori-show-$v" "$MAMORI" image --quiet --no-cache --input "$D/$v.tar" --scanners secret --format json --show-packaged-secrets >/dev/null
	measure "gitleaks-$v" "$GITLEAKS" dir "$D/$v" --report-format json --report-path "$BENCH_DIR/gitleaks-$v.report.json" --no-banner --log-level error --exit-code 0 >/dev/null
	if [ -n "$TRIVY" ]; then
		measure "trivy-$v" "$TRIVY" image --input "$D/$v.tar" --scanners secret --format json --quiet --skip-db-update --skip-check-update --offline-scan --skip-version-check --disable-telemetry --cache-dir "$BENCH_DIR/trivy-cache" --cache-backend memory >/dev/null
	fi
done

python3 - "$BENCH_DIR" "$TARGET" "$PKGS" <<'PY'
import json, sys, os
d, target, pkgs = sys.argv[1], sys.argv[2], sys.argv[3]
def load(name):
    p = os.path.join(d, name + (".report.json" if name.startswith("gitleaks") else ".out"))
    try:
        return json.load(open(p))
    except Exception:
        return None
def mamori(doc):
    return [(f["location"]["path"], f.get("severity"), (f.get("owner") or {}).get("package", "")) for f in (doc or {}).get("findings", []) if f.get("kind") == "secret"]
def gitleaks(doc):
    return [(f["File"].split("/distro/", 1)[-1].split("/", 1)[-1], "", "") for f in (doc or [])]
def trivy(doc):
    out = []
    for r in (doc or {}).get("Results", []) or []:
        for s in r.get("Secrets", []) or []:
            out.append((r.get("Target", "").lstrip("/"), s.get("Severity", ""), ""))
    return out
print(f"image: {pkgs} as installed; planted: {target}")
print(f"{'tool':<30}{'clean: findings':>16}{'planted: findings':>19}  planted one reported (severity)")
for tool, parse in (("mamori", mamori), ("mamori-show", mamori), ("gitleaks", gitleaks), ("trivy", trivy)):
    c, p = load(f"{tool}-clean"), load(f"{tool}-planted")
    if c is None and p is None:
        continue
    fc, fp = parse(c), parse(p)
    hit = [f for f in fp if f[0].endswith(target)]
    print(f"{tool:<30}{len(fc):>16}{len(fp):>19}  {'yes (' + ','.join(sorted({h[1] or '-' for h in hit})) + ')' if hit else 'NO'}")
PY
