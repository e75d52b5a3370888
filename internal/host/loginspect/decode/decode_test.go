package decode

import (
	"bufio"
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func readLines(t *testing.T, path string) []string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		out = append(out, sc.Text())
	}
	return out
}

func decode(t *testing.T, d Decoder, path, line string) (Record, error) {
	t.Helper()
	var r Record
	r.Reset()
	err := d.Decode([]byte(line), path, &r)
	return r, err
}

var ref = time.Date(2026, 12, 6, 9, 0, 0, 0, time.UTC)

func syslogDecoder() *Syslog {
	return &Syslog{Location: time.UTC, Now: func() time.Time { return ref }}
}

// TestSyslogFormatsAgree decodes the same real messages in rsyslog's three templates: framing
// differs, the classification and typed fields must not.
func TestSyslogFormatsAgree(t *testing.T) {
	dir := filepath.Join("testdata", "debian12")
	iso := readLines(t, filepath.Join(dir, "iso.log"))
	trad := readLines(t, filepath.Join(dir, "traditional.log"))
	rfc := readLines(t, filepath.Join(dir, "rfc5424.log"))
	if len(trad) != len(rfc) || len(iso) < len(trad) {
		t.Fatalf("line counts %d %d %d", len(iso), len(trad), len(rfc))
	}
	d := syslogDecoder()
	for i := range trad {
		a, err1 := decode(t, d, "/var/log/auth.log", iso[i])
		b, err2 := decode(t, d, "/var/log/auth.log", trad[i])
		c, err3 := decode(t, d, "/var/log/auth.log", rfc[i])
		if err1 != nil || err2 != nil || err3 != nil {
			t.Fatalf("line %d: %v / %v / %v", i+1, err1, err2, err3)
		}
		if a.Format != "iso" || b.Format != "rfc3164" || c.Format != "rfc5424" {
			t.Fatalf("line %d: formats %s %s %s", i+1, a.Format, b.Format, c.Format)
		}
		for _, x := range []Record{b, c} {
			if x.Type != a.Type || x.User != a.User || x.TargetUser != a.TargetUser || x.SrcIP != a.SrcIP ||
				x.Program != a.Program || x.Message != a.Message || x.Host != a.Host || x.Attempts != a.Attempts || x.Group != a.Group {
				t.Errorf("line %d differs:\n iso  %+v\n other %+v", i+1, brief(a), brief(x))
			}
		}
		if b.Time.Unix() != a.Time.Unix() || !c.Time.Equal(a.Time) {
			t.Errorf("line %d: times %v %v %v", i+1, a.Time, b.Time, c.Time)
		}
		if c.Facility < 0 || c.Severity < 0 || a.Facility != -1 {
			t.Errorf("line %d: facility/severity %d/%d (5424), %d (iso)", i+1, c.Facility, c.Severity, a.Facility)
		}
	}
}

type briefRec struct {
	Type, Program, User, Target, IP, Group, Msg string
	PID, Port, Attempts                         int
}

func brief(r Record) briefRec {
	return briefRec{r.Type, r.Program, r.User, r.TargetUser, r.SrcIP, r.Group, r.Message, r.PID, r.SrcPort, r.Attempts}
}

