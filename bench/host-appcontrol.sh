#!/usr/bin/env bash
# Exec-decision latency of application control, in one run on the same
# binaries:
#   none       no enforcement
#   mamori     bench/hostharness appcontrol (FAN_OPEN_EXEC_PERM + FAN_OPEN_PERM,
#              SHA-256 allow-list, digest cache), list from `hostharness inventory`
#   fapolicyd  Debian's fapolicyd 1.1.7 (file trust backend, integrity = sha256),
#              rules: execute trusted, deny other executes under the bench dir,
#              allow the rest
# BINS copies of /bin/true (each with its own content) are exec'd RUNS times by
# a dash loop; round 1 is cold (every binary hashed once), rounds 2..RUNS warm.
# Each variant is started afresh REPS times, the variants interleaved (the
# machine is shared); the fastest cold and warm rounds are reported. Both
# must deny an unknown binary (EPERM).
#
# Safety: fapolicyd marks every mount of its watch_fs types and has no
# answer deadline, so it must never see the host's mounts. The whole script
# runs in a private mount namespace of its own (unshare -m): fapolicyd's
# FAN_MARK_MOUNT marks land on that namespace's copies of the mounts
# (allow_filesystem_mark = 0, watch_fs = tmpfs), which only this script's
# processes use. fapolicyd is not installed: its .deb is extracted under
# $MAMORI_BENCH_DIR and its fixed paths (/etc/fapolicyd, /var/lib/fapolicyd,
# /usr/share/fapolicyd, /run) are overlays or tmpfs inside the namespace, so
# nothing on the host changes. Root only; bench only (not CI).
#
#   BINS=200 RUNS=4 REPS=3 bench/host-appcontrol.sh
set -euo pipefail
if [ -z "${MAMORI_BENCH_NS:-}" ]; then
	[ "$(id -u)" = 0 ] || { echo "needs root (fanotify, mount namespace)" >&2; exit 1; }
	exec unshare --mount --propagation private env MAMORI_BENCH_NS=1 "$0" "$@"
fi
. "$(dirname "$0")/lib.sh"
BINS=${BINS:-200}
RUNS=${RUNS:-4}
REPS=${REPS:-3}
B="$BENCH_DIR/host-appcontrol"
mkdir -p "$B"

FAPO="$BENCH_DIR/fapolicyd"
if [ ! -x "$FAPO/root/usr/sbin/fapolicyd" ]; then
	if ! apt-cache show fapolicyd >/dev/null 2>&1; then
		echo "fapolicyd is not available from this machine's Debian sources: no comparison (mamori only)" >&2
		FAPO=""
	else
		log "fetching fapolicyd (extracted, not installed)"
		mkdir -p "$FAPO"
		(cd "$FAPO" && apt-get download fapolicyd >/dev/null 2>&1 && dpkg-deb -x fapolicyd_*.deb root)
		DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends liblmdb0 libmagic1 libcap-ng0 libseccomp2 >/dev/null
	fi
fi

log "building bench/hostharness"
(cd "$REPO_ROOT" && go build -o "$B/hostharness" ./bench/hostharness)

# Everything below is mounted in this namespace only.
FS="$B/fs"
mkdir -p "$FS" "$B/ns"
mount -t tmpfs -o size=512m,mode=0755 mamori-bench "$FS"
mount -t tmpfs -o size=64m mamori-bench-ns "$B/ns"
PIDS=()
cleanup() {
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
}
trap cleanup EXIT

log "binaries: $BINS copies of /bin/true, each with its own content"
mkdir -p "$FS/bin"
for i in $(seq 1 "$BINS"); do
	cp /bin/true "$FS/bin/t$i"
	printf '%08d' "$i" >>"$FS/bin/t$i" # trailing bytes: a distinct SHA-256, still runs
done
cp /bin/echo "$FS/unknown"
printf 'x' >>"$FS/unknown"
chmod -R a+rX "$FS"

"$B/hostharness" inventory -dir "$FS/bin" -o "$B/list.json" -rate -1 2>"$B/inventory.err"

round() {
	local t0 t1
	t0=$(date +%s%N)
	sh -c 'for f in "$1"/bin/t*; do "$f"; done' sh "$FS"
	t1=$(date +%s%N)
	echo $(((t1 - t0) / BINS))
}
unknown_denied() {
	if sh -c '"$1" x' sh "$FS/unknown" >/dev/null 2>&1; then echo no; else echo yes; fi
}
declare -A COLD WARM DENY
min() { if [ -z "$1" ] || [ "$2" -lt "$1" ]; then echo "$2"; else echo "$1"; fi; }
run_variant() {
	local name=$1 cold best="" w
	cold=$(round)
	for _ in $(seq 2 "$RUNS"); do
		w=$(round)
		best=$(min "$best" "$w")
	done
	COLD[$name]=$(min "${COLD[$name]:-}" "$cold")
	WARM[$name]=$(min "${WARM[$name]:-}" "${best:-$cold}")
	DENY[$name]=$(unknown_denied)
	log "$name: cold $((cold / 1000)) µs/exec, warm $((${best:-$cold} / 1000)) µs/exec, unknown denied: ${DENY[$name]}"
}

