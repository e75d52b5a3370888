#!/usr/bin/env bash
# Log inspection throughput and detections, mamori versus fail2ban, in one run on the same
# generated auth.log (Debian 12's rsyslog format):
#   mamori     bench/hostharness loginspect -once: the tailer, the syslog and sshd decoders and
#              every built-in rule (ssh-brute-force: 5 failures from one address within 10 min)
#   fail2ban   Debian's fail2ban 1.0.2, sshd filter (mode normal), maxretry 5, findtime 10m:
#              fail2ban-server with a jail on the file (the bans are its detections) and
#              fail2ban-regex (the filter alone, its best case for throughput)
# The log: LINES lines over the last SPAN seconds (fail2ban-server ignores lines older than
# findtime, so it runs first, right after generation), of which BURSTS brute forces from
# distinct addresses (5-25 failed logins within two minutes each, valid and invalid users),
# NEAR addresses with 1-4 failures (no detection expected) and the rest the usual life of an
# auth.log (cron sessions, logind, accepted SSH logins and their sessions, sudo, scanners that
# disconnect before authenticating). Reported: wall time, lines/s, CPU (user+sys), peak RSS and
# the bursts each found; the goal is mamori at least as fast as fail2ban and no burst fail2ban
# bans missed.
#
# Safety: fail2ban runs with a private configuration in $MAMORI_BENCH_DIR (its own socket, pid
# file, in-memory database) and a logging-only ban action: no firewall rule is ever added. When
# fail2ban is not installed its .deb is extracted, not installed (installing it starts a
# service that bans with iptables). Root only (fail2ban-server); bench only, not CI.
#
#   LINES=1000000 BURSTS=200 NEAR=500 REPS=3 F2B_REPS=1 bench/host-loginspect.sh
set -euo pipefail
. "$(dirname "$0")/lib.sh"
LINES=${LINES:-1000000}
BURSTS=${BURSTS:-200}
NEAR=${NEAR:-500}
SPAN=${SPAN:-300}
REPS=${REPS:-3}
F2B_REPS=${F2B_REPS:-1} # fail2ban-regex takes minutes on 1M lines
SEED=${SEED:-1}
B="$BENCH_DIR/host-loginspect"
rm -rf "$B" && mkdir -p "$B"

# fail2ban: the installed one, or the Debian package extracted into the bench directory.
F2B_CLIENT=$(command -v fail2ban-client || true)
F2B_REGEX=$(command -v fail2ban-regex || true)
F2B_FILTERS=/etc/fail2ban/filter.d
if [ -z "$F2B_CLIENT" ]; then
	X="$BENCH_DIR/fail2ban-deb"
	if [ ! -x "$X/root/usr/bin/fail2ban-client" ]; then
		log "fetching fail2ban (extracted, not installed)"
		mkdir -p "$X" && (cd "$X" && apt-get download fail2ban >/dev/null 2>&1 && dpkg-deb -x fail2ban_*.deb root)
	fi
	export PYTHONPATH="$X/root/usr/lib/python3/dist-packages${PYTHONPATH:+:$PYTHONPATH}"
	F2B_CLIENT="$X/root/usr/bin/fail2ban-client"
	F2B_REGEX="$X/root/usr/bin/fail2ban-regex"
	F2B_FILTERS="$X/root/etc/fail2ban/filter.d"
	export PATH="$X/root/usr/bin:$PATH" # the client starts fail2ban-server from $PATH
fi
F2B_VERSION=$("$F2B_CLIENT" --version 2>&1 | head -1)
[ "$(id -u)" = 0 ] || { echo "fail2ban-server needs root" >&2; exit 1; }

log "building bench/hostharness"
(cd "$REPO_ROOT" && go build -o "$B/hostharness" ./bench/hostharness)

gen() {
	python3 - "$B/auth.log" "$B/expected.txt" "$LINES" "$BURSTS" "$NEAR" "$SPAN" "$SEED" <<'PY'
import random, sys, time, datetime
out, expected, lines, bursts, near, span, seed = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6]), int(sys.argv[7])
rnd = random.Random(seed)
end = time.time() - 5
start = end - span
host = "node1"
users = ["alice", "bob", "carol", "deploy", "ansible", "backup", "git"]
bad_valid = ["root", "alice", "bob", "git", "postgres"]
bad_invalid = ["admin", "oracle", "test", "ubuntu", "user", "guest", "ftpuser", "pi", "support", "teamspeak"]
ev = []  # (t, text)
def pid():
    return rnd.randint(1000, 4000000)