// TestDebian12Lines pins the decoding of the real lines, one per kind of line.
func TestDebian12Lines(t *testing.T) {
	lines := readLines(t, filepath.Join("testdata", "debian12", "iso.log"))
	find := func(sub string) string {
		for _, l := range lines {
			if strings.HasSuffix(l, sub) {
				return l
			}
		}
		for _, l := range lines {
			if strings.Contains(l, sub) {
				return l
			}
		}
		t.Fatalf("no line with %q", sub)
		return ""
	}
	d := syslogDecoder()
	for _, tc := range []struct {
		sub  string
		want briefRec
		more func(t *testing.T, r Record)
	}{
		{"new user: name=mmtest", briefRec{Type: TypeUserAdded, Program: "useradd", Target: "mmtest", PID: 4765}, func(t *testing.T, r Record) {
			if r.UID != 1001 || r.GID != 1001 || r.Fields["shell"] != "/bin/bash" || r.Fields["home"] != "/home/mmtest" {
				t.Errorf("%+v", r)
			}
		}},
		{"useradd[4765]: new group: name=mmtest", briefRec{Type: TypeGroupAdded, Program: "useradd", Group: "mmtest", PID: 4765}, nil},
		{"group added to /etc/group: name=mmdevs", briefRec{Program: "groupadd", PID: 4796}, nil},
		{"groupadd[4796]: new group: name=mmdevs", briefRec{Type: TypeGroupAdded, Program: "groupadd", Group: "mmdevs", PID: 4796}, nil},
		{"add 'mmtest' to group 'sudo'", briefRec{Type: TypeGroupMemberAdded, Program: "usermod", Target: "mmtest", Group: "sudo", PID: 4802}, nil},
		{"add 'mmtest' to shadow group 'sudo'", briefRec{Program: "usermod", PID: 4802}, nil},
		{"user mmtest added by root to group mmdevs", briefRec{Type: TypeGroupMemberAdded, Program: "gpasswd", User: "root", Target: "mmtest", Group: "mmdevs", PID: 4825}, nil},
		{"user mmtest removed by root from group mmdevs", briefRec{Type: TypeGroupMemberRemoved, Program: "gpasswd", User: "root", Target: "mmtest", Group: "mmdevs", PID: 4831}, nil},
		{"passwd[4847]: password for 'mmtest' changed by 'root'", briefRec{Type: TypePasswordChanged, Program: "passwd", User: "root", Target: "mmtest", PID: 4847}, nil},
		{"password changed for mmtest", briefRec{Type: TypePasswordChanged, Program: "chpasswd", Target: "mmtest", PID: 4785}, func(t *testing.T, r Record) {
			if r.PAMService != "chpasswd" {
				t.Errorf("service %q", r.PAMService)
			}
		}},
		{"change user 'mmtest' shell", briefRec{Type: TypeUserModified, Program: "usermod", Target: "mmtest", PID: 4896}, func(t *testing.T, r Record) {
			if r.Fields["attribute"] != "shell" || r.Fields["from"] != "/bin/bash" || r.Fields["to"] != "/bin/sh" {
				t.Errorf("fields %v", r.Fields)
			}
		}},
		{"group changed in /etc/group", briefRec{Type: TypeGroupModified, Program: "groupmod", Group: "mmdevs", PID: 4962}, func(t *testing.T, r Record) {
			if r.GID != 1002 || r.Fields["to"] != "mmdevs2" {
				t.Errorf("%d %v", r.GID, r.Fields)
			}
		}},
		{"delete user 'svcx'", briefRec{Type: TypeUserDeleted, Program: "userdel", Target: "svcx", PID: 4985}, nil},
		{"removed group 'svcx' owned by 'svcx'", briefRec{Type: TypeGroupDeleted, Program: "userdel", Group: "svcx", PID: 4985}, nil},
		{"removed shadow group 'svcx'", briefRec{Program: "userdel", PID: 4985}, nil},
		{"group 'mmdevs2' removed from /etc/group", briefRec{Program: "groupdel", PID: 5007}, nil},
		{"groupdel[5007]: group 'mmdevs2' removed", briefRec{Type: TypeGroupDeleted, Program: "groupdel", Group: "mmdevs2", PID: 5007}, nil},
		{"Failed password for mmtest from 127.0.0.1 port 56250 ssh2", briefRec{Type: TypeSSHAuthFailed, Program: "sshd", User: "mmtest", IP: "127.0.0.1", Port: 56250, PID: 6540}, func(t *testing.T, r Record) {
			if r.AuthMethod != "password" || r.Outcome != OutcomeFailure {
				t.Errorf("%q %q", r.AuthMethod, r.Outcome)
			}
		}},
		{"Failed password for invalid user admin", briefRec{Type: TypeSSHAuthFailed, Program: "sshd", User: "admin", IP: "127.0.0.1", Port: 55178, PID: 7640}, func(t *testing.T, r Record) {
			if r.Fields["invalid_user"] != "true" {
				t.Errorf("fields %v", r.Fields)
			}
		}},
		{"Invalid user admin from", briefRec{Type: TypeSSHInvalidUser, Program: "sshd", User: "admin", IP: "127.0.0.1", Port: 55178, PID: 7640}, nil},
		{"Accepted password for mmtest", briefRec{Type: TypeSSHAccepted, Program: "sshd", User: "mmtest", IP: "127.0.0.1", Port: 55186, PID: 8368}, nil},
		{"rhost=127.0.0.1  user=mmtest", briefRec{Type: TypePAMAuthFailed, Program: "sshd", User: "mmtest", IP: "127.0.0.1", PID: 6540}, func(t *testing.T, r Record) {
			if r.PAMService != "sshd" || r.UID != 0 || r.TTY != "ssh" {
				t.Errorf("%q %d %q", r.PAMService, r.UID, r.TTY)
			}
		}},
		{"Connection closed by authenticating user mmtest 127.0.0.1 port 56250 [preauth]", briefRec{Type: TypeSSHPreauthClose, Program: "sshd", User: "mmtest", IP: "127.0.0.1", Port: 56250, PID: 6540}, nil},
		{"session opened for user mmtest(uid=1001) by (uid=0)", briefRec{Type: TypePAMSessionOpened, Program: "sshd", Target: "mmtest", PID: 8368}, nil},
		{"3 incorrect password attempts", briefRec{Type: TypeSudoAuthFailed, Program: "sudo", User: "mmtest", Target: "root", Attempts: 3, PID: -1}, func(t *testing.T, r Record) {
			if r.Cmdline != "/usr/bin/id" || r.Cwd != "/tmp" {
				t.Errorf("%q %q", r.Cmdline, r.Cwd)
			}
		}},
		{"sudo:   mmtest : PWD=/tmp ; USER=root ; COMMAND=/usr/bin/id", briefRec{Type: TypeSudoCommand, Program: "sudo", User: "mmtest", Target: "root", PID: -1}, nil},
		{"COMMAND=/usr/bin/vi /etc/sudoers", briefRec{Type: TypeSudoAuthFailed, Program: "sudo", User: "mmtest", Target: "root", Attempts: 1, PID: -1}, func(t *testing.T, r Record) {
			if r.Cmdline != "/usr/bin/vi /etc/sudoers" {
				t.Errorf("%q", r.Cmdline)
			}
		}},
		{"pam_unix(sudo:auth): authentication failure", briefRec{Type: TypePAMAuthFailed, Program: "sudo", User: "mmtest", PID: -1}, nil},
		{"FAILED SU (to root) mmtest on none", briefRec{Type: TypeSuFailed, Program: "su", User: "mmtest", Target: "root", PID: 9113}, nil},
		{"(to mmtest) root on none", briefRec{Type: TypeSuSession, Program: "su", User: "root", Target: "mmtest", PID: 9457}, nil},
		{"kernel: audit: type=1100", briefRec{Type: "auditd_user_auth", Program: "kernel", User: "root", IP: "203.0.113.9", PID: 1234}, func(t *testing.T, r Record) {
			if r.Outcome != OutcomeFailure || r.Fields["exe"] != "/usr/sbin/sshd" || r.TTY != "ssh" {
				t.Errorf("%+v", r)
			}
		}},
		{"Invalid user evil from 6.6.6.6 port 1 from 127.0.0.1", briefRec{Type: TypeSSHInvalidUser, Program: "sshd", User: "evil from 6.6.6.6 port 1", IP: "127.0.0.1", Port: 49060, PID: 14679}, nil},
		{"Failed password for invalid user evil from 6.6.6.6", briefRec{Type: TypeSSHAuthFailed, Program: "sshd", User: "evil from 6.6.6.6 port 1", IP: "127.0.0.1", Port: 49060, PID: 14679}, nil},
		{"Connection closed by invalid user evil from 6.6.6.6", briefRec{Type: TypeSSHPreauthClose, Program: "sshd", User: "evil from 6.6.6.6 port 1", IP: "127.0.0.1", Port: 49060, PID: 14679}, nil},
		{"User nobody from 127.0.0.1 not allowed", briefRec{Type: TypeSSHNotAllowed, Program: "sshd", User: "nobody", IP: "127.0.0.1", PID: 14689}, func(t *testing.T, r Record) {
			if r.Fields["reason"] != "not listed in AllowUsers" {
				t.Errorf("%v", r.Fields)
			}
		}},
		{"Unable to negotiate with 127.0.0.1", briefRec{Type: TypeSSHNegotiation, Program: "sshd", IP: "127.0.0.1", Port: 49030, PID: 14676}, nil},
		{"banner exchange: Connection from 127.0.0.1 port 57594", briefRec{Type: TypeSSHNegotiation, Program: "sshd", IP: "127.0.0.1", Port: 57594, PID: 14897}, nil},
	} {
		line := find(tc.sub)
		r, err := decode(t, d, "/var/log/auth.log", line)
		if err != nil {
			t.Errorf("%s: %v", tc.sub, err)
			continue
		}
		got := brief(r)
		got.Msg = ""
		if got != tc.want {
			t.Errorf("%s:\n got  %+v\n want %+v", tc.sub, got, tc.want)
		}
		if r.Source != SourceSyslog || r.Host != "vm" || r.Path != "/var/log/auth.log" || r.Time.IsZero() {
			t.Errorf("%s: framing %+v", tc.sub, r)
		}
		if tc.more != nil {
			tc.more(t, r)
		}
	}
}

