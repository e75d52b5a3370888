#!/usr/bin/env bash
# Secrets on real source trees (issue 16), mamori and gitleaks side by side
# in one run: the Go modules of bench/secrets-corpus/modules.txt, downloaded
# once into $MAMORI_BENCH_DIR/corpus (the Go module proxy; pinned versions),
# scanned by `gitleaks dir` and `mamori fs --scanners secret`. Prints the
# time of each, the files and findings each reports, and every file only
# one of them flags with its class from bench/secrets-corpus/classification.tsv
# (real-format secret, test fixture, or false positive; "UNCLASSIFIED" when a
# new difference appears: classify it there). Goal: every real-format secret
# gitleaks finds, fewer false positives than gitleaks, at most 0.1x its time.
#
# Usage: bench/secrets-corpus.sh      Env: RUNS=N keeps mamori's fastest of N (default 3);
# GL_REUSE=1 reuses the last gitleaks run (it takes minutes) when its report exists.
source "$(dirname "$0")/lib.sh"
ensure_time
C="$BENCH_DIR/corpus"
LIST="$REPO_ROOT/bench/secrets-corpus/modules.txt"
CLASSES="$REPO_ROOT/bench/secrets-corpus/classification.tsv"
mkdir -p "$C/modcache" "$C/tree"
# Download (cached) and lay the modules out side by side under one tree.
grep -v '^#' "$LIST" | while read -r mod ver; do
	[ -n "$mod" ] || continue
	dst="$C/tree/$(echo "$mod@$ver" | tr '/' '_')"
	[ -d "$dst" ] && continue
	dir=$(GOMODCACHE="$C/modcache" GOFLAGS=-mod=mod go mod download -json "$mod@$ver" | python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')
	cp -r "$dir" "$dst" && chmod -R u+w "$dst"
done
FILES=$(find "$C/tree" -type f | wc -l)
log "corpus: $(grep -vc '^#' "$LIST") modules, $FILES files"
MAMORI=$(build_mamori)
GITLEAKS=$(peer_gitleaks)
RUNS="${RUNS:-3}"
if [ -n "${GL_REUSE:-}" ] && [ -s "$C/gitleaks.json" ] && [ -s "$C/gitleaks.measure" ]; then
	g=$(cat "$C/gitleaks.measure")
else
	g=$(measure gitleaks "$GITLEAKS" dir "$C/tree" --report-format json --report-path "$C/gitleaks.json" --no-banner --log-level error --exit-code 0)
	echo "$g" > "$C/gitleaks.measure"
fi
best=""
for _ in $(seq "$RUNS"); do
	m=$(measure mamori "$MAMORI" fs --quiet "$C/tree" --scanners secret --format json --output "$C/mamori.json")
	if [ -z "$best" ] || awk -v a="$(echo "$m" | cut -d' ' -f2)" -v b="$(echo "$best" | cut -d' ' -f2)" 'BEGIN{exit !(a<b)}'; then best=$m; fi
done
python3 - "$C" "$CLASSES" "$g" "$best" <<'PY'
import json, sys, collections, os
c, classes_path = sys.argv[1], sys.argv[2]
times = {a.split()[0]: (float(a.split()[1]), int(a.split()[2]) // 1024) for a in sys.argv[3:]}
root = os.path.join(c, "tree") + "/"
gl = collections.defaultdict(list)
for f in json.load(open(os.path.join(c, "gitleaks.json"))) or []:
    gl[f["File"].replace(root, "", 1)].append(f["RuleID"])
mm = collections.defaultdict(list)
for f in json.load(open(os.path.join(c, "mamori.json")))["findings"]:
    mm[f["location"]["path"]].append(f["id"] + ("[" + f["location"]["encoding"] + "]" if f["location"].get("encoding") else ""))
classes = {}
if os.path.exists(classes_path):
    for line in open(classes_path):
        if line.strip() and not line.startswith("#"):
            path, cls, *note = line.rstrip("\n").split("\t")
            classes[path] = cls
print(f"{'tool':<10}{'wall s':>8}{'peak MB':>9}{'files':>7}{'findings':>10}")
for tool, d in (("gitleaks", gl), ("mamori", mm)):
    w, m = times.get(tool, (0, 0))
    print(f"{tool:<10}{w:>8.2f}{m:>9}{len(d):>7}{sum(map(len, d.values())):>10}")
if times.get("gitleaks", (0,))[0] > 0:
    print(f"mamori/gitleaks wall ratio: {times['mamori'][0] / times['gitleaks'][0]:.3f}  (goal <= 0.1)")
count = collections.Counter()
for who, only in (("gitleaks only", set(gl) - set(mm)), ("mamori only", set(mm) - set(gl))):
    print(f"\n{who}: {len(only)} files")
    for p in sorted(only):
        cls = classes.get(p, "UNCLASSIFIED")
        count[(who, cls)] += 1
        print(f"  {cls:<16} {p}  {sorted(set((gl if who.startswith('gitleaks') else mm)[p]))}")
print("\nclasses of the differences:")
for (who, cls), n in sorted(count.items()):
    print(f"  {who:<14} {cls:<16} {n}")
both = set(gl) & set(mm)
print(f"\nfiles both flag: {len(both)}")
PY