def internal():
    return "10.%d.%d.%d" % (rnd.randint(0, 255), rnd.randint(0, 255), rnd.randint(1, 254))
def port():
    return rnd.randint(1024, 65535)
def add(t, prog, msg):
    ev.append((t, prog, msg))
# attack traffic first: bursts and near misses (addresses unique across both)
used = set()
def newaddr(prefix):
    while True:
        a = "%s.%d.%d" % (prefix, rnd.randint(0, 255), rnd.randint(1, 254))
        if a not in used:
            used.add(a)
            return a
def failure(t, ip, style):
    p, sp = pid(), port()
    if style == "valid":
        u = rnd.choice(bad_valid)
        add(t, "sshd[%d]" % p, "pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=%s  user=%s" % (ip, u))
        add(t + 2.1, "sshd[%d]" % p, "Failed password for %s from %s port %d ssh2" % (u, ip, sp))
        add(t + 2.6, "sshd[%d]" % p, "Connection closed by authenticating user %s %s port %d [preauth]" % (u, ip, sp))
    else:
        u = rnd.choice(bad_invalid)
        add(t, "sshd[%d]" % p, "Invalid user %s from %s port %d" % (u, ip, sp))
        add(t + 0.01, "sshd[%d]" % p, "pam_unix(sshd:auth): check pass; user unknown")
        add(t + 0.01, "sshd[%d]" % p, "pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=%s " % ip)
        add(t + 2.1, "sshd[%d]" % p, "Failed password for invalid user %s from %s port %d ssh2" % (u, ip, sp))
        add(t + 2.5, "sshd[%d]" % p, "Connection closed by invalid user %s %s port %d [preauth]" % (u, ip, sp))
burst_ips = []
for b in range(bursts):
    ip = newaddr(rnd.choice(["45.%d" % rnd.randint(0, 255), "185.%d" % rnd.randint(0, 255), "203.0"]))
    burst_ips.append(ip)
    t0 = rnd.uniform(start, end - 130)
    k = rnd.randint(5, 25)
    for i in range(k):
        failure(t0 + rnd.uniform(0, 120), ip, rnd.choice(["valid", "invalid", "valid"]))
for n in range(near):
    ip = newaddr("198.51")
    for i in range(rnd.randint(1, 4)):
        failure(rnd.uniform(start, end - 5), ip, "valid")
# the usual life of an auth.log, up to the line budget
while len(ev) < lines:
    t = rnd.uniform(start, end - 5)
    r = rnd.random()
    if r < 0.45:
        p = pid()
        add(t, "CRON[%d]" % p, "pam_unix(cron:session): session opened for user root(uid=0) by (uid=0)")
        add(t + 0.3, "CRON[%d]" % p, "pam_unix(cron:session): session closed for user root")
    elif r < 0.60:
        u, ip, p, sp, s = rnd.choice(users), internal(), pid(), port(), rnd.randint(1, 99999)
        add(t, "sshd[%d]" % p, "Accepted publickey for %s from %s port %d ssh2: ED25519 SHA256:%016x" % (u, ip, sp, rnd.getrandbits(64)))
        add(t + 0.01, "sshd[%d]" % p, "pam_unix(sshd:session): session opened for user %s(uid=1000) by (uid=0)" % u)
        add(t + 0.02, "systemd-logind[412]", "New session %d of user %s." % (s, u))
        add(t + 4, "sshd[%d]" % (p + 1), "Received disconnect from %s port %d:11: disconnected by user" % (ip, sp))
        add(t + 4, "sshd[%d]" % (p + 1), "Disconnected from user %s %s port %d" % (u, ip, sp))
        add(t + 4.01, "sshd[%d]" % p, "pam_unix(sshd:session): session closed for user %s" % u)
        add(t + 4.02, "systemd-logind[412]", "Session %d logged out. Waiting for processes to exit." % s)
        add(t + 4.03, "systemd-logind[412]", "Removed session %d." % s)
    elif r < 0.80:
        u = rnd.choice(users)
        cmd = rnd.choice(["/usr/bin/apt update", "/usr/bin/systemctl restart nginx", "/usr/bin/journalctl -u kubelet", "/usr/bin/crictl ps", "/usr/bin/tail -f /var/log/syslog"])
        add(t, "sudo", "  %s : TTY=pts/%d ; PWD=/home/%s ; USER=root ; COMMAND=%s" % (u, rnd.randint(0, 5), u, cmd))
        add(t + 0.01, "sudo", "pam_unix(sudo:session): session opened for user root(uid=0) by %s(uid=1000)" % u)
        add(t + 1.5, "sudo", "pam_unix(sudo:session): session closed for user root")
    else:
        ip, p, sp = "192.0.2.%d" % rnd.randint(1, 254), pid(), port()
        add(t, "sshd[%d]" % p, rnd.choice([
            "Connection closed by %s port %d [preauth]" % (ip, sp),
            "Received disconnect from %s port %d:11: Bye Bye [preauth]" % (ip, sp),
            "banner exchange: Connection from %s port %d: invalid format" % (ip, sp),
            "Unable to negotiate with %s port %d: no matching key exchange method found. Their offer: diffie-hellman-group1-sha1 [preauth]" % (ip, sp),
            "Connection reset by %s port %d [preauth]" % (ip, sp)]))