func TestJournalDebian12(t *testing.T) {
	d := &Journal{}
	types := map[string]int{}
	for _, l := range readLines(t, filepath.Join("testdata", "debian12", "journal.json")) {
		r, err := decode(t, d, "", l)
		if err != nil {
			t.Fatal(err)
		}
		if r.Source != SourceJournal || r.Path != "journal" || r.Time.IsZero() || r.Host != "vm" || r.Program == "" || r.Facility < 0 || r.Severity < 0 {
			t.Fatalf("framing %+v", r)
		}
		if d.Cursor == "" || !strings.HasPrefix(d.Cursor, "s=") {
			t.Fatalf("cursor %q", d.Cursor)
		}
		types[r.Type]++
		if r.Type == TypeSudoAuthFailed && (r.Attempts != 3 || r.User != "mmtest") {
			t.Errorf("sudo %+v", brief(r))
		}
		if r.Type == TypeSSHAuthFailed && (r.SrcIP != "127.0.0.1" || r.PID <= 0) {
			t.Errorf("sshd %+v", brief(r))
		}
	}
	want := map[string]int{TypeSSHAuthFailed: 2, TypeSSHInvalidUser: 1, TypeSudoAuthFailed: 1, TypeUserAdded: 1, TypeUserDeleted: 1,
		TypeGroupMemberAdded: 1, TypeGroupAdded: 1, TypeGroupDeleted: 1}
	for k, n := range want {
		if types[k] != n {
			t.Errorf("type %s: %d, want %d (all %v)", k, types[k], n, types)
		}
	}
}

