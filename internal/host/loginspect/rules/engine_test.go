package rules

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"mamori/internal/host/loginspect/decode"
	"mamori/internal/model"
)

var t0 = time.Date(2026, 12, 6, 8, 0, 0, 0, time.UTC)

func builtinEngine(t testing.TB, extra ...Source) *Engine {
	t.Helper()
	cat, err := LoadBuiltin(extra...)
	if err != nil {
		t.Fatal(err)
	}
	e, err := NewEngine(cat, WithClock(func() time.Time { return t0.Add(24 * time.Hour) }), WithAuditEvery(7))
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// syslogRec decodes an rsyslog ISO line ("HH:MM:SS prog[pid]: msg" is prefixed with the date
// and host when it does not start with a year).
func syslogRec(t testing.TB, line string) *decode.Record {
	t.Helper()
	if !strings.HasPrefix(line, "20") {
		line = "2026-12-06T" + line
	}
	d := &decode.Syslog{Location: time.UTC, Now: func() time.Time { return t0 }}
	var r decode.Record
	r.Reset()
	if err := d.Decode([]byte(line), "/var/log/auth.log", &r); err != nil {
		t.Fatalf("%s: %v", line, err)
	}
	return &r
}

func process(t testing.TB, e *Engine, r *decode.Record) []Detection {
	t.Helper()
	ds, err := e.Process(r)
	if err != nil {
		t.Fatalf("process: %v", err)
	}
	return append([]Detection(nil), ds...)
}

func ids(ds []Detection) []string {
	var out []string
	for _, d := range ds {
		out = append(out, d.Rule.ID)
	}
	return out
}

// TestBruteForceOncePerBurst: five failures from an address within ten minutes are one
// detection; the rest of the burst is folded into it; after ten quiet minutes a new burst is a
// new detection; another address is its own burst.
func TestBruteForceOncePerBurst(t *testing.T) {
	e := builtinEngine(t)
	var got []Detection
	users := []string{"root", "admin", "oracle", "root", "test", "ubuntu", "git"}
	at := func(min, sec int, ip, user string, invalid bool) {
		msg := fmt.Sprintf("Failed password for %s from %s port %d ssh2", user, ip, 40000+sec)
		if invalid {
			msg = fmt.Sprintf("Failed password for invalid user %s from %s port %d ssh2", user, ip, 40000+sec)
		}
		line := fmt.Sprintf("08:%02d:%02d.000000+00:00 node1 sshd[%d]: %s", min, sec, 100+sec, msg)
		got = append(got, process(t, e, syslogRec(t, line))...)
	}
	for i := range 40 { // 40 failures, one every 5 s: one burst
		at(i*5/60, i*5%60, "203.0.113.5", users[i%len(users)], i%2 == 1)
	}
	if len(got) != 1 || got[0].Rule.ID != "ssh-brute-force" {
		t.Fatalf("detections %v", ids(got))
	}
	d := got[0]
	if d.Count != 5 || d.Key != "src.ip=203.0.113.5" || d.Window != 10*time.Minute || !d.First.Equal(t0) ||
		strings.Join(d.Distinct, ",") != "root,admin,oracle,test" {
		t.Fatalf("%+v", d)
	}
	if d.Message != "SSH brute force from 203.0.113.5: 5 failures within 10m0s (users [root, admin, oracle, test]) on node1" {
		t.Fatalf("message %q", d.Message)
	}
	// Four failures from another address: below the threshold.
	for i := range 4 {
		at(5, i, "198.51.100.7", "root", false)
	}
	if len(got) != 1 {
		t.Fatalf("detections %v", ids(got))
	}
	// Quiet for ten minutes after the last failure (08:03:15), then a new burst.
	for i := range 5 {
		at(13, 20+i, "203.0.113.5", "root", false)
	}
	if len(got) != 2 || got[1].Count != 5 || !got[1].First.Equal(t0.Add(13*time.Minute+20*time.Second)) {
		t.Fatalf("detections %d %+v", len(got), got[len(got)-1])
	}
	st := e.Stats()
	if st.Detections != 2 || st.Suppressed != 35 || st.Errors != 0 || st.Audited == 0 {
		t.Fatalf("stats %+v", st)
	}
}

// TestSlowBruteForceBelowWindow: failures spread wider than the window never reach the count.
func TestSlowBruteForceBelowWindow(t *testing.T) {
	e := builtinEngine(t)
	for i := range 20 {
		ts := t0.Add(time.Duration(i) * 3 * time.Minute)
		line := ts.Format("2006-01-02T15:04:05.000000Z07:00") + " h sshd[1]: Failed password for root from 203.0.113.9 port 1 ssh2"
		if ds := process(t, e, syslogRec(t, line)); len(ds) != 0 {
			t.Fatalf("failure %d: %v", i, ids(ds))
		}
	}
}

func TestRepeatedMessageCounts(t *testing.T) {
	// rsyslog's "message repeated 4 times" weighs 4.
	e := builtinEngine(t)
	process(t, e, syslogRec(t, "08:00:00.0+00:00 h sshd[1]: Failed password for root from 192.0.2.1 port 1 ssh2"))
	ds := process(t, e, syslogRec(t, "08:00:30.0+00:00 h sshd[1]: message repeated 4 times: [ Failed password for root from 192.0.2.1 port 1 ssh2]"))
	if len(ds) != 1 || ds[0].Count != 5 {
		t.Fatalf("%v", ds)
	}
}

func TestTrustedSources(t *testing.T) {
	e := builtinEngine(t, Source{Name: "mine.yaml", Data: []byte("lists:\n  - {name: trusted_ssh_sources, append: true, items: [\"192.0.2.0/24\"]}\n")})
	for i := range 10 {
		if ds := process(t, e, syslogRec(t, fmt.Sprintf("08:00:%02d.0+00:00 h sshd[1]: Failed password for root from 192.0.2.1 port 1 ssh2", i))); len(ds) != 0 {
			t.Fatalf("trusted source reported: %v", ids(ds))
		}
	}
}

// TestSudoWeights: sudo's summary line counts its attempts; two runs of three wrong passwords
// make one detection (6 >= 5).
func TestSudoWeights(t *testing.T) {
	e := builtinEngine(t)
	a := process(t, e, syslogRec(t, "08:00:01.0+00:00 h sudo:   mmtest : 3 incorrect password attempts ; PWD=/tmp ; USER=root ; COMMAND=/usr/bin/id"))
	b := process(t, e, syslogRec(t, "08:00:09.0+00:00 h sudo:   mmtest : 3 incorrect password attempts ; PWD=/tmp ; USER=root ; COMMAND=/usr/bin/id"))
	c := process(t, e, syslogRec(t, "08:00:19.0+00:00 h sudo:   mmtest : 2 incorrect password attempts ; PWD=/tmp ; USER=root ; COMMAND=/usr/bin/id"))
	if len(a) != 0 || len(b) != 1 || len(c) != 0 || b[0].Count != 6 || b[0].Rule.ID != "sudo-auth-failures" {
		t.Fatalf("%v %v %v", ids(a), b, ids(c))
	}
	if b[0].Message != "mmtest failed sudo authentication 6 times within 10m0s (last command /usr/bin/id) on h" {
		t.Fatalf("%q", b[0].Message)
	}
}

// builtinCase is one line a built-in rule must or must not report.
type builtinCase struct {
	rule  string
	match bool
	rec   func(t testing.TB) *decode.Record
}

func sys(line string) func(t testing.TB) *decode.Record {
	return func(t testing.TB) *decode.Record { return syslogRec(t, line) }
}

func fileRec(kind, path string, before, after int64) func(t testing.TB) *decode.Record {
	return func(t testing.TB) *decode.Record {
		var r decode.Record
		r.Reset()
		r.Source, r.Format, r.Type, r.Path, r.FilePath, r.SizeBefore, r.SizeAfter, r.Time, r.Host =
			decode.SourceFile, "notice", kind, path, path, before, after, t0, "node1"
		return &r
	}
}

// auditRec decodes a Kubernetes audit event built from the real capture's shape.
func auditRec(verb, user, resource, sub, ns, name string, code int, decision string, extra string) func(t testing.TB) *decode.Record {
	return func(t testing.TB) *decode.Record {
		obj := fmt.Sprintf(`{"resource":%q,"namespace":%q,"name":%q,"apiVersion":"v1","subresource":%q}`, resource, ns, name, sub)
		if resource == "validatingwebhookconfigurations" || strings.HasSuffix(resource, "bindings") {
			obj = strings.Replace(obj, `"apiVersion":"v1"`, `"apiGroup":"x.k8s.io","apiVersion":"v1"`, 1)
		}
		line := fmt.Sprintf(`{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","auditID":"a1","stage":"ResponseComplete","requestURI":"/api/v1/x","verb":%q,"user":{"username":%q,"groups":["g"]},"sourceIPs":["10.1.2.3"],"userAgent":"kubectl/v1.34","objectRef":%s,"responseStatus":{"code":%d},"requestReceivedTimestamp":"2026-12-06T08:00:00.000000Z","stageTimestamp":"2026-12-06T08:00:00.100000Z","annotations":{"authorization.k8s.io/decision":%q}%s}`,
			verb, user, obj, code, decision, extra)
		var r decode.Record
		r.Reset()
		if err := (&decode.K8sAuditLog{}).Decode([]byte(line), "/var/log/kubernetes/audit.log", &r); err != nil {
			t.Fatal(err)
		}
		return &r
	}
}

const crbBody = `,"requestObject":{"kind":"ClusterRoleBinding","roleRef":{"apiGroup":"rbac.authorization.k8s.io","kind":"ClusterRole","name":"cluster-admin"},"subjects":[{"kind":"User","name":"mallory"}]}`

var builtinCases = []builtinCase{
	{"ssh-brute-force", false, sys("08:00:00.0+00:00 h sshd[1]: Failed password for root from 203.0.113.1 port 1 ssh2")}, // one failure
	{"sudo-auth-failures", false, sys("08:00:00.0+00:00 h sudo:   bob : 1 incorrect password attempt ; PWD=/ ; USER=root ; COMMAND=/bin/ls")},
	{"sudo-not-allowed", true, sys("08:00:00.0+00:00 h sudo:   bob : user NOT in sudoers ; TTY=pts/1 ; PWD=/home/bob ; USER=root ; COMMAND=/bin/bash")},
	{"sudo-not-allowed", false, sys("08:00:00.0+00:00 h sudo:   bob : TTY=pts/1 ; PWD=/home/bob ; USER=root ; COMMAND=/bin/bash")},
	{"su-failures", false, sys("08:00:00.0+00:00 h su[5]: FAILED SU (to root) bob on pts/1")},
	{"new-user", true, sys("08:00:00.0+00:00 h useradd[5]: new user: name=eve, UID=1002, GID=1002, home=/home/eve, shell=/bin/bash, from=/dev/pts/0")},
	{"new-user", false, sys("08:00:00.0+00:00 h useradd[5]: new group: name=eve, GID=1002")},
	{"new-group", true, sys("08:00:00.0+00:00 h groupadd[5]: new group: name=ops, GID=1003")},
	{"new-group", false, sys("08:00:00.0+00:00 h groupadd[5]: group added to /etc/group: name=ops, GID=1003")},
	{"privileged-group-member", true, sys("08:00:00.0+00:00 h usermod[5]: add 'eve' to group 'sudo'")},
	{"privileged-group-member", true, sys("08:00:00.0+00:00 h gpasswd[5]: user eve added by root to group docker")},
	{"privileged-group-member", false, sys("08:00:00.0+00:00 h usermod[5]: add 'eve' to group 'video'")},
	{"privileged-group-member", false, sys("08:00:00.0+00:00 h usermod[5]: add 'eve' to shadow group 'sudo'")},
	{"uid-zero-account", true, sys("08:00:00.0+00:00 h useradd[5]: new user: name=toor, UID=0, GID=0, home=/root, shell=/bin/bash, from=none")},
	{"uid-zero-account", true, sys("08:00:00.0+00:00 h usermod[5]: change user 'eve' UID from '1002' to '0'")},
	{"uid-zero-account", false, sys("08:00:00.0+00:00 h usermod[5]: change user 'eve' UID from '1002' to '1005'")},
	{"account-id-changed", true, sys("08:00:00.0+00:00 h usermod[5]: change user 'eve' UID from '1002' to '1005'")},
	{"account-id-changed", false, sys("08:00:00.0+00:00 h usermod[5]: change user 'eve' shell from '/bin/sh' to '/bin/bash'")},
	{"sudoers-edited", true, sys("08:00:00.0+00:00 h sudo:   bob : TTY=pts/1 ; PWD=/home/bob ; USER=root ; COMMAND=/usr/sbin/visudo")},
	{"sudoers-edited", true, sys("08:00:00.0+00:00 h sudo:   bob : TTY=pts/1 ; PWD=/home/bob ; USER=root ; COMMAND=sudoedit /etc/sudoers.d/90-cloud")},
	{"sudoers-edited", true, sys("08:00:00.0+00:00 h sudo:   bob : TTY=pts/1 ; PWD=/home/bob ; USER=root ; COMMAND=/usr/bin/vim /etc/sudoers")},
	{"sudoers-edited", false, sys("08:00:00.0+00:00 h sudo:   bob : TTY=pts/1 ; PWD=/home/bob ; USER=root ; COMMAND=/usr/sbin/visudo -c")},
	{"sudoers-edited", false, sys("08:00:00.0+00:00 h sudo:   bob : TTY=pts/1 ; PWD=/home/bob ; USER=root ; COMMAND=/usr/bin/cat /etc/sudoers")},
	{"root-password-changed", true, sys("08:00:00.0+00:00 h passwd[5]: pam_unix(passwd:chauthtok): password changed for root")},
	{"root-password-changed", false, sys("08:00:00.0+00:00 h passwd[5]: pam_unix(passwd:chauthtok): password changed for bob")},
	{"user-deleted", true, sys("08:00:00.0+00:00 h userdel[5]: delete user 'eve'")},
	{"log-cleared", true, fileRec(decode.TypeLogTruncated, "/var/log/auth.log", 81234, 0)},
	{"log-cleared", true, fileRec(decode.TypeLogTruncated, "/var/log/wtmp", 3840, 0)},
	{"log-cleared", false, fileRec(decode.TypeLogRemoved, "/var/log/auth.log", 81234, 0)},
	{"log-deleted", true, fileRec(decode.TypeLogRemoved, "/var/log/auth.log", 81234, 0)},
	{"log-deleted", false, fileRec(decode.TypeLogRemoved, "/var/log/journal/ab/system@1.journal", 8<<20, 0)},
	{"log-lines-lost", true, fileRec(decode.TypeLogLost, "/var/log/auth.log", 812, 0)},
	{"journal-vacuumed", true, fileRec(decode.TypeLogRemoved, "/var/log/journal/ab/system@1.journal", 8<<20, 0)},
	{"journal-vacuumed", true, sys("08:00:00.0+00:00 h systemd-journald[300]: Vacuuming done, freed 24.0M of archived journals from /var/log/journal/ab.")},
	{"security-service-stopped", true, sys("08:00:00.0+00:00 h systemd[1]: Stopped auditd.service - Security Auditing Service.")},
	{"security-service-stopped", true, sys("08:00:00.0+00:00 h systemd[1]: falco.service: Main process exited, code=killed, status=9/KILL")},
	{"security-service-stopped", false, sys("08:00:00.0+00:00 h systemd[1]: Stopped cron.service - Regular background program processing daemon.")},
	{"service-stopped", true, sys("08:00:00.0+00:00 h systemd[1]: Stopped cron.service - Regular background program processing daemon.")},
	{"service-stopped", false, sys("08:00:00.0+00:00 h systemd[1]: Stopping cron.service - Regular background program processing daemon...")},
	{"service-stopped", false, sys("08:00:00.0+00:00 h systemd[1]: Stopped session-4.scope - Session 4 of User bob.")},
	{"k8s-exec-into-pod", true, auditRec("create", "mallory", "pods", "exec", "prod", "db-0", 101, "allow", "")},
	{"k8s-exec-into-pod", false, auditRec("create", "mallory", "pods", "exec", "prod", "db-0", 403, "forbid", "")},
	{"k8s-exec-into-pod", false, auditRec("get", "mallory", "pods", "log", "prod", "db-0", 200, "allow", "")},
	{"k8s-secret-read-unusual-user", true, auditRec("get", "mallory", "secrets", "", "prod", "db-pass", 200, "allow", "")},
	{"k8s-secret-read-unusual-user", false, auditRec("get", "system:serviceaccount:kube-system:generic-garbage-collector", "secrets", "", "prod", "db-pass", 200, "allow", "")},
	{"k8s-secret-read-unusual-user", false, auditRec("list", "system:node:node1", "secrets", "", "prod", "", 200, "allow", "")},
	{"k8s-secret-read-unusual-user", false, auditRec("get", "mallory", "secrets", "", "prod", "db-pass", 403, "forbid", "")},
	{"k8s-cluster-admin-binding", true, auditRec("create", "mallory", "clusterrolebindings", "", "", "pwn", 201, "allow", crbBody)},
	{"k8s-cluster-admin-binding", false, auditRec("create", "mallory", "clusterrolebindings", "", "", "pwn", 403, "forbid", crbBody)},
	{"k8s-cluster-admin-binding", false, auditRec("delete", "mallory", "clusterrolebindings", "", "", "pwn", 200, "allow", crbBody)},
	{"k8s-rbac-changed", true, auditRec("delete", "mallory", "clusterrolebindings", "", "", "pwn", 200, "allow", "")},
	{"k8s-rbac-changed", false, auditRec("update", "system:kube-controller-manager", "clusterroles", "", "", "admin", 200, "allow", "")},
	{"k8s-rbac-changed", false, auditRec("get", "mallory", "clusterroles", "", "", "admin", 200, "allow", "")},
	{"k8s-policy-changed", true, auditRec("delete", "mallory", "validatingwebhookconfigurations", "", "", "mamori-guard", 200, "allow", "")},
	{"k8s-policy-changed", true, auditRec("patch", "mallory", "networkpolicies", "", "prod", "deny-all", 200, "allow", "")},
	{"k8s-policy-changed", false, auditRec("get", "mallory", "networkpolicies", "", "prod", "deny-all", 200, "allow", "")},
	{"k8s-anonymous-allowed", true, auditRec("list", "system:anonymous", "pods", "", "", "", 200, "allow", "")},
	{"k8s-anonymous-allowed", false, auditRec("list", "system:anonymous", "pods", "", "", "", 403, "forbid", "")},
	{"k8s-forbidden-burst", false, auditRec("list", "mallory", "secrets", "", "", "", 403, "forbid", "")},
}

// TestBuiltinRules runs each case through a fresh engine and checks the rule it names.
func TestBuiltinRules(t *testing.T) {
	covered := map[string]bool{}
	for i, tc := range builtinCases {
		e := builtinEngine(t)
		if e.Catalog().Rule(tc.rule) == nil {
			t.Fatalf("case %d: no rule %s", i, tc.rule)
		}
		ds := process(t, e, tc.rec(t))
		hit := false
		for _, d := range ds {
			hit = hit || d.Rule.ID == tc.rule
			ev := d.Event("node1")
			if err := ev.Validate(); err != nil {
				t.Errorf("case %d %s: event: %v", i, d.Rule.ID, err)
			}
		}
		if hit != tc.match {
			t.Errorf("case %d: %s matched %v, want %v (detections %v)", i, tc.rule, hit, tc.match, ids(ds))
		}
		if tc.match {
			covered[tc.rule] = true
		}
	}
	// Every built-in rule has a case that fires (threshold rules beyond one are the burst tests').
	for _, r := range builtinEngine(t).Catalog().Rules() {
		if !covered[r.ID] && (r.Threshold == nil || r.Threshold.Count == 1) {
			t.Errorf("rule %s has no positive case", r.ID)
		}
	}
}

func TestSuAndForbiddenBursts(t *testing.T) {
	e := builtinEngine(t)
	var got []Detection
	for i := range 3 {
		got = append(got, process(t, e, syslogRec(t, fmt.Sprintf("08:00:%02d.0+00:00 h su[5]: FAILED SU (to root) bob on pts/1", i)))...)
	}
	if len(got) != 1 || got[0].Rule.ID != "su-failures" || got[0].Count != 3 {
		t.Fatalf("%v", ids(got))
	}
	got = nil
	for i := range 12 {
		got = append(got, process(t, e, auditRec("list", "mallory", []string{"secrets", "pods", "nodes"}[i%3], "", "", "", 403, "forbid", "")(t))...)
	}
	if len(got) != 1 || got[0].Rule.ID != "k8s-forbidden-burst" || strings.Join(got[0].Distinct, ",") != "secrets,pods,nodes" {
		t.Fatalf("%v", got)
	}
}

// TestRealCaptures runs the real Debian 12 and kube-apiserver captures through the built-in
// rules: what they contain is what is reported.
func TestRealCaptures(t *testing.T) {
	e := builtinEngine(t)
	count := map[string]int{}
	d := &decode.Syslog{Location: time.UTC, Now: func() time.Time { return t0 }}
	for _, l := range readLines(t, filepath.Join("..", "decode", "testdata", "debian12", "iso.log")) {
		var r decode.Record
		r.Reset()
		if err := d.Decode([]byte(l), "/var/log/auth.log", &r); err != nil {
			t.Fatal(err)
		}
		for _, det := range process(t, e, &r) {
			count[det.Rule.ID]++
			ev := det.Event("vm")
			if err := ev.Validate(); err != nil {
				t.Fatal(err)
			}
		}
	}
	k := &decode.K8sAuditLog{}
	for _, l := range readLines(t, filepath.Join("..", "decode", "testdata", "k8s", "audit.log")) {
		var r decode.Record
		r.Reset()
		if err := k.Decode([]byte(l), "/var/log/kubernetes/audit.log", &r); err != nil {
			t.Fatal(err)
		}
		for _, det := range process(t, e, &r) {
			count[det.Rule.ID]++
		}
	}
	want := map[string]int{
		// useradd mmtest and svcx; groups mmtest, mmdevs, svcx; usermod -aG sudo mmtest; userdel svcx.
		"new-user": 2, "new-group": 3, "privileged-group-member": 1, "user-deleted": 1,
		// Two bursts from 127.0.0.1 more than ten minutes apart: 08:08 (failed passwords for mmtest,
		// mmtest, root, invalid user admin) and 08:32 (invalid user evil..., nobody not in AllowUsers).
		"ssh-brute-force": 2,
		// mmtest's sudo: 3 wrong passwords, then 1, then 1 within two minutes.
		"sudo-auth-failures": 1,
		// visudo -c only checks; vi /etc/sudoers through sudo failed authentication.
		"sudoers-edited": 0,
		// alice's get of db-pass and her list of all secrets; exec was refused (400: no node);
		// create and delete of alice-admin and create of dev-edit; the webhook created and deleted.
		"k8s-cluster-admin-binding": 1, "k8s-secret-read-unusual-user": 2, "k8s-exec-into-pod": 0,
		"k8s-rbac-changed": 3, "k8s-policy-changed": 2,
	}
	for id := range count {
		if _, ok := want[id]; !ok {
			t.Errorf("unexpected detections of %s: %d", id, count[id])
		}
	}
	for id, n := range want {
		if count[id] != n {
			t.Errorf("%s: %d, want %d (all %v)", id, count[id], n, count)
		}
	}
}

func readLines(t *testing.T, path string) []string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, l := range strings.Split(string(data), "\n") {
		if l != "" {
			out = append(out, l)
		}
	}
	return out
}