ev.sort(key=lambda e: e[0])
with open(out, "w") as f:
    for t, prog, msg in ev:
        ts = datetime.datetime.fromtimestamp(t, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f+00:00")
        f.write("%s %s %s: %s\n" % (ts, host, prog, msg))
with open(expected, "w") as f:
    f.write("\n".join(sorted(burst_ips)) + "\n")
PY
}

# rss_kb PID: peak resident set of a process.
rss_kb() { awk '/VmHWM/{print $2}' "/proc/$1/status"; }
# cpu_s PID: user+system seconds of a process.
cpu_s() { awk -v hz="$(getconf CLK_TCK)" '{print ($14+$15)/hz}' "/proc/$1/stat"; }

fail2ban_server() {
	local C="$B/f2b" n0 start end pid total last same=0
	rm -rf "$C" && mkdir -p "$C/filter.d" "$C/action.d"
	cp "$F2B_FILTERS/sshd.conf" "$F2B_FILTERS/common.conf" "$C/filter.d/"
	printf '[Definition]\nloglevel = INFO\nlogtarget = %s/fail2ban.log\nsocket = %s/f2b.sock\npidfile = %s/f2b.pid\ndbfile = :memory:\n' "$B" "$B" "$B" >"$C/fail2ban.conf"
	printf '[Definition]\nactionstart =\nactionstop =\nactioncheck =\nactionban = echo "<ip>" >> %s/bans.txt\nactionunban =\n' "$B" >"$C/action.d/benchlog.conf"
	printf '[DEFAULT]\nignoreip =\nbantime = 3600\nfindtime = 600\nmaxretry = 5\nbackend = polling\nusedns = no\naction = benchlog\n[sshd]\nenabled = true\nfilter = sshd\nlogpath = %s\n' "$B/auth.log" >"$C/jail.conf"
	rm -f "$B/bans.txt"
	start=$(date +%s.%N)
	"$F2B_CLIENT" -c "$C" -s "$B/f2b.sock" -p "$B/f2b.pid" -x start >/dev/null 2>"$B/f2b-client.err"
	pid=$(cat "$B/f2b.pid")
	# Done when "Total failed" has not moved for 3 s.
	last=-1
	while :; do
		total=$("$F2B_CLIENT" -s "$B/f2b.sock" status sshd 2>/dev/null | awk -F'\t' '/Total failed/{print $2}')
		total=${total:-0}
		if [ "$total" = "$last" ] && [ "$total" != 0 ]; then
			same=$((same + 1))
			[ $same -ge 6 ] && break
		else
			same=0
			end=$(date +%s.%N)
		fi
		last=$total
		sleep 0.5
	done
	F2B_SRV_WALL=$(echo "$end - $start" | bc)
	F2B_SRV_CPU=$(cpu_s "$pid")
	F2B_SRV_RSS=$(rss_kb "$pid")
	F2B_SRV_FAILED=$total
	"$F2B_CLIENT" -s "$B/f2b.sock" stop >/dev/null 2>&1 || true
	sort -u "$B/bans.txt" >"$B/f2b-detected.txt" 2>/dev/null || : >"$B/f2b-detected.txt"
	F2B_IGNORED=$(grep -c "Ignore line" "$B/fail2ban.log" || true)
}

