package loginspect

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"mamori/internal/host/loginspect/forward"
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

const e2eUser, e2eUID = "mmtest", 4242

// e2eHash is the SHA-512 crypt of the test user's password (which is never typed: every
// attempt is wrong).
const e2eHash = "$6$mamorie2e$2T.gKdSzO05UHMa5IKM7UvW8lQJbceR2awGkLKW6TjOcAAftIm2Pm3LRABeVUShDopXtSprARE6d5fdTBzMdR."

// nsScript prepares a namespace: private /dev with /dev/log -> $LOGSOCK, private /run, the
// test's /etc; then runs the command.
const nsScript = `#!/bin/sh
set -e
D=$1; LOGSOCK=$2; shift 2
mount --make-rprivate /
mkdir -p $D/olddev
mount --rbind /dev $D/olddev
mount -t tmpfs -o mode=0755,size=1m mamori-e2e-dev /dev
for n in null zero full random urandom tty ptmx; do touch /dev/$n; mount --bind $D/olddev/$n /dev/$n; done
mkdir /dev/pts /dev/shm
mount --rbind $D/olddev/pts /dev/pts
mount -t tmpfs -o mode=0755 mamori-e2e-run /run
mkdir -p /run/sshd /run/systemd/journal /run/log/journal
if [ -d $D/journal ]; then mount --bind $D/journal /run/log/journal; fi
# journald must never write to the host's persistent journal, whatever it decides to flush.
if [ -d /var/log/journal ]; then mkdir -p $D/varjournal; mount --bind $D/varjournal /var/log/journal; fi
ln -s $LOGSOCK /dev/log
mount --bind $D/etc /etc
touch $D/ready
exec "$@"
`

