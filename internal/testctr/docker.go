package testctr

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// Docker is an isolated dockerd (Debian's docker.io) on top of a Daemon's
// containerd (namespace "moby", as a stock dockerd): data root, exec root,
// pid file, config and socket under its Dir, no iptables, no bridge, no
// IP forwarding, so it changes nothing on the machine. A registry on
// loopback serves the test images so that `docker pull` records the
// manifest digest (RepoDigests) as it does from a real registry.
type Docker struct {
	Dir    string
	Socket string
	d      *Daemon

	cmd       *exec.Cmd
	done      <-chan struct{}
	reg       *http.Server
	removeKey bool
	// RegistryHost is the loopback registry ("127.0.0.1:port"); dockerd
	// treats 127.0.0.0/8 registries as insecure (plain HTTP) by default.
	RegistryHost string
}

// trustKey is where dockerd 20.10 keeps its libtrust key.
const trustKey = "/etc/docker/key.json"

// StartDocker starts dockerd on d's containerd.
func StartDocker(ctx context.Context, d *Daemon) (*Docker, error) {
	bin, err := exec.LookPath("dockerd")
	if err != nil {
		return nil, fmt.Errorf("testctr: no dockerd (apt-get install docker.io): %w", err)
	}
	if _, err := exec.LookPath("docker"); err != nil {
		return nil, fmt.Errorf("testctr: no docker CLI (apt-get install docker.io): %w", err)
	}
	dir, err := os.MkdirTemp("", "mdkr")
	if err != nil {
		return nil, fmt.Errorf("testctr: temp dir: %w", err)
	}
	k := &Docker{Dir: dir, Socket: filepath.Join(dir, "d.sock"), d: d}
	// dockerd 20.10 writes a trust key to /etc/docker/key.json (no flag
	// moves it); Close removes it when it was not there before.
	if _, err := os.Stat(trustKey); errors.Is(err, os.ErrNotExist) {
		k.removeKey = true
	}
	cfg := filepath.Join(dir, "daemon.json")
	if err := os.WriteFile(cfg, []byte("{}\n"), 0o600); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("testctr: docker config: %w", err)
	}
	if err := k.startRegistry(); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	logPath := filepath.Join(dir, "dockerd.log")
	logf, err := os.Create(logPath)
	if err != nil {
		k.Close()
		return nil, fmt.Errorf("testctr: dockerd log: %w", err)
	}
	cmd := exec.Command(bin,
		"--config-file", cfg,
		"--containerd", d.Address,
		"--data-root", filepath.Join(dir, "root"),
		"--exec-root", filepath.Join(dir, "exec"),
		"--pidfile", filepath.Join(dir, "docker.pid"),
		"-H", "unix://"+k.Socket,
		"--iptables=false", "--ip6tables=false", "--ip-forward=false", "--ip-masq=false",
		"--bridge=none", "--userland-proxy=false")
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = append(os.Environ(), "DOCKER_CONFIG="+filepath.Join(dir, "cli"))
	done, err := startLocked(cmd)
	logf.Close()
	if err != nil {
		k.Close()
		return nil, fmt.Errorf("testctr: start dockerd: %w", err)
	}
	k.cmd, k.done = cmd, done
	wctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	for {
		if _, err := k.CLI(wctx, "version", "--format", "{{.Server.Version}}"); err == nil {
			return k, nil
		}
		select {
		case <-done:
			b, _ := os.ReadFile(logPath)
			k.Close()
			return nil, fmt.Errorf("testctr: dockerd exited at start; log:\n%s", b)
		case <-wctx.Done():
			b, _ := os.ReadFile(logPath)
			k.Close()
			return nil, fmt.Errorf("testctr: dockerd did not answer within %s; log:\n%s", startTimeout, b)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func (k *Docker) startRegistry() error {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("testctr: registry listener: %w", err)
	}
	k.RegistryHost = l.Addr().String()
	k.reg = &http.Server{
		Handler:           registry.New(registry.Logger(log.New(ioDiscard{}, "", 0))),
		ReadHeaderTimeout: 10 * time.Second,
	}
	go func() { _ = k.reg.Serve(l) }() // ErrServerClosed at Close
	return nil
}

type ioDiscard struct{}

func (ioDiscard) Write(p []byte) (int, error) { return len(p), nil }

// CLI runs the docker CLI against this dockerd.
func (k *Docker) CLI(ctx context.Context, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, cmdTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "docker", append([]string{"-H", "unix://" + k.Socket}, args...)...)
	cmd.Env = append(os.Environ(), "DOCKER_CONFIG="+filepath.Join(k.Dir, "cli"))
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("docker %s: %w: %s", strings.Join(args, " "), err, stderr.String())
	}
	return stdout.String(), nil
}