best() { sort -n | head -1; }

log "generating $LINES lines ($BURSTS bursts, $NEAR near misses) over the last $SPAN s"
gen
NL=$(wc -l <"$B/auth.log")
SIZE=$(du -m "$B/auth.log" | cut -f1)

log "fail2ban-server ($F2B_VERSION)"
fail2ban_server

log "fail2ban-regex x$F2B_REPS"
F2B_RX=()
for _ in $(seq "$F2B_REPS"); do
	/usr/bin/time -f '%e %U %S %M' -o "$B/time.f2b" "$F2B_REGEX" "$B/auth.log" "$B/f2b/filter.d/sshd.conf" >"$B/f2b-regex.out" 2>&1
	F2B_RX+=("$(cat "$B/time.f2b")")
done
F2B_MATCHED=$(sed -n 's/^Lines: .* \([0-9]*\) matched.*/\1/p' "$B/f2b-regex.out" | head -1)

log "mamori x$REPS"
M=()
for _ in $(seq "$REPS"); do
	/usr/bin/time -f '%e %U %S %M' -o "$B/time.m" "$B/hostharness" loginspect -once -file "$B/auth.log" >"$B/events.jsonl" 2>"$B/mamori.err"
	M+=("$(tail -1 "$B/time.m")")
done
python3 -c '
import json, sys
ips = set()
for l in open(sys.argv[1]):
    e = json.loads(l)
    if e["rule"]["id"] == "ssh-brute-force":
        ips.add(e["network"]["srcAddr"])
open(sys.argv[2], "w").write("".join(i + "\n" for i in sorted(ips)))
' "$B/events.jsonl" "$B/mamori-detected.txt"

row() { # name "wall user sys rss"...
	local name=$1; shift
	local w u s r
	read -r w u s r < <(printf '%s\n' "$@" | sort -n | head -1)
	printf '| %s | %.2f s | %s | %.2f s | %d MB |\n' "$name" "$w" "$(echo "$NL / $w" | bc)" "$(echo "$u + $s" | bc)" "$((r / 1024))"
}
expected=$(wc -l <"$B/expected.txt")
m_found=$(comm -12 "$B/expected.txt" "$B/mamori-detected.txt" | wc -l)
f_found=$(comm -12 "$B/expected.txt" "$B/f2b-detected.txt" | wc -l)
m_fp=$(comm -13 "$B/expected.txt" "$B/mamori-detected.txt" | wc -l)
f_fp=$(comm -13 "$B/expected.txt" "$B/f2b-detected.txt" | wc -l)
missed=$(comm -23 "$B/f2b-detected.txt" "$B/mamori-detected.txt" | wc -l)
echo
echo "auth.log: $NL lines, $SIZE MB, $expected brute-force bursts, $NEAR near misses; $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "| tool | wall (best run) | lines/s | CPU | peak RSS |"
echo "|---|---:|---:|---:|---:|"
row "mamori loginspect (tail + decode + built-in rules)" "${M[@]}"
row "fail2ban-regex (sshd filter only)" "${F2B_RX[@]}"
printf '| fail2ban-server (jail, 1 run) | %.2f s | %s | %.2f s | %d MB |\n' "$F2B_SRV_WALL" "$(echo "$NL / $F2B_SRV_WALL" | bc)" "$F2B_SRV_CPU" "$((F2B_SRV_RSS / 1024))"
echo
echo "| tool | bursts found | false positives | fail2ban bans mamori missed |"
echo "|---|---:|---:|---:|"
echo "| mamori | $m_found / $expected | $m_fp | $missed |"
echo "| fail2ban-server | $f_found / $expected | $f_fp | - |"
echo
echo "failures counted: fail2ban-regex $F2B_MATCHED, fail2ban-server $F2B_SRV_FAILED (lines ignored as older than findtime: $F2B_IGNORED), mamori $(python3 -c 'import json,sys; print(json.loads(open(sys.argv[1]).read().splitlines()[-1])["rules"]["Matches"])' "$B/mamori.err")"
echo "fail2ban-server's wall time includes its polling backend's 1 s sleeps; CPU is the fair comparison of work done"
echo "mamori: $(tail -1 "$B/mamori.err")"
if [ "$missed" -gt 0 ]; then
	echo "MISSED by mamori:"; comm -23 "$B/f2b-detected.txt" "$B/mamori-detected.txt" | head
fi
