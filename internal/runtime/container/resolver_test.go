package container

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"mamori/internal/runtime/event"
)

func info(id string, cg uint64) Info {
	inf := Info{RuntimeNamespace: "default", CgroupID: cg, Created: time.Now()}
	inf.ID, inf.Runtime, inf.Image = id, RuntimeContainerd, "img:"+id
	return inf
}

// TestBoundsAndGrace: the maps stay under their bound (exited containers
// go first), exited containers are attributable until the grace period
// ends, and the inventory follows with a change signal.
func TestBoundsAndGrace(t *testing.T) {
	r, err := New(WithLimits(3, 10), WithGrace(time.Minute), WithCgroup2(""), WithProcRoot(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	inv0, changed := r.Inventory()
	now := time.Now()
	for i := 0; i < 3; i++ {
		r.apply(Change{Op: OpUpsert, Info: info(fmt.Sprint("c", i), uint64(100+i)), At: now})
	}
	select {
	case <-changed:
	default:
		t.Fatal("no change signalled")
	}
	if inv, _ := r.Inventory(); inv.Version <= inv0.Version {
		t.Fatal("version did not grow")
	}
	// c0 exits; a fourth container pushes the oldest exited one out.
	r.apply(Change{Op: OpExited, Info: info("c0", 0), At: now})
	if got := r.Attribute(&event.Event{CgroupID: 100}); got == nil || got.ID != "c0" || got.Exited.IsZero() {
		t.Fatalf("exited container within grace: %v", got)
	}
	r.apply(Change{Op: OpUpsert, Info: info("c3", 103), At: now})
	if s := r.Stats(); s.Containers != 3 {
		t.Fatalf("%d containers kept, bound 3", s.Containers)
	}
	if r.Get(Key{Runtime: RuntimeContainerd, Namespace: "default", ID: "c0"}) != nil {
		t.Fatal("the exited container was not the one evicted")
	}
	for _, id := range []string{"c1", "c2", "c3"} {
		if r.Get(Key{Runtime: RuntimeContainerd, Namespace: "default", ID: id}) == nil {
			t.Fatalf("%s evicted", id)
		}
	}
	// c1 exits; gc keeps it within grace, forgets it after.
	r.apply(Change{Op: OpExited, Info: info("c1", 0), At: now})
	r.gc(now.Add(30 * time.Second))
	if r.Attribute(&event.Event{CgroupID: 101}) == nil {
		t.Fatal("forgotten within grace")
	}
	r.gc(now.Add(2 * time.Minute))
	if r.Get(Key{Runtime: RuntimeContainerd, Namespace: "default", ID: "c1"}) != nil {
		t.Fatal("kept after grace")
	}
	// A runtime's PID whose process /proc does not have (an empty proc
	// root here) is an exited container, not a running one.
	run := info("c4", 104)
	run.PID = 1
	r.apply(Change{Op: OpUpsert, Info: run, At: now})
	if inv, _ := r.Inventory(); has(inv, "c4") {
		t.Fatal("a container whose process is not in /proc is in the inventory")
	}
}

// TestHostMountNS: PID 1's mount namespace is the host's; when it cannot be read, the agent's
// own (its /proc "self") unless the agent's cgroup is a container's.
func TestHostMountNS(t *testing.T) {
	mk := func(t *testing.T, pid1 bool, selfCgroup string) (string, uint32) {
		root := t.TempDir()
		var want uint32
		for _, pid := range []string{"1", "42"} {
			if pid == "1" && !pid1 {
				continue
			}
			if err := os.MkdirAll(filepath.Join(root, pid, "ns"), 0o755); err != nil {
				t.Fatal(err)
			}
			mnt := filepath.Join(root, pid, "ns", "mnt")
			if err := os.WriteFile(mnt, nil, 0o644); err != nil {
				t.Fatal(err)
			}
			var st unix.Stat_t
			if err := unix.Stat(mnt, &st); err != nil {
				t.Fatal(err)
			}
			if pid == "1" || want == 0 {
				want = uint32(st.Ino)
			}
		}
		if err := os.WriteFile(filepath.Join(root, "42", "cgroup"), []byte("0::"+selfCgroup+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink("42", filepath.Join(root, "self")); err != nil {
			t.Fatal(err)
		}
		return root, want
	}
	root, want := mk(t, true, "/")
	if got := hostMountNS(Proc{Root: root}); got != want || got == 0 {
		t.Fatalf("PID 1 readable: %d, want PID 1's %d", got, want)
	}
	root, want = mk(t, false, "/user.slice/session-1.scope")
	if got := hostMountNS(Proc{Root: root}); got != want || got == 0 {
		t.Fatalf("PID 1 unreadable, agent on the host: %d, want the agent's %d", got, want)
	}
	root, want = mk(t, false, "/process_api/"+strings.Repeat("ab", 16))
	if got := hostMountNS(Proc{Root: root}); got != want || got == 0 {
		t.Fatalf("PID 1 unreadable, agent in a cgroup shaped like a container's (Guess): %d, want the agent's %d", got, want)
	}
	root, _ = mk(t, false, "/system.slice/docker-"+strings.Repeat("ab", 32)+".scope")
	if got := hostMountNS(Proc{Root: root}); got != 0 {
		t.Fatalf("PID 1 unreadable, agent in a container: %d, want 0", got)
	}
	if got := hostMountNS(Proc{Root: t.TempDir()}); got != 0 {
		t.Fatalf("empty /proc: %d, want 0", got)
	}
}
