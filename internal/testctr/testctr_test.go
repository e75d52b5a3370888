package testctr

import (
	"context"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestBuildImage(t *testing.T) {
	if _, err := os.Stat(BusyboxPath); err != nil {
		t.Skip("no busybox-static:", err)
	}
	img, err := BuildImage(ImageSpec{Files: map[string]File{"usr/local/bin/tool": {Data: []byte("x"), Exec: true}}})
	if err != nil {
		t.Fatal(err)
	}
	ls, err := img.Layers()
	if err != nil || len(ls) != 2 {
		t.Fatalf("layers %d %v", len(ls), err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cf.Config.Cmd[0] != "/bin/sh" || cf.OS != "linux" {
		t.Fatalf("config %+v", cf.Config)
	}
	if _, err := layer(nil, map[string]File{"/": {}}); err == nil {
		t.Fatal("empty file name accepted")
	}
}

// TestDaemonLifecycle runs the whole harness once: start, image, run,
// exec, restart with the container surviving, a short-lived container,
// and a clean-up that leaves nothing behind.
func TestDaemonLifecycle(t *testing.T) {
	Require(t)
	ctx := context.Background()
	d, err := Start(ctx)
	if err != nil {
		t.Fatal(err)
	}
	closed := false
	defer func() {
		if !closed {
			d.Close()
		}
	}()
	img := d.BuildImage(t, "", ImageSpec{Files: map[string]File{"etc/marker": {Data: []byte("m1\n")}}})
	if !strings.HasPrefix(img.Digest, "sha256:") {
		t.Fatalf("digest %q", img.Digest)
	}
	out, err := d.Ctr(ctx, d.Namespace, "images", "ls")
	if err != nil || !strings.Contains(out, img.Digest) {
		t.Fatalf("containerd does not list %s with digest %s: %v\n%s", img.Ref, img.Digest, err, out)
	}

	c := d.Run(t, RunSpec{Image: img, Args: []string{"sleep", "1000"}, Labels: map[string]string{"app": "x"}})
	if c.PID <= 0 {
		t.Fatalf("pid %d", c.PID)
	}
	cg, err := os.ReadFile("/proc/" + strconv.Itoa(c.PID) + "/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(cg), "/"+d.Namespace+"/"+c.ID) {
		t.Fatalf("cgroup of %d: %s", c.PID, cg)
	}
	got, err := c.Exec(ctx, "cat", "/etc/marker")
	if err != nil || got != "m1\n" {
		t.Fatalf("exec: %q %v", got, err)
	}
	if _, err := c.Exec(ctx, "false"); err == nil {
		t.Fatal("exec of false succeeded")
	}

	old := d.PID()
	if err := d.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	if d.PID() == old {
		t.Fatal("same pid after restart")
	}
	if st, err := c.TaskStatus(ctx); err != nil || st != "running" {
		t.Fatalf("after restart: %q %v", st, err)
	}
	if got, err := c.Exec(ctx, "cat", "/etc/marker"); err != nil || got != "m1\n" {
		t.Fatalf("exec after restart: %q %v", got, err)
	}

	start := time.Now()
	out, err = d.RunOnce(ctx, RunSpec{Image: img, Args: []string{"echo", "short"}})
	if err != nil || out != "short\n" {
		t.Fatalf("run once: %q %v", out, err)
	}
	t.Logf("short-lived container round trip %s", time.Since(start))

	if err := c.Remove(ctx); err != nil {
		t.Fatal(err)
	}
	if !WaitGone(c.PID, 10*time.Second) {
		t.Fatalf("pid %d still there", c.PID)
	}
	// A container the test leaves running: Close must remove it.
	c2 := d.Run(t, RunSpec{Image: img, Args: []string{"sleep", "1000"}})
	dir, ns := d.Dir, d.Namespace
	closed = true
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if !WaitGone(c2.PID, 10*time.Second) {
		t.Fatalf("pid %d survived Close", c2.PID)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("%s left: %v", dir, err)
	}
	if m, _ := mountsUnder(dir); len(m) != 0 {
		t.Fatalf("mounts left: %v", m)
	}
	if left, _ := filepath.Glob("/sys/fs/cgroup/*/" + ns); len(left) != 0 {
		t.Fatalf("cgroups left: %v", left)
	}
}

var shared Shared

func TestMain(m *testing.M) { os.Exit(shared.Main(m)) }

func TestDocker(t *testing.T) {
	k := shared.Docker(t)
	ctx := context.Background()
	img := k.Pull(t, ImageSpec{})
	out, err := k.CLI(ctx, "inspect", "--format", "{{json .RepoDigests}} {{.Id}}", img.Ref)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, img.Digest) || !strings.Contains(out, img.ID) {
		t.Fatalf("inspect %s: %s; want digest %s id %s", img.Ref, out, img.Digest, img.ID)
	}
	c := k.Run(t, DockerRun{Image: img, Args: []string{"sleep", "1000"}, Labels: map[string]string{"a": "b"}})
	cg, err := os.ReadFile("/proc/" + strconv.Itoa(c.PID) + "/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(cg), "/docker/"+c.ID) {
		t.Fatalf("cgroup %s", cg)
	}
	if got, err := c.Exec(ctx, "echo", "hi"); err != nil || got != "hi\n" {
		t.Fatalf("exec %q %v", got, err)
	}
}

func TestNetNS(t *testing.T) {
	Require(t)
	a, b := NewNetNS(t), NewNetNS(t)
	Veth(t, a, b, "10.231.0.1/24", "10.231.0.2/24")
	l := b.Listen(t, "10.231.0.2:0")
	go func() {
		c, err := l.Accept()
		if err == nil {
			c.Write([]byte("ok"))
			c.Close()
		}
	}()
	var got []byte
	err := a.Do(func() error {
		c, err := net.DialTimeout("tcp", l.Addr().String(), 5*time.Second)
		if err != nil {
			return err
		}
		defer c.Close()
		got, err = io.ReadAll(c)
		return err
	})
	if err != nil || string(got) != "ok" {
		t.Fatalf("%q %v", got, err)
	}
}

func TestCRIPod(t *testing.T) {
	d := shared.Get(t)
	cri := d.CRI(t)
	img := d.BuildImage(t, CRINamespace, ImageSpec{})
	pod := cri.RunPod(t, PodSpec{Labels: map[string]string{"app": "web"}})
	c := pod.Start(t, CRIContainerSpec{Image: img, Args: []string{"sleep", "1000"}})
	cg, err := os.ReadFile("/proc/" + strconv.Itoa(c.PID) + "/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	if want := pod.CgroupParent + "/" + c.ID; !strings.Contains(string(cg), "0::"+want+"\n") {
		t.Fatalf("cgroup %s, want %s", cg, want)
	}
}
