package drift

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"mamori/internal/runtime/container"
	"mamori/internal/runtime/event"
	"mamori/internal/runtime/sensor"
	"mamori/internal/testctr"
)

var ctrd testctr.Shared

func TestMain(m *testing.M) { os.Exit(ctrd.Main(m)) }

// execSource gives the exec event of a process: from the eBPF sensor
// when the kernel allows it (the real path, dev and inode the kernel
// saw), else built from /proc (the same facts, read by the test).
type execSource struct {
	mu   sync.Mutex
	evs  []*event.Event
	live bool
}

func startSensor(t *testing.T, cgroupID uint64) *execSource {
	t.Helper()
	es := &execSource{}
	s, err := sensor.New(sensor.WithMode(sensor.ModeEBPF), sensor.WithKinds(event.KindExec),
		sensor.WithCgroups([]uint64{cgroupID}, nil))
	if err != nil {
		if errors.Is(err, sensor.ErrNotSupported) {
			t.Logf("eBPF sensor unavailable (%v): exec events built from /proc", err)
			return es
		}
		t.Fatal(err)
	}
	es.live = true
	t.Log("exec events from the eBPF sensor")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.Run(ctx, func(e *event.Event) {
			es.mu.Lock()
			es.evs = append(es.evs, e)
			es.mu.Unlock()
		})
	}()
	t.Cleanup(func() {
		cancel()
		<-done
		s.Close()
	})
	return es
}

// exec returns the exec event of process pid (whose program is exe, as
// the container sees it).
func (es *execSource) exec(t *testing.T, pid int, exe string) *event.Event {
	t.Helper()
	if !es.live {
		return procExec(t, pid)
	}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		es.mu.Lock()
		for _, e := range es.evs {
			if e.Process.PID == pid && e.Process.Exe == exe {
				es.mu.Unlock()
				return e
			}
		}
		es.mu.Unlock()
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no exec event of %d %s from the sensor", pid, exe)
	return nil
}

// procExec builds an exec event from /proc: the executable's path in the
// container, and its device and inode as the overlay reports them.
func procExec(t *testing.T, pid int) *event.Event {
	t.Helper()
	exe := filepath.Join("/proc", strconv.Itoa(pid), "exe")
	target, err := os.Readlink(exe)
	if err != nil {
		t.Fatal(err)
	}
	var st unix.Stat_t
	if err := unix.Stat(exe, &st); err != nil {
		t.Fatal(err)
	}
	e := &event.Event{Kind: event.KindExec}
	e.Process.PID = pid
	e.Process.Exe = strings.TrimSuffix(target, " (deleted)")
	e.File.Dev = st.Dev
	e.File.Inode = st.Ino
	return e
}