func TestJournalFieldShapes(t *testing.T) {
	d := &Journal{}
	// Binary MESSAGE (array of bytes), repeated field (array of strings), null (too large).
	r, err := decode(t, d, "", `{"__CURSOR":"s=1;i=2","__REALTIME_TIMESTAMP":"1700000000000000","MESSAGE":[83,116,111,112,112,101,100,32,120,46,115,101,114,118,105,99,101,32,45,32,88,46,255],"SYSLOG_IDENTIFIER":["systemd","other"],"_PID":"1","UNIT":"x.service","_SYSTEMD_UNIT":"init.scope","PRIORITY":"6"}`)
	if err != nil {
		t.Fatal(err)
	}
	if r.Program != "systemd" || r.Type != TypeServiceStopped || r.Unit != "x.service" || !strings.HasPrefix(r.Message, "Stopped x.service - X.") || r.PID != 1 {
		t.Fatalf("%+v", r)
	}
	if !r.Time.Equal(time.Unix(1700000000, 0)) {
		t.Fatalf("time %v", r.Time)
	}
	r, err = decode(t, d, "", `{"MESSAGE":null,"SYSLOG_IDENTIFIER":"x"}`)
	if err != nil || r.Message != "" {
		t.Fatalf("%v %+v", err, r)
	}
	for _, bad := range []string{`{`, `[]`, `{"MESSAGE":[300]}`, `{"MESSAGE":{"a":1}}`, strings.Repeat("x", MaxLine+1)} {
		if _, err := decode(t, d, "", bad); !errors.Is(err, ErrFormat) {
			t.Errorf("%.30q: %v", bad, err)
		}
	}
}

func TestSystemd(t *testing.T) {
	d := syslogDecoder()
	for _, tc := range []struct{ line, typ, unit, desc string }{
		// systemd 252 (Debian 12): the unit name, then its description.
		{"2024-05-01T12:00:00+00:00 node1 systemd[1]: Stopped ssh.service - OpenBSD Secure Shell server.", TypeServiceStopped, "ssh.service", "OpenBSD Secure Shell server"},
		{"2024-05-01T12:00:00+00:00 node1 systemd[1]: Stopping ssh.service - OpenBSD Secure Shell server...", TypeServiceStopping, "ssh.service", "OpenBSD Secure Shell server"},
		{"2024-05-01T12:00:00+00:00 node1 systemd[1]: Started kubelet.service - kubelet: The Kubernetes Node Agent.", TypeServiceStarted, "kubelet.service", "kubelet: The Kubernetes Node Agent"},
		{"2024-05-01T12:00:00+00:00 node1 systemd[1]: Failed to start auditd.service - Security Auditing Service.", TypeServiceFailed, "auditd.service", "Security Auditing Service"},
		{"2024-05-01T12:00:00+00:00 node1 systemd[1]: falco.service: Main process exited, code=killed, status=9/KILL", TypeServiceKilled, "falco.service", ""},
		{"2024-05-01T12:00:00+00:00 node1 systemd[1]: falco.service: Failed with result 'signal'.", TypeServiceFailed, "falco.service", ""},
		// systemd 247 and older: the description only.
		{"May  1 12:00:00 node1 systemd[1]: Stopped OpenBSD Secure Shell server.", TypeServiceStopped, "", "OpenBSD Secure Shell server"},
		{"2024-05-01T12:00:00+00:00 node1 systemd[1]: ssh.service: Deactivated successfully.", "", "ssh.service", ""},
	} {
		r, err := decode(t, d, "/var/log/syslog", tc.line)
		if err != nil {
			t.Fatal(err)
		}
		if r.Type != tc.typ || r.Unit != tc.unit || r.Fields["description"] != tc.desc {
			t.Errorf("%s: type %q unit %q desc %q", tc.line, r.Type, r.Unit, r.Fields["description"])
		}
	}
}

func TestJournald(t *testing.T) {
	d := syslogDecoder()
	r, _ := decode(t, d, "/var/log/syslog", "2024-05-01T12:00:00+00:00 n systemd-journald[312]: Deleted archived journal /var/log/journal/0a1b/system@00061a-2b.journal (8.0M).")
	if r.Type != TypeJournalVacuum || r.FilePath != "/var/log/journal/0a1b/system@00061a-2b.journal" || r.Fields["size"] != "8.0M" {
		t.Errorf("%+v", r)
	}
	r, _ = decode(t, d, "/var/log/syslog", "2024-05-01T12:00:00+00:00 n systemd-journald[312]: Vacuuming done, freed 24.0M of archived journals from /var/log/journal/0a1b.")
	if r.Type != TypeJournalVacuum || r.FilePath != "/var/log/journal/0a1b" || r.Fields["freed"] != "24.0M" {
		t.Errorf("%+v", r)
	}
}

