// Package logtest is log inspection's privileged test kit, shared by the
// inspector's e2e (internal/host/loginspect) and the agent's
// (internal/agent/modules/host): the real logging path of a Debian host,
// started by the test and confined to its directory and namespaces.
//
//   - rsyslogd (Debian's) with its own configuration: its imuxsock socket and
//     its files in the test's directory, optionally an imtcp input on a
//     loopback port as a SIEM collector (StartRsyslog).
//   - A mount namespace the test owns with a private /dev (tmpfs with the few
//     device nodes bound from the real one, /dev/log pointing at the test's
//     socket), a copy of /etc with a test user (member of sudo) and a private
//     /run (PrepareEtc, Namespace): the real sshd (OpenSSH, on a loopback
//     port; StartSSHD) and the real sudo (SudoFailures) log through /dev/log
//     as on any Debian host; sshpass + ssh log in with wrong passwords
//     (BruteForce).
//
// Nothing outside the test's directory and namespaces changes; every
// process is stopped at cleanup. Needs root and MAMORI_TEST_HOST=1 (Skip).
package logtest

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
)

// User and UID are the test user's (its password is never typed: every
// attempt is wrong).
const User, UID = "mmtest", 4242

// passwordHash is the SHA-512 crypt of the test user's password.
const passwordHash = "$6$mamorie2e$2T.gKdSzO05UHMa5IKM7UvW8lQJbceR2awGkLKW6TjOcAAftIm2Pm3LRABeVUShDopXtSprARE6d5fdTBzMdR."

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

