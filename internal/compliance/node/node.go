// Package node collects a node's compliance posture (posture.Node) for
// NIST SP 800-190 §4.3.2, §4.3.5, §4.4.1, §4.5.1, §4.5.3 and §4.5.4 and the
// CIS Kubernetes Benchmark's worker-node items: the kubelet's
// configuration, users with login shells, sudoers rules, the SSH daemon's
// settings and the listening sockets, read from a file-system root and a
// /proc. The agent calls Collect on its node (Root "/") and adds what only
// it knows: its protection modules' state, the containers its runtimes
// list and the host inventory its catalogers took. Tests call it on a
// fixture root they own; nothing is written anywhere.
package node

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"mamori/internal/compliance"
	"mamori/internal/compliance/posture"
	"mamori/internal/model"
)

// Options of a collection. Zero fields take the defaults.
type Options struct {
	// Root is the node's file-system root ("/" on the node).
	Root string
	// Proc is the proc file system ("/proc"); "" skips listening sockets
	// and the kubelet's command line.
	Proc string
	// NetNS is the /proc/PID directory whose network namespace holds the
	// node's listening sockets (its net/tcp, net/udp ...). Default
	// Proc+"/1": the node's init, since the agent runs in the host PID
	// namespace but not in the host network (the DaemonSet), where its
	// own /proc/net would show its pod's sockets. The compliance e2e
	// points it at the agent's own network namespace (/proc/self).
	NetNS string
	// Node names the node; Cluster its cluster.
	Node, Cluster string
	// AllowedSudoers are the grants the baseline accepts (user names and
	// %groups); default DefaultAllowedSudoers.
	AllowedSudoers []string
	// ExpectedPorts are the TCP/UDP ports the node is expected to listen
	// on beyond loopback; default DefaultExpectedPorts.
	ExpectedPorts map[int]string
	// KubeletConfig overrides the kubelet configuration file's path (else
	// the kubelet's --config flag, else /var/lib/kubelet/config.yaml).
	KubeletConfig string
	// Modules, Containers and Inventory are the agent's: copied as given.
	Modules    map[string]posture.Module
	Containers []posture.Container
	Inventory  *model.Inventory
}

// Defaults, each with its reason.
var (
	// DefaultAllowedSudoers: root and the administrators' groups of
	// Debian (sudo), Ubuntu (admin) and RHEL (wheel); a grant to a named
	// user is a standing administrative right (§4.5.4).
	DefaultAllowedSudoers = []string{"root", "%sudo", "%admin", "%wheel"}
	// DefaultExpectedPorts: SSH and the kubelet's authenticated port.
	DefaultExpectedPorts = map[int]string{22: "sshd", 10250: "kubelet"}
)

// maxFile bounds any configuration file read.
const maxFile = 1 << 20

// Collect reads the posture of the node at opts.Root.
func Collect(ctx context.Context, opts Options, now time.Time) (*posture.Node, error) {
	if opts.Root == "" {
		return nil, fmt.Errorf("node posture: no root")
	}
	if fi, err := os.Stat(opts.Root); err != nil || !fi.IsDir() {
		return nil, fmt.Errorf("node posture: root %s is not a directory: %v", opts.Root, err)
	}
	if opts.AllowedSudoers == nil {
		opts.AllowedSudoers = DefaultAllowedSudoers
	}
	if opts.ExpectedPorts == nil {
		opts.ExpectedPorts = DefaultExpectedPorts
	}
	n := &posture.Node{Node: opts.Node, Cluster: opts.Cluster, CollectedAt: now.UTC(), Root: opts.Root,
		Modules: opts.Modules, Containers: opts.Containers, Inventory: opts.Inventory}
	warn := func(format string, args ...any) { n.Warnings = append(n.Warnings, fmt.Sprintf(format, args...)) }

	users, err := readUsers(opts.Root)
	if err != nil {
		warn("users: %v", err)
	}
	n.Users = users
	n.Sudoers = readSudoers(opts.Root, opts.AllowedSudoers, warn)
	n.SSHD = readSSHD(opts.Root, warn)
	if opts.Proc != "" {
		netns := opts.NetNS
		if netns == "" {
			netns = filepath.Join(opts.Proc, "1")
		}
		n.Listening, n.ListeningRead = readListening(ctx, opts.Proc, netns, opts.ExpectedPorts, warn)
	}
	n.Kubelet, n.HasKubelet = readKubelet(opts, warn)
	n.Components = componentsOf(opts.Inventory)
	return n, nil
}

// readFile reads a file of the root, refusing what is not a regular file
// or too large; paths are rooted (symlinks inside the root are resolved
// within it by os.Root).
func readFile(root, path string) ([]byte, fs.FileInfo, error) {
	r, err := os.OpenRoot(root)
	if err != nil {
		return nil, nil, err
	}
	defer r.Close()
	f, err := r.Open(strings.TrimPrefix(filepath.Clean("/"+path), "/"))
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, nil, fmt.Errorf("%s is not a regular file", path)
	}
	if fi.Size() > maxFile {
		return nil, nil, fmt.Errorf("%s: %d bytes, over %d", path, fi.Size(), maxFile)
	}
	b := make([]byte, fi.Size())
	if _, err := f.Read(b); err != nil && fi.Size() > 0 {
		return nil, nil, fmt.Errorf("read %s: %w", path, err)
	}
	return b, fi, nil
}

// readDir lists a directory of the root ("" entries when absent).
func readDir(root, path string) []string {
	r, err := os.OpenRoot(root)
	if err != nil {
		return nil
	}
	defer r.Close()
	f, err := r.Open(strings.TrimPrefix(filepath.Clean("/"+path), "/"))
	if err != nil {
		return nil
	}
	defer f.Close()
	names, err := f.Readdirnames(1000)
	if err != nil {
		return nil
	}
	return names
}

func readUsers(root string) ([]posture.User, error) {
	b, _, err := readFile(root, "/etc/passwd")
	if err != nil {
		return nil, err
	}
	var out []posture.User
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Split(line, ":")
		if len(f) != 7 || strings.HasPrefix(line, "#") {
			continue
		}
		shell := f[6]
		base := filepath.Base(shell)
		if shell == "" || base == "nologin" || base == "false" || base == "sync" || base == "halt" || base == "shutdown" {
			continue
		}
		uid := 0
		if _, err := fmt.Sscanf(f[2], "%d", &uid); err != nil {
			continue
		}
		out = append(out, posture.User{Name: f[0], UID: uid, Shell: shell})
	}
	return out, nil
}

// componentsOf names the runtime software of an inventory
// (compliance.RuntimeComponent), one entry per component and version.
func componentsOf(inv *model.Inventory) []posture.Component {
	if inv == nil {
		return nil
	}
	seen := map[string]bool{}
	var out []posture.Component
	for _, p := range inv.Packages {
		path := ""
		if len(p.Locations) > 0 {
			path = p.Locations[0].Path
		}
		c := compliance.RuntimeComponent(p.Name, path)
		if c == "" || seen[c+" "+p.Version] {
			continue
		}
		seen[c+" "+p.Version] = true
		out = append(out, posture.Component{Name: c, Version: p.Version, Path: path})
	}
	return out
}