// TestSSHDVariants covers sshd lines of configurations and attacks the captures did not produce
// (formats from OpenSSH 9.x auth.c, auth2.c, sshd.c; fail2ban's filter counts each).
func TestSSHDVariants(t *testing.T) {
	d := syslogDecoder()
	for _, tc := range []struct {
		msg  string
		want briefRec
	}{
		{"error: maximum authentication attempts exceeded for root from 203.0.113.5 port 50862 ssh2 [preauth]", briefRec{Type: TypeSSHMaxAuth, User: "root", IP: "203.0.113.5", Port: 50862}},
		{"error: maximum authentication attempts exceeded for invalid user oracle from 203.0.113.5 port 50862 ssh2 [preauth]", briefRec{Type: TypeSSHMaxAuth, User: "oracle", IP: "203.0.113.5", Port: 50862}},
		{"Disconnecting authenticating user root 203.0.113.5 port 50862: Too many authentication failures [preauth]", briefRec{Type: TypeSSHMaxAuth, User: "root", IP: "203.0.113.5", Port: 50862}},
		{"Disconnecting: Too many authentication failures [preauth]", briefRec{Type: TypeSSHMaxAuth}},
		{"Failed publickey for git from 2001:db8::7 port 4022 ssh2: RSA SHA256:3f2Yd1xHl6k3b8", briefRec{Type: TypeSSHAuthFailed, User: "git", IP: "2001:db8::7", Port: 4022}},
		{"Failed keyboard-interactive/pam for invalid user test from 198.51.100.4 port 22 ssh2", briefRec{Type: TypeSSHAuthFailed, User: "test", IP: "198.51.100.4", Port: 22}},
		{"Failed none for invalid user  from 198.51.100.4 port 22 ssh2", briefRec{Type: TypeSSHAuthFailed, User: "", IP: "198.51.100.4", Port: 22}},
		{"Invalid user  from 198.51.100.4 port 33", briefRec{Type: TypeSSHInvalidUser, IP: "198.51.100.4", Port: 33}},
		{"Failed password for root from ::ffff:198.51.100.4 port 22 ssh2", briefRec{Type: TypeSSHAuthFailed, User: "root", IP: "198.51.100.4", Port: 22}},
		{"ROOT LOGIN REFUSED FROM 198.51.100.9 port 22", briefRec{Type: TypeSSHNotAllowed, User: "root", IP: "198.51.100.9"}},
		{"User postgres not allowed because account is locked", briefRec{Type: TypeSSHNotAllowed, User: "postgres"}},
		{"Received disconnect from 198.51.100.9 port 51212:3: com.jcraft.jsch.JSchException: Auth fail [preauth]", briefRec{Type: TypeSSHAuthError, IP: "198.51.100.9", Port: 51212}},
		{"Received disconnect from 198.51.100.9 port 51212:11: Bye Bye [preauth]", briefRec{IP: "198.51.100.9", Port: 51212}},
		{"refused connect from host.example (198.51.100.10)", briefRec{Type: TypeSSHAuthError, IP: "198.51.100.10"}},
		{"User not known to the underlying authentication module for jdoe from 198.51.100.11", briefRec{Type: TypeSSHAuthError, User: "jdoe", IP: "198.51.100.11"}},
		{"Did not receive identification string from 198.51.100.12 port 40000", briefRec{Type: TypeSSHNegotiation, IP: "198.51.100.12", Port: 40000}},
		{"Disconnected from invalid user admin 198.51.100.13 port 40001 [preauth]", briefRec{Type: TypeSSHPreauthClose, User: "admin", IP: "198.51.100.13", Port: 40001}},
		// A user name crafted to look like another address: the address sshd wrote last wins.
		{"Failed password for invalid user x from 10.9.9.9 port 1 ssh2 from 198.51.100.14 port 5 ssh2", briefRec{Type: TypeSSHAuthFailed, User: "x from 10.9.9.9 port 1 ssh2", IP: "198.51.100.14", Port: 5}},
		{"Failed password for root from not-an-ip port 22 ssh2", briefRec{}},
	} {
		r, err := decode(t, d, "/var/log/auth.log", "2024-05-01T12:00:00+00:00 h sshd[77]: "+tc.msg)
		if err != nil {
			t.Fatal(err)
		}
		got := brief(r)
		got.Msg, got.Program, got.PID = "", "", 0
		if got != tc.want {
			t.Errorf("%s:\n got  %+v\n want %+v", tc.msg, got, tc.want)
		}
	}
}

