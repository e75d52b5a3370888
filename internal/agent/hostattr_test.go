package agent

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"mamori/internal/runtime/container"
)

// oneContainer is a container runtime with one running container.
type oneContainer struct{ info container.Info }

func (s oneContainer) Name() string { return "docker" }
func (s oneContainer) Owns(ref container.CgroupRef) bool {
	return ref.Runtime == container.RuntimeDocker
}
func (s oneContainer) List(context.Context) ([]container.Info, error) {
	return []container.Info{s.info}, nil
}
func (s oneContainer) Get(_ context.Context, ref container.CgroupRef) (container.Info, error) {
	if ref.ID == s.info.ID {
		return s.info, nil
	}
	return container.Info{}, container.ErrNotFound
}
func (s oneContainer) Watch(ctx context.Context, ready func(), _ func(container.Change)) error {
	ready()
	<-ctx.Done()
	return nil
}
func (s oneContainer) Close() error { return nil }

// TestHostAttribution: a host event's process (by PID, through its cgroup)
// or file (under /proc/PID/root) is attributed with the runtime's name,
// image and digest, not only the cgroup's ID; a host process, a process
// that is gone and other paths are not.
func TestHostAttribution(t *testing.T) {
	id := strings.Repeat("c0ffee", 10) + "abcd"
	proc := t.TempDir()
	write := func(pid, name, data string) {
		if err := os.MkdirAll(filepath.Join(proc, pid), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(proc, pid, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	stat := func(pid string) string {
		return pid + " (sh) S 1 1 1 0 -1 4194560 1 0 0 0 0 0 0 0 20 0 1 0 4242 1 1 18446744073709551615 0 0 0 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0\n"
	}
	write("4242", "stat", stat("4242"))
	write("4242", "cgroup", "0::/system.slice/docker-"+id+".scope\n")
	write("77", "stat", stat("77"))
	write("77", "cgroup", "0::/user.slice/user-0.slice/session-1.scope\n")
	inf := container.Info{}
	inf.ID, inf.Name, inf.Image, inf.ImageDigest, inf.Runtime = id, "web", "shop/web:1", "sha256:"+strings.Repeat("a", 64), container.RuntimeDocker
	inf.Labels = map[string]string{"app": "web"}
	res, err := container.New(container.WithSources(oneContainer{info: inf}), container.WithProcRoot(proc))
	if err != nil {
		t.Fatal(err)
	}
	got := attributePID(res, 4242)
	c := got.Container
	if c == nil || c.ID != id || c.Name != "web" || c.Image != "shop/web:1" || c.ImageDigest != inf.ImageDigest || c.Runtime != "docker" || c.Labels["app"] != "web" {
		t.Fatalf("by PID: %+v", c)
	}
	if got := attributePath(res, proc, filepath.Join(proc, "4242", "root", "srv", "eicar.com")); got.Container == nil || got.Container.Name != "web" {
		t.Errorf("by /proc/PID/root path: %+v", got)
	}
	for _, p := range []string{filepath.Join(proc, "4242", "cwd", "x"), "/srv/eicar.com", filepath.Join(proc, "abc", "root", "x"),
		containerdTaskDir + "default/unknown/rootfs/x"} {
		if got := attributePath(res, proc, p); got.Container != nil {
			t.Errorf("path %s attributed to %+v", p, got.Container)
		}
	}
	if got := attributePID(res, 77); got.Container != nil {
		t.Errorf("a host process: %+v", got.Container)
	}
	if got := attributePID(res, 9999); got.Container != nil {
		t.Errorf("a process that is gone: %+v", got.Container)
	}
	var rt *Runtime
	if got := rt.ContainerOfPID(4242); got.Container != nil {
		t.Error("no runtime module: attributed")
	}
}
