package agent

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"time"

	"mamori/internal/api"
	"mamori/internal/compliance/node"
	"mamori/internal/compliance/posture"
	"mamori/internal/model"
)

// Posture intervals, each with its reason.
const (
	// postureInterval: the node's settings (sudoers, sshd, kubelet,
	// listening services, containers) every ten minutes.
	postureInterval = 10 * time.Minute
	// hostInventoryInterval: the host inventory walks the root file
	// system (one goroutine, measured in docs/compliance.md): once at
	// start, then every six hours (package upgrades).
	hostInventoryInterval = 6 * time.Hour
	// hostInventoryDelay: the first inventory waits five minutes after
	// start, so the sensor and modules start first and a DaemonSet
	// rollout does not walk every node's root and match every inventory
	// on the server at once (postures sent before carry none).
	hostInventoryDelay = 5 * time.Minute
	// minPostureInterval bounds how often a posture may be sent.
	minPostureInterval = time.Second
	// minInventoryInterval bounds how often the root may be walked.
	minInventoryInterval = time.Minute
)

// ComplianceConfig is the node's compliance posture (docs/compliance.md),
// on unless enabled is false: every Interval (default 10m) the node's
// settings, modules, containers and, every InventoryInterval (default
// 6h), the host inventory of HostRoot (default "/") are sent to the
// server, which matches the inventory and assesses NIST SP 800-190
// §4.3.2, §4.3.5, §4.4.1, §4.4.4, §4.4.5 and §4.5.
type ComplianceConfig struct {
	// Enabled: nil means on (docs/compliance.md argues the default).
	Enabled *bool `yaml:"enabled"`
	// HostRoot is the node's root file system as the agent sees it:
	// settings (sudoers, sshd, users, kubelet) and the host inventory are
	// read under it. Default modules.runtime.hostRoot (/proc/1/root in the
	// DaemonSet, whose container root is the agent image's), else "/".
	HostRoot string `yaml:"hostRoot"`
	// Proc is the node's /proc (the kubelet's command line, socket
	// owners); default modules.runtime.procRoot. "none" skips them and
	// the listening sockets (§4.5.1 then not assessed).
	Proc string `yaml:"proc"`
	// NetProc is the /proc/PID directory whose network namespace holds
	// the node's listening sockets; default <proc>/1 (the host's init:
	// the agent runs in the host PID namespace, not the host network).
	NetProc string `yaml:"netProc"`
	// KubeletConfig is the kubelet configuration file under HostRoot;
	// default the --config of a running kubelet, else
	// /var/lib/kubelet/config.yaml.
	KubeletConfig string `yaml:"kubeletConfig"`
	// Interval between postures (default 10m, at least 1s).
	Interval time.Duration `yaml:"interval"`
	// InventoryInterval between host inventories (default 6h, at least 1m).
	InventoryInterval time.Duration `yaml:"inventoryInterval"`
	// InventoryDelay is the wait before the first host inventory
	// (default 5m).
	InventoryDelay time.Duration `yaml:"inventoryDelay"`
	// InventorySkipDirs are left out of the inventory's walk (relative to
	// HostRoot); default the containers', volumes' and volatile
	// directories (compliance/node.DefaultSkipDirs).
	InventorySkipDirs []string `yaml:"inventorySkipDirs"`
	// InventoryDirs are walked in addition (runtime binaries installed
	// outside the packaged locations, e.g. /opt/cni/bin).
	InventoryDirs []string `yaml:"inventoryDirs"`
}

// On reports whether the posture is sent.
func (c ComplianceConfig) On() bool { return c.Enabled == nil || *c.Enabled }

// validate checks the compliance section.
func (c ComplianceConfig) validate(bad func(string, ...any)) {
	if c.Interval != 0 && c.Interval < minPostureInterval {
		bad("compliance.interval: %s is under %s", c.Interval, minPostureInterval)
	}
	if c.InventoryInterval != 0 && c.InventoryInterval < minInventoryInterval {
		bad("compliance.inventoryInterval: %s is under %s", c.InventoryInterval, minInventoryInterval)
	}
	for _, d := range c.InventorySkipDirs {
		if d == "" || filepath.IsAbs(d) || strings.HasPrefix(filepath.Clean(d), "..") {
			bad("compliance.inventorySkipDirs: %q is not a path relative to hostRoot", d)
		}
	}
	for _, d := range c.InventoryDirs {
		if !filepath.IsAbs(d) {
			bad("compliance.inventoryDirs: %q is not an absolute path", d)
		}
	}
}

// WithHostInventory sets how the posture's host inventory is taken
// (default: node.HostInventory in the agent's process). The command gives
// node.InventoryInChild: the walk in a niced, idle-I/O child process.
func WithHostInventory(f node.InventoryFunc) Option {
	return func(a *Agent) error { a.inventory = f; return nil }
}

// PostureReporter is the server call that takes the node's compliance
// posture; *client.Client implements it.
type PostureReporter interface {
	ReportNodePosture(ctx context.Context, n *posture.Node) (api.PostureResult, error)
}