func TestSyslogFraming(t *testing.T) {
	d := syslogDecoder()
	for _, tc := range []struct {
		line                 string
		format, host, prog   string
		pid, count, fac, sev int
		msg                  string
		when                 time.Time
	}{
		{"<38>May  1 12:00:00 h sshd[5]: hi", "rfc3164", "h", "sshd", 5, 1, 4, 6, "hi", time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)},
		// December lines read in early January belong to the previous year.
		{"Dec 31 23:59:59 h cron[9]: x", "rfc3164", "h", "cron", 9, 1, -1, -1, "x", time.Date(2025, 12, 31, 23, 59, 59, 0, time.UTC)},
		{"2024-05-01T12:00:00.5Z h kernel: [ 12.5] audit: x", "iso", "h", "kernel", -1, 1, -1, -1, "[ 12.5] audit: x", time.Date(2024, 5, 1, 12, 0, 0, 5e8, time.UTC)},
		{"2024-05-01T12:00:00+02:00 h sshd[1]: message repeated 3 times: [ Failed password for root from 1.2.3.4 port 22 ssh2]", "iso", "h", "sshd", 1, 3, -1, -1, "Failed password for root from 1.2.3.4 port 22 ssh2", time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC)},
		{`<165>1 2024-05-01T12:00:00.000Z h app 42 ID47 [exampleSDID@32473 iut="3" eventSource="App\"x\]"][meta k="v"] ` + "\ufeff" + "hello", "rfc5424", "h", "app", 42, 1, 20, 5, "hello", time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)},
		{"<13>1 - - - - - -", "rfc5424", "", "", -1, 1, 1, 5, "", time.Time{}},
		{"2024-05-01T12:00:00Z h no tag here at all", "iso", "h", "", -1, 1, -1, -1, "no tag here at all", time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)},
		{"2024-05-01T12:00:00Z h /usr/sbin/cron[12]: x", "iso", "h", "/usr/sbin/cron", 12, 1, -1, -1, "x", time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)},
	} {
		dd := *d
		if tc.prog == "cron" {
			dd.Now = func() time.Time { return time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC) }
		}
		r, err := decode(t, &dd, "/p", tc.line)
		if err != nil {
			t.Errorf("%s: %v", tc.line, err)
			continue
		}
		if r.Format != tc.format || r.Host != tc.host || r.Program != tc.prog || r.PID != tc.pid || r.Count != tc.count ||
			r.Facility != tc.fac || r.Severity != tc.sev || r.Message != tc.msg || !r.Time.Equal(tc.when) {
			t.Errorf("%s:\n got %s %q %q pid %d count %d fac %d sev %d %q %v", tc.line, r.Format, r.Host, r.Program, r.PID, r.Count, r.Facility, r.Severity, r.Message, r.Time)
		}
		if tc.format == "rfc5424" && tc.prog == "app" {
			if r.Fields["exampleSDID@32473.eventSource"] != `App"x]` || r.Fields["meta.k"] != "v" || r.Fields["msgid"] != "ID47" {
				t.Errorf("SD %v", r.Fields)
			}
		}
	}
	for _, bad := range []string{"", "hello", "<999>1 x", "<1x>May", "2024-13-01T00:00:00Z h x: y", "2024-02-30T00:00:00Z h x: y",
		"Foo  1 12:00:00 h x: y", `<13>1 2024-05-01T12:00:00Z h a 1 m [x a="b`, "<13>1 2024-05-01T12:00:00Z h"} {
		r, err := decode(t, d, "/p", bad)
		if !errors.Is(err, ErrFormat) {
			t.Errorf("%q: err %v", bad, err)
		}
		if r.Message != bad {
			t.Errorf("%q: message %q", bad, r.Message)
		}
	}
}

func TestAuditd(t *testing.T) {
	d := &Auditd{}
	for _, tc := range []struct {
		line, typ, user, ip, outcome string
		more                         map[string]string
	}{
		{`type=USER_AUTH msg=audit(1700000000.123:456): pid=1234 uid=0 auid=4294967295 ses=4294967295 subj=unconfined msg='op=PAM:authentication grantors=? acct="root" exe="/usr/sbin/sshd" hostname=203.0.113.9 addr=203.0.113.9 terminal=ssh res=failed'` + "\x1d" + `UID="root" AUID="unset"`,
			"auditd_user_auth", "root", "203.0.113.9", OutcomeFailure, map[string]string{"exe": "/usr/sbin/sshd", "op": "PAM:authentication", "UID": "root", "serial": "456"}},
		{`type=ADD_USER msg=audit(1700000001.000:460): pid=99 uid=0 auid=1000 ses=3 msg='op=add-user id=1005 exe="/usr/sbin/useradd" hostname=? addr=? terminal=pts/0 res=success'`,
			"auditd_add_user", "1005", "", OutcomeSuccess, map[string]string{"op": "add-user"}},
		{`type=CONFIG_CHANGE msg=audit(1700000002.000:461): auid=1000 ses=3 op=remove_rule key="identity" list=4 res=1`,
			"auditd_config_change", "", "", OutcomeSuccess, map[string]string{"op": "remove_rule", "key": "identity"}},
		{`type=SYSCALL msg=audit(1700000003.5:462): arch=c000003e syscall=59 success=yes exit=0 a0=55 items=2 ppid=1 pid=2 comm="bash" exe="/usr/bin/bash" key=(null)`,
			"auditd_syscall", "", "", OutcomeSuccess, map[string]string{"comm": "bash", "syscall": "59"}},
	} {
		r, err := decode(t, d, "/var/log/audit/audit.log", tc.line)
		if err != nil {
			t.Fatal(err)
		}
		if r.Type != tc.typ || r.User != tc.user || r.SrcIP != tc.ip || r.Outcome != tc.outcome || r.Time.IsZero() || r.Source != SourceAuditd {
			t.Errorf("%s:\n %+v", tc.line, r)
		}
		for k, v := range tc.more {
			if r.Fields[k] != v {
				t.Errorf("%s: field %s = %q, want %q (%v)", tc.typ, k, r.Fields[k], v, r.Fields)
			}
		}
	}
	if _, err := decode(t, d, "/a", "not audit"); !errors.Is(err, ErrFormat) {
		t.Error(err)
	}
}