// TestStateIsBounded: a flood of addresses keeps at most MaxKeys per rule, least recently
// matched evicted first; idle keys expire.
func TestStateIsBounded(t *testing.T) {
	src := Source{Name: "b.yaml", Data: []byte(`
rules:
  - id: flood
    title: t
    severity: low
    sources: [syslog]
    events: [ssh_auth_failed]
    condition: "true"
    threshold: {count: 3, window: 1m, key: [src.ip], max_keys: 100}
`)}
	cat, err := Load(src)
	if err != nil {
		t.Fatal(err)
	}
	e, _ := NewEngine(cat, WithClock(func() time.Time { return t0.Add(time.Hour) }))
	r := syslogRec(t, "08:00:00.0+00:00 h sshd[1]: Failed password for root from 10.0.0.1 port 1 ssh2")
	for i := range 10_000 {
		r.SrcIP = fmt.Sprintf("10.%d.%d.%d", i>>16, (i>>8)&255, i&255)
		process(t, e, r)
	}
	st := e.Stats()
	if st.Keys != 100 || st.Evicted != 9_900 || st.Detections != 0 {
		t.Fatalf("%+v", st)
	}
	// The most recent keys survived: two more failures of the last address reach 3.
	ds := process(t, e, r)
	ds = append(ds, process(t, e, r)...)
	if len(ds) != 1 {
		t.Fatalf("%v", ids(ds))
	}
	e.Expire(t0.Add(2 * time.Minute))
	if st := e.Stats(); st.Keys != 0 {
		t.Fatalf("keys after expiry: %d", st.Keys)
	}
	// max_keys x count is bounded as a whole.
	cat, err = Load(Source{Name: "c.yaml", Data: []byte(`
rules:
  - {id: big, title: t, severity: low, condition: "true", threshold: {count: 10000, window: 1h, key: [src.ip], max_keys: 1000000}}
`)})
	if err != nil {
		t.Fatal(err)
	}
	if th := cat.Rule("big").Threshold; th.MaxKeys != maxStateSlots/10000 {
		t.Fatalf("max keys %d", th.MaxKeys)
	}
}

