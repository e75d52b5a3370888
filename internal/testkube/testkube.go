// Package testkube gives end-to-end tests a real local Kubernetes cluster:
// the one scripts/cluster.sh starts (etcd, kube-apiserver, controller-manager
// and scheduler on loopback, one real node with kubelet + containerd + runc,
// kwok fake nodes, mamori server and, when built, mamori cluster).
//
// A test calls Start; the package's TestMain calls Main:
//
//	func TestMain(m *testing.M) { os.Exit(testkube.Main(m)) }
//
//	func TestSomething(t *testing.T) {
//		c := testkube.Start(t)
//		ns := c.Namespace(t)
//		...
//	}
//
// Start skips unless MAMORI_TEST_KUBE=1 (or MAMORI_KUBECONFIG names a
// running cluster). It uses a cluster that is already up — MAMORI_KUBECONFIG,
// or the status file of scripts/cluster.sh in the clone (.cluster/status) —
// and otherwise runs `scripts/cluster.sh up` once per test binary in a run
// dir of its own; Main runs `down` after the tests and fails the binary
// when down left anything behind.
package testkube

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// Environment switches and names shared with scripts/cluster.sh.
const (
	// EnvEnable=1 lets Start use or start a cluster (needs root to start one).
	EnvEnable = "MAMORI_TEST_KUBE"
	// EnvKubeconfig names the kubeconfig of a running cluster to use; its
	// directory's status file (when there) gives the rest.
	EnvKubeconfig = "MAMORI_KUBECONFIG"

	// BusyboxImage is the node's test image (busybox-static, imported at up).
	BusyboxImage = "mamori.local/busybox:1"
	// PauseImage is the node's sandbox image.
	PauseImage = "mamori.local/pause:3.10"
	// NodeLabel is "real" on the real node and "kwok" on the fake ones.
	NodeLabel = "mamori.local/node"
	// RealNodeTaint keeps pods off the real node unless they tolerate it
	// (OnRealNode does); everything else is scheduled to kwok nodes.
	RealNodeTaint = "mamori.local/real-node"

	// upTimeout bounds scripts/cluster.sh up when the kube binaries are
	// already built; a first build adds its own time (run
	// scripts/cluster.sh build first in CI).
	upTimeout = 45 * time.Minute
)

// Cluster is a running local cluster and clients for it.
type Cluster struct {
	// Dir is the run dir of scripts/cluster.sh ("" for a bare kubeconfig).
	Dir string
	// Kubeconfig is an admin kubeconfig (client certificate, system:masters).
	Kubeconfig string
	// RESTConfig and the clients are built from Kubeconfig.
	RESTConfig *rest.Config
	Client     kubernetes.Interface
	Dynamic    dynamic.Interface
	// ServerURL, ServerCA and TokenFile reach mamori server (admin token).
	ServerURL string
	ServerCA  string
	TokenFile string
	// RealNode is the name of the kubelet node; ContainerdSocket its containerd.
	RealNode         string
	ContainerdSocket string
	// BinDir holds kubectl, helm and the other kube binaries of this version;
	// ImageDir the node images (busybox.tar, pause.tar).
	BinDir   string
	ImageDir string
	// Component is "running" when mamori cluster was started with the
	// cluster, "none" when this mamori build has no cluster command.
	Component string
	// PortBase is the first of the cluster's 16 loopback ports.
	PortBase int

	owned bool // started by this test binary, which takes it down
	repo  string
}

// shared is the cluster of this test binary: started (or found) once by
// the first Start, taken down by Main.
var shared struct {
	mu      sync.Mutex
	started bool
	c       *Cluster
	err     error
	down    bool
	before  map[string]string // sysctls before up
}

// Start returns the cluster of this test binary, finding or starting it on
// first use. It skips the test unless MAMORI_TEST_KUBE=1 or
// MAMORI_KUBECONFIG is set, and fails it when the cluster cannot be had.
func Start(t testing.TB) *Cluster {
	t.Helper()
	if os.Getenv(EnvEnable) != "1" && os.Getenv(EnvKubeconfig) == "" {
		t.Skipf("local Kubernetes e2e: set %s=1 to use the running scripts/cluster.sh cluster or start one (root; builds the kube binaries once, cached), or %s=<kubeconfig>", EnvEnable, EnvKubeconfig)
	}
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if shared.down {
		t.Fatal("testkube: the cluster of this test binary was already taken down")
	}
	if !shared.started {
		shared.started = true
		shared.c, shared.err = acquire(context.Background())
	}
	if shared.err != nil {
		t.Fatalf("testkube: %v", shared.err)
	}
	return shared.c
}