func TestCRI(t *testing.T) {
	d := &CRI{}
	path := "/var/log/pods/payments_api-7d9f_0f6c6e4e-1d2b-4b8a-9f5c-2a8a3e7d1c11/api/0.log"
	r, err := decode(t, d, path, "2024-05-01T12:00:00.123456789Z stdout F GET /healthz 200")
	if err != nil {
		t.Fatal(err)
	}
	want := Container{Name: "api", Pod: "api-7d9f", Namespace: "payments", PodUID: "0f6c6e4e-1d2b-4b8a-9f5c-2a8a3e7d1c11", Stream: "stdout", Runtime: "cri"}
	if r.Container != want || r.Message != "GET /healthz 200" || r.Source != SourceContainer || r.Time.Nanosecond() != 123456789 {
		t.Fatalf("%+v", r)
	}
	// Partial lines are joined; streams are kept apart.
	for _, l := range []string{"2024-05-01T12:00:01Z stdout P part one, ", "2024-05-01T12:00:01Z stderr F an error", "2024-05-01T12:00:01Z stdout P part two, "} {
		r, err = decode(t, d, path, l)
		if strings.Contains(l, " P ") != errors.Is(err, ErrIncomplete) {
			t.Fatalf("%s: %v", l, err)
		}
		if err == nil && (r.Message != "an error" || r.Container.Stream != "stderr") {
			t.Fatalf("%+v", r)
		}
	}
	r, err = decode(t, d, path, "2024-05-01T12:00:01Z stdout F end")
	if err != nil || r.Message != "part one, part two, end" {
		t.Fatalf("%v %q", err, r.Message)
	}
	r, err = decode(t, d, path, "2024-05-01T12:00:01Z stdout F")
	if err != nil || r.Message != "" {
		t.Fatalf("empty line: %v %q", err, r.Message)
	}
	// /var/log/containers names.
	r, _ = decode(t, d, "/var/log/containers/api-7d9f_payments_api-"+strings.Repeat("ab", 32)+".log", "2024-05-01T12:00:00Z stderr F x")
	if r.Container.Pod != "api-7d9f" || r.Container.Namespace != "payments" || r.Container.Name != "api" || r.Container.ID != strings.Repeat("ab", 32) {
		t.Fatalf("%+v", r.Container)
	}
	for _, bad := range []string{"", "x", "2024-05-01T12:00:00Z stdin F x", "2024-05-01T12:00:00Z stdout", "notatime stdout F x"} {
		if _, err := decode(t, d, path, bad); !errors.Is(err, ErrFormat) {
			t.Errorf("%q: %v", bad, err)
		}
	}
}

func TestDocker(t *testing.T) {
	d := &Docker{}
	id := strings.Repeat("c0", 32)
	path := "/var/lib/docker/containers/" + id + "/" + id + "-json.log"
	r, err := decode(t, d, path, `{"log":"Accepted connection\n","stream":"stdout","time":"2024-05-01T12:00:00.000000001Z"}`)
	if err != nil || r.Message != "Accepted connection" || r.Container.ID != id || r.Container.Runtime != "docker" || r.Container.Stream != "stdout" || r.Time.Nanosecond() != 1 {
		t.Fatalf("%v %+v", err, r)
	}
	// Docker splits lines at 16 KiB: parts without a newline are joined.
	part := strings.Repeat("a", 16384)
	if _, err := decode(t, d, path, `{"log":"`+part+`","stream":"stderr","time":"2024-05-01T12:00:00Z"}`); !errors.Is(err, ErrIncomplete) {
		t.Fatal(err)
	}
	r, err = decode(t, d, path, `{"log":"tail\r\n","stream":"stderr","time":"2024-05-01T12:00:00Z"}`)
	if err != nil || r.Message != cut(part+"tail", MaxMessage) {
		t.Fatalf("%v %d", err, len(r.Message))
	}
	for _, bad := range []string{"", "{", `{"log":1}`} {
		if _, err := decode(t, d, path, bad); !errors.Is(err, ErrFormat) {
			t.Errorf("%q: %v", bad, err)
		}
	}
}

func TestKlog(t *testing.T) {
	d := &Klog{Location: time.UTC, Now: func() time.Time { return ref }}
	n := 0
	for _, l := range readLines(t, filepath.Join("testdata", "k8s", "apiserver.klog")) {
		r, err := decode(t, d, "/var/log/kubelet.log", l)
		if err != nil {
			t.Fatalf("%s: %v", l, err)
		}
		if r.Time.Month() != 12 || r.Time.Day() != 6 || r.Severity < 0 || r.Fields["source"] == "" || r.Fields["thread"] != "15514" {
			t.Fatalf("%s: %+v", l, r)
		}
		n++
	}
	r, _ := decode(t, d, "/var/log/kubelet.log", `I1206 08:32:35.816431   15514 server.go:152] "Golang settings" GOGC="" GOMAXPROCS="" GOTRACEBACK=""`)
	if r.Message != "Golang settings" || r.Fields["GOGC"] != "" || len(r.Fields) != 5 {
		t.Fatalf("%q %v", r.Message, r.Fields)
	}
	r, _ = decode(t, d, "/var/log/kubelet.log", `E0501 10:00:00.000001    7 kubelet.go:2000] "Error syncing pod" err="failed \"x\"" pod="kube-system/etcd-node1"`)
	if r.Severity != 3 || r.Fields["pod"] != "kube-system/etcd-node1" || r.Fields["err"] != `failed "x"` || r.Time.Year() != 2026 {
		t.Fatalf("%+v", r)
	}
	// The kubelet's lines in the journal carry the same header inside the message.
	j := &Journal{}
	r, err := decode(t, j, "", `{"__REALTIME_TIMESTAMP":"1714557600000000","SYSLOG_IDENTIFIER":"kubelet","MESSAGE":"W0501 10:00:00.000001    7 reflector.go:1] \"failed to list\" resource=\"pods\"","_SYSTEMD_UNIT":"kubelet.service"}`)
	if err != nil || r.Message != "failed to list" || r.Fields["resource"] != "pods" || r.Severity != 4 || r.Unit != "kubelet.service" || r.Time.Year() != 2024 {
		t.Fatalf("%v %+v", err, r)
	}
	if _, err := decode(t, d, "/x", "not klog"); !errors.Is(err, ErrFormat) {
		t.Error(err)
	}
}

