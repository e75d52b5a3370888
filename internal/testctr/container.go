package testctr

import (
	"archive/tar"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	containersapi "github.com/containerd/containerd/api/services/containers/v1"
	snapshotsapi "github.com/containerd/containerd/api/services/snapshots/v1"
	tasksapi "github.com/containerd/containerd/api/services/tasks/v1"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// DefaultRepo is the repository of test images.
const DefaultRepo = "docker.io/mamori-test/busybox"

// Image is an image imported into a daemon.
type Image struct {
	Ref    string // full reference, "docker.io/mamori-test/busybox:<random>"
	Digest string // manifest digest (sha256:...), as containerd's image store records it
	ID     string // config digest (Docker's image ID)
	Image  v1.Image
}

// Import imports img under ref into namespace ns (an OCI archive through
// `ctr images import`, which also unpacks it into the overlayfs
// snapshotter). containerd keeps the manifest as built, so Digest is
// img's digest.
func (d *Daemon) Import(ctx context.Context, ns string, img v1.Image, ref string) (Image, error) {
	dg, err := img.Digest()
	if err != nil {
		return Image{}, fmt.Errorf("testctr: image digest: %w", err)
	}
	cn, err := img.ConfigName()
	if err != nil {
		return Image{}, fmt.Errorf("testctr: image config digest: %w", err)
	}
	dir, err := os.MkdirTemp(d.Dir, "oci")
	if err != nil {
		return Image{}, fmt.Errorf("testctr: temp dir: %w", err)
	}
	defer os.RemoveAll(dir)
	lp, err := layout.Write(filepath.Join(dir, "layout"), empty.Index)
	if err != nil {
		return Image{}, fmt.Errorf("testctr: OCI layout: %w", err)
	}
	if err := lp.AppendImage(img, layout.WithAnnotations(map[string]string{
		"io.containerd.image.name":          ref,
		"org.opencontainers.image.ref.name": ref,
	})); err != nil {
		return Image{}, fmt.Errorf("testctr: write OCI layout: %w", err)
	}
	archive := filepath.Join(dir, "image.tar")
	if err := tarDir(filepath.Join(dir, "layout"), archive); err != nil {
		return Image{}, err
	}
	if _, err := d.Ctr(ctx, ns, "images", "import", archive); err != nil {
		return Image{}, fmt.Errorf("testctr: import %s: %w", ref, err)
	}
	return Image{Ref: ref, Digest: dg.String(), ID: cn.String(), Image: img}, nil
}

// tarDir writes the files under dir to a tar at out (names relative to dir).
func tarDir(dir, out string) error {
	f, err := os.Create(out)
	if err != nil {
		return fmt.Errorf("testctr: create %s: %w", out, err)
	}
	tw := tar.NewWriter(f)
	werr := filepath.WalkDir(dir, func(p string, de os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil || rel == "." {
			return err
		}
		fi, err := de.Info()
		if err != nil {
			return err
		}
		h, err := tar.FileInfoHeader(fi, "")
		if err != nil {
			return err
		}
		h.Name = filepath.ToSlash(rel)
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if !fi.Mode().IsRegular() {
			return nil
		}
		r, err := os.Open(p)
		if err != nil {
			return err
		}
		defer r.Close()
		_, err = io.Copy(tw, r)
		return err
	})
	cerr := tw.Close()
	ferr := f.Close()
	if werr != nil || cerr != nil || ferr != nil {
		return fmt.Errorf("testctr: tar %s: %v %v %v", dir, werr, cerr, ferr)
	}
	return nil
}

// BuildImage builds spec (random tag) and imports it into namespace ns
// (the daemon's own namespace when empty); it fails the test on error.
func (d *Daemon) BuildImage(t testing.TB, ns string, spec ImageSpec) Image {
	t.Helper()
	img, err := BuildImage(spec)
	if err != nil {
		t.Fatal(err)
	}
	repo := spec.Repo
	if repo == "" {
		repo = DefaultRepo
	}
	if ns == "" {
		ns = d.Namespace
	}
	out, err := d.Import(context.Background(), ns, img, repo+":"+RandomTag())
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// RunSpec is a container to run.
type RunSpec struct {
	Namespace string // containerd namespace; default the daemon's
	ID        string // default "c-<random>"
	Image     Image
	Args      []string // command; default the image's
	Env       []string
	Labels    map[string]string
	// NetNS joins an existing network namespace (a path such as
	// /run/netns/x); empty gives the container a new one with only
	// loopback (ctr's default). HostNet shares the host's.
	NetNS   string
	HostNet bool
	// Cgroup is the cgroup path; empty keeps containerd's default
	// /<namespace>/<id>.
	Cgroup     string
	Privileged bool
	// Mounts are extra mounts in ctr's form:
	// "type=bind,src=/host/dir,dst=/data,options=rbind:rw".
	Mounts []string
}

// Container is a container started by Run.
type Container struct {
	d         *Daemon
	ID        string
	Namespace string
	PID       int // the init process, as the host sees it
	Image     Image
}

func (d *Daemon) runArgs(spec *RunSpec) []string {
	if spec.Namespace == "" {
		spec.Namespace = d.Namespace
	}
	if spec.ID == "" {
		spec.ID = "c-" + RandomTag()
	}
	args := []string{"--runc-root", d.RuncRoot}
	keys := make([]string, 0, len(spec.Labels))
	for k := range spec.Labels {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		args = append(args, "--label", k+"="+spec.Labels[k])
	}
	for _, e := range spec.Env {
		args = append(args, "--env", e)
	}
	switch {
	case spec.HostNet:
		args = append(args, "--net-host")
	case spec.NetNS != "":
		args = append(args, "--with-ns", "network:"+spec.NetNS)
	}
	if spec.Cgroup != "" {
		args = append(args, "--cgroup", spec.Cgroup)
	}
	if spec.Privileged {
		args = append(args, "--privileged")
	}
	for _, m := range spec.Mounts {
		args = append(args, "--mount", m)
	}
	return args
}

// Run starts spec detached (`ctr run -d`) and returns it once its init
// process runs. The container is removed when the test ends.
func (d *Daemon) Run(t testing.TB, spec RunSpec) *Container {
	t.Helper()
	ctx := context.Background()
	args := append([]string{"run", "-d"}, d.runArgs(&spec)...)
	args = append(append(args, spec.Image.Ref, spec.ID), spec.Args...)
	if _, err := d.Ctr(ctx, spec.Namespace, args...); err != nil {
		t.Fatal(err)
	}
	c := &Container{d: d, ID: spec.ID, Namespace: spec.Namespace, Image: spec.Image}
	t.Cleanup(func() {
		if err := c.Remove(context.Background()); err != nil {
			t.Errorf("remove container %s: %v", c.ID, err)
		}
	})
	resp, err := tasksapi.NewTasksClient(d.conn).Get(WithNamespace(ctx, spec.Namespace), &tasksapi.GetRequest{ContainerID: spec.ID})
	if err != nil {
		t.Fatalf("task of %s: %v", spec.ID, err)
	}
	c.PID = int(resp.GetProcess().GetPid())
	return c
}

// RunOnce runs spec in the foreground (`ctr run --rm`): it returns when
// the container has exited and been removed, with the command's standard
// output. For short-lived containers.
func (d *Daemon) RunOnce(ctx context.Context, spec RunSpec) (string, error) {
	args := append([]string{"run", "--rm"}, d.runArgs(&spec)...)
	args = append(append(args, spec.Image.Ref, spec.ID), spec.Args...)
	return d.Ctr(ctx, spec.Namespace, args...)
}

// Exec runs args in the container (`ctr task exec`) and returns its
// standard output; a non-zero exit is an error.
func (c *Container) Exec(ctx context.Context, args ...string) (string, error) {
	full := append([]string{"task", "exec", "--exec-id", "e-" + RandomTag(), c.ID}, args...)
	return c.d.Ctr(ctx, c.Namespace, full...)
}

// Kill sends sig to the container's init process (every process when all).
func (c *Container) Kill(ctx context.Context, sig syscall.Signal, all bool) error {
	_, err := tasksapi.NewTasksClient(c.d.conn).Kill(WithNamespace(ctx, c.Namespace),
		&tasksapi.KillRequest{ContainerID: c.ID, Signal: uint32(sig), All: all})
	if err != nil {
		return fmt.Errorf("testctr: kill %s: %w", c.ID, err)
	}
	return nil
}

// TaskStatus returns the task's status ("running", "stopped" ...), or
// "" when there is no task.
func (c *Container) TaskStatus(ctx context.Context) (string, error) {
	resp, err := tasksapi.NewTasksClient(c.d.conn).Get(WithNamespace(ctx, c.Namespace), &tasksapi.GetRequest{ContainerID: c.ID})
	if status.Code(err) == codes.NotFound {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("testctr: task of %s: %w", c.ID, err)
	}
	return strings.ToLower(resp.GetProcess().GetStatus().String()), nil
}

// Remove kills the task, deletes it, the container and its snapshot.
// Removing a container that is gone is not an error.
func (c *Container) Remove(ctx context.Context) error {
	if c.d.isClosed() {
		return nil
	}
	if c.d.PID() == 0 {
		return fmt.Errorf("testctr: remove %s: containerd is stopped", c.ID)
	}
	nctx := WithNamespace(ctx, c.Namespace)
	tasks := tasksapi.NewTasksClient(c.d.conn)
	if err := killTask(nctx, tasks, c.ID); err != nil {
		return err
	}
	ctrs := containersapi.NewContainersClient(c.d.conn)
	got, err := ctrs.Get(nctx, &containersapi.GetContainerRequest{ID: c.ID})
	if status.Code(err) == codes.NotFound {
		return nil
	}
	if err != nil {
		return fmt.Errorf("testctr: get container %s: %w", c.ID, err)
	}
	if _, err := ctrs.Delete(nctx, &containersapi.DeleteContainerRequest{ID: c.ID}); err != nil && status.Code(err) != codes.NotFound {
		return fmt.Errorf("testctr: delete container %s: %w", c.ID, err)
	}
	if k := got.GetContainer().GetSnapshotKey(); k != "" {
		_, err := snapshotsapi.NewSnapshotsClient(c.d.conn).Remove(nctx,
			&snapshotsapi.RemoveSnapshotRequest{Snapshotter: got.GetContainer().GetSnapshotter(), Key: k})
		if err != nil && status.Code(err) != codes.NotFound {
			return fmt.Errorf("testctr: remove snapshot %s: %w", k, err)
		}
	}
	return nil
}

// WaitGone polls until pid no longer exists (or timeout).
func WaitGone(pid int, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if err := syscall.Kill(pid, 0); err == syscall.ESRCH {
			return true
		}
		time.Sleep(10 * time.Millisecond)
	}
	return false
}

// FindProcess returns the PID of a process named comm (the kernel's
// 15-byte task name) whose parent is ppid, waiting up to timeout for it.
// Background processes of `ctr task exec ... sh -c 'x &'` are reparented
// to the container's init, so ppid is Container.PID.
func FindProcess(ppid int, comm string, timeout time.Duration) (int, error) {
	deadline := time.Now().Add(timeout)
	for {
		ents, err := os.ReadDir("/proc")
		if err != nil {
			return 0, fmt.Errorf("testctr: read /proc: %w", err)
		}
		for _, de := range ents {
			b, err := os.ReadFile(filepath.Join("/proc", de.Name(), "stat"))
			if err != nil {
				continue // not a process, or gone
			}
			s := string(b)
			i, j := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
			if i < 0 || j < i || s[i+1:j] != comm {
				continue
			}
			if f := strings.Fields(s[j+1:]); len(f) > 1 && f[1] == strconv.Itoa(ppid) {
				pid, err := strconv.Atoi(de.Name())
				if err == nil {
					return pid, nil
				}
			}
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("testctr: no process %q with parent %d after %s", comm, ppid, timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
