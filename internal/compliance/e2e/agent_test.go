package e2e

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"mamori/internal/api"
	"mamori/internal/compliance"
	"mamori/internal/testnet"
)

// nodeAgent is a real `mamori agent` on the local cluster's real node (a
// process on this host, as scripts/cluster.sh's kubelet is), registered
// with the test's server by an agent token, with its runtime module (the
// eBPF sensor, the cluster's containerd), its host modules from its host
// group (anti-malware and integrity monitoring in detect mode on a tmpfs
// of its own) and its compliance posture every two seconds.
//
// It runs in a mount namespace and a network namespace of the test's:
//   - /etc/sudoers.d and /etc/ssh/sshd_config are the fixture's (bind
//     mounts): the node's real /etc is never written, and a user added
//     to sudoers is a file the test writes in the fixture;
//   - the listening sockets (§4.5.1, netProc /proc/self) are those of
//     its network namespace: the shared machine's are other engineers'
//     and come and go during a run; a listener the test opens beyond
//     loopback in it is the violation. The agent reaches the server
//     through a loopback forwarder the test opens in the namespace.
type nodeAgent struct {
	t       *testing.T
	dir     string
	cmd     *exec.Cmd
	logFile string
	netns   *os.File
	done    chan struct{}
	closers []io.Closer
}

