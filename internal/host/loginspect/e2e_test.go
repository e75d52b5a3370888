package loginspect

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"mamori/internal/host/loginspect/forward"
	"mamori/internal/host/loginspect/logtest"
	"mamori/internal/host/loginspect/tail"
)

// The privileged end-to-end test: an SSH brute force and a sudo failure burst written through
// the real logging path and detected once each.
//
//   - rsyslogd (Debian's) runs with its own configuration: its imuxsock socket and its files in
//     the test's directory, and an imtcp input on a loopback port as the SIEM collector.
//   - A mount namespace the test owns gets a private /dev (tmpfs with the few device nodes bound
//     from the real one, and /dev/log pointing at the test's socket), a copy of /etc with a test
//     user (member of sudo) and a private /run: the real sshd (OpenSSH, on a loopback port) and
//     the real sudo log through /dev/log into the test's rsyslogd, as on any Debian host.
//   - sshpass + ssh log in with wrong passwords; sudo -S is given wrong passwords as the test
//     user. The inspector follows rsyslogd's auth.log and forwards its events to the collector.
//   - The journal half: systemd-journald runs in a second namespace of the test's (its /run
//     private, its runtime journal directory bound to the test's directory), sshd logs into it,
//     and the inspector reads it with journalctl --directory.
//
// Nothing outside the test's directory and namespaces changes; every process is stopped.
// Needs root and MAMORI_TEST_HOST=1.

// The fixture (rsyslogd, the namespace with sshd and sudo, journald's
// namespace) is the shared kit internal/host/loginspect/logtest.

const e2eUser = logtest.User

func TestE2EBruteForceAndSudoThroughRsyslog(t *testing.T) {
	logtest.Skip(t)
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o755); err != nil { // sshd's privilege-separated child reads nothing here, but sudo as the test user resolves paths
		t.Fatal(err)
	}
	logtest.PrepareEtc(t, dir)
	rs := logtest.StartRsyslog(t, dir, true)
	logDir := filepath.Dir(rs.AuthLog)
	siemPort := rs.SIEMPort
	holder := logtest.Namespace(t, dir, rs.Sock)
	port := logtest.StartSSHD(t, dir, holder)

	fw, err := forward.NewSyslog(forward.Config{Network: forward.TCP, Address: fmt.Sprintf("127.0.0.1:%d", siemPort)})
	if err != nil {
		t.Fatal(err)
	}
	s := &sink{}
	in, err := New(WithSources(SourceConfig{Name: "auth", Format: "syslog", Paths: []string{filepath.Join(logDir, "auth.log")}}),
		WithJournal(nil), WithStateDir(filepath.Join(dir, "state")), WithHost("e2e-node"), WithHandler(s.handle), WithForwarder(fw),
		WithTailOptions(tail.WithPollInterval(50*time.Millisecond)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- in.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()

	start := time.Now()
	// Six wrong passwords for real and invalid users from one address, and two sudo runs with
	// three wrong passwords each, at the same time.
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		logtest.BruteForce(t, port, []string{e2eUser, e2eUser, "root", "admin", "oracle", e2eUser})
	}()
	go func() {
		defer wg.Done()
		logtest.SudoFailures(t, holder, 2)
	}()
	wg.Wait()
	s.waitFor(t, "ssh-brute-force", 1)
	s.waitFor(t, "sudo-auth-failures", 1)
	t.Logf("attack and detection: %v", time.Since(start).Round(time.Millisecond))
	time.Sleep(2 * time.Second) // a second report would arrive now
	got := s.byRule()
	if got["ssh-brute-force"] != 1 || got["sudo-auth-failures"] != 1 || len(s.events) != 2 {
		auth, _ := os.ReadFile(filepath.Join(logDir, "auth.log"))
		t.Fatalf("events %v\nauth.log:\n%s", got, auth)
	}
	for _, ev := range s.events {
		switch ev.Rule.ID {
		case "ssh-brute-force":
			if ev.Network == nil || ev.Network.SrcAddr != "127.0.0.1" || ev.Count < 5 || ev.Process.Comm != "sshd" || ev.Host == "" ||
				!strings.Contains(ev.Details["threshold.distinct"], e2eUser) {
				t.Errorf("%+v %+v", ev, ev.Details)
			}
		case "sudo-auth-failures":
			if ev.Count != 6 || ev.Details["user.name"] != e2eUser || ev.Process.Args[0] != "/usr/bin/id" {
				t.Errorf("%+v %+v", ev, ev.Details)
			}
		}
	}
	// The collector received both, in RFC 5424 with the structured data intact.
	logtest.WaitUntil(t, "the SIEM copy", 10*time.Second, func() bool {
		b, _ := os.ReadFile(filepath.Join(logDir, "siem.log"))
		return bytes.Count(b, []byte(`rule="ssh-brute-force"`)) == 1 && bytes.Count(b, []byte(`rule="sudo-auth-failures"`)) == 1
	})
	siem, _ := os.ReadFile(filepath.Join(logDir, "siem.log"))
	if !bytes.Contains(siem, []byte(`[mamori@32473 id="`)) || !bytes.Contains(siem, []byte(`src="127.0.0.1"`)) {
		t.Fatalf("siem.log:\n%s", siem)
	}
	if snap := in.Stats(); snap.DecodeErrors["syslog"] != 0 || snap.RuleErrors != 0 {
		t.Fatalf("%+v", snap)
	}
}