func TestK8sAudit(t *testing.T) {
	d := &K8sAuditLog{}
	var crb, exec, forbidden, webhookDelete, saBinding int
	for _, l := range readLines(t, filepath.Join("testdata", "k8s", "audit.log")) {
		r, err := decode(t, d, "/var/log/kubernetes/audit.log", l)
		if err != nil {
			t.Fatal(err)
		}
		a := r.Audit
		if r.Type != TypeK8sAudit || r.Time.IsZero() || a.AuditID == "" || a.Verb == "" || a.User == "" || r.Source != SourceK8sAudit {
			t.Fatalf("%+v", r)
		}
		switch {
		case a.Resource == "clusterrolebindings" && a.Verb == "create":
			crb++
			if a.RoleRef != "cluster-admin" || a.RoleRefKind != "ClusterRole" || strings.Join(a.Subjects, ",") != "User:alice,Group:developers" || a.Name != "alice-admin" || a.Code != 201 {
				t.Errorf("binding %+v", a)
			}
		case a.Resource == "rolebindings" && a.Verb == "create":
			saBinding++
			if a.RoleRef != "edit" || strings.Join(a.Subjects, ",") != "ServiceAccount:default/builder" || a.Namespace != "default" {
				t.Errorf("rolebinding %+v", a)
			}
		case a.Subresource == "exec":
			exec++
			if a.Resource != "pods" || a.Name != "web" || a.User != "admin" || !strings.Contains(a.URI, "/exec") {
				t.Errorf("exec %+v", a)
			}
		case a.Resource == "secrets" && a.Code == 403:
			forbidden++
			if a.User != "alice" || a.Decision != "forbid" || r.Outcome != OutcomeFailure || a.SourceIP != "127.0.0.1" || r.SrcIP != "127.0.0.1" {
				t.Errorf("forbidden %+v", a)
			}
		case a.Resource == "validatingwebhookconfigurations" && a.Verb == "delete":
			webhookDelete++
			if a.APIGroup != "admissionregistration.k8s.io" || a.Name != "mamori-guard" {
				t.Errorf("webhook %+v", a)
			}
		}
	}
	if crb != 1 || exec != 4 || forbidden != 1 || webhookDelete != 1 || saBinding != 1 {
		t.Fatalf("crb %d exec %d forbidden %d webhook delete %d sa binding %d", crb, exec, forbidden, webhookDelete, saBinding)
	}
	for _, bad := range []string{"{}", `{"kind":"Event","apiVersion":"v1"}`, "[", `{"kind":"Event","apiVersion":"audit.k8s.io/v1","user":7}`} {
		r, err := decode(t, d, "/a", bad)
		if !errors.Is(err, ErrFormat) || r.Type != "" {
			t.Errorf("%q: %v %q", bad, err, r.Type)
		}
	}
}

func TestRecordBounds(t *testing.T) {
	var r Record
	r.Reset()
	for i := range 100 {
		r.SetField("k"+string(rune('a'+i%26))+string(rune('a'+i/26)), strings.Repeat("v", 5000))
	}
	r.SetField(strings.Repeat("k", 100), "x")
	for k := range r.Fields {
		if len(k) > 64 {
			t.Fatalf("key of %d bytes", len(k))
		}
	}
	if len(r.Fields) != MaxFields {
		t.Fatalf("%d fields", len(r.Fields))
	}
	for k, v := range r.Fields {
		if len(k) > 64 || len(v) > MaxField {
			t.Fatalf("%d %d", len(k), len(v))
		}
	}
	if got := cut("aé", 2); got != "a" {
		t.Fatalf("%q", got)
	}
	f := r.Fields
	r.Reset()
	if len(r.Fields) != 0 || r.PID != -1 || r.Count != 1 {
		t.Fatalf("%+v", r)
	}
	r.SetField("a", "b")
	if len(f) != 1 { // the map is reused
		t.Fatal("map not reused")
	}
}

func TestFormats(t *testing.T) {
	want := []string{"auditd", "cri", "docker", "journal", "k8s-audit", "klog", "syslog"}
	got := Formats()
	if len(got) != len(want) {
		t.Fatalf("%d formats", len(got))
	}
	for _, n := range want {
		if got[n] == nil || got[n].Name() != n {
			t.Errorf("format %s", n)
		}
	}
}