// startAgent starts the agent and returns once its namespaces are ready
// and its server forwarder listens.
func (e *env) startAgent(ctx context.Context) *nodeAgent {
	t := e.t
	t.Helper()
	a := &nodeAgent{t: t, dir: filepath.Join(e.dir, "agent"), done: make(chan struct{})}
	if err := os.MkdirAll(a.dir, 0o700); err != nil {
		t.Fatal(err)
	}
	tok := filepath.Join(a.dir, "token")
	if err := os.WriteFile(tok, []byte(e.agentTk), 0o600); err != nil {
		t.Fatal(err)
	}
	// The forwarder's port in the agent's fresh network namespace: any
	// port is free there.
	const fwdPort = 18443
	skip := []string{"proc", "sys", "dev", "run", "tmp", "var/tmp", "var/log", "var/cache", "var/lib/containerd",
		"var/lib/docker", "var/lib/postgresql", "var/lib/kubelet", "var/lib/apt", "home", "root", "mnt", "media", "work", "usr/local/go",
		"opt", "srv", "snap", "boot", "usr/lib/google-cloud-sdk"}
	cfg := fmt.Sprintf(`node: %s
server: {url: "http://127.0.0.1:%d", tokenFile: %q}
spool: {dir: %q}
events: {file: %q}
modules:
  runtime: {containerd: %q, docker: none}
compliance:
  interval: 2s
  inventoryDelay: 1ms
  netProc: /proc/self
  kubeletConfig: %q
  inventorySkipDirs: [%s]
  inventoryDirs: [%q]
`, e.c.RealNode, fwdPort, tok, filepath.Join(a.dir, "state", "spool"), filepath.Join(a.dir, "events.jsonl"),
		e.c.ContainerdSocket, filepath.Join(e.c.Dir, "kubelet", "config.yaml"), strings.Join(skip, ", "), e.c.BinDir)
	cfgFile := filepath.Join(a.dir, "agent.yaml")
	if err := os.WriteFile(cfgFile, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	watch := filepath.Join(a.dir, "watched")
	if err := os.MkdirAll(watch, 0o755); err != nil {
		t.Fatal(err)
	}
	nsReady, ready := filepath.Join(a.dir, "ns-ready"), filepath.Join(a.dir, "ready")
	script := `set -e
ip link set lo up
mount --bind "$FIX/sudoers.d" /etc/sudoers.d
mount --bind "$FIX/sshd_config" /etc/ssh/sshd_config
mount -t tmpfs -o mode=0755,size=4m mamori-e2e-watched "$WATCH"
mkdir "$WATCH/app" && echo v1 > "$WATCH/app/VERSION"
touch "$NSREADY"
while [ ! -e "$READY" ]; do sleep 0.05; done
exec "$BIN" agent --config "$CFG"`
	a.cmd = exec.Command("unshare", "-m", "-n", "--propagation", "private", "sh", "-c", script)
	a.cmd.Env = append(os.Environ(), "FIX="+e.nodeFix, "WATCH="+watch, "NSREADY="+nsReady, "READY="+ready,
		"BIN="+e.bin, "CFG="+cfgFile)
	a.logFile = filepath.Join(a.dir, "agent.log")
	lf, err := os.Create(a.logFile)
	if err != nil {
		t.Fatal(err)
	}
	a.cmd.Stdout, a.cmd.Stderr = lf, lf
	a.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := a.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lf.Close()
	go func() { _ = a.cmd.Wait(); close(a.done) }()
	t.Cleanup(a.stop)

	deadline := time.Now().Add(20 * time.Second)
	for {
		if _, err := os.Stat(nsReady); err == nil {
			break
		}
		select {
		case <-a.done:
			t.Fatalf("agent namespaces: the script ended: %s", a.tail(20))
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("agent namespaces not ready in 20 s: %s", a.tail(20))
		}
		time.Sleep(50 * time.Millisecond)
	}
	if a.netns, err = os.Open(fmt.Sprintf("/proc/%d/ns/net", a.cmd.Process.Pid)); err != nil {
		t.Fatal(err)
	}
	if same, err := sameNetns(a.netns); err != nil || same {
		t.Fatalf("the agent's network namespace is the test's (%v)", err)
	}
	server := strings.TrimPrefix(e.serverURL, "http://")
	ln := a.listen(fmt.Sprintf("127.0.0.1:%d", fwdPort))
	go forward(ln, server)
	if err := os.WriteFile(ready, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	return a
}

// sameNetns reports whether f is the test's own network namespace.
func sameNetns(f *os.File) (bool, error) {
	var a, b unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &a); err != nil {
		return false, err
	}
	if err := unix.Stat("/proc/thread-self/ns/net", &b); err != nil {
		return false, err
	}
	return a.Dev == b.Dev && a.Ino == b.Ino, nil
}

// listen opens a TCP listener in the agent's network namespace (on an OS
// thread switched into it and back; the socket stays in the namespace).
func (a *nodeAgent) listen(addr string) net.Listener {
	a.t.Helper()
	var ln net.Listener
	err := testnet.DoFile(a.netns, func() (err error) { ln, err = net.Listen("tcp4", addr); return err })
	if err != nil {
		a.t.Fatalf("listen on %s in the agent's network namespace: %v", addr, err)
	}
	a.closers = append(a.closers, ln)
	return ln
}

// forward copies each connection of ln to addr (dialled from the test's
// network namespace).
func forward(ln net.Listener, addr string) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			s, err := net.DialTimeout("tcp", addr, 5*time.Second)
			if err != nil {
				return
			}
			defer s.Close()
			go func() { _, _ = io.Copy(s, c); _ = s.(*net.TCPConn).CloseWrite() }()
			_, _ = io.Copy(c, s)
		}()
	}
}

// serve accepts and closes connections (a service listening).
func serve(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		c.Close()
	}
}

// grep returns the agent's log lines that contain one of the words.
func (a *nodeAgent) grep(words ...string) string {
	b, _ := os.ReadFile(a.logFile)
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		for _, w := range words {
			if strings.Contains(l, w) {
				out = append(out, l)
				break
			}
		}
	}
	return strings.Join(out, "\n")
}

func (a *nodeAgent) tail(n int) string {
	b, _ := os.ReadFile(a.logFile)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// stop ends the agent (SIGTERM, SIGKILL after 20 s) and closes what the
// test opened in its network namespace, which then goes away.
func (a *nodeAgent) stop() {
	select {
	case <-a.done:
	default:
		_ = a.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-a.done:
		case <-time.After(20 * time.Second):
			_ = a.cmd.Process.Kill()
			<-a.done
			a.t.Errorf("the agent did not stop within 20 s of SIGTERM")
		}
	}
	for _, c := range a.closers {
		_ = c.Close()
	}
	if a.netns != nil {
		_ = a.netns.Close()
	}
	if a.t.Failed() {
		a.t.Logf("agent log (tail):\n%s", a.tail(80))
	}
}

