package testctr

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	containersapi "github.com/containerd/containerd/api/services/containers/v1"
	imagesapi "github.com/containerd/containerd/api/services/images/v1"
	namespacesapi "github.com/containerd/containerd/api/services/namespaces/v1"
	snapshotsapi "github.com/containerd/containerd/api/services/snapshots/v1"
	tasksapi "github.com/containerd/containerd/api/services/tasks/v1"
	versionapi "github.com/containerd/containerd/api/services/version/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/emptypb"
)

// Timeouts of daemon operations. Generous: the machines running the tests
// are small and shared, and a daemon start there takes about a second.
const (
	startTimeout = 60 * time.Second // containerd (or dockerd) answering after start
	stopTimeout  = 30 * time.Second // SIGTERM to exit, before SIGKILL
	cmdTimeout   = 2 * time.Minute  // one ctr / docker command
)

// NamespaceHeader is the gRPC metadata key naming the containerd namespace.
const NamespaceHeader = "containerd-namespace"

// CRINamespace is the containerd namespace of the CRI plugin (kubelet's).
const CRINamespace = "k8s.io"

// Daemon is an isolated containerd: its root, state, runc root and socket
// live under Dir, its containers go in a namespace of its own (and cgroups
// /<namespace>/<id>), so that it never touches a containerd the machine
// runs and several test binaries can run side by side.
type Daemon struct {
	Dir       string // everything the daemon writes, removed by Close
	Address   string // gRPC socket
	RuncRoot  string // runc's state (--root), under Dir
	Namespace string // the default containerd namespace of Run ("mamori-<random>")
	// CgroupPrefix is the cgroup parent of CRI pods ("/mamori-kubepods-<random>"):
	// a real kubelet on the machine owns /kubepods and removes pod cgroups it does not know.
	CgroupPrefix string
	SandboxImage string // the CRI pause image name (see CRI)

	config  string
	logPath string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done <-chan struct{} // closed when cmd exits
	conn *grpc.ClientConn
	// closed says Close ran: everything is removed already.
	closed bool
	// cri is the CRI client, made on first use.
	cri *CRI
}

// Start starts containerd with the configuration of
// /work/shared/recipes/runtime-local: the CRI plugin on (for CRI pods,
// restrict_oom_score_adj because these machines lack CAP_SYS_RESOURCE),
// no TCP stream server, no metrics listener.
func Start(ctx context.Context) (*Daemon, error) {
	bin, err := exec.LookPath("containerd")
	if err != nil {
		return nil, fmt.Errorf("testctr: no containerd binary (apt-get install containerd runc): %w", err)
	}
	if _, err := exec.LookPath("ctr"); err != nil {
		return nil, fmt.Errorf("testctr: no ctr binary (apt-get install containerd): %w", err)
	}
	if _, err := exec.LookPath("runc"); err != nil {
		return nil, fmt.Errorf("testctr: no runc binary (apt-get install runc): %w", err)
	}
	if os.Geteuid() != 0 {
		return nil, errors.New("testctr: containerd needs root")
	}
	// Short: unix socket paths are capped at 108 bytes, and containerd
	// appends to it.
	dir, err := os.MkdirTemp("", "mctr")
	if err != nil {
		return nil, fmt.Errorf("testctr: temp dir: %w", err)
	}
	tag := RandomTag()
	d := &Daemon{
		Dir:          dir,
		Address:      filepath.Join(dir, "c.sock"),
		RuncRoot:     filepath.Join(dir, "runc"),
		Namespace:    "mamori-" + tag,
		CgroupPrefix: "/mamori-kubepods-" + tag,
		SandboxImage: "docker.io/mamori-test/pause:" + tag,
		config:       filepath.Join(dir, "config.toml"),
		logPath:      filepath.Join(dir, "containerd.log"),
	}
	cfg := fmt.Sprintf(`version = 2
root = %[1]q
state = %[2]q
[grpc]
  address = %[3]q
[ttrpc]
  address = %[4]q
[debug]
  address = %[5]q
[metrics]
  address = ""
[plugins."io.containerd.internal.v1.opt"]
  path = %[6]q
[plugins."io.containerd.grpc.v1.cri"]
  disable_tcp_service = true
  stream_server_address = "127.0.0.1"
  sandbox_image = %[7]q
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
    runtime_type = "io.containerd.runc.v2"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
      SystemdCgroup = false
      Root = %[8]q
  [plugins."io.containerd.grpc.v1.cri".cni]
    conf_dir = %[9]q
`, filepath.Join(dir, "root"), filepath.Join(dir, "state"), d.Address, d.Address+".ttrpc",
		filepath.Join(dir, "debug.sock"), filepath.Join(dir, "opt"), d.SandboxImage, d.RuncRoot,
		filepath.Join(dir, "cni"))
	if err := os.WriteFile(d.config, []byte(cfg), 0o600); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("testctr: write config: %w", err)
	}
	d.cmd = nil
	if err := d.start(ctx, bin); err != nil {
		d.cleanupFiles()
		return nil, err
	}
	conn, err := grpc.NewClient("unix://"+d.Address,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(16<<20)))
	if err != nil {
		d.stop()
		d.cleanupFiles()
		return nil, fmt.Errorf("testctr: dial containerd: %w", err)
	}
	d.conn = conn
	return d, nil
}