func TestOutOfOrderAndFutureTimes(t *testing.T) {
	e := builtinEngine(t)
	// Lines from two files interleave out of order: still one burst, counted once.
	var got []Detection
	for _, s := range []int{10, 5, 12, 1, 30, 2, 40} {
		got = append(got, process(t, e, syslogRec(t, fmt.Sprintf("08:00:%02d.0+00:00 h sshd[1]: Failed password for root from 192.0.2.9 port 1 ssh2", s)))...)
	}
	if len(got) != 1 {
		t.Fatalf("%v", ids(got))
	}
	// A time stamp far in the future is taken as now: it cannot expire the state of others.
	r := syslogRec(t, "2099-01-01T00:00:00Z h sshd[1]: Failed password for root from 192.0.2.10 port 1 ssh2")
	ds := process(t, e, r)
	if len(ds) != 0 {
		t.Fatal(ids(ds))
	}
}

func TestEventEnvelope(t *testing.T) {
	e := builtinEngine(t)
	var d Detection
	for i := range 5 {
		ds := process(t, e, syslogRec(t, fmt.Sprintf("08:00:%02d.0+00:00 node7 sshd[4%d]: Failed password for invalid user a\u202eb from 2001:db8::5 port 5%d ssh2", i, i, i)))
		if len(ds) == 1 {
			d = ds[0]
		}
	}
	ev := d.Event("")
	if err := ev.Validate(); err != nil {
		t.Fatal(err)
	}
	if ev.Source != model.SourceHost || ev.Module != "loginspect" || ev.Rule.ID != "ssh-brute-force" || ev.Tactic != "TA0006" ||
		ev.Technique != "T1110.001" || ev.Severity != model.SeverityHigh || ev.Action != model.ActionLog || ev.Host != "node7" ||
		ev.Count != 5 || ev.Network == nil || ev.Network.SrcAddr != "2001:db8::5" || ev.Process == nil || ev.Process.Comm != "sshd" ||
		ev.Details["threshold.key"] != "src.ip=2001:db8::5" || ev.Details["log.path"] != "/var/log/auth.log" || len(ev.ID) != 32 {
		t.Fatalf("%+v", ev)
	}
	// The hostile user name is escaped in the message.
	if !strings.Contains(ev.Message, `users ["a\u202eb"]`) {
		t.Fatalf("message %q", ev.Message)
	}
}