// Main runs the tests, then takes the cluster down when this binary
// started it and checks that nothing was left behind. Use it from TestMain:
// os.Exit(testkube.Main(m)).
func Main(m *testing.M) int {
	code := m.Run()
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if shared.c == nil || !shared.c.owned || shared.down {
		return code
	}
	if code != 0 {
		shared.c.dumpLogs(os.Stderr, 30)
	}
	if err := shared.c.downLocked(); err != nil {
		fmt.Fprintf(os.Stderr, "testkube: %v\n", err)
		return 1
	}
	return code
}

// Owned reports whether this test binary started the cluster (and will
// take it down).
func (c *Cluster) Owned() bool { return c.owned }

// Down takes down a cluster this test binary started and checks that
// nothing is left (processes, mounts, cgroups, ports, sysctls, run dir).
// Later Start calls in the binary fail.
func (c *Cluster) Down() error {
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if !c.owned {
		return errors.New("testkube: not taking down a cluster this test binary did not start")
	}
	if shared.down {
		return errors.New("testkube: already down")
	}
	return c.downLocked()
}

func (c *Cluster) downLocked() error {
	shared.down = true
	cmd := exec.Command(filepath.Join(c.repo, "scripts", "cluster.sh"), "down")
	cmd.Env = append(os.Environ(), "MAMORI_CLUSTER_DIR="+c.Dir)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("scripts/cluster.sh down: %w\n%s", err, out)
	}
	if left := Leftovers(c.Dir, c.PortBase, shared.before); len(left) > 0 {
		return fmt.Errorf("scripts/cluster.sh down left behind:\n  %s", strings.Join(left, "\n  "))
	}
	return nil
}

// acquire finds a running cluster or starts one.
func acquire(ctx context.Context) (*Cluster, error) {
	repo, err := repoRoot()
	if err != nil {
		return nil, err
	}
	if kc := os.Getenv(EnvKubeconfig); kc != "" {
		st := map[string]string{"KUBECONFIG": kc}
		if f, err := os.Open(filepath.Join(filepath.Dir(kc), "status")); err == nil {
			s, perr := ParseStatus(f)
			f.Close()
			if perr != nil {
				return nil, perr
			}
			if s["KUBECONFIG"] == kc {
				st = s
			}
		}
		return connect(ctx, repo, st, false)
	}
	if f, err := os.Open(filepath.Join(repo, ".cluster", "status")); err == nil {
		st, perr := ParseStatus(f)
		f.Close()
		if perr != nil {
			return nil, perr
		}
		if c, err := connect(ctx, repo, st, false); err == nil {
			return c, nil
		}
		// a stale status file: start a cluster of our own instead
	}
	if os.Geteuid() != 0 {
		return nil, errors.New("starting a local cluster needs root (kubelet, containerd, mounts); or start one with `sudo make cluster-up` and set " + EnvKubeconfig)
	}
	cleanStale(repo)
	dir := filepath.Join(os.TempDir(), fmt.Sprintf("mamori-kube-%d", os.Getpid()))
	shared.before = ReadSysctls()
	ctx, cancel := context.WithTimeout(ctx, upTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(repo, "scripts", "cluster.sh"), "up")
	cmd.Env = append(os.Environ(), "MAMORI_CLUSTER_DIR="+dir)
	cmd.Stderr = os.Stderr // progress lines, in the test log
	start := time.Now()
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("scripts/cluster.sh up: %w\n%s", err, out)
	}
	fmt.Fprintf(os.Stderr, "testkube: cluster up in %s (%s)\n", time.Since(start).Round(100*time.Millisecond), dir)
	f, err := os.Open(filepath.Join(dir, "status"))
	if err != nil {
		return nil, fmt.Errorf("cluster up but no status file: %w", err)
	}
	st, err := ParseStatus(f)
	f.Close()
	if err != nil {
		return nil, err
	}
	c, err := connect(ctx, repo, st, true)
	if err != nil {
		return nil, err
	}
	return c, nil
}