// start runs the containerd binary and waits until it answers.
func (d *Daemon) start(ctx context.Context, bin string) error {
	logf, err := os.OpenFile(d.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("testctr: containerd log: %w", err)
	}
	cmd := exec.Command(bin, "--config", d.config)
	cmd.Stdout, cmd.Stderr = logf, logf
	done, err := startLocked(cmd)
	logf.Close()
	if err != nil {
		return fmt.Errorf("testctr: start containerd: %w", err)
	}
	d.mu.Lock()
	d.cmd, d.done = cmd, done
	d.mu.Unlock()

	wctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	for {
		out, err := exec.CommandContext(wctx, "ctr", "-a", d.Address, "version").CombinedOutput()
		if err == nil && bytes.Contains(out, []byte("Server:")) {
			return nil
		}
		select {
		case <-done:
			return fmt.Errorf("testctr: containerd exited at start; log:\n%s", d.Log())
		case <-wctx.Done():
			d.stop()
			return fmt.Errorf("testctr: containerd did not answer within %s; log:\n%s", startTimeout, d.Log())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// startLocked starts cmd in its own process group (a ^C of the test does
// not reach it before Close has removed the containers) with SIGTERM as
// its parent-death signal, so that a test binary that dies (a timeout
// panic) does not leave a daemon behind. The parent-death signal fires
// when the forking thread exits, so the fork happens on a goroutine that
// keeps its OS thread locked until the daemon has exited. The returned
// channel is closed when it has.
func startLocked(cmd *exec.Cmd) (<-chan struct{}, error) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	done := make(chan struct{})
	started := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		_ = cmd.Wait() // the exit status of a stopped daemon says nothing
		close(done)
	}()
	if err := <-started; err != nil {
		return nil, err
	}
	return done, nil
}

// stop sends SIGTERM to containerd and waits for it (SIGKILL after
// stopTimeout). The shims and the containers they run outlive it, as they
// do in production.
func (d *Daemon) stop() {
	d.mu.Lock()
	cmd, done := d.cmd, d.done
	d.cmd = nil
	d.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGTERM) // fails only when it already exited
	select {
	case <-done:
	case <-time.After(stopTimeout):
		_ = cmd.Process.Kill()
		<-done
	}
}

// PID is containerd's process id (0 when stopped).
func (d *Daemon) isClosed() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.closed
}

func (d *Daemon) PID() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.cmd == nil {
		return 0
	}
	return d.cmd.Process.Pid
}

// Restart stops containerd (SIGTERM) and starts it again with the same
// state; running containers survive, as in a production restart.
func (d *Daemon) Restart(ctx context.Context) error {
	bin, err := exec.LookPath("containerd")
	if err != nil {
		return fmt.Errorf("testctr: containerd binary: %w", err)
	}
	d.stop()
	return d.start(ctx, bin)
}

// Stop stops containerd without removing anything (Restart or Close
// later): for tests of a runtime that is away.
func (d *Daemon) Stop() { d.stop() }