// Skip skips the test unless MAMORI_TEST_HOST=1, it runs as root and the
// programs of the logging path are installed (scripts/test.sh installs them).
func Skip(t testing.TB) {
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

// LookPath finds a program on $PATH or in /usr/sbin.
func LookPath(name string) string {
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	return "/usr/sbin/" + name
}

// StartProc starts a process in its own process group, stopped (SIGTERM,
// then SIGKILL) at cleanup.
func StartProc(t testing.TB, name string, args []string, out *bytes.Buffer) *exec.Cmd {
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

// FreePort returns a free loopback TCP port.
func FreePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// WaitUntil polls cond until it holds, failing the test after d.
func WaitUntil(t testing.TB, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Run runs a command with stdin (60 s at most) and returns its output.
func Run(t testing.TB, stdin string, name string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// PrepareEtc copies /etc to dir/etc and adds the test user, a member of sudo.
func PrepareEtc(t testing.TB, dir string) {
	t.Helper()
	if out, err := Run(t, "", "cp", "-a", "/etc", filepath.Join(dir, "etc")); err != nil {
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
	add("passwd", fmt.Sprintf("%s:x:%d:%d:mamori e2e:/nonexistent:/bin/sh", User, UID, UID))
	add("shadow", fmt.Sprintf("%s:%s:20000:0:99999:7:::", User, passwordHash))
	add("group", fmt.Sprintf("%s:x:%d:", User, UID))
	group, err := os.ReadFile(filepath.Join(dir, "etc", "group"))
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, l := range strings.Split(string(group), "\n") {
		if strings.HasPrefix(l, "sudo:") {
			if strings.HasSuffix(l, ":") {
				l += User
			} else {
				l += "," + User
			}
		}
		lines = append(lines, l)
	}
	if err := os.WriteFile(filepath.Join(dir, "etc", "group"), []byte(strings.Join(lines, "\n")), 0o644); err != nil {
		t.Fatal(err)
	}
}

// Namespace starts a holder process in a new mount namespace prepared for
// dir (PrepareEtc first) with /dev/log pointing at logSock, and returns its PID.
func Namespace(t testing.TB, dir, logSock string) int {
	t.Helper()
	script := filepath.Join(dir, "ns.sh")
	if err := os.WriteFile(script, []byte(nsScript), 0o755); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	cmd := StartProc(t, "unshare", []string{"--mount", "--propagation", "private", script, dir, logSock, "sleep", "3600"}, &out)
	WaitUntil(t, "the namespace ("+out.String()+")", 10*time.Second, func() bool {
		_, err := os.Stat(filepath.Join(dir, "ready"))
		return err == nil
	})
	return cmd.Process.Pid
}

// StartSSHD runs sshd in the namespace of holder on a loopback port.
func StartSSHD(t testing.TB, dir string, holder int) int {
	t.Helper()
	port := FreePort(t)
	key := filepath.Join(dir, "ssh_host_ed25519")
	if out, err := Run(t, "", "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", key); err != nil {
		t.Fatalf("ssh-keygen: %v %s", err, out)
	}
	cfg := filepath.Join(dir, "sshd_config")
	conf := fmt.Sprintf("Port %d\nListenAddress 127.0.0.1\nHostKey %s\nPidFile %s/sshd.pid\nUsePAM yes\nKbdInteractiveAuthentication no\nPasswordAuthentication yes\nPermitRootLogin prohibit-password\nMaxStartups 50\n", port, key, dir)
	if err := os.WriteFile(cfg, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	StartProc(t, "nsenter", []string{"-t", strconv.Itoa(holder), "-m", "--", LookPath("sshd"), "-D", "-f", cfg}, &out)
	WaitUntil(t, "sshd ("+out.String()+")", 10*time.Second, func() bool {
		c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	return port
}

// BruteForce makes failed password logins, in parallel (PAM delays each
// failure by two seconds).
func BruteForce(t testing.TB, port int, users []string) {
	t.Helper()
	var wg sync.WaitGroup
	for i, u := range users {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out, err := Run(t, "", "sshpass", "-p", fmt.Sprintf("wrong-%d", i), "ssh", "-p", strconv.Itoa(port),
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

// SudoFailures runs sudo -S as the test user in the namespace of holder,
// runs times in parallel, each with three wrong passwords (so each run
// logs "3 incorrect password attempts").
func SudoFailures(t testing.TB, holder, runs int) {
	t.Helper()
	var wg sync.WaitGroup
	for range runs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out, err := Run(t, "bad-1\nbad-2\nbad-3\n", "nsenter", "-t", strconv.Itoa(holder), "-m", "--",
				"setpriv", fmt.Sprintf("--reuid=%d", UID), fmt.Sprintf("--regid=%d", UID), "--init-groups",
				"sudo", "-S", "-k", "-p", "", "/usr/bin/id")
			if err == nil || !strings.Contains(out, "incorrect password attempts") {
				t.Errorf("sudo: %v %s", err, out)
			}
		}()
	}
	wg.Wait()
}

// Rsyslog is an rsyslogd the test started.
type Rsyslog struct {
	// Sock is its imuxsock socket (the namespace's /dev/log).
	Sock string
	// AuthLog receives auth and authpriv messages (RSYSLOG_FileFormat).
	AuthLog string
	// SIEMPort and SIEMLog: the imtcp input (0 without one) and the file its
	// messages go to (RFC 5424, RSYSLOG_SyslogProtocol23Format).
	SIEMPort int
	SIEMLog  string
}

// StartRsyslog runs rsyslogd with its files under dir (auth.log in
// dir/log), with a SIEM input on a loopback port when siem is true.
func StartRsyslog(t testing.TB, dir string, siem bool) Rsyslog {
	t.Helper()
	logDir := filepath.Join(dir, "log")
	if err := os.MkdirAll(filepath.Join(dir, "spool"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		t.Fatal(err)
	}
	r := Rsyslog{Sock: filepath.Join(dir, "log.sock"), AuthLog: filepath.Join(logDir, "auth.log")}
	conf := fmt.Sprintf(`global(workDirectory=%q)
module(load="imuxsock" SysSock.Use="off")
input(type="imuxsock" Socket=%q CreatePath="on" RateLimit.Interval="0")
`, filepath.Join(dir, "spool"), r.Sock)
	if siem {
		r.SIEMPort, r.SIEMLog = FreePort(t), filepath.Join(logDir, "siem.log")
		conf += fmt.Sprintf(`module(load="imtcp")
input(type="imtcp" address="127.0.0.1" port="%d" ruleset="siem")
ruleset(name="siem") { action(type="omfile" file=%q template="RSYSLOG_SyslogProtocol23Format") }
`, r.SIEMPort, r.SIEMLog)
	}
	conf += fmt.Sprintf("auth,authpriv.* action(type=\"omfile\" file=%q template=\"RSYSLOG_FileFormat\")\n", r.AuthLog)
	if err := os.WriteFile(filepath.Join(dir, "rsyslog.conf"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	StartProc(t, LookPath("rsyslogd"), []string{"-n", "-f", filepath.Join(dir, "rsyslog.conf"), "-i", filepath.Join(dir, "rsyslog.pid")}, &out)
	WaitUntil(t, "rsyslogd ("+out.String()+")", 10*time.Second, func() bool {
		if _, err := os.Stat(r.Sock); err != nil {
			return false
		}
		if r.SIEMPort == 0 {
			return true
		}
		c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", r.SIEMPort))
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	t.Cleanup(func() {
		if t.Failed() {
			for _, f := range []string{r.AuthLog, r.SIEMLog} {
				if f != "" {
					b, _ := os.ReadFile(f)
					t.Logf("%s:\n%s", f, b)
				}
			}
			t.Logf("rsyslogd: %s", out.String())
		}
	})
	return r
}