// connect builds the clients from a status and checks the apiserver answers.
func connect(ctx context.Context, repo string, st map[string]string, owned bool) (*Cluster, error) {
	kc := st["KUBECONFIG"]
	if kc == "" {
		return nil, errors.New("status has no KUBECONFIG")
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", kc)
	if err != nil {
		return nil, fmt.Errorf("kubeconfig %s: %w", kc, err)
	}
	cfg.QPS, cfg.Burst = 100, 200
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("clientset: %w", err)
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("dynamic client: %w", err)
	}
	c := &Cluster{
		Dir: st["MAMORI_CLUSTER_DIR"], Kubeconfig: kc, RESTConfig: cfg, Client: cs, Dynamic: dyn,
		ServerURL: st["MAMORI_SERVER"], ServerCA: st["MAMORI_SERVER_CA"], TokenFile: st["MAMORI_TOKEN_FILE"],
		RealNode: st["MAMORI_CLUSTER_NODE"], ContainerdSocket: st["MAMORI_CLUSTER_CONTAINERD"],
		BinDir: st["MAMORI_CLUSTER_BIN"], ImageDir: st["MAMORI_CLUSTER_IMAGES"], Component: st["MAMORI_CLUSTER_COMPONENT"],
		owned: owned, repo: repo,
	}
	if p := st["MAMORI_CLUSTER_PORT"]; p != "" {
		if c.PortBase, err = strconv.Atoi(p); err != nil {
			return nil, fmt.Errorf("status: MAMORI_CLUSTER_PORT %q: %w", p, err)
		}
	}
	// the apiserver must answer (a stale status file names a dead cluster)
	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := cs.Discovery().RESTClient().Get().AbsPath("/readyz").Do(rctx).Error(); err != nil {
		return nil, fmt.Errorf("apiserver of %s not ready: %w", kc, err)
	}
	return c, nil
}

var statusKey = regexp.MustCompile(`^[A-Z][A-Z0-9_]*$`)

// ParseStatus reads scripts/cluster.sh's status file: KEY=VALUE lines
// (blank lines and # comments allowed). Anything else is an error.
func ParseStatus(r io.Reader) (map[string]string, error) {
	st := map[string]string{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 64<<10)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok || !statusKey.MatchString(k) {
			return nil, fmt.Errorf("cluster status line %d: want KEY=VALUE, got %.60q", n, line)
		}
		st[k] = v
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read cluster status: %w", err)
	}
	return st, nil
}

// repoRoot is the directory of mamori's go.mod above the working directory
// (a test binary runs in its package's directory).
func repoRoot() (string, error) {
	d, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("working directory: %w", err)
	}
	for {
		if b, err := os.ReadFile(filepath.Join(d, "go.mod")); err == nil && strings.HasPrefix(string(b), "module mamori\n") {
			if _, err := os.Stat(filepath.Join(d, "scripts", "cluster.sh")); err == nil {
				return d, nil
			}
		}
		p := filepath.Dir(d)
		if p == d {
			return "", errors.New("testkube: no mamori checkout (go.mod + scripts/cluster.sh) above the working directory")
		}
		d = p
	}
}

// cleanStale takes down clusters earlier test binaries started and did not
// take down (killed by a timeout): run dirs /tmp/mamori-kube-<pid> whose
// process is gone.
func cleanStale(repo string) {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), "mamori-kube-*"))
	for _, d := range dirs {
		pid, err := strconv.Atoi(strings.TrimPrefix(filepath.Base(d), "mamori-kube-"))
		if err != nil || pid == os.Getpid() {
			continue
		}
		if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); err == nil {
			continue // its test binary still runs
		}
		cmd := exec.Command(filepath.Join(repo, "scripts", "cluster.sh"), "down")
		cmd.Env = append(os.Environ(), "MAMORI_CLUSTER_DIR="+d)
		if out, err := cmd.CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "testkube: taking down the stale cluster in %s: %v\n%s", d, err, out)
		}
	}
}

// dumpLogs writes the last n lines of every component log (after a failure).
func (c *Cluster) dumpLogs(w io.Writer, n int) {
	logs, _ := filepath.Glob(filepath.Join(c.Dir, "logs", "*.log"))
	for _, l := range logs {
		b, err := os.ReadFile(l)
		if err != nil {
			continue
		}
		lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
		if len(lines) > n {
			lines = lines[len(lines)-n:]
		}
		fmt.Fprintf(w, "--- %s (last %d lines)\n%s\n", l, len(lines), strings.Join(lines, "\n"))
	}
}

// CgroupRoot is the cgroup parent scripts/cluster.sh gives the kubelet of
// the cluster in dir: /mamori-<first 10 hex of sha256(dir)>.
func CgroupRoot(dir string) string {
	h := sha256.Sum256([]byte(dir))
	return "/mamori-" + hex.EncodeToString(h[:])[:10]
}
