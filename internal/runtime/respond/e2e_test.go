package respond

import (
	"bufio"
	"context"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"mamori/internal/model"
	"mamori/internal/runtime/container"
	"mamori/internal/testctr"
)

var ctrd testctr.Shared

func TestMain(m *testing.M) { os.Exit(ctrd.Main(m)) }

func local(t *testing.T, opts ...LocalOption) *Local {
	t.Helper()
	l, err := NewLocal(opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

func target(t *testing.T, runtime, ns, id string, pid int) Target {
	t.Helper()
	ticks, err := container.Proc{Root: "/proc"}.StartTicks(pid)
	if err != nil {
		t.Fatal(err)
	}
	return Target{Runtime: runtime, Namespace: ns, ID: id, PID: pid, PIDStart: ticks}
}

// lines collects the lines a listener's connections send.
type lines struct {
	mu  sync.Mutex
	got []string
}

func (l *lines) serve(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			sc := bufio.NewScanner(c)
			for sc.Scan() {
				l.mu.Lock()
				l.got = append(l.got, sc.Text())
				l.mu.Unlock()
			}
		}()
	}
}

func (l *lines) has(s string, wait time.Duration) bool {
	deadline := time.Now().Add(wait)
	for {
		l.mu.Lock()
		for _, g := range l.got {
			if g == s {
				l.mu.Unlock()
				return true
			}
		}
		l.mu.Unlock()
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func nftTables(t *testing.T, netns string) string {
	t.Helper()
	args := []string{"list", "tables"}
	cmd := exec.Command("nft", args...)
	if netns != "" {
		cmd = exec.Command("ip", append([]string{"netns", "exec", netns, "nft"}, args...)...)
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("nft list tables: %v %s", err, out)
	}
	return string(out)
}

// TestIsolate: a container in a network namespace the test made, linked
// by a veth pair to a peer namespace with a listener. Isolate cuts its
// traffic both ways (an established connection too) and keeps loopback;
// Unisolate restores it and leaves nothing behind.
func TestIsolate(t *testing.T) {
	d := ctrd.Get(t)
	if _, err := exec.LookPath("nft"); err != nil {
		t.Fatal("nft (apt-get install nftables) is needed to check the tables")
	}
	ctx := context.Background()
	cns, peer := testctr.NewNetNS(t), testctr.NewNetNS(t)
	const cAddr, pAddr = "10.231.7.1", "10.231.7.2"
	testctr.Veth(t, cns, peer, cAddr+"/24", pAddr+"/24")
	ln := peer.Listen(t, pAddr+":0")
	var rx lines
	go rx.serve(ln)
	port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)

	img := d.BuildImage(t, "", testctr.ImageSpec{})
	c := d.Run(t, testctr.RunSpec{Image: img, Args: []string{"sleep", "1000"}, NetNS: cns.Path})
	// An echo server in the container, for traffic towards it.
	if _, err := c.Exec(ctx, "sh", "-c", "nc -ll -p 8081 -e /bin/cat >/dev/null 2>&1 &"); err != nil {
		t.Fatal(err)
	}
	n := 0
	egress := func() bool {
		n++
		msg := "hello-" + strconv.Itoa(n)
		_, err := c.Exec(ctx, "sh", "-c", "echo "+msg+" | nc -w 2 "+pAddr+" "+port)
		return err == nil && rx.has(msg, time.Second)
	}
	ingress := func() bool {
		return peer.Do(func() error {
			conn, err := net.DialTimeout("tcp", cAddr+":8081", time.Second)
			if err != nil {
				return err
			}
			return conn.Close()
		}) == nil
	}
	loopback := func() bool {
		out, err := c.Exec(ctx, "sh", "-c", "echo lo | nc -w 2 127.0.0.1 8081")
		return err == nil && out == "lo\n"
	}
	// An established connection from the peer to the echo server.
	var est net.Conn
	if err := peer.Do(func() error {
		var err error
		for i := 0; i < 50; i++ {
			if est, err = net.DialTimeout("tcp", cAddr+":8081", time.Second); err == nil {
				return nil
			}
			time.Sleep(100 * time.Millisecond) // the echo server starting
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer est.Close()
	echo := func(s string) bool {
		est.SetDeadline(time.Now().Add(time.Second))
		if _, err := est.Write([]byte(s)); err != nil {
			return false
		}
		b := make([]byte, len(s))
		_, err := io.ReadFull(est, b)
		return err == nil && string(b) == s
	}
	if !egress() || !ingress() || !loopback() || !echo("a") {
		t.Fatal("the container's network does not work before isolation")
	}

	l := local(t)
	tg := target(t, container.RuntimeContainerd, c.Namespace, c.ID, c.PID)
	res := l.Isolate(ctx, tg)
	if !res.Done || res.Action != model.ActionIsolate || res.Executor != "local" {
		t.Fatalf("isolate: %+v", res)
	}
	ino, _ := cns.Inode()
	if !strings.Contains(res.Detail, strconv.FormatUint(ino, 10)) {
		t.Fatalf("detail %q does not name namespace %d", res.Detail, ino)
	}
	t.Logf("isolate: %s (%s)", res.Detail, res.Took)
	if !strings.Contains(nftTables(t, cns.Name), "table inet "+IsolationTable) {
		t.Fatal("no isolation table")
	}
	if egress() {
		t.Fatal("egress works while isolated")
	}
	if ingress() {
		t.Fatal("ingress works while isolated")
	}
	if echo("b") {
		t.Fatal("the established connection works while isolated")
	}
	if !loopback() {
		t.Fatal("loopback cut")
	}
	if a, e := res.Event(); a != model.ActionIsolate || e != "" {
		t.Fatalf("event fields %s %q", a, e)
	}
	// Isolating again replaces the table: still one, same effect.
	if res := l.Isolate(ctx, tg); !res.Done {
		t.Fatalf("isolate again: %+v", res)
	}
	if strings.Count(nftTables(t, cns.Name), IsolationTable) != 1 {
		t.Fatal("isolation table twice")
	}

	res = l.Unisolate(ctx, tg)
	if !res.Done || res.Action != ActionUnisolate {
		t.Fatalf("unisolate: %+v", res)
	}
	if strings.Contains(nftTables(t, cns.Name), IsolationTable) {
		t.Fatal("isolation table left")
	}
	if !egress() || !ingress() || !loopback() {
		t.Fatal("network not restored")
	}
	if res := l.Unisolate(ctx, tg); !res.Done || !strings.Contains(res.Detail, "not isolated") {
		t.Fatalf("unisolate of a free container: %+v", res)
	}

	// A stale target (the PID's start time differs): refused.
	stale := tg
	stale.PIDStart++
	if res := l.Isolate(ctx, stale); res.Done || !strings.Contains(res.Error, "process gone") {
		t.Fatalf("stale PID: %+v", res)
	}
	if a, e := (Result{Action: model.ActionIsolate, Error: "x"}).Event(); a != model.ActionLog || !strings.Contains(e, "isolate failed") {
		t.Fatalf("failed event fields %s %q", a, e)
	}
}

// TestIsolateHostNetwork: a container sharing the host's network
// namespace is never isolated (it would cut the host).
func TestIsolateHostNetwork(t *testing.T) {
	d := ctrd.Get(t)
	img := d.BuildImage(t, "", testctr.ImageSpec{})
	c := d.Run(t, testctr.RunSpec{Image: img, Args: []string{"sleep", "1000"}, HostNet: true})
	before := nftTables(t, "")
	res := local(t).Isolate(context.Background(), target(t, container.RuntimeContainerd, c.Namespace, c.ID, c.PID))
	if res.Done || !strings.Contains(res.Error, "host's network namespace") {
		t.Fatalf("%+v", res)
	}
	if after := nftTables(t, ""); after != before || strings.Contains(after, IsolationTable) {
		t.Fatalf("host tables changed:\n%s\n->\n%s", before, after)
	}
}

func TestTerminateContainerd(t *testing.T) {
	d := ctrd.Get(t)
	ctx := context.Background()
	img := d.BuildImage(t, "", testctr.ImageSpec{})
	c := d.Run(t, testctr.RunSpec{Image: img, Args: []string{"sleep", "1000"}})
	if _, err := c.Exec(ctx, "sh", "-c", "sleep 1000 >/dev/null 2>&1 &"); err != nil {
		t.Fatal(err)
	}
	child, err := testctr.FindProcess(c.PID, "sleep", 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	l := local(t, WithContainerd(d.Address))
	tg := target(t, container.RuntimeContainerd, c.Namespace, c.ID, c.PID)
	res := Do(ctx, l, model.ActionTerminate, tg)
	if !res.Done || !strings.Contains(res.Detail, "status 137") {
		t.Fatalf("terminate: %+v", res)
	}
	t.Logf("terminate: %s (%s)", res.Detail, res.Took)
	if st, err := c.TaskStatus(ctx); err != nil || (st != "stopped" && st != "") {
		t.Fatalf("task %q %v", st, err)
	}
	if !testctr.WaitGone(c.PID, 5*time.Second) || !testctr.WaitGone(child, 5*time.Second) {
		t.Fatal("a process of the container survived")
	}
	if res := l.Terminate(ctx, tg); !res.Done || !strings.Contains(res.Detail, "already stopped") {
		t.Fatalf("terminate again: %+v", res)
	}
	if res := local(t).Terminate(ctx, tg); res.Done {
		t.Fatalf("terminate without containerd: %+v", res)
	}
}

func TestTerminateCRI(t *testing.T) {
	d := ctrd.Get(t)
	img := d.BuildImage(t, testctr.CRINamespace, testctr.ImageSpec{})
	pod := d.CRI(t).RunPod(t, testctr.PodSpec{})
	c := pod.Start(t, testctr.CRIContainerSpec{Image: img, Args: []string{"sleep", "1000"}})
	res := local(t, WithContainerd(d.Address)).Terminate(context.Background(),
		target(t, container.RuntimeCRI, testctr.CRINamespace, c.ID, c.PID))
	if !res.Done || !testctr.WaitGone(c.PID, 5*time.Second) {
		t.Fatalf("%+v", res)
	}
}

func TestTerminateDocker(t *testing.T) {
	ctrd.Get(t)
	k := ctrd.Docker(t)
	ctx := context.Background()
	img := k.Pull(t, testctr.ImageSpec{})
	c := k.Run(t, testctr.DockerRun{Image: img, Args: []string{"sleep", "1000"}})
	l := local(t, WithDocker(k.Socket))
	res := l.Terminate(ctx, target(t, container.RuntimeDocker, "", c.ID, c.PID))
	if !res.Done || !strings.Contains(res.Detail, "status 137") {
		t.Fatalf("%+v", res)
	}
	if running, err := c.Running(ctx); err != nil || running {
		t.Fatalf("running %v %v", running, err)
	}
	if res := l.Terminate(ctx, Target{Runtime: container.RuntimeDocker, ID: c.ID}); !res.Done || !strings.Contains(res.Detail, "already stopped") {
		t.Fatalf("again: %+v", res)
	}
	if res := l.Terminate(ctx, Target{Runtime: container.RuntimeDocker, ID: "../x"}); res.Done {
		t.Fatalf("hostile id: %+v", res)
	}
}

func TestDo(t *testing.T) {
	l := local(t)
	if res := Do(context.Background(), l, model.ActionLog, Target{}); !res.Done {
		t.Fatalf("log: %+v", res)
	}
	if res := Do(context.Background(), l, model.ActionBlock, Target{}); res.Done || res.Error == "" {
		t.Fatalf("block: %+v", res)
	}
	if res := l.Isolate(context.Background(), Target{}); res.Done {
		t.Fatalf("isolate without a PID: %+v", res)
	}
	if res := l.Terminate(context.Background(), Target{Runtime: "podman"}); res.Done {
		t.Fatalf("unknown runtime: %+v", res)
	}
}
