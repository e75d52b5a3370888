//go:build linux

package sensor

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"mamori/internal/runtime/event"
)

// Privileged end-to-end tests: real programs, real kernel hooks. They run
// with MAMORI_TEST_RUNTIME=1 as root (scripts/test.sh, serial privileged
// step) and skip where the kernel refuses BPF.

func privileged(t *testing.T) {
	t.Helper()
	if os.Getenv("MAMORI_TEST_RUNTIME") != "1" {
		t.Skip("set MAMORI_TEST_RUNTIME=1 (root) to run the sensor against the kernel")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
}

// collector keeps every event Run delivers.
type collector struct {
	mu     sync.Mutex
	events []*event.Event
	notify chan struct{}
}

func startSensor(t *testing.T, opts ...Option) (*Sensor, *collector) {
	t.Helper()
	s, err := New(opts...)
	if errors.Is(err, ErrNotSupported) {
		t.Skipf("sensor not supported here: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	c := &collector{notify: make(chan struct{}, 1)}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- s.Run(ctx, func(e *event.Event) {
			c.mu.Lock()
			c.events = append(c.events, e)
			c.mu.Unlock()
			select {
			case c.notify <- struct{}{}:
			default:
			}
		})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s, c
}

// wait returns the first event matching pred, failing after timeout.
func (c *collector) wait(t *testing.T, what string, pred func(*event.Event) bool) *event.Event {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		if e := c.find(pred); e != nil {
			return e
		}
		select {
		case <-c.notify:
		case <-time.After(50 * time.Millisecond):
		case <-deadline:
			t.Fatalf("no %s event within 5s (%d events seen)", what, c.count(func(*event.Event) bool { return true }))
			return nil
		}
	}
}

func (c *collector) find(pred func(*event.Event) bool) *event.Event {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, e := range c.events {
		if pred(e) {
			return e
		}
	}
	return nil
}

func (c *collector) count(pred func(*event.Event) bool) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, e := range c.events {
		if pred(e) {
			n++
		}
	}
	return n
}

func of(pid int, k event.Kind) func(*event.Event) bool {
	return func(e *event.Event) bool { return e.Process.PID == pid && e.Kind == k }
}

// dirs makes a watched and an unwatched directory.
func dirs(t *testing.T) (watched, other string) {
	base := t.TempDir()
	watched, other = filepath.Join(base, "watched"), filepath.Join(base, "other")
	for _, d := range []string{watched, other} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return watched, other
}

// TestSensorEBPF checks every kind under both system call hooks: the raw
// sys_exit tracepoint and the per-call syscalls:sys_exit_* tracepoints.
func TestSensorEBPF(t *testing.T) {
	privileged(t)
	for _, h := range []SyscallHooks{HooksRaw, HooksTracepoint} {
		t.Run(string(h), func(t *testing.T) { testSensorEBPF(t, h) })
	}
}

// TestSensorAutoHooks: auto takes the per-call tracepoints exactly where the
// kernel runs no 32-bit code.
func TestSensorAutoHooks(t *testing.T) {
	privileged(t)
	s, _ := startSensor(t, WithMode(ModeEBPF), WithKinds(event.KindExec, event.KindOpen))
	want := HooksTracepoint
	if ia32Enabled(kernelConfig(), readCmdline()) {
		want = HooksRaw
	}
	st, err := s.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if s.SyscallHooks() != want || st.SyscallHooks != want {
		t.Errorf("auto chose %q (stats %q), want %q", s.SyscallHooks(), st.SyscallHooks, want)
	}
	t.Logf("auto: %s", want)
}

