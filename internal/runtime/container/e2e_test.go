package container

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"mamori/internal/runtime/event"
	"mamori/internal/runtime/sensor"
	"mamori/internal/testctr"
)

var ctrd testctr.Shared

func TestMain(m *testing.M) { os.Exit(ctrd.Main(m)) }

// resolver starts a Resolver on the shared containerd (and dockerd when
// given) that runs until the test ends.
func resolver(t *testing.T, d *testctr.Daemon, k *testctr.Docker, opts ...Option) *Resolver {
	t.Helper()
	var srcs []Source
	skip := []string{}
	if k != nil {
		dk, err := NewDocker(k.Socket)
		if err != nil {
			t.Fatal(err)
		}
		srcs = append(srcs, dk)
		skip = append(skip, "moby")
	}
	cd, err := NewContainerd(d.Address, skip...)
	if err != nil {
		t.Fatal(err)
	}
	srcs = append([]Source{cd}, srcs...)
	r, err := New(append([]Option{WithSources(srcs...)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		r.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		wg.Wait()
		for _, s := range srcs {
			s.Close()
		}
	})
	return r
}

// procEvent is the event a sensor reports for a process: its cgroup id
// (of the v2 hierarchy), identity and namespaces, read from /proc.
func procEvent(t *testing.T, r *Resolver, pid int) *event.Event {
	t.Helper()
	p := Proc{Root: "/proc"}
	ticks, err := p.StartTicks(pid)
	if err != nil {
		t.Fatal(err)
	}
	pc, err := p.Cgroup(pid)
	if err != nil {
		t.Fatal(err)
	}
	e := &event.Event{Kind: event.KindExec, Process: event.Process{PID: pid, StartTime: ticks * nsPerTick}}
	if id, err := r.Cgroup2().ID(pc.Unified); err == nil {
		e.CgroupID = id
	}
	mnt, err := p.NS(pid, "mnt")
	if err != nil {
		t.Fatal(err)
	}
	e.Namespaces.Mnt = mnt
	return e
}

func wantContainer(t *testing.T, got *Info, e *event.Event, want event.Container) {
	t.Helper()
	if got == nil {
		t.Fatalf("event attributed to the host, want %+v", want)
	}
	if !reflect.DeepEqual(e.Container, want) {
		t.Fatalf("attribution\n got %+v\nwant %+v\n(info %s)", e.Container, want, got)
	}
}

func TestAttributeContainerd(t *testing.T) {
	d := ctrd.Get(t)
	r := resolver(t, d, nil)
	img := d.BuildImage(t, "", testctr.ImageSpec{})
	c := d.Run(t, testctr.RunSpec{Image: img, Args: []string{"sleep", "1000"}, Labels: map[string]string{"team": "blue"}})
	// An exec'd process: the same container, another PID.
	if _, err := c.Exec(context.Background(), "sh", "-c", "sleep 1000 >/dev/null 2>&1 &"); err != nil {
		t.Fatal(err)
	}
	child := findChild(t, c.PID, "sleep")
	want := event.Container{ID: c.ID, Name: c.ID, Image: img.Ref, ImageDigest: img.Digest, Namespace: d.Namespace,
		Labels: map[string]string{"team": "blue", "io.containerd.image.config.stop-signal": "SIGTERM"}, Runtime: RuntimeContainerd}
	for _, pid := range []int{c.PID, child} {
		e := procEvent(t, r, pid)
		if e.CgroupID <= rootCgroup {
			t.Fatalf("container process %d has cgroup id %d", pid, e.CgroupID)
		}
		wantContainer(t, r.Attribute(e), e, want)
	}
	inf := r.Get(Key{Runtime: RuntimeContainerd, Namespace: d.Namespace, ID: c.ID})
	if inf == nil || inf.PID != c.PID || inf.MntNS == 0 || inf.NetNS == 0 || inf.CgroupPath != "/"+d.Namespace+"/"+c.ID {
		t.Fatalf("info %+v", inf)
	}
	// The test process itself is the host.
	self := procEvent(t, r, os.Getpid())
	if got := r.Attribute(self); got != nil {
		t.Fatalf("the test process attributed to %s", got)
	}
}

// findChild returns the PID of a process named comm whose parent is ppid
// (or, for a shell that exited, that was reparented to ppid).
func findChild(t *testing.T, ppid int, comm string) int {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		ents, _ := os.ReadDir("/proc")
		for _, de := range ents {
			pid, err := strconv.Atoi(de.Name())
			if err != nil || pid == ppid {
				continue
			}
			b, err := os.ReadFile(filepath.Join("/proc", de.Name(), "stat"))
			if err != nil {
				continue
			}
			s := string(b)
			i, j := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
			if i < 0 || j < i || s[i+1:j] != comm {
				continue
			}
			f := strings.Fields(s[j+1:])
			if len(f) > 1 && f[1] == strconv.Itoa(ppid) {
				return pid
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no %s child of %d", comm, ppid)
	return 0
}

func TestAttributeCRI(t *testing.T) {
	d := ctrd.Get(t)
	r := resolver(t, d, nil)
	img := d.BuildImage(t, testctr.CRINamespace, testctr.ImageSpec{})
	pod := d.CRI(t).RunPod(t, testctr.PodSpec{Namespace: "shop", Labels: map[string]string{"app": "web", "tier": "front"}})
	c := pod.Start(t, testctr.CRIContainerSpec{Name: "server", Image: img, Args: []string{"sleep", "1000"}})
	e := procEvent(t, r, c.PID)
	want := event.Container{ID: c.ID, Name: "server", Image: img.Ref, ImageDigest: img.Digest, Pod: pod.Spec.Name,
		Namespace: "shop", Labels: map[string]string{"app": "web", "tier": "front"}, Runtime: RuntimeCRI}
	got := r.Attribute(e)
	wantContainer(t, got, e, want)
	if got.PodUID != pod.Spec.UID || got.SandboxID != pod.ID || got.RuntimeNamespace != testctr.CRINamespace {
		t.Fatalf("info %s", got)
	}
	if ref := ParseCgroupPath(got.CgroupPath); ref.Runtime != RuntimeCRI || ref.PodUID != pod.Spec.UID || ref.ID != c.ID {
		t.Fatalf("cgroup path %s parses as %+v", got.CgroupPath, ref)
	}
}

func TestAttributeDocker(t *testing.T) {
	d := ctrd.Get(t)
	k := ctrd.Docker(t)
	r := resolver(t, d, k)
	img := k.Pull(t, testctr.ImageSpec{})
	c := k.Run(t, testctr.DockerRun{Image: img, Args: []string{"sleep", "1000"}, Labels: map[string]string{"svc": "api"}})
	e := procEvent(t, r, c.PID)
	want := event.Container{ID: c.ID, Name: c.Name, Image: img.Ref, ImageDigest: img.Digest,
		Labels: map[string]string{"svc": "api"}, Runtime: RuntimeDocker}
	got := r.Attribute(e)
	wantContainer(t, got, e, want)
	if got.ImageID != img.ID || got.CgroupPath != "/docker/"+c.ID {
		t.Fatalf("info %s (image id %s)", got, got.ImageID)
	}
	// The moby namespace of containerd is Docker's: not reported twice.
	inv, _ := r.Inventory()
	n := 0
	for _, ic := range inv.Containers {
		if ic.ID == c.ID {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("container %s %d times in the inventory: %+v", c.ID, n, inv.Containers)
	}
}

// watchCgroups records the cgroup ids of the directories that appear
// under dir until stop is closed (a test-side observer, independent of
// the resolver: it polls every 200µs).
func watchCgroups(dir string, stop <-chan struct{}) <-chan map[string]uint64 {
	out := make(chan map[string]uint64, 1)
	go func() {
		seen := map[string]uint64{}
		for {
			select {
			case <-stop:
				out <- seen
				return
			default:
			}
			ents, _ := os.ReadDir(dir)
			for _, de := range ents {
				if _, ok := seen[de.Name()]; ok || !de.IsDir() {
					continue
				}
				var st syscall.Stat_t
				if syscall.Stat(filepath.Join(dir, de.Name()), &st) == nil {
					seen[de.Name()] = st.Ino
				}
			}
			time.Sleep(200 * time.Microsecond)
		}
	}()
	return out
}

// TestShortLived: a container whose process exits at once (`true`) is
// attributed from an event read after the container was deleted, its
// cgroup removed and its PID gone.
func TestShortLived(t *testing.T) {
	d := ctrd.Get(t)
	r := resolver(t, d, nil)
	img := d.BuildImage(t, "", testctr.ImageSpec{})
	// The namespace's cgroup parent exists once a container ran in it.
	warm := d.Run(t, testctr.RunSpec{Image: img, Args: []string{"sleep", "1000"}})
	dir := filepath.Join(r.Cgroup2().Mount, d.Namespace)
	stop := make(chan struct{})
	seen := watchCgroups(dir, stop)
	time.Sleep(10 * time.Millisecond)
	id := "short-" + testctr.RandomTag()
	start := time.Now()
	if _, err := d.RunOnce(context.Background(), testctr.RunSpec{ID: id, Image: img, Args: []string{"true"}}); err != nil {
		t.Fatal(err)
	}
	t.Logf("container %s created, ran `true`, was deleted in %s", id, time.Since(start))
	close(stop)
	cg, ok := (<-seen)[id]
	if !ok {
		t.Fatalf("the test did not see cgroup %s/%s appear", dir, id)
	}
	if _, err := os.Stat(filepath.Join(dir, id)); !os.IsNotExist(err) {
		t.Fatalf("cgroup still there: %v", err)
	}
	e := &event.Event{Kind: event.KindExec, CgroupID: cg, Process: event.Process{PID: 999999, StartTime: 1}}
	want := event.Container{ID: id, Name: id, Image: img.Ref, ImageDigest: img.Digest, Namespace: d.Namespace,
		Labels: map[string]string{"io.containerd.image.config.stop-signal": "SIGTERM"}, Runtime: RuntimeContainerd}
	wantContainer(t, r.Attribute(e), e, want)
	_ = warm
}

// TestPIDReuse: the /proc fallback (events without a cgroup id) checks a
// PID's start time and caches under (PID, start time): a PID reused by a
// host process is not taken for the container's process, before or after
// the container's was cached.
func TestPIDReuse(t *testing.T) {
	d := ctrd.Get(t)
	r := resolver(t, d, nil)
	img := d.BuildImage(t, "", testctr.ImageSpec{})
	c := d.Run(t, testctr.RunSpec{Image: img, Args: []string{"sleep", "1000"}})
	old := procEvent(t, r, c.PID)
	old.CgroupID = 0 // a sensor without cgroup ids (the CN_PROC fallback)
	old.Namespaces.Mnt = 0
	if got := r.Attribute(old); got == nil || got.ID != c.ID {
		t.Fatalf("container process attributed to %s", got)
	}
	// A resolver that never saw the container process.
	fresh := resolver(t, d, nil)

	pid := c.PID
	if err := c.Remove(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !testctr.WaitGone(pid, 10*time.Second) {
		t.Fatal("container process still there")
	}
	host := reusePID(t, pid)
	defer func() { host.Process.Kill(); host.Wait() }()
	hostEv := procEvent(t, r, pid)
	if hostEv.Process.StartTime == old.Process.StartTime {
		t.Fatal("same start time")
	}
	hostEv.CgroupID, hostEv.Namespaces.Mnt = 0, 0
	if got := r.Attribute(hostEv); got != nil {
		t.Fatalf("host process with reused PID %d attributed to %s", pid, got)
	}
	if got := r.Attribute(old); got == nil || got.ID != c.ID {
		t.Fatalf("the container process's late event attributed to %s", got)
	}
	if got := fresh.Attribute(old); got != nil {
		t.Fatalf("an event of the dead container process was attributed through the PID's new owner: %s", got)
	}
}

// reusePID starts a host process with PID pid (setting ns_last_pid, as
// checkpoint/restore does, and retrying while other processes race).
func reusePID(t *testing.T, pid int) *exec.Cmd {
	t.Helper()
	for try := 0; try < 50; try++ {
		if err := os.WriteFile("/proc/sys/kernel/ns_last_pid", []byte(strconv.Itoa(pid-1)), 0o644); err != nil {
			t.Fatalf("ns_last_pid: %v", err)
		}
		cmd := exec.Command("sleep", "60")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		if cmd.Process.Pid == pid {
			return cmd
		}
		cmd.Process.Kill()
		cmd.Wait()
	}
	t.Skipf("could not get PID %d again (other processes took it)", pid)
	return nil
}

// TestRestartAndInventory: the resolver reconnects after containerd
// restarts, re-lists (a container removed while containerd was down
// leaves the inventory) and follows containers started afterwards from
// the event stream alone.
func TestRestartAndInventory(t *testing.T) {
	d := ctrd.Get(t)
	r := resolver(t, d, nil, WithResync(0))
	img := d.BuildImage(t, "", testctr.ImageSpec{})
	a := d.Run(t, testctr.RunSpec{Image: img, Args: []string{"sleep", "1000"}})
	b := d.Run(t, testctr.RunSpec{Image: img, Args: []string{"sleep", "1000"}})
	waitInventory(t, r, func(inv Inventory) bool { return has(inv, a.ID) && has(inv, b.ID) })
	before := r.Stats().Reconnects

	d.Stop()
	// b's process dies while containerd is away (its shim reports the exit
	// only to a containerd that listens).
	if err := syscall.Kill(b.PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	testctr.WaitGone(b.PID, 10*time.Second)
	if err := d.Resume(context.Background()); err != nil {
		t.Fatal(err)
	}
	c := d.Run(t, testctr.RunSpec{Image: img, Args: []string{"sleep", "1000"}})
	inv := waitInventory(t, r, func(inv Inventory) bool { return has(inv, a.ID) && has(inv, c.ID) && !has(inv, b.ID) })
	if r.Stats().Reconnects <= before {
		t.Fatalf("no reconnect counted: %+v", r.Stats())
	}
	imgs := inv.Images()
	found := false
	for _, ir := range imgs {
		if ir.Ref == img.Ref && ir.Digest == img.Digest && ir.Containers >= 2 {
			found = true
		}
	}
	if !found {
		t.Fatalf("images %+v", imgs)
	}
	// c was learnt from the event stream: a hit, no miss.
	misses := r.Stats().Misses
	e := procEvent(t, r, c.PID)
	if got := r.Attribute(e); got == nil || got.ID != c.ID {
		t.Fatalf("attributed to %s", got)
	}
	if r.Stats().Misses != misses {
		t.Fatalf("container started after the restart was not known from the event stream: %+v", r.Stats())
	}
}

func has(inv Inventory, id string) bool {
	for _, c := range inv.Containers {
		if c.ID == id {
			return true
		}
	}
	return false
}

func waitInventory(t *testing.T, r *Resolver, ok func(Inventory) bool) Inventory {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		inv, changed := r.Inventory()
		if ok(inv) {
			return inv
		}
		select {
		case <-changed:
		case <-time.After(500 * time.Millisecond):
		case <-deadline:
			t.Fatalf("inventory never matched: %s", describe(inv))
		}
	}
}

func describe(inv Inventory) string {
	var b strings.Builder
	fmt.Fprintf(&b, "version %d:", inv.Version)
	for _, c := range inv.Containers {
		fmt.Fprintf(&b, " %s/%s(pid %d)", c.RuntimeNamespace, c.ID, c.PID)
	}
	return b.String()
}

// TestHostCgroupShapedLikeContainerd: a host cgroup /<x>/<y> that no
// runtime knows is the host's, and is remembered as such.
func TestHostCgroupShapedLikeContainerd(t *testing.T) {
	d := ctrd.Get(t)
	r := resolver(t, d, nil)
	if r.Cgroup2().Mount == "" {
		t.Skip("no cgroup2 hierarchy")
	}
	top := filepath.Join(r.Cgroup2().Mount, "mamori-host-"+testctr.RandomTag())
	if err := os.MkdirAll(filepath.Join(top, "svc"), 0o755); err != nil {
		t.Fatal(err)
	}
	defer func() {
		syscall.Rmdir(filepath.Join(top, "svc"))
		syscall.Rmdir(top)
	}()
	var st syscall.Stat_t
	if err := syscall.Stat(filepath.Join(top, "svc"), &st); err != nil {
		t.Fatal(err)
	}
	e := &event.Event{Kind: event.KindExec, CgroupID: st.Ino}
	if got := r.Attribute(e); got != nil {
		t.Fatalf("attributed to %s", got)
	}
	if s := r.Stats(); s.HostCgroup == 0 {
		t.Fatalf("not remembered: %+v", s)
	}
}

// TestShortLivedSensor: the real eBPF sensor's exec event of a container
// whose process exits at once (`true`), attributed only after the
// container is deleted (as an agent lagging behind a storm would).
func TestShortLivedSensor(t *testing.T) {
	d := ctrd.Get(t)
	r := resolver(t, d, nil)
	s, err := sensor.New(sensor.WithMode(sensor.ModeEBPF), sensor.WithKinds(event.KindExec, event.KindExit))
	if errors.Is(err, sensor.ErrNotSupported) {
		t.Skipf("no eBPF here: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var mu sync.Mutex
	var evs []*event.Event
	exits := map[event.ProcKey]time.Time{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.Run(ctx, func(e *event.Event) {
			mu.Lock()
			defer mu.Unlock()
			switch {
			case e.Kind == event.KindExit:
				exits[e.Process.Key()] = e.Time
			case len(e.Process.Args) > 1 && e.Process.Args[1] == "mamori-short-lived":
				evs = append(evs, e)
			}
		})
	}()
	img := d.BuildImage(t, "", testctr.ImageSpec{})
	ids := map[string]bool{}
	for i := 0; i < 5; i++ {
		id := "short-" + testctr.RandomTag()
		ids[id] = true
		if _, err := d.RunOnce(context.Background(), testctr.RunSpec{ID: id, Image: img, Args: []string{"true", "mamori-short-lived"}}); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(200 * time.Millisecond) // the ring buffer's poll
	cancel()
	<-done
	mu.Lock()
	defer mu.Unlock()
	if len(evs) != len(ids) {
		t.Fatalf("%d exec events for %d containers", len(evs), len(ids))
	}
	var longest time.Duration
	for _, e := range evs {
		if x, ok := exits[e.Process.Key()]; ok && x.Sub(e.Time) > longest {
			longest = x.Sub(e.Time)
		}
		got := r.Attribute(e)
		if got == nil || !ids[got.ID] || e.Container.Image != img.Ref || e.Container.ImageDigest != img.Digest {
			t.Fatalf("event %s attributed to %s", e, got)
		}
		delete(ids, got.ID)
	}
	t.Logf("%d containers; their process lived at most %s from exec to exit (kernel times); all attributed after deletion", len(evs), longest)
}