// Resume starts a stopped containerd again.
func (d *Daemon) Resume(ctx context.Context) error {
	bin, err := exec.LookPath("containerd")
	if err != nil {
		return fmt.Errorf("testctr: containerd binary: %w", err)
	}
	return d.start(ctx, bin)
}

// Log returns containerd's log so far (for failure messages).
func (d *Daemon) Log() string {
	b, err := os.ReadFile(d.logPath)
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	if len(b) > 16<<10 {
		b = b[len(b)-16<<10:]
	}
	return string(b)
}

// Conn is a gRPC connection to the daemon (closed by Close).
func (d *Daemon) Conn() *grpc.ClientConn { return d.conn }

// WithNamespace returns ctx carrying the containerd namespace ns.
func WithNamespace(ctx context.Context, ns string) context.Context {
	return metadata.AppendToOutgoingContext(ctx, NamespaceHeader, ns)
}

// Ctr runs `ctr -a <socket> -n ns args...` and returns its standard
// output; the error includes standard error.
func (d *Daemon) Ctr(ctx context.Context, ns string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, cmdTimeout)
	defer cancel()
	full := append([]string{"-a", d.Address, "-n", ns}, args...)
	cmd := exec.CommandContext(ctx, "ctr", full...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("ctr %s: %w: %s%s", strings.Join(args, " "), err, stderr.String(), stdout.String())
	}
	return stdout.String(), nil
}

// Close removes every task, container, snapshot and image of every
// namespace, stops containerd, unmounts what is left under Dir, removes
// the cgroups of the daemon's namespaces and Dir itself. Errors are
// collected, never stop the clean-up.
func (d *Daemon) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return nil
	}
	d.closed = true
	d.mu.Unlock()
	var errs []error
	if d.cri != nil {
		errs = append(errs, d.cri.removeAll(ctx))
	}
	if d.PID() != 0 && d.conn != nil {
		errs = append(errs, d.removeAll(ctx))
	}
	d.stop()
	if d.cri != nil {
		errs = append(errs, d.cri.close())
	}
	if d.conn != nil {
		errs = append(errs, d.conn.Close())
	}
	errs = append(errs, d.cleanupFiles())
	return errors.Join(errs...)
}

// removeAll deletes every task, container, snapshot and image.
func (d *Daemon) removeAll(ctx context.Context) error {
	var errs []error
	nsl, err := namespacesapi.NewNamespacesClient(d.conn).List(ctx, &namespacesapi.ListNamespacesRequest{})
	if err != nil {
		return fmt.Errorf("testctr: list namespaces: %w", err)
	}
	tasks := tasksapi.NewTasksClient(d.conn)
	ctrs := containersapi.NewContainersClient(d.conn)
	snaps := snapshotsapi.NewSnapshotsClient(d.conn)
	imgs := imagesapi.NewImagesClient(d.conn)
	for _, ns := range nsl.GetNamespaces() {
		nctx := WithNamespace(ctx, ns.GetName())
		tl, err := tasks.List(nctx, &tasksapi.ListTasksRequest{})
		if err != nil {
			errs = append(errs, fmt.Errorf("testctr: list tasks of %s: %w", ns.GetName(), err))
		}
		for _, t := range tl.GetTasks() {
			errs = append(errs, killTask(nctx, tasks, t.GetID()))
		}
		cl, err := ctrs.List(nctx, &containersapi.ListContainersRequest{})
		if err != nil {
			errs = append(errs, fmt.Errorf("testctr: list containers of %s: %w", ns.GetName(), err))
		}
		for _, c := range cl.GetContainers() {
			if _, err := ctrs.Delete(nctx, &containersapi.DeleteContainerRequest{ID: c.GetID()}); err != nil && status.Code(err) != codes.NotFound {
				errs = append(errs, fmt.Errorf("testctr: delete container %s: %w", c.GetID(), err))
			}
			if c.GetSnapshotKey() != "" {
				_, err := snaps.Remove(nctx, &snapshotsapi.RemoveSnapshotRequest{Snapshotter: c.GetSnapshotter(), Key: c.GetSnapshotKey()})
				if err != nil && status.Code(err) != codes.NotFound {
					errs = append(errs, fmt.Errorf("testctr: remove snapshot %s: %w", c.GetSnapshotKey(), err))
				}
			}
		}
		il, err := imgs.List(nctx, &imagesapi.ListImagesRequest{})
		if err != nil {
			errs = append(errs, fmt.Errorf("testctr: list images of %s: %w", ns.GetName(), err))
		}
		for _, im := range il.GetImages() {
			if _, err := imgs.Delete(nctx, &imagesapi.DeleteImageRequest{Name: im.GetName()}); err != nil && status.Code(err) != codes.NotFound {
				errs = append(errs, fmt.Errorf("testctr: delete image %s: %w", im.GetName(), err))
			}
		}
	}
	return errors.Join(errs...)
}