func testSensorEBPF(t *testing.T, hooks SyscallHooks) {
	watched, other := dirs(t)
	s, c := startSensor(t, WithMode(ModeEBPF), WithSyscallHooks(hooks), WithPathPrefixes([]string{watched + "/"}, nil))
	if s.Mode() != ModeEBPF || s.SyscallHooks() != hooks {
		t.Fatalf("mode %s, hooks %q", s.Mode(), s.SyscallHooks())
	}
	if want := map[SyscallHooks]string{HooksRaw: "tp_btf", HooksTracepoint: "tp_btf+tracepoint"}[hooks]; s.Hooks() != want {
		t.Errorf("Hooks() = %q, want %q", s.Hooks(), want)
	}
	// Every kind is reported, except, with per-call tracepoints, a kind
	// none of whose calls has one on this kernel (and only then).
	for _, k := range kindCodes[1:] {
		if slices.Contains(s.Kinds(), k) {
			continue
		}
		if hooks == HooksRaw || !noTracepoints(t, k) {
			t.Errorf("hooks %s: kind %s not reported", hooks, k)
		}
		t.Logf("hooks %s: kind %s not observable here: no tracepoint for %v", hooks, k, kindSyscalls(k))
	}
	// the every-kind check below holds only when every subtest ran (-run)
	total, ran := 0, 0
	run := func(name string, f func(t *testing.T)) {
		total++
		t.Run(name, func(t *testing.T) { ran++; f(t) })
	}
	observable := func(t *testing.T, k event.Kind) {
		if !slices.Contains(s.Kinds(), k) {
			t.Skipf("kind %s not observable with %s hooks on this kernel", k, hooks)
		}
	}

	run("exec with argv and cwd, exit status", func(t *testing.T) {
		cmd := exec.Command("/bin/sh", "-c", "(exit 0); exit 3", "arg\nwith newline")
		cmd.Dir = other
		err := cmd.Run()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 3 {
			t.Fatalf("sh: %v", err)
		}
		pid := cmd.Process.Pid
		e := c.wait(t, "exec", of(pid, event.KindExec))
		p := e.Process
		if !slices.Equal(p.Args, []string{"/bin/sh", "-c", "(exit 0); exit 3", "arg\nwith newline"}) || p.Cwd != other || p.PPID != os.Getpid() {
			t.Errorf("exec: args %q cwd %q ppid %d", p.Args, p.Cwd, p.PPID)
		}
		self, _ := os.Executable()
		if want, _ := filepath.EvalSymlinks("/bin/sh"); p.Exe != want || p.ParentExe != self || e.File.Path != "/bin/sh" {
			t.Errorf("exe %q (want %q) parent %q (want %q) file %q", p.Exe, want, p.ParentExe, self, e.File.Path)
		}
		if p.StartTime == 0 || p.UID != 0 || e.CgroupID == 0 || e.Namespaces.Mnt == 0 || e.Namespaces.PID == 0 || e.Namespaces.Net == 0 {
			t.Errorf("identity: %+v cg %d ns %+v", p, e.CgroupID, e.Namespaces)
		}
		if strings.Contains(e.String(), "\n") {
			t.Errorf("rendering has a newline: %s", e.String())
		}
		x := c.wait(t, "exit", of(pid, event.KindExit))
		if x.Ret != 3 || x.Process.StartTime != p.StartTime {
			t.Errorf("exit: ret %d start %d/%d", x.Ret, x.Process.StartTime, p.StartTime)
		}
		// the sensor's own fork of sh is not reported (its own process);
		// sh forking its subshell is
		f := c.wait(t, "fork", func(e *event.Event) bool { return e.Kind == event.KindFork && e.Process.PPID == pid })
		if f.Process.StartTime <= p.StartTime || f.Process.ParentComm != "sh" {
			t.Errorf("fork: %+v", f.Process)
		}
	})

	run("64 KiB argv is cut and flagged", func(t *testing.T) {
		cmd := exec.Command("/bin/true", strings.Repeat("A", 64<<10), "tail\x1b")
		if err := cmd.Run(); err != nil {
			t.Fatal(err)
		}
		e := c.wait(t, "exec", of(cmd.Process.Pid, event.KindExec))
		p := e.Process
		if !p.ArgsTruncated || len(p.Args) != 2 || p.Args[0] != "/bin/true" || len(p.Args[1]) >= event.MaxArgsBytes {
			t.Errorf("argv: truncated %v, %d args, second %d bytes", p.ArgsTruncated, len(p.Args), len(p.Args[1]))
		}
		if r := e.String(); len(r) > 4096 {
			t.Errorf("rendering is %d bytes", len(r))
		}
	})

	run("open of a watched prefix, not of an unwatched one", func(t *testing.T) {
		w, o := filepath.Join(watched, "f"), filepath.Join(other, "f")
		for _, p := range []string{w, o} {
			if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		pid := runHelper(t, "open-two", o+string(filepath.ListSeparator)+w)
		e := c.wait(t, "open", func(e *event.Event) bool { return e.Process.PID == pid && e.Kind == event.KindOpen && e.File.Path == w })
		if !e.File.Resolved || e.Ret < 0 || e.File.Inode == 0 || e.Syscall != "openat" {
			t.Errorf("open: %+v", e)
		}
		var st unix.Stat_t
		if err := unix.Stat(w, &st); err != nil || st.Ino != e.File.Inode || st.Dev != e.File.Dev {
			t.Errorf("inode/dev %d/%#x, stat %d/%#x", e.File.Inode, e.File.Dev, st.Ino, st.Dev)
		}
		if n := c.count(func(e *event.Event) bool { return e.Process.PID == pid && e.File.Path == o && e.Kind != event.KindLoad }); n != 0 {
			t.Errorf("%d events for the unwatched file", n)
		}
	})

	run("write, chmod, rename, unlink (relative)", func(t *testing.T) {
		pid := runHelper(t, "file-ops", watched)
		a, b := filepath.Join(watched, "a"), filepath.Join(watched, "b")
		w := c.wait(t, "write", of(pid, event.KindWrite))
		if w.File.Path != a || w.File.Flags&unix.O_CREAT == 0 || w.File.Mode != 0o644 {
			t.Errorf("write: %+v", w.File)
		}
		ch := c.wait(t, "chmod", of(pid, event.KindChmod))
		if ch.File.Path != a || ch.File.Mode != 0o4755 {
			t.Errorf("chmod: %+v", ch.File)
		}
		r := c.wait(t, "rename", of(pid, event.KindRename))
		if r.File.Path != a || r.File.NewPath != b {
			t.Errorf("rename: %+v", r.File)
		}
		u := c.wait(t, "unlink", of(pid, event.KindUnlink))
		if u.File.Path != b || u.Ret != 0 {
			t.Errorf("unlink of a relative path: %+v ret %d", u.File, u.Ret)
		}
	})

	run("a path through .. is cleaned and filtered in user space", func(t *testing.T) {
		pid := runHelper(t, "dotdot", other+string(filepath.ListSeparator)+watched)
		u := c.wait(t, "unlink", of(pid, event.KindUnlink))
		if u.File.Path != filepath.Join(watched, "dd") {
			t.Errorf("unlink: %q", u.File.Path)
		}
	})

	run("connect, bind, listen, accept on loopback", func(t *testing.T) {
		pid := runHelper(t, "net", "")
		l := c.wait(t, "listen", of(pid, event.KindListen))
		// Go listens with multipath TCP by default (IPPROTO_MPTCP)
		if l.Net.SrcAddr != "127.0.0.1" || l.Net.SrcPort == 0 || (l.Net.Protocol != "tcp" && l.Net.Protocol != "mptcp") {
			t.Fatalf("listen: %+v", l.Net)
		}
		port := l.Net.SrcPort
		// (Go's net package first binds ::1 to probe for IPv6)
		b := c.wait(t, "bind", func(e *event.Event) bool {
			return e.Process.PID == pid && e.Kind == event.KindBind && e.Net.Family == event.AFInet
		})
		if b.Net.SrcAddr != "127.0.0.1" || b.Net.Family != event.AFInet {
			t.Errorf("bind: %+v", b.Net)
		}
		cn := c.wait(t, "connect", of(pid, event.KindConnect))
		if cn.Net.DstAddr != "127.0.0.1" || cn.Net.DstPort != port || cn.Net.SrcPort == 0 || cn.Net.Protocol != "tcp" {
			t.Errorf("connect: %+v (listener port %d)", cn.Net, port)
		}
		ac := c.wait(t, "accept", func(e *event.Event) bool { return e.Process.PID == pid && e.Kind == event.KindAccept && e.Ret >= 0 })
		if ac.Net.SrcPort != port || ac.Net.DstPort != cn.Net.SrcPort || ac.Net.DstAddr != "127.0.0.1" {
			t.Errorf("accept: %+v (connect %+v)", ac.Net, cn.Net)
		}
	})

	run("ptrace attach", func(t *testing.T) {
		pid := runHelper(t, "ptrace", "")
		e := c.wait(t, "ptrace", func(e *event.Event) bool {
			return e.Process.PID == pid && e.Kind == event.KindPtrace && e.Ptrace.Request == event.PtraceAttach
		})
		if e.Ptrace.TargetPID == 0 || e.Ret != 0 || e.Ptrace.RequestName != "PTRACE_ATTACH" {
			t.Errorf("ptrace: %+v ret %d", e.Ptrace, e.Ret)
		}
	})

	run("mount", func(t *testing.T) {
		target := filepath.Join(other, "missing")
		pid := runHelper(t, "mount", target)
		e := c.wait(t, "mount", of(pid, event.KindMount))
		if e.Mount.Target != target || e.Mount.FSType != "tmpfs" || e.Mount.Source != "mamori-test" || e.Mount.Flags != unix.MS_NOSUID || e.Ret != -int64(unix.ENOENT) {
			t.Errorf("mount: %+v ret %d", e.Mount, e.Ret)
		}
	})

	run("setuid, setgid, capset", func(t *testing.T) {
		pid := runHelper(t, "setid", "")
		u := c.wait(t, "setuid", of(pid, event.KindSetuid))
		if u.Syscall != "setresuid" || u.SetID.UID != -1 || u.SetID.EUID != -1 || u.Ret != 0 {
			t.Errorf("setuid: %s %+v", u.Syscall, u.SetID)
		}
		g := c.wait(t, "setgid", of(pid, event.KindSetgid))
		if g.Syscall != "setresgid" || g.SetID.GID != -1 {
			t.Errorf("setgid: %+v", g.SetID)
		}
		cp := c.wait(t, "capset", of(pid, event.KindCapset))
		if cp.SetID.CapEffective != cp.Process.CapEffective || cp.SetID.CapEffective == 0 {
			t.Errorf("capset asked %#x, process has %#x", cp.SetID.CapEffective, cp.Process.CapEffective)
		}
	})

	run("the refused module loads", func(t *testing.T) {
		observable(t, event.KindModuleLoad)
		ko := filepath.Join(other, "rootkit.ko")
		if err := os.WriteFile(ko, []byte("\x7fELF not a module"), 0o644); err != nil {
			t.Fatal(err)
		}
		pid := runHelper(t, "modules", ko)
		f := c.wait(t, "finit_module", func(e *event.Event) bool { return e.Process.PID == pid && e.Syscall == "finit_module" })
		if f.Kind != event.KindModuleLoad || f.Ret >= 0 || f.Module.Name != ko || f.Module.Args != "mamori=1" {
			t.Errorf("finit_module: ret %d %+v", f.Ret, f.Module)
		}
		i := c.wait(t, "init_module", func(e *event.Event) bool { return e.Process.PID == pid && e.Syscall == "init_module" })
		if i.Ret >= 0 || i.Module.Args != "mamori=2" {
			t.Errorf("init_module: ret %d %+v", i.Ret, i.Module)
		}
		t.Logf("finit_module returned %d, init_module %d (this kernel has no loadable modules)", f.Ret, i.Ret)
	})

	run("unshare and setns", func(t *testing.T) {
		pid := runHelper(t, "namespaces", "")
		u := c.wait(t, "unshare", of(pid, event.KindUnshare))
		if !slices.Equal(u.NS.Types, []string{"uts"}) || u.Ret != 0 {
			t.Errorf("unshare: %+v", u.NS)
		}
		s := c.wait(t, "setns", of(pid, event.KindSetns))
		if !slices.Equal(s.NS.Types, []string{"uts"}) || !strings.Contains(s.NS.Target, "uts:[") || s.Ret != 0 {
			t.Errorf("setns: %+v ret %d", s.NS, s.Ret)
		}
	})

	run("raw and packet sockets, not stream sockets; bpf", func(t *testing.T) {
		pid := runHelper(t, "sockets", "")
		c.wait(t, "packet socket", func(e *event.Event) bool {
			return e.Process.PID == pid && e.Kind == event.KindSocket && e.Socket.Domain == unix.AF_PACKET
		})
		raw := c.wait(t, "raw socket", func(e *event.Event) bool {
			return e.Process.PID == pid && e.Kind == event.KindSocket && e.Socket.Domain == unix.AF_INET
		})
		if raw.Socket.Type != unix.SOCK_RAW || raw.Socket.Protocol != unix.IPPROTO_ICMP || raw.Ret < 0 {
			t.Errorf("raw socket: %+v", raw.Socket)
		}
		b := c.wait(t, "bpf", func(e *event.Event) bool { return e.Process.PID == pid && e.Kind == event.KindBPF && e.Ret < 0 })
		if b.BPF.CmdName != "BPF_MAP_CREATE" || b.Ret >= 0 {
			t.Errorf("bpf: %+v ret %d", b.BPF, b.Ret)
		}
		if n := c.count(func(e *event.Event) bool {
			return e.Process.PID == pid && e.Kind == event.KindSocket && e.Socket.Type == unix.SOCK_STREAM
		}); n != 0 {
			t.Errorf("%d stream socket events", n)
		}
	})

	run("memfd_create and execution from memory", func(t *testing.T) {
		pid := runHelper(t, "memfd-exec", "mamori-payload")
		m := c.wait(t, "memfd_create", of(pid, event.KindMemfdCreate))
		if m.Memfd.Name != "mamori-payload" || m.Ret < 0 {
			t.Errorf("memfd_create: %+v", m.Memfd)
		}
		x := c.wait(t, "exec", func(e *event.Event) bool {
			return e.Process.PID == pid && e.Kind == event.KindExec && slices.Equal(e.Process.Args, []string{"memfd-payload"})
		})
		if !x.Process.ExeFromMemfd || !strings.HasPrefix(x.Process.Exe, "/memfd:mamori-payload") {
			t.Errorf("memfd exec: exe %q memfd %v", x.Process.Exe, x.Process.ExeFromMemfd)
		}
	})

	run("loaded files once per cgroup", func(t *testing.T) {
		lib := filepath.Join(other, "libonce.so")
		if err := os.WriteFile(lib, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
		marker := filepath.Join(other, "marker")
		if err := os.WriteFile(marker, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
		runHelper(t, "open-two", lib+string(filepath.ListSeparator)+lib)
		pid := runHelper(t, "open-two", lib+string(filepath.ListSeparator)+marker)
		c.wait(t, "load of the marker", func(e *event.Event) bool {
			return e.Process.PID == pid && e.Kind == event.KindLoad && e.File.Path == marker
		})
		if n := c.count(func(e *event.Event) bool { return e.Kind == event.KindLoad && e.File.Path == lib }); n != 1 {
			t.Errorf("%d load events for a file opened three times in one cgroup", n)
		}
	})

	run("hostile file name", func(t *testing.T) {
		name := filepath.Join(watched, "evil\nname\x1b[31m\xff")
		pid := runHelper(t, "write", name)
		e := c.wait(t, "write", of(pid, event.KindWrite))
		if e.File.Path != name {
			t.Errorf("path %q", e.File.Path)
		}
		if s := e.String(); strings.ContainsAny(s, "\n\x1b") || !strings.Contains(s, `evil\nname\x1b[31m\xff`) {
			t.Errorf("rendering: %s", s)
		}
	})

	st, err := s.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode != ModeEBPF || st.SyscallHooks != hooks || st.Received == 0 || st.DecodeErrors != 0 {
		t.Errorf("stats: %+v", st)
	}
	for _, k := range s.Kinds() {
		if ran == total && st.ReceivedByKind[k] == 0 {
			t.Errorf("hooks %s: no %s event received", hooks, k)
		}
	}
	t.Logf("stats: received %d, lost %d, by kind %v", st.Received, st.Lost, st.ReceivedByKind)
}

// noTracepoints says whether none of the system calls of kind k has a
// syscalls:sys_exit_* tracepoint on this kernel.
func noTracepoints(t *testing.T, k event.Kind) bool {
	t.Helper()
	dir, _, err := ensureTracefs()
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range kindSyscalls(k) {
		if _, err := os.Stat(dir + "/events/syscalls/sys_exit_" + n); err == nil {
			return false
		}
	}
	return true
}

// cgroupDir creates a cgroup v2 child for the test and removes it after.
func cgroupDir(t *testing.T) (dir string, id uint64) {
	t.Helper()
	root := findCgroup2("/proc")
	if root == "" {
		t.Skip("no cgroup v2 hierarchy")
	}
	dir = filepath.Join(root, fmt.Sprintf("mamori-sensor-test-%d", os.Getpid()))
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Skipf("cannot create a cgroup: %v", err)
	}
	t.Cleanup(func() {
		// processes have exited; a cgroup with none left can be removed
		for i := 0; i < 50; i++ {
			if err := os.Remove(dir); err == nil || os.IsNotExist(err) {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
		t.Errorf("cgroup %s left behind", dir)
	})
	return dir, inodeOf(dir)
}

// runInCgroup starts a helper that waits, moves it into dir, then lets it
// exec /bin/true with arg.
func runInCgroup(t *testing.T, dir, arg string) int {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "MAMORI_SENSOR_HELPER=wait-then-exec", "MAMORI_SENSOR_ARG="+arg)
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	if dir != "" {
		if err := os.WriteFile(filepath.Join(dir, "cgroup.procs"), []byte(strconv.Itoa(cmd.Process.Pid)), 0o644); err != nil {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("move into cgroup: %v", err)
		}
	}
	in.Close()
	if err := cmd.Wait(); err != nil {
		t.Fatal(err)
	}
	return cmd.Process.Pid
}

func TestSensorCgroupFilter(t *testing.T) {
	privileged(t)
	dir, id := cgroupDir(t)
	isExec := func(arg string) func(*event.Event) bool {
		return func(e *event.Event) bool {
			return e.Kind == event.KindExec && len(e.Process.Args) == 2 && e.Process.Args[1] == arg
		}
	}

	t.Run("exclude", func(t *testing.T) {
		_, c := startSensor(t, WithMode(ModeEBPF), WithKinds(event.KindExec), WithCgroups(nil, []uint64{id}))
		runInCgroup(t, dir, "excluded")
		runInCgroup(t, "", "outside")
		c.wait(t, "exec outside the excluded cgroup", isExec("outside"))
		if c.find(isExec("excluded")) != nil {
			t.Error("exec in the excluded cgroup reported")
		}
	})
	t.Run("include", func(t *testing.T) {
		_, c := startSensor(t, WithMode(ModeEBPF), WithKinds(event.KindExec), WithCgroups([]uint64{id}, nil))
		runInCgroup(t, "", "outside")
		runInCgroup(t, dir, "included")
		e := c.wait(t, "exec in the included cgroup", isExec("included"))
		if e.CgroupID != id {
			t.Errorf("cgroup id %d, want %d", e.CgroupID, id)
		}
		if c.find(isExec("outside")) != nil {
			t.Error("exec outside the included cgroup reported")
		}
	})
}

func TestSensorLostCounter(t *testing.T) {
	privileged(t)
	watched, _ := dirs(t)
	f := filepath.Join(watched, "storm")
	if err := os.WriteFile(f, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := New(WithMode(ModeEBPF), WithKinds(event.KindOpen), WithPathPrefixes([]string{watched + "/"}, nil), WithRingBufferSize(4096))
	if errors.Is(err, ErrNotSupported) {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	// Nobody reads while the storm runs: a one-page ring buffer must overflow.
	runHelper(t, "open-many", f, "MAMORI_SENSOR_N=5000")
	// Then drain: stop once nothing arrived for 300 ms.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var got atomic.Uint64
	go func() {
		last := uint64(0)
		for {
			time.Sleep(300 * time.Millisecond)
			if n := got.Load(); n == last {
				cancel()
				return
			} else {
				last = n
			}
		}
	}()
	if err := s.Run(ctx, func(e *event.Event) { got.Add(1) }); err != nil {
		t.Fatal(err)
	}
	st, err := s.Stats()
	if err != nil {
		t.Fatal(err)
	}
	lost, emitted := st.LostByKind[event.KindOpen], st.EmittedByKind[event.KindOpen]
	if lost == 0 {
		t.Fatalf("no lost open events counted: %+v", st)
	}
	// Other processes' failed opens through ".." reach user space to be
	// filtered there (Filtered): every emitted record is accounted for.
	if got := got.Load(); got != st.Received || emitted+lost < 5000 || emitted != got+st.Filtered+st.DecodeErrors {
		t.Errorf("received %d (stats %+v), emitted %d, lost %d: the 5000 opens must all be counted", got, st, emitted, lost)
	}
	t.Logf("4 KiB ring buffer, 5000 opens, nobody reading: %d delivered, %d counted lost", got.Load(), lost)
}

func TestSensorFallback(t *testing.T) {
	privileged(t)
	watched, _ := dirs(t)
	s, c := startSensor(t, WithMode(ModeFallback), WithPathPrefixes([]string{watched + "/"}, nil),
		WithKinds(event.KindExec, event.KindExit, event.KindOpen, event.KindWrite))
	if s.Mode() != ModeFallback {
		t.Fatalf("mode %s", s.Mode())
	}
	target := filepath.Join(watched, "out")
	// sleep: CN_PROC names only the PID, the fallback reads the rest from
	// /proc, which a process that exits at once does not leave time for
	cmd := exec.Command("/bin/sh", "-c", "echo x > "+target+"; cat "+target+" > /dev/null; sleep 0.3", "fallback-test")
	cmd.Dir = watched
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	x := c.wait(t, "exec", of(pid, event.KindExec))
	if want, _ := filepath.EvalSymlinks("/bin/sh"); x.Process.Exe != want || x.CgroupID == 0 || x.Namespaces.Mnt == 0 {
		t.Errorf("exec: %+v cg %d ns %+v", x.Process, x.CgroupID, x.Namespaces)
	}
	w := c.wait(t, "write", of(pid, event.KindWrite))
	if w.File.Path != target {
		t.Errorf("write: %+v", w.File)
	}
	c.wait(t, "open", func(e *event.Event) bool { return e.Kind == event.KindOpen && e.File.Path == target })
	c.wait(t, "exit", of(pid, event.KindExit))
}

func TestSensorFallbackLoad(t *testing.T) {
	privileged(t)
	_, other := dirs(t)
	lib := filepath.Join(other, "libfallback.so")
	if err := os.WriteFile(lib, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	// load needs whole-file-system marks: every open, de-duplicated per cgroup
	_, c := startSensor(t, WithMode(ModeFallback), WithKinds(event.KindLoad))
	runHelper(t, "open-two", lib+string(filepath.ListSeparator)+lib, "MAMORI_SENSOR_LINGER=300ms")
	runHelper(t, "open-two", lib+string(filepath.ListSeparator)+lib, "MAMORI_SENSOR_LINGER=300ms")
	e := c.wait(t, "load", func(e *event.Event) bool { return e.Kind == event.KindLoad && e.File.Path == lib })
	if e.File.Inode == 0 || e.CgroupID == 0 {
		t.Errorf("load: %+v cgroup %d", e.File, e.CgroupID)
	}
	time.Sleep(200 * time.Millisecond)
	if n := c.count(func(e *event.Event) bool { return e.Kind == event.KindLoad && e.File.Path == lib }); n != 1 {
		t.Errorf("%d load events for one file opened four times in one cgroup", n)
	}
}

// TestSensorStorm measures what the sensor sustains: an open storm on a
// watched file and an exec storm at once, the reader consuming. It checks
// the accounting (every emitted record received or counted lost) and logs
// the rates; bench/ has the comparison with peers.
func TestSensorStorm(t *testing.T) {
	privileged(t)
	for _, h := range []SyscallHooks{HooksRaw, HooksTracepoint} {
		t.Run(string(h), func(t *testing.T) { testSensorStorm(t, h) })
	}
}

func testSensorStorm(t *testing.T, hooks SyscallHooks) {
	watched, _ := dirs(t)
	f := filepath.Join(watched, "storm")
	if err := os.WriteFile(f, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	s, c := startSensor(t, WithMode(ModeEBPF), WithSyscallHooks(hooks), WithKinds(event.KindOpen, event.KindExec, event.KindExit, event.KindFork),
		WithPathPrefixes([]string{watched + "/"}, nil))
	var ru0, ru1 unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_SELF, &ru0); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); runHelper(t, "open-many", f, "MAMORI_SENSOR_N=200000") }()
	go func() {
		defer wg.Done()
		if out, err := exec.Command("/bin/sh", "-c", "i=0; while [ $i -lt 1000 ]; do /bin/true; i=$((i+1)); done").CombinedOutput(); err != nil {
			t.Errorf("exec storm: %v %s", err, out)
		}
	}()
	wg.Wait()
	// let the reader drain
	for prev := -1; ; {
		n := c.count(func(*event.Event) bool { return true })
		if n == prev {
			break
		}
		prev = n
		time.Sleep(200 * time.Millisecond)
	}
	elapsed := time.Since(start)
	if err := unix.Getrusage(unix.RUSAGE_SELF, &ru1); err != nil {
		t.Fatal(err)
	}
	cpu := time.Duration(ru1.Utime.Nano()+ru1.Stime.Nano()-ru0.Utime.Nano()-ru0.Stime.Nano()) * time.Nanosecond
	st, err := s.Stats()
	if err != nil {
		t.Fatal(err)
	}
	// Every emitted open is received or filtered in user space (other
	// processes' failed opens through ".."); exec, fork and exit of other
	// processes keep coming while the counters are read.
	if eo, ro := st.EmittedByKind[event.KindOpen], st.ReceivedByKind[event.KindOpen]; ro > eo || eo > ro+st.Filtered || st.DecodeErrors != 0 {
		t.Errorf("open: emitted %d, received %d, filtered %d, decode errors %d", eo, ro, st.Filtered, st.DecodeErrors)
	}
	opens := st.EmittedByKind[event.KindOpen] + st.LostByKind[event.KindOpen]
	if opens < 200000 {
		t.Errorf("%d open events emitted or lost for 200000 opens", opens)
	}
	t.Logf("storm, %s hooks: %d events received in %v (%.0f events/s), lost %d %v; sensor process CPU %v (%.0f%% of one core); execs %d",
		hooks, st.Received, elapsed.Round(time.Millisecond), float64(st.Received)/elapsed.Seconds(), st.Lost, st.LostByKind,
		cpu.Round(time.Millisecond), 100*cpu.Seconds()/elapsed.Seconds(), st.ReceivedByKind[event.KindExec])
}