// postureLoop collects the node's compliance posture (compliance/node:
// kubelet, users, sudoers, sshd, listening services; the modules that run,
// the containers the runtimes list, the host inventory) and sends it,
// until ctx ends. started are the modules that started.
func (a *Agent) postureLoop(ctx context.Context, started []Module) {
	cc := a.cfg.Compliance
	rep, ok := a.server.(PostureReporter)
	if !ok || !cc.On() {
		return
	}
	root, every, invEvery := cc.HostRoot, cc.Interval, cc.InventoryInterval
	if root == "" {
		root = a.cfg.Modules.Runtime.HostRoot // /proc/1/root in the DaemonSet
	}
	if root == "" {
		root = "/"
	}
	if every <= 0 {
		every = postureInterval
	}
	if invEvery <= 0 {
		invEvery = hostInventoryInterval
	}
	proc := cc.Proc
	switch proc {
	case "":
		proc = a.cfg.Modules.Runtime.ProcRoot
	case "none":
		proc = ""
	}
	delay := cc.InventoryDelay
	if delay <= 0 {
		delay = hostInventoryDelay
	}
	var inv *model.Inventory
	nextInv := time.Now().Add(delay)
	for {
		if !time.Now().Before(nextInv) {
			t0 := time.Now()
			take := a.inventory
			if take == nil {
				take = func(ctx context.Context, root string, skip, extra []string, tmp string) (*model.Inventory, error) {
					return node.HostInventory(ctx, root, skip, extra, tmp, a.log)
				}
			}
			i, err := take(ctx, root, cc.InventorySkipDirs, cc.InventoryDirs, a.inventoryTemp())
			if err != nil {
				if ctx.Err() != nil {
					return
				}
				a.log.Warn("host inventory", "err", err)
				nextInv = time.Now().Add(every) // retried with the next posture
			} else {
				inv, nextInv = i, time.Now().Add(invEvery)
				a.log.Info("host inventory taken", "root", root, "packages", len(i.Packages), "took", time.Since(t0).Round(time.Millisecond))
			}
		}
		n, err := node.Collect(ctx, node.Options{Root: root, Proc: proc, NetNS: cc.NetProc, Node: a.cfg.Node,
			KubeletConfig: cc.KubeletConfig, Modules: a.moduleStates(started), Containers: a.containers(), Inventory: inv}, time.Now())
		if err != nil {
			a.log.Warn("node posture", "err", err)
		} else if res, err := rep.ReportNodePosture(ctx, n); err != nil {
			if ctx.Err() == nil {
				a.log.Warn("send node posture", "err", err)
			}
		} else {
			a.log.Debug("node posture sent", "hostPackages", res.HostPackages, "hostVulnerabilities", res.HostVulnerabilities)
		}
		wait := every
		if d := time.Until(nextInv); d < wait {
			wait = max(d, 0)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}

// inventoryTemp is where the host inventory spills large files: tmp in
// the agent's state directory (the DaemonSet's root file system, /tmp
// included, is read-only), else the system's.
func (a *Agent) inventoryTemp() string {
	d := filepath.Join(a.cfg.HostStateDir(), "tmp")
	if err := os.MkdirAll(d, 0o700); err != nil {
		a.log.Warn("host inventory: no temporary directory in the state directory", "err", err)
		return os.TempDir()
	}
	return d
}

// moduleStates are the modules that started, with their counters as the
// detail (the stats endpoint's view). A module whose stats carry a state
// (the host modules: "running", "off", "failed", "waiting for settings")
// is active only when running: a host module is started in every agent
// and switched on or off by its host group's settings. A module whose
// stats list its rulesets (the runtime module) is active only with one in
// force.
func (a *Agent) moduleStates(started []Module) map[string]posture.Module {
	out := map[string]posture.Module{}
	now := time.Now().UTC()
	for _, m := range started {
		d, why, active := "", "", true
		if b, err := json.Marshal(m.Stats()); err == nil {
			var st struct {
				State    *string         `json:"state"`
				Rulesets json.RawMessage `json:"rulesets"`
			}
			if json.Unmarshal(b, &st) == nil {
				switch {
				case st.State != nil && *st.State != "running":
					active, why = false, "state "+*st.State+": "
				case len(st.Rulesets) > 0 && (string(st.Rulesets) == "null" || string(st.Rulesets) == "[]"):
					// The sensor runs, but no rule is in force (a policy
					// without a runtime section): it detects nothing.
					active, why = false, "no ruleset in force: "
				}
			}
			d = why + string(b)
			if len(d) > 512 {
				d = d[:512] + "…"
			}
		}
		pm := posture.Module{Active: active, Detail: d}
		if active {
			pm.LastActivity = now
		}
		out[m.Name()] = pm
	}
	return out
}

// containers are what the runtimes run, managed when the kubelet made them.
func (a *Agent) containers() []posture.Container {
	if a.runtime == nil {
		return nil
	}
	inv, _ := a.runtime.Inventory()
	var out []posture.Container
	for _, c := range inv.Containers {
		if c.Sandbox || !c.Exited.IsZero() || len(out) >= posture.MaxItems {
			continue
		}
		out = append(out, posture.Container{ID: c.ID, Runtime: c.Runtime, Image: c.Image, Digest: c.ImageDigest,
			Managed: c.RuntimeNamespace == "k8s.io" || c.PodUID != "", Namespace: c.Namespace, Pod: c.Pod})
	}
	return out
}
