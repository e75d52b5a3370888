package agent

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
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
	// system: once at start, then every six hours (package upgrades).
	hostInventoryInterval = 6 * time.Hour
)

// ComplianceConfig turns on the node's compliance posture: every Interval
// (default 10m) the node's settings, modules, containers and, every
// InventoryInterval (default 6h), the host inventory of HostRoot (default
// "/"; the DaemonSet mounts the node's root at /host) are sent to the
// server, which matches the inventory and assesses NIST SP 800-190 §4.3.2,
// §4.3.5, §4.4.1, §4.4.4, §4.4.5 and §4.5.
type ComplianceConfig struct {
	Enabled           bool          `yaml:"enabled"`
	HostRoot          string        `yaml:"hostRoot"`
	Interval          time.Duration `yaml:"interval"`
	InventoryInterval time.Duration `yaml:"inventoryInterval"`
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
	if !ok || !cc.Enabled {
		return
	}
	root, every, invEvery := cc.HostRoot, cc.Interval, cc.InventoryInterval
	if root == "" {
		root = "/"
	}
	if every <= 0 {
		every = postureInterval
	}
	if invEvery <= 0 {
		invEvery = hostInventoryInterval
	}
	var inv *model.Inventory
	var invAt time.Time
	for {
		if inv == nil || time.Since(invAt) >= invEvery {
			i, err := node.HostInventory(ctx, root, nil, nil, os.TempDir(), a.log)
			if err != nil {
				a.log.Warn("host inventory", "err", err)
			} else {
				inv, invAt = i, time.Now()
			}
		}
		n, err := node.Collect(ctx, node.Options{Root: root, Proc: filepath.Join(root, "proc"), Node: a.cfg.Node,
			Modules: a.moduleStates(started), Containers: a.containers(), Inventory: inv}, time.Now())
		if err != nil {
			a.log.Warn("node posture", "err", err)
		} else if res, err := rep.ReportNodePosture(ctx, n); err != nil {
			if ctx.Err() == nil {
				a.log.Warn("send node posture", "err", err)
			}
		} else {
			a.log.Debug("node posture sent", "hostPackages", res.HostPackages, "hostVulnerabilities", res.HostVulnerabilities)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(every):
		}
	}
}

// moduleStates are the modules that started, with their counters as the
// detail (the stats endpoint's view).
func (a *Agent) moduleStates(started []Module) map[string]posture.Module {
	out := map[string]posture.Module{}
	now := time.Now().UTC()
	for _, m := range started {
		d := ""
		if b, err := json.Marshal(m.Stats()); err == nil {
			d = string(b)
			if len(d) > 512 {
				d = d[:512] + "…"
			}
		}
		out[m.Name()] = posture.Module{Active: true, Detail: d, LastActivity: now}
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
