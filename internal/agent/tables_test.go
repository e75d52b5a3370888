package agent

import (
	"os"
	"slices"
	"strings"
	"testing"

	"mamori/internal/runtime/container"
	"mamori/internal/runtime/event"
	"mamori/internal/runtime/rules"
	"mamori/internal/runtime/sensor"
)

func TestLRU(t *testing.T) {
	l := newLRU[int, string](3)
	l.put(1, "a")
	l.put(2, "b")
	l.put(3, "c")
	if _, ok := l.get(1); !ok { // 1 is now the most recent
		t.Fatal("1 missing")
	}
	l.put(4, "d") // evicts 2, the least recently used
	if _, ok := l.peek(2); ok {
		t.Fatal("2 not evicted")
	}
	for _, k := range []int{1, 3, 4} {
		if _, ok := l.peek(k); !ok {
			t.Fatalf("%d evicted", k)
		}
	}
	if l.len() != 3 || l.evicted != 1 {
		t.Fatalf("len %d evicted %d", l.len(), l.evicted)
	}
	l.remove(3)
	l.remove(99)
	l.put(5, "e")
	l.put(6, "f")
	if l.len() != 3 || l.evicted != 2 {
		t.Fatalf("len %d evicted %d", l.len(), l.evicted)
	}
	for i := range 10000 { // a storm stays bounded
		l.put(i, "x")
	}
	if l.len() != 3 {
		t.Fatalf("len %d after a storm", l.len())
	}
}

func ev(kind event.Kind, pid, ppid int, start uint64, exe string) *event.Event {
	e := &event.Event{Kind: kind}
	e.Process.PID, e.Process.PPID, e.Process.StartTime, e.Process.Exe = pid, ppid, start, exe
	return e
}

func TestProcTableAncestry(t *testing.T) {
	pt := newProcTable(t.TempDir(), 100) // an empty /proc: nothing older than the table
	pt.observe(ev(event.KindExec, 10, 1, 1000, "/usr/sbin/nginx"), false)
	pt.observe(ev(event.KindFork, 11, 10, 1100, ""), false)
	if got := pt.observe(ev(event.KindExec, 11, 10, 1100, "/bin/sh"), false); !slices.Equal(got, []string{"/usr/sbin/nginx"}) {
		t.Fatalf("sh ancestors %q", got)
	}
	pt.observe(ev(event.KindFork, 12, 11, 1200, ""), false)
	got := pt.observe(ev(event.KindExec, 12, 11, 1200, "/usr/bin/curl"), false)
	if !slices.Equal(got, []string{"/bin/sh", "/usr/sbin/nginx"}) {
		t.Fatalf("curl ancestors %q", got)
	}
	// Later events of the process carry the same ancestry.
	open := ev(event.KindOpen, 12, 11, 1200, "/usr/bin/curl")
	if got := pt.observe(open, false); !slices.Equal(got, []string{"/bin/sh", "/usr/sbin/nginx"}) {
		t.Fatalf("open ancestors %q", got)
	}
	// PID reuse: 12 exits, a new process gets PID 12 under another parent.
	pt.observe(ev(event.KindExit, 12, 11, 1200, ""), false)
	pt.observe(ev(event.KindExec, 20, 1, 2000, "/usr/bin/python3"), false)
	pt.observe(ev(event.KindFork, 12, 20, 3000, ""), false)
	got = pt.observe(ev(event.KindExec, 12, 20, 3000, "/bin/ls"), false)
	if !slices.Equal(got, []string{"/usr/bin/python3"}) {
		t.Fatalf("reused PID 12 inherited %q", got)
	}
	// An event of the old process (start 1200) arriving late is not given
	// the new one's ancestry.
	if got := pt.observe(ev(event.KindOpen, 12, 11, 1200, "/usr/bin/curl"), false); got != nil {
		t.Fatalf("stale event got %q", got)
	}
	// A deep chain is cut at MaxAncestors.
	pid := 100
	pt.observe(ev(event.KindExec, pid, 1, 1, "/bin/p100"), false)
	for i := 1; i <= 20; i++ {
		pt.observe(ev(event.KindFork, pid+i, pid+i-1, uint64(i+1), ""), false)
		got = pt.observe(ev(event.KindExec, pid+i, pid+i-1, uint64(i+1), "/bin/p"), false)
	}
	if len(got) != rules.MaxAncestors {
		t.Fatalf("deep chain: %d ancestors", len(got))
	}
}