if [ -n "$FAPO" ]; then
	# fapolicyd's fixed paths, inside this namespace only: overlays with
	# tmpfs upper dirs, and a tmpfs on /run.
	for d in etc var/lib usr/share; do
		mkdir -p "$B/ns/$d/up" "$B/ns/$d/work"
		mount -t overlay overlay -o "lowerdir=/$d,upperdir=$B/ns/$d/up,workdir=$B/ns/$d/work" "/$d"
	done
	mount -t tmpfs -o mode=0755 mamori-bench-run /run
	mkdir -p /etc/fapolicyd/trust.d /etc/fapolicyd/rules.d /var/lib/fapolicyd /run/fapolicyd /usr/share/fapolicyd
	cp "$FAPO/root/usr/share/fapolicyd/fapolicyd-magic.mgc" /usr/share/fapolicyd/
	printf '%s\n' 'permissive = 0' 'nice_val = 14' 'q_size = 640' 'uid = 0' 'gid = 0' 'do_stat_report = 1' \
		'detailed_report = 1' 'db_max_size = 50' 'subj_cache_size = 1549' 'obj_cache_size = 8191' 'watch_fs = tmpfs' \
		'trust = file' 'integrity = sha256' 'syslog_format = rule,dec,perm,auid,pid,exe,:,path,ftype,trust' \
		'rpm_sha256_only = 0' 'allow_filesystem_mark = 0' >/etc/fapolicyd/fapolicyd.conf
	printf '%s\n' 'allow perm=execute all : trust=1' "deny_audit perm=execute all : dir=$FS/" 'allow perm=any all : all' \
		>/etc/fapolicyd/compiled.rules
	: >/etc/fapolicyd/fapolicyd.trust
	for f in "$FS"/bin/t*; do
		echo "$f $(stat -c %s "$f") $(sha256sum "$f" | cut -d' ' -f1)" >>/etc/fapolicyd/fapolicyd.trust
	done
fi

for rep in $(seq 1 "$REPS"); do
	log "repetition $rep of $REPS"
	run_variant none

	rm -f "$B/ready"
	"$B/hostharness" appcontrol -mark "$FS" -list "$B/list.json" -mode block -ready "$B/ready" >"$B/mamori.events" 2>"$B/mamori.err" &
	MPID=$!
	PIDS+=("$MPID")
	for _ in $(seq 1 300); do [ -e "$B/ready" ] && break; sleep 0.1; done
	[ -e "$B/ready" ] || { log "hostharness did not start: $(tail -3 "$B/mamori.err")"; exit 1; }
	run_variant mamori
	kill "$MPID"; wait "$MPID" || true
	grep '^stats' "$B/mamori.err" | tail -1 >"$B/mamori.stats" || true

	if [ -n "$FAPO" ]; then
		rm -rf /var/lib/fapolicyd/* # a cold trust database and caches each time
		"$FAPO/root/usr/sbin/fapolicyd" --debug-deny >"$B/fapolicyd.out" 2>&1 &
		FPID=$!
		PIDS+=("$FPID")
		# Ready once it denies the unknown binary.
		for _ in $(seq 1 300); do [ "$(unknown_denied)" = yes ] && break; kill -0 "$FPID" 2>/dev/null || break; sleep 0.1; done
		if [ "$(unknown_denied)" = yes ]; then
			run_variant fapolicyd
		else
			log "fapolicyd did not start enforcing: $(tail -5 "$B/fapolicyd.out")"
		fi
		kill "$FPID" 2>/dev/null; wait "$FPID" 2>/dev/null || true
	fi
done

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'; }
us() { awk -v a="$1" 'BEGIN { printf "%.1f", a / 1000 }'; }
echo
echo "Exec decisions, $BINS binaries on tmpfs, best of $REPS repetitions x $RUNS rounds, $(nproc) cores, load $(cut -d' ' -f1 /proc/loadavg)"
printf '| %-10s | %12s | %12s | %16s | %16s | %14s |\n' variant "cold µs/exec" "warm µs/exec" "warm - none µs" "warm / fapolicyd" "unknown denied"
printf '|%s|%s|%s|%s|%s|%s|\n' ------------ -------------- -------------- ------------------ ------------------ ----------------
for v in none mamori fapolicyd; do
	[ -n "${WARM[$v]:-}" ] || continue
	printf '| %-10s | %12s | %12s | %16s | %16s | %14s |\n' "$v" "$(us "${COLD[$v]}")" "$(us "${WARM[$v]}")" \
		"$(us $((WARM[$v] - WARM[none])))" "$(ratio "${WARM[$v]}" "${WARM[fapolicyd]:-0}")" "${DENY[$v]}"
done
[ -n "${COLD[fapolicyd]:-}" ] && echo "cold: mamori - none $(us $((COLD[mamori] - COLD[none]))) µs/exec, fapolicyd - none $(us $((COLD[fapolicyd] - COLD[none]))) µs/exec"
echo "mamori stats: $(cat "$B/mamori.stats" 2>/dev/null)"