// killTask kills a task (every process, SIGKILL), waits for it and
// deletes it.
func killTask(ctx context.Context, tasks tasksapi.TasksClient, id string) error {
	_, err := tasks.Kill(ctx, &tasksapi.KillRequest{ContainerID: id, Signal: uint32(syscall.SIGKILL), All: true})
	if err != nil && status.Code(err) != codes.NotFound && status.Code(err) != codes.FailedPrecondition {
		// FailedPrecondition: already stopped.
		return fmt.Errorf("testctr: kill task %s: %w", id, err)
	}
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if _, err := tasks.Wait(wctx, &tasksapi.WaitRequest{ContainerID: id}); err != nil && status.Code(err) != codes.NotFound {
		return fmt.Errorf("testctr: wait task %s: %w", id, err)
	}
	if _, err := tasks.Delete(ctx, &tasksapi.DeleteTaskRequest{ContainerID: id}); err != nil && status.Code(err) != codes.NotFound {
		return fmt.Errorf("testctr: delete task %s: %w", id, err)
	}
	return nil
}

// cleanupFiles unmounts whatever is still mounted under Dir (rootfs of a
// task whose shim died, CRI's shm), removes the cgroups of the daemon's
// namespaces and CRI prefix, and removes Dir.
func (d *Daemon) cleanupFiles() error {
	var errs []error
	mounts, err := mountsUnder(d.Dir)
	if err != nil {
		errs = append(errs, err)
	}
	for i := len(mounts) - 1; i >= 0; i-- { // deepest (latest) first
		if err := syscall.Unmount(mounts[i], syscall.MNT_DETACH); err != nil {
			errs = append(errs, fmt.Errorf("testctr: unmount %s: %w", mounts[i], err))
		}
	}
	for _, c := range []string{d.Namespace, strings.TrimPrefix(d.CgroupPrefix, "/")} {
		errs = append(errs, removeCgroups(c))
	}
	if err := os.RemoveAll(d.Dir); err != nil {
		errs = append(errs, fmt.Errorf("testctr: remove %s: %w", d.Dir, err))
	}
	return errors.Join(errs...)
}

// mountsUnder lists the mount points under dir, in mount order.
func mountsUnder(dir string) ([]string, error) {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil, fmt.Errorf("testctr: read mountinfo: %w", err)
	}
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 5 {
			continue
		}
		mp := unescapeMountinfo(f[4])
		if mp == dir || strings.HasPrefix(mp, dir+"/") {
			out = append(out, mp)
		}
	}
	return out, nil
}