func TestDrift(t *testing.T) {
	d := ctrd.Get(t)
	bb, err := os.ReadFile(testctr.BusyboxPath)
	if err != nil {
		t.Fatal(err)
	}
	img := d.BuildImage(t, "", testctr.ImageSpec{Files: map[string]testctr.File{
		"usr/local/bin/tool":  {Data: bb, Exec: true}, // an image binary modified in place below
		"usr/local/bin/tool2": {Data: bb, Exec: true}, // one left alone
	}})
	vol := t.TempDir()
	if err := os.WriteFile(filepath.Join(vol, "voltool"), bb, 0o755); err != nil {
		t.Fatal(err)
	}
	c := d.Run(t, testctr.RunSpec{Image: img, Args: []string{"sleep", "1000"},
		Mounts: []string{"type=bind,src=" + vol + ",dst=/data,options=rbind:ro"}})
	r, err := container.New(container.WithSources())
	if err != nil {
		t.Fatal(err)
	}
	var cg uint64
	if pc, err := (container.Proc{Root: "/proc"}).Cgroup(c.PID); err == nil {
		cg, _ = r.Cgroup2().ID(pc.Unified)
	}
	es := startSensor(t, cg)
	ticks, err := container.Proc{Root: "/proc"}.StartTicks(c.PID)
	if err != nil {
		t.Fatal(err)
	}
	info := &container.Info{PID: c.PID, PIDStart: ticks}
	info.ID, info.Runtime, info.RuntimeNamespace = c.ID, container.RuntimeContainerd, c.Namespace
	det, err := New()
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	run := func(script string) {
		t.Helper()
		if out, err := c.Exec(ctx, "sh", "-c", script); err != nil {
			t.Fatalf("%s: %v %s", script, err, out)
		}
	}
	for _, tc := range []struct {
		name   string
		script string
		comm   string // the started process's task name
		exe    string // its executable, as the container sees it
		want   Verdict
	}{
		{"image binary", "exec /usr/local/bin/tool2 sleep 1000 >/dev/null 2>&1 &", "tool2", "/usr/local/bin/tool2",
			Verdict{Layer: LayerImage}},
		{"image busybox through an applet link", "sleep 999 >/dev/null 2>&1 &", "sleep", "/bin/busybox",
			Verdict{Layer: LayerImage}},
		{"copied binary", "cp /bin/busybox /tmp/x && /tmp/x sleep 1000 >/dev/null 2>&1 &", "x", "/tmp/x",
			Verdict{Drift: true, Layer: LayerUpper}},
		{"image binary modified in place", "echo >> /usr/local/bin/tool && /usr/local/bin/tool sleep 1000 >/dev/null 2>&1 &", "tool", "/usr/local/bin/tool",
			Verdict{Drift: true, Layer: LayerModified}},
		{"copied binary deleted after exec", "cp /bin/busybox /tmp/y && (/tmp/y sleep 1000 >/dev/null 2>&1 &) && sleep 0.2 && rm /tmp/y", "y", "/tmp/y",
			Verdict{Drift: true, Layer: LayerGone}},
		{"binary on a memory file system", "cp /bin/busybox /run/z && /run/z sleep 1000 >/dev/null 2>&1 &", "z", "/run/z",
			Verdict{Drift: true, Layer: LayerMemory, Mount: "/run"}},
		{"binary on a volume", "/data/voltool sleep 1000 >/dev/null 2>&1 &", "voltool", "/data/voltool",
			Verdict{Layer: LayerVolume, Mount: "/data"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			run(tc.script)
			pid, err := testctr.FindProcess(c.PID, tc.comm, 10*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			e := es.exec(t, pid, tc.exe)
			if e.Process.Exe != tc.exe {
				t.Fatalf("exe %q, want %q", e.Process.Exe, tc.exe)
			}
			got, err := det.Apply(e, info)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want || e.Drift != tc.want.Drift {
				t.Fatalf("verdict %+v (event drift %v), want %+v", got, e.Drift, tc.want)
			}
		})
	}

	// A hostile container: a symlink in its upper dir pointing at the
	// host's root must not be followed (an image file looked up through
	// it would otherwise be found on the host).
	run("ln -s / /tmp/evil")
	rf, err := ResolveRootfs("/proc", c.PID, ticks)
	if err != nil {
		t.Fatal(err)
	}
	var st unix.Stat_t
	if err := unix.Stat(testctr.BusyboxPath, &st); err != nil {
		t.Fatal(err)
	}
	v, err := det.Check(info, "/tmp/evil"+testctr.BusyboxPath, rf.Dev, st.Ino)
	if err != nil || v.Layer != LayerGone {
		t.Fatalf("through the symlink: %+v %v (want gone: nothing at that path in the layers)", v, err)
	}
	for _, bad := range []string{"relative", "/", "/a\x00b", "/" + strings.Repeat("a", 5000)} {
		if _, err := det.Check(info, bad, rf.Dev, 1); err == nil {
			t.Errorf("path %q accepted", bad)
		}
	}
	if s := det.Stats(); s.Checks == 0 || s.Drifts < 4 {
		t.Fatalf("stats %+v", s)
	}
	// The container's task gone: an error, no verdict.
	gone := *info
	gone.PIDStart++
	det.Forget(container.Key{Runtime: container.RuntimeContainerd, Namespace: c.Namespace, ID: c.ID})
	if _, err := det.Check(&gone, "/bin/busybox", rf.Dev, 1); !errors.Is(err, ErrGone) {
		t.Fatalf("stale PID: %v", err)
	}
}