func TestE2EBruteForceThroughJournald(t *testing.T) {
	logtest.Skip(t)
	journald := "/lib/systemd/systemd-journald"
	if _, err := os.Stat(journald); err != nil {
		t.Skip("systemd-journald not installed")
	}
	if _, err := exec.LookPath("journalctl"); err != nil {
		t.Skip("journalctl not installed")
	}
	dir := t.TempDir()
	os.Chmod(dir, 0o755)
	logtest.PrepareEtc(t, dir)
	jdir := filepath.Join(dir, "journal")
	if err := os.MkdirAll(jdir, 0o755); err != nil {
		t.Fatal(err)
	}
	// /dev/log is journald's own socket in the namespace's private /run.
	holder := logtest.Namespace(t, dir, "/run/systemd/journal/dev-log")
	var jdOut bytes.Buffer
	logtest.StartProc(t, "nsenter", []string{"-t", strconv.Itoa(holder), "-m", "--", journald}, &jdOut)
	logtest.WaitUntil(t, "journald ("+jdOut.String()+")", 10*time.Second, func() bool {
		ents, _ := os.ReadDir(jdir)
		return len(ents) > 0
	})
	port := logtest.StartSSHD(t, dir, holder)
	t.Cleanup(func() {
		if t.Failed() {
			out, _ := logtest.Run(t, "", "journalctl", "--directory="+jdir, "--no-pager", "-o", "short-iso")
			t.Logf("journal:\n%s\njournald: %s", out, jdOut.String())
		}
	})
	s := &sink{}
	in, err := New(WithSources(), WithJournal(&JournalConfig{Directory: jdir}), WithStateDir(filepath.Join(dir, "state")),
		WithStartAtEnd(true), WithHandler(s.handle))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- in.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	time.Sleep(500 * time.Millisecond) // journalctl is following
	logtest.BruteForce(t, port, []string{e2eUser, "root", "admin", e2eUser, "oracle"})
	s.waitFor(t, "ssh-brute-force", 1)
	time.Sleep(2 * time.Second)
	if got := s.byRule(); got["ssh-brute-force"] != 1 {
		t.Fatalf("events %v", got)
	}
	ev := s.events[0]
	if ev.Network.SrcAddr != "127.0.0.1" || ev.Details["log.source"] != "journal" || ev.Process.Comm != "sshd" || ev.Process.PID <= 0 {
		t.Fatalf("%+v %+v", ev, ev.Details)
	}
	if snap := in.Stats(); snap.JournalEntries == 0 || snap.DecodeErrors["journal"] != 0 {
		t.Fatalf("%+v", snap)
	}
}