func TestProcTableFromProc(t *testing.T) {
	pt := newProcTable("/proc", 100)
	// This test process: its parent (go test's) is read from /proc.
	self := os.Getpid()
	ppid := os.Getppid()
	got := pt.observe(ev(event.KindExec, 999999, self, 5, "/bin/child"), false)
	if len(got) == 0 {
		t.Fatal("no ancestry from /proc")
	}
	exe, _ := os.Executable()
	if got[0] != exe {
		t.Fatalf("parent %q, want %q (ppid %d)", got[0], exe, ppid)
	}
}

func TestProcTableBounded(t *testing.T) {
	pt := newProcTable(t.TempDir(), 1000)
	for i := 0; i < 100000; i++ { // a fork bomb whose exits were dropped
		pt.observe(ev(event.KindFork, 1000+i, 1, uint64(i+1), "/bin/sh"), false)
	}
	if pt.procs.len() > 1000 || pt.procs.evicted < 99000 {
		t.Fatalf("table %d entries, %d evicted", pt.procs.len(), pt.procs.evicted)
	}
}

func TestWriterTable(t *testing.T) {
	w := newWriterTable(10)
	wr := ev(event.KindWrite, 5, 1, 1, "/usr/bin/curl")
	wr.File = event.File{Path: "/tmp/x", Dev: 7, Inode: 42}
	w.observe(wr)
	ex := ev(event.KindExec, 6, 1, 2, "/tmp/x")
	ex.File = event.File{Path: "/tmp/x", Dev: 7, Inode: 42}
	if got := w.writer(ex); got != "/usr/bin/curl" {
		t.Fatalf("writer %q", got)
	}
	ex.File.Dev = 8 // the same inode number on another file system
	if got := w.writer(ex); got != "" {
		t.Fatalf("writer on another device %q", got)
	}
	failed := ev(event.KindWrite, 5, 1, 1, "/bin/evil")
	failed.File = event.File{Path: "/tmp/y", Dev: 7, Inode: 43}
	failed.Syscall, failed.Ret = "openat", -13
	w.observe(failed)
	ex.File = event.File{Dev: 7, Inode: 43}
	if got := w.writer(ex); got != "" {
		t.Fatalf("a failed open recorded a writer %q", got)
	}
}

func TestFdKind(t *testing.T) {
	for in, want := range map[string]string{
		"socket:[1234]": "socket", "pipe:[5]": "pipe", "/dev/null": "null", "/dev/pts/3": "tty",
		"/dev/tty1": "tty", "/tmp/out.log": "file", "anon_inode:[eventfd]": "file", "": "",
	} {
		if got := fdKind([]byte(in)); got != want {
			t.Errorf("fdKind(%q) = %q, want %q", in, got, want)
		}
	}
	// A real process: this one, and a PID that is not it any more.
	in, out := stdioKinds("/proc", os.Getpid(), 0)
	if in == "" || out == "" {
		t.Fatalf("own stdio kinds %q %q", in, out)
	}
	if in, out := stdioKinds("/proc", os.Getpid(), 12345); in != "" || out != "" {
		t.Fatalf("wrong start time still gave %q %q", in, out)
	}
}

