#!/usr/bin/env bash
# Runs every Fuzz* target in the tree for the given time each (default 20s).
set -euo pipefail
cd "$(dirname "$0")/.."
t="${1:-20s}"
grep -rl --include='*_test.go' '^func Fuzz' internal | xargs -n1 dirname | sort -u | while read -r d; do
	for f in $(grep -h '^func Fuzz' "$d"/*_test.go | sed 's/func \(Fuzz[A-Za-z0-9_]*\).*/\1/'); do
		echo "== $d $f"
		go test -run '^$' -fuzz "^$f\$" -fuzztime "$t" "./$d"
	done
done