func unescapeMountinfo(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			v := 0
			ok := true
			for _, c := range s[i+1 : i+4] {
				if c < '0' || c > '7' {
					ok = false
					break
				}
				v = v*8 + int(c-'0')
			}
			if ok {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// removeCgroups removes the cgroup directory tree named rel (relative to
// each hierarchy's root) in every mounted hierarchy, deepest first. Only
// empty cgroups can be removed; a busy one is reported.
func removeCgroups(rel string) error {
	if rel == "" || strings.Contains(rel, "..") {
		return nil
	}
	roots, err := filepath.Glob("/sys/fs/cgroup/*")
	if err != nil {
		return fmt.Errorf("testctr: cgroup roots: %w", err)
	}
	roots = append(roots, "/sys/fs/cgroup")
	var errs []error
	for _, root := range roots {
		top := filepath.Join(root, rel)
		if _, err := os.Stat(top); err != nil {
			continue
		}
		var dirs []string
		_ = filepath.WalkDir(top, func(p string, de os.DirEntry, err error) error {
			if err == nil && de.IsDir() {
				dirs = append(dirs, p)
			}
			return nil // a vanished entry is fine: we remove them anyway
		})
		for i := len(dirs) - 1; i >= 0; i-- {
			if err := syscall.Rmdir(dirs[i]); err != nil && !errors.Is(err, syscall.ENOENT) {
				errs = append(errs, fmt.Errorf("testctr: remove cgroup %s: %w", dirs[i], err))
			}
		}
	}
	return errors.Join(errs...)
}

// Version asks the daemon for its version (a liveness check).
func (d *Daemon) Version(ctx context.Context) (string, error) {
	v, err := versionapi.NewVersionClient(d.conn).Version(ctx, &emptypb.Empty{})
	if err != nil {
		return "", fmt.Errorf("testctr: containerd version: %w", err)
	}
	return v.GetVersion(), nil
}

// Shared is a containerd shared by the tests of one test binary, started
// on first use. Declare one in the test package and stop it in TestMain:
//
//	var ctrd testctr.Shared
//	func TestMain(m *testing.M) { os.Exit(ctrd.Main(m)) }
//	func TestX(t *testing.T) { d := ctrd.Get(t) ... }
type Shared struct {
	once sync.Once
	d    *Daemon
	err  error

	dockerOnce sync.Once
	docker     *Docker
	dockerErr  error
}

// Docker returns the shared dockerd (on the shared containerd), starting
// it on first use. It skips the test unless MAMORI_TEST_DOCKER=1 too.
func (s *Shared) Docker(t testing.TB) *Docker {
	t.Helper()
	d := s.Get(t)
	if os.Getenv(EnvDocker) != "1" {
		t.Skipf("set %s=1 (apt-get install docker.io) to run the Docker tests", EnvDocker)
	}
	s.dockerOnce.Do(func() {
		s.docker, s.dockerErr = StartDocker(context.Background(), d)
	})
	if s.dockerErr != nil {
		t.Fatal(s.dockerErr)
	}
	return s.docker
}

// Get returns the shared daemon, starting it on first use. It skips the
// test unless MAMORI_TEST_RUNTIME=1, and fails it when the daemon cannot
// start (the switch says the machine is meant to run it).
func (s *Shared) Get(t testing.TB) *Daemon {
	t.Helper()
	Require(t)
	s.once.Do(func() {
		s.d, s.err = Start(context.Background())
	})
	if s.err != nil {
		t.Fatal(s.err)
	}
	return s.d
}

// Main runs the tests and then closes the daemon if one was started.
func (s *Shared) Main(m *testing.M) int {
	code := m.Run()
	if s.docker != nil {
		if err := s.docker.Close(); err != nil {
			fmt.Fprintf(os.Stderr, "testctr: docker clean-up: %v\n", err)
			if code == 0 {
				code = 1
			}
		}
	}
	if s.d != nil {
		if err := s.d.Close(); err != nil {
			fmt.Fprintf(os.Stderr, "testctr: clean-up: %v\n", err)
			if code == 0 {
				code = 1
			}
		}
	}
	return code
}

// EnvRuntime is the switch of the runtime e2e tests (root, containerd and
// runc installed, kernel state changed and restored).
const EnvRuntime = "MAMORI_TEST_RUNTIME"

// EnvDocker is the additional switch of the Docker tests.
const EnvDocker = "MAMORI_TEST_DOCKER"

// Require skips the test unless MAMORI_TEST_RUNTIME=1 and fails it when
// that is set but the test cannot run (not root).
func Require(t testing.TB) {
	t.Helper()
	if os.Getenv(EnvRuntime) != "1" {
		t.Skipf("set %s=1 (root; apt-get install containerd runc busybox-static) to run the runtime e2e tests", EnvRuntime)
	}
	if os.Geteuid() != 0 {
		t.Fatalf("%s=1 but not root", EnvRuntime)
	}
}