// hostGroup gives the agent's cluster a host group: anti-malware (on
// access, log mode, no scheduled scan) and integrity monitoring (a rule
// over the agent's tmpfs) on, the other host modules off.
func (e *env) hostGroup(ctx context.Context, integrity bool) {
	e.t.Helper()
	off, on := false, integrity
	agentDir := filepath.Join(e.dir, "agent")
	watch := filepath.Join(agentDir, "watched")
	set := api.HostSettings{PollInterval: "1s",
		Antimalware: api.AntimalwareSettings{Mode: api.ModeLog, QuarantineDir: filepath.Join(agentDir, "quarantine"),
			OnAccess: api.AntimalwareOnAccess{Paths: []string{watch}}, Scheduled: api.AntimalwareSchedule{Off: true}},
		Integrity: api.IntegritySettings{Enabled: &on, DefaultRules: &off, Root: watch, Watch: "auto",
			Rules: []api.IntegrityRule{{Name: "app", Severity: "high", Paths: []string{"/app"}}}},
		LogInspect: api.LogInspectSettings{Enabled: &off},
		AppControl: api.AppControlSettings{Enabled: &off},
		Firewall:   api.FirewallSettings{Enabled: &off},
	}
	req := api.HostGroupRequest{Name: "compliance-e2e", Cluster: "e2e", Settings: set}
	gs, err := e.api.ListHostGroups(ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	for _, g := range gs.Groups {
		if g.Name == req.Name {
			if _, err := e.api.UpdateHostGroup(ctx, g.ID, req); err != nil {
				e.t.Fatal(err)
			}
			return
		}
	}
	if _, err := e.api.CreateHostGroup(ctx, req); err != nil {
		e.t.Fatal(err)
	}
}

// waitControl re-assesses until control id has status want (the agent's
// next posture carries the change) and returns that report.
func (e *env) waitControl(ctx context.Context, a *nodeAgent, id string, want compliance.Status, d time.Duration) *compliance.Report {
	e.t.Helper()
	deadline := time.Now().Add(d)
	for {
		r := e.assess(ctx)
		c := statuses(r)[id]
		if c.Status == want {
			return r
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("%s is %s (%s) after %s, want %s; agent log:\n%s", id, c.Status, c.Reason, d, want, a.tail(30))
		}
		select {
		case <-a.done:
			e.t.Fatalf("the agent ended: %s", a.tail(40))
		case <-time.After(time.Second):
		}
	}
}

// waitAgent re-assesses until the agent's posture decides the node's
// controls: its runtime sensor (4.4.4), anti-malware and integrity
// monitoring (4.5.5) running, its listening sockets read (4.5.1) and its
// host inventory matched (4.4.1, 4.5.3).
func (e *env) waitAgent(ctx context.Context, a *nodeAgent, d time.Duration) *compliance.Report {
	e.t.Helper()
	deadline := time.Now().Add(d)
	for {
		r := e.assess(ctx)
		st := statuses(r)
		var waiting []string
		for _, id := range []string{"4.4.4", "4.5.1", "4.5.5"} {
			if st[id].Status != compliance.StatusPass {
				waiting = append(waiting, fmt.Sprintf("%s %s (%s)", id, st[id].Status, st[id].Reason))
			}
		}
		for _, id := range []string{"4.4.1", "4.5.3"} {
			if st[id].Status == compliance.StatusNotAssessed {
				waiting = append(waiting, fmt.Sprintf("%s %s (%s)", id, st[id].Status, st[id].Reason))
			}
		}
		if len(waiting) == 0 {
			return r
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("the agent's posture did not decide the node's controls in %s: %s", d, strings.Join(waiting, "; "))
		}
		select {
		case <-a.done:
			e.t.Fatalf("the agent ended: %s", a.tail(40))
		case <-time.After(2 * time.Second):
		}
	}
}