// TestProcTableContainerBoundary: a container's ancestry stops where the
// runtime moved the process into the container's cgroup.
func TestProcTableContainerBoundary(t *testing.T) {
	pt := newProcTable(t.TempDir(), 100)
	cg := func(e *event.Event, id uint64) *event.Event { e.CgroupID = id; return e }
	pt.observe(cg(ev(event.KindExec, 10, 1, 1, "/usr/local/go/bin/go"), 1), false)
	pt.observe(cg(ev(event.KindExec, 11, 10, 2, "/usr/bin/containerd"), 1), false)
	pt.observe(cg(ev(event.KindFork, 12, 11, 3, ""), 1), false) // runc init, still on the host
	got := pt.observe(cg(ev(event.KindExec, 12, 11, 3, "/bin/sh"), 77), true)
	if len(got) != 0 {
		t.Fatalf("container init inherited the host's ancestry %q", got)
	}
	pt.observe(cg(ev(event.KindFork, 13, 12, 4, ""), 77), true)
	if got := pt.observe(cg(ev(event.KindExec, 13, 12, 4, "/tmp/app"), 77), true); !slices.Equal(got, []string{"/bin/sh"}) {
		t.Fatalf("in-container ancestry %q", got)
	}
	// A host process keeps its whole chain.
	pt.observe(cg(ev(event.KindFork, 14, 11, 5, ""), 1), false)
	if got := pt.observe(cg(ev(event.KindExec, 14, 11, 5, "/bin/ls"), 1), false); !slices.Equal(got, []string{"/usr/bin/containerd", "/usr/local/go/bin/go"}) {
		t.Fatalf("host ancestry %q", got)
	}
}

// TestQueueDropsAndCounts: the sensor's callback never waits; a full
// queue drops and counts.
func TestQueueDropsAndCounts(t *testing.T) {
	cfg := Defaults().Modules.Runtime
	cfg.Queue = 10
	r, err := NewRuntime(cfg, "n", RuleConfig{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 1000 {
		r.enqueue(ev(event.KindExec, i, 1, 1, "/bin/true"))
	}
	s := r.RuntimeStats()
	if s.Received != 1000 || s.Dropped != 990 || s.Queued != 10 {
		t.Fatalf("received %d dropped %d queued %d", s.Received, s.Dropped, s.Queued)
	}
}

type modeOnly sensor.Mode

func (m modeOnly) Mode() sensor.Mode { return sensor.Mode(m) }

type withHooks struct{ modeOnly }

func (withHooks) Hooks() string { return "raw_tp" }

// TestSensorHooks: the heartbeat's hooks come from the sensor's own word
// when it has one, else from its mode; a runtime not started reports none.
func TestSensorHooks(t *testing.T) {
	for _, c := range []struct {
		s    any
		want string
	}{
		{modeOnly(sensor.ModeEBPF), "tp_btf"}, {modeOnly(sensor.ModeFallback), "cn_proc+fanotify"},
		{modeOnly(""), ""}, {withHooks{modeOnly(sensor.ModeEBPF)}, "raw_tp"}, {struct{}{}, ""},
	} {
		if got := sensorHooks(c.s); got != c.want {
			t.Errorf("sensorHooks(%#v) = %q, want %q", c.s, got, c.want)
		}
	}
	if (&Runtime{}).SensorInfo() != nil {
		t.Error("SensorInfo before Start: want nil")
	}
}

// TestNodeContainersOf: the report of the node's containers leaves pod
// sandboxes out and names a plain container's containerd namespace.
func TestNodeContainersOf(t *testing.T) {
	var inv container.Inventory
	plain := container.Info{RuntimeNamespace: "default"}
	plain.ID, plain.Name, plain.Image, plain.ImageDigest, plain.Runtime = "c1", "web", "web:1", "sha256:"+strings.Repeat("a", 64), "containerd"
	pause := container.Info{Sandbox: true}
	pause.ID, pause.Runtime = "s1", "cri"
	pod := container.Info{RuntimeNamespace: "k8s.io"}
	pod.ID, pod.Runtime, pod.Namespace, pod.Pod = "c2", "cri", "shop", "web-1"
	inv.Containers = []container.Info{plain, pause, pod}
	r := NodeContainersOf("n1", inv)
	if r.Node != "n1" || len(r.Containers) != 2 || r.Containers[0].Namespace != "default" || r.Containers[1].Namespace != "shop" ||
		r.Containers[1].Pod != "web-1" || r.Containers[0].ImageDigest != plain.ImageDigest {
		t.Fatalf("report: %+v", r)
	}
}