// Pull builds spec, pushes it to the loopback registry and pulls it into
// dockerd. Ref is "127.0.0.1:<port>/mamori-test/busybox:<random>";
// Digest is the manifest digest dockerd records in RepoDigests.
func (k *Docker) Pull(t testing.TB, spec ImageSpec) Image {
	t.Helper()
	img, err := BuildImage(spec)
	if err != nil {
		t.Fatal(err)
	}
	repo := spec.Repo
	if repo == "" {
		repo = "mamori-test/busybox"
	}
	ref := k.RegistryHost + "/" + repo + ":" + RandomTag()
	tag, err := name.NewTag(ref, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(tag, img); err != nil {
		t.Fatalf("push %s: %v", ref, err)
	}
	if _, err := k.CLI(context.Background(), "pull", "-q", ref); err != nil {
		t.Fatal(err)
	}
	dg, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	cn, err := img.ConfigName()
	if err != nil {
		t.Fatal(err)
	}
	return Image{Ref: ref, Digest: dg.String(), ID: cn.String(), Image: img}
}

// DockerRun is a Docker container to run.
type DockerRun struct {
	Name    string // default "mamori-<random>"
	Image   Image
	Args    []string
	Labels  map[string]string
	Network string // default "none" (dockerd runs without a bridge)
}

// DockerContainer is a container started by Docker.Run.
type DockerContainer struct {
	k    *Docker
	ID   string // 64 hex digits
	Name string
	PID  int
}

// Run starts spec detached; the container is removed when the test ends.
func (k *Docker) Run(t testing.TB, spec DockerRun) *DockerContainer {
	t.Helper()
	ctx := context.Background()
	if spec.Name == "" {
		spec.Name = "mamori-" + RandomTag()
	}
	if spec.Network == "" {
		spec.Network = "none"
	}
	args := []string{"run", "-d", "--name", spec.Name, "--network", spec.Network}
	keys := make([]string, 0, len(spec.Labels))
	for l := range spec.Labels {
		keys = append(keys, l)
	}
	sort.Strings(keys)
	for _, l := range keys {
		args = append(args, "--label", l+"="+spec.Labels[l])
	}
	args = append(append(args, spec.Image.Ref), spec.Args...)
	out, err := k.CLI(ctx, args...)
	if err != nil {
		t.Fatal(err)
	}
	c := &DockerContainer{k: k, ID: strings.TrimSpace(out), Name: spec.Name}
	t.Cleanup(func() {
		if err := c.Remove(context.Background()); err != nil {
			t.Errorf("remove docker container %s: %v", c.Name, err)
		}
	})
	pid, err := k.CLI(ctx, "inspect", "--format", "{{.State.Pid}}", c.ID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fmt.Sscan(pid, &c.PID); err != nil || c.PID <= 0 {
		t.Fatalf("pid of %s: %q %v", c.Name, pid, err)
	}
	return c
}

// Exec runs args in the container and returns its standard output.
func (c *DockerContainer) Exec(ctx context.Context, args ...string) (string, error) {
	return c.k.CLI(ctx, append([]string{"exec", c.ID}, args...)...)
}

// Running says whether Docker reports the container running.
func (c *DockerContainer) Running(ctx context.Context) (bool, error) {
	out, err := c.k.CLI(ctx, "inspect", "--format", "{{json .State.Running}}", c.ID)
	if err != nil {
		return false, err
	}
	var running bool
	if err := json.Unmarshal([]byte(strings.TrimSpace(out)), &running); err != nil {
		return false, fmt.Errorf("testctr: inspect %s: %q: %w", c.ID, out, err)
	}
	return running, nil
}

// Remove removes the container (docker rm -f); a missing one is fine.
func (c *DockerContainer) Remove(ctx context.Context) error {
	if c.k.cmd == nil {
		return nil // Close removed everything
	}
	if _, err := c.k.CLI(ctx, "rm", "-f", c.ID); err != nil && !strings.Contains(err.Error(), "No such container") {
		return err
	}
	return nil
}

// Close removes every container, stops dockerd and the registry and
// removes Dir (unmounting what dockerd left mounted there).
func (k *Docker) Close() error {
	var errs []error
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if k.cmd != nil {
		out, err := k.CLI(ctx, "ps", "-aq")
		if err != nil {
			errs = append(errs, err)
		}
		if ids := strings.Fields(out); len(ids) > 0 {
			if _, err := k.CLI(ctx, append([]string{"rm", "-f"}, ids...)...); err != nil {
				errs = append(errs, err)
			}
		}
		_ = k.cmd.Process.Signal(syscall.SIGTERM) // fails only when it exited already
		select {
		case <-k.done:
		case <-time.After(stopTimeout):
			_ = k.cmd.Process.Kill()
			<-k.done
		}
		k.cmd = nil
	}
	if k.reg != nil {
		errs = append(errs, k.reg.Close())
	}
	mounts, err := mountsUnder(k.Dir)
	errs = append(errs, err)
	for i := len(mounts) - 1; i >= 0; i-- {
		if err := syscall.Unmount(mounts[i], syscall.MNT_DETACH); err != nil {
			errs = append(errs, fmt.Errorf("testctr: unmount %s: %w", mounts[i], err))
		}
	}
	// Docker's cgroup parent /docker is removed when empty (another
	// dockerd's containers keep it busy, and then it stays).
	for _, p := range cgroupDirs("docker") {
		if err := syscall.Rmdir(p); err != nil && !errors.Is(err, syscall.ENOENT) && !errors.Is(err, syscall.EBUSY) {
			errs = append(errs, fmt.Errorf("testctr: remove cgroup %s: %w", p, err))
		}
	}
	if err := os.RemoveAll(k.Dir); err != nil {
		errs = append(errs, fmt.Errorf("testctr: remove %s: %w", k.Dir, err))
	}
	if k.removeKey {
		if err := os.Remove(trustKey); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, fmt.Errorf("testctr: remove %s: %w", trustKey, err))
		}
	}
	return errors.Join(errs...)
}

// cgroupDirs lists rel in every mounted cgroup hierarchy where it exists.
func cgroupDirs(rel string) []string {
	roots, _ := filepath.Glob("/sys/fs/cgroup/*") // the pattern is valid
	roots = append(roots, "/sys/fs/cgroup")
	var out []string
	for _, r := range roots {
		p := filepath.Join(r, rel)
		if fi, err := os.Stat(p); err == nil && fi.IsDir() {
			out = append(out, p)
		}
	}
	return out
}