func e2eSkip(t *testing.T) {
	t.Helper()
	if os.Getenv("MAMORI_TEST_HOST") != "1" {
		t.Skip("MAMORI_TEST_HOST=1 runs the log inspection e2e (root, rsyslogd, sshd, sudo, journald)")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	for _, b := range []string{"rsyslogd", "sshd", "ssh", "sshpass", "ssh-keygen", "sudo", "setpriv", "unshare", "nsenter"} {
		if _, err := exec.LookPath(b); err != nil {
			if _, err := os.Stat("/usr/sbin/" + b); err != nil {
				t.Skipf("%s not installed (scripts/test.sh installs it)", b)
			}
		}
	}
}

func lookPath(name string) string {
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	return "/usr/sbin/" + name
}

// proc is a started process, stopped at cleanup.
func startProc(t *testing.T, name string, args []string, out *bytes.Buffer) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(name, args...)
	if out != nil {
		cmd.Stdout, cmd.Stderr = out, out
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
	})
	return cmd
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func waitUntil(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func run(t *testing.T, stdin string, name string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// prepareEtc copies /etc and adds the test user, a member of sudo.
func prepareEtc(t *testing.T, dir string) {
	t.Helper()
	if out, err := run(t, "", "cp", "-a", "/etc", filepath.Join(dir, "etc")); err != nil {
		t.Fatalf("copy /etc: %v %s", err, out)
	}
	add := func(file, line string) {
		f, err := os.OpenFile(filepath.Join(dir, "etc", file), os.O_WRONLY|os.O_APPEND, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if _, err := f.WriteString(line + "\n"); err != nil {
			t.Fatal(err)
		}
	}
	add("passwd", fmt.Sprintf("%s:x:%d:%d:mamori e2e:/nonexistent:/bin/sh", e2eUser, e2eUID, e2eUID))
	add("shadow", fmt.Sprintf("%s:%s:20000:0:99999:7:::", e2eUser, e2eHash))
	add("group", fmt.Sprintf("%s:x:%d:", e2eUser, e2eUID))
	group, err := os.ReadFile(filepath.Join(dir, "etc", "group"))
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, l := range strings.Split(string(group), "\n") {
		if strings.HasPrefix(l, "sudo:") {
			if strings.HasSuffix(l, ":") {
				l += e2eUser
			} else {
				l += "," + e2eUser
			}
		}
		lines = append(lines, l)
	}
	if err := os.WriteFile(filepath.Join(dir, "etc", "group"), []byte(strings.Join(lines, "\n")), 0o644); err != nil {
		t.Fatal(err)
	}
}

// namespace starts a holder process in a new mount namespace and returns its PID.
func namespace(t *testing.T, dir, logSock string) int {
	t.Helper()
	script := filepath.Join(dir, "ns.sh")
	if err := os.WriteFile(script, []byte(nsScript), 0o755); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	cmd := startProc(t, "unshare", []string{"--mount", "--propagation", "private", script, dir, logSock, "sleep", "3600"}, &out)
	waitUntil(t, "the namespace ("+out.String()+")", 10*time.Second, func() bool {
		_, err := os.Stat(filepath.Join(dir, "ready"))
		return err == nil
	})
	return cmd.Process.Pid
}

// startSSHD runs sshd in the namespace on a loopback port.
func startSSHD(t *testing.T, dir string, holder int) int {
	t.Helper()
	port := freePort(t)
	key := filepath.Join(dir, "ssh_host_ed25519")
	if out, err := run(t, "", "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", key); err != nil {
		t.Fatalf("ssh-keygen: %v %s", err, out)
	}
	cfg := filepath.Join(dir, "sshd_config")
	conf := fmt.Sprintf("Port %d\nListenAddress 127.0.0.1\nHostKey %s\nPidFile %s/sshd.pid\nUsePAM yes\nKbdInteractiveAuthentication no\nPasswordAuthentication yes\nPermitRootLogin prohibit-password\nMaxStartups 50\n", port, key, dir)
	if err := os.WriteFile(cfg, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	startProc(t, "nsenter", []string{"-t", strconv.Itoa(holder), "-m", "--", lookPath("sshd"), "-D", "-f", cfg}, &out)
	waitUntil(t, "sshd ("+out.String()+")", 10*time.Second, func() bool {
		c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	return port
}

// bruteForce makes failed password logins, in parallel (PAM delays each failure by two
// seconds).
func bruteForce(t *testing.T, port int, users []string) {
	t.Helper()
	var wg sync.WaitGroup
	for i, u := range users {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out, err := run(t, "", "sshpass", "-p", fmt.Sprintf("wrong-%d", i), "ssh", "-p", strconv.Itoa(port),
				"-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR",
				"-o", "PubkeyAuthentication=no", "-o", "PreferredAuthentications=password", "-o", "NumberOfPasswordPrompts=1",
				"-o", "ConnectTimeout=20", u+"@127.0.0.1", "true")
			if err == nil {
				t.Errorf("login as %s succeeded: %s", u, out)
			}
		}()
	}
	wg.Wait()
}

func TestE2EBruteForceAndSudoThroughRsyslog(t *testing.T) {
	e2eSkip(t)
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o755); err != nil { // sshd's privilege-separated child reads nothing here, but sudo as the test user resolves paths
		t.Fatal(err)
	}
	prepareEtc(t, dir)
	logDir := filepath.Join(dir, "log")
	os.MkdirAll(filepath.Join(dir, "spool"), 0o700)
	os.MkdirAll(logDir, 0o755)
	sock := filepath.Join(dir, "log.sock")
	siemPort := freePort(t)
	conf := fmt.Sprintf(`global(workDirectory=%q)
module(load="imuxsock" SysSock.Use="off")
input(type="imuxsock" Socket=%q CreatePath="on" RateLimit.Interval="0")
module(load="imtcp")
input(type="imtcp" address="127.0.0.1" port="%d" ruleset="siem")
ruleset(name="siem") { action(type="omfile" file=%q template="RSYSLOG_SyslogProtocol23Format") }
auth,authpriv.* action(type="omfile" file=%q template="RSYSLOG_FileFormat")
`, filepath.Join(dir, "spool"), sock, siemPort, filepath.Join(logDir, "siem.log"), filepath.Join(logDir, "auth.log"))
	if err := os.WriteFile(filepath.Join(dir, "rsyslog.conf"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	var rsOut bytes.Buffer
	startProc(t, lookPath("rsyslogd"), []string{"-n", "-f", filepath.Join(dir, "rsyslog.conf"), "-i", filepath.Join(dir, "rsyslog.pid")}, &rsOut)
	waitUntil(t, "rsyslogd ("+rsOut.String()+")", 10*time.Second, func() bool {
		_, err := os.Stat(sock)
		c, cerr := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", siemPort))
		if cerr == nil {
			c.Close()
		}
		return err == nil && cerr == nil
	})
	t.Cleanup(func() {
		if t.Failed() {
			for _, f := range []string{"auth.log", "siem.log"} {
				b, _ := os.ReadFile(filepath.Join(logDir, f))
				t.Logf("%s:\n%s", f, b)
			}
			t.Logf("rsyslogd: %s", rsOut.String())
		}
	})
	holder := namespace(t, dir, sock)
	port := startSSHD(t, dir, holder)

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
		bruteForce(t, port, []string{e2eUser, e2eUser, "root", "admin", "oracle", e2eUser})
	}()
	go func() {
		defer wg.Done()
		var sw sync.WaitGroup
		for range 2 {
			sw.Add(1)
			go func() {
				defer sw.Done()
				out, err := run(t, "bad-1\nbad-2\nbad-3\n", "nsenter", "-t", strconv.Itoa(holder), "-m", "--",
					"setpriv", fmt.Sprintf("--reuid=%d", e2eUID), fmt.Sprintf("--regid=%d", e2eUID), "--init-groups",
					"sudo", "-S", "-k", "-p", "", "/usr/bin/id")
				if err == nil || !strings.Contains(out, "incorrect password attempts") {
					t.Errorf("sudo: %v %s", err, out)
				}
			}()
		}
		sw.Wait()
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
	waitUntil(t, "the SIEM copy", 10*time.Second, func() bool {
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
	e2eSkip(t)
	journald := "/lib/systemd/systemd-journald"
	if _, err := os.Stat(journald); err != nil {
		t.Skip("systemd-journald not installed")
	}
	if _, err := exec.LookPath("journalctl"); err != nil {
		t.Skip("journalctl not installed")
	}
	dir := t.TempDir()
	os.Chmod(dir, 0o755)
	prepareEtc(t, dir)
	jdir := filepath.Join(dir, "journal")
	if err := os.MkdirAll(jdir, 0o755); err != nil {
		t.Fatal(err)
	}
	// /dev/log is journald's own socket in the namespace's private /run.
	holder := namespace(t, dir, "/run/systemd/journal/dev-log")
	var jdOut bytes.Buffer
	startProc(t, "nsenter", []string{"-t", strconv.Itoa(holder), "-m", "--", journald}, &jdOut)
	waitUntil(t, "journald ("+jdOut.String()+")", 10*time.Second, func() bool {
		ents, _ := os.ReadDir(jdir)
		return len(ents) > 0
	})
	port := startSSHD(t, dir, holder)
	t.Cleanup(func() {
		if t.Failed() {
			out, _ := run(t, "", "journalctl", "--directory="+jdir, "--no-pager", "-o", "short-iso")
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
	bruteForce(t, port, []string{e2eUser, "root", "admin", e2eUser, "oracle"})
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
