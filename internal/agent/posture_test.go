package agent

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"mamori/internal/api"
	"mamori/internal/compliance/posture"
	"mamori/internal/model"
)

// stateModule is a module whose stats carry a state, as the host modules'
// do (or none, as the runtime module's).
type stateModule struct {
	name  string
	stats any
}

func (m stateModule) Name() string                      { return m.name }
func (m stateModule) Start(context.Context, Sink) error { return nil }
func (m stateModule) Stop(context.Context) error        { return nil }
func (m stateModule) Stats() any                        { return m.stats }
func (m stateModule) Config() any                       { return nil }

// TestModuleStates: a started module is active unless its stats say a
// state other than running (a host module turned off by its group's
// settings, failed, or still waiting for them).
func TestModuleStates(t *testing.T) {
	a := &Agent{}
	got := a.moduleStates([]Module{
		stateModule{"runtime", map[string]any{"rulesets": []string{"default"}, "processed": 3}},
		stateModule{"runtime-norules", map[string]any{"rulesets": []string{}, "rulesOrigin": "policy p v2"}},
		stateModule{"runtime-nil", map[string]any{"rulesets": nil}},
		stateModule{"hostsync", map[string]any{"polls": 3}},
		stateModule{"integrity", map[string]any{"state": "running", "files": 12}},
		stateModule{"antimalware", map[string]any{"state": "off"}},
		stateModule{"firewall", map[string]any{"state": "failed", "error": "nft"}},
		stateModule{"appcontrol", map[string]any{"state": "waiting for settings"}},
	})
	want := map[string]bool{"runtime": true, "runtime-norules": false, "runtime-nil": false, "hostsync": true, "integrity": true, "antimalware": false, "firewall": false, "appcontrol": false}
	for name, active := range want {
		m, ok := got[name]
		if !ok || m.Active != active {
			t.Errorf("%s: %+v, want active %v", name, m, active)
		}
		if active == m.LastActivity.IsZero() {
			t.Errorf("%s: last activity %v with active %v", name, m.LastActivity, active)
		}
		if active && !strings.HasPrefix(m.Detail, "{") || !active && !strings.Contains(m.Detail, ": {") {
			t.Errorf("%s: detail %q", name, m.Detail)
		}
	}
}

// TestComplianceConfig: the posture is on unless switched off; bad
// intervals and directories are named.
func TestComplianceConfig(t *testing.T) {
	c, err := ParseConfig("a.yaml", []byte("node: n1\n"))
	if err != nil {
		t.Fatal(err)
	}
	if !c.Compliance.On() {
		t.Fatal("compliance posture off by default")
	}
	c, err = ParseConfig("b.yaml", []byte("node: n1\ncompliance: {enabled: false}\n"))
	if err != nil || c.Compliance.On() {
		t.Fatalf("enabled: false: on %v, %v", c.Compliance.On(), err)
	}
	c, err = ParseConfig("c.yaml", []byte("node: n1\ncompliance: {interval: 30s, inventoryInterval: 1h, proc: none, netProc: /proc/self, "+
		"kubeletConfig: /etc/k/config.yaml, inventorySkipDirs: [work, var/lib/x], inventoryDirs: [/opt/cni/bin]}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Compliance.Interval != 30*time.Second || c.Compliance.NetProc != "/proc/self" || len(c.Compliance.InventorySkipDirs) != 2 {
		t.Fatalf("parsed %+v", c.Compliance)
	}
	_, err = ParseConfig("d.yaml", []byte("node: n1\ncompliance: {interval: 10ms, inventoryInterval: 5s, inventorySkipDirs: [/abs, ../up], inventoryDirs: [rel]}\n"))
	if err == nil {
		t.Fatal("bad compliance section accepted")
	}
	for _, want := range []string{"compliance.interval", "compliance.inventoryInterval", `"/abs"`, `"../up"`, `"rel"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %s", err, want)
		}
	}
}

// postureServer is fakeServer taking node postures too.
type postureServer struct {
	fakeServer
	mu       sync.Mutex
	postures []*posture.Node
}

func (p *postureServer) ReportNodePosture(_ context.Context, n *posture.Node) (api.PostureResult, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.postures = append(p.postures, n)
	return api.PostureResult{}, nil
}

func (p *postureServer) sent() []*posture.Node {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]*posture.Node(nil), p.postures...)
}

// TestPostureLoop: with a server the agent sends its posture by default,
// read under hostRoot with its modules' states; the host inventory waits
// inventoryDelay and is taken through WithHostInventory with the
// configured directories; enabled: false sends nothing.
func TestPostureLoop(t *testing.T) {
	root := t.TempDir()
	for name, body := range map[string]string{
		"etc/passwd":            "root:x:0:0:root:/root:/bin/bash\n",
		"etc/sudoers.d/mallory": "mallory ALL=(ALL) NOPASSWD: ALL\n",
	} {
		if err := os.MkdirAll(filepath.Join(root, filepath.Dir(name)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	run := func(t *testing.T, cc ComplianceConfig, wait func(*postureServer) bool, edit ...func(*Config)) (*postureServer, [][]string) {
		t.Helper()
		srv := &postureServer{fakeServer: fakeServer{ids: map[string]int{}}}
		cfg := noRuntime()
		cfg.Node = "n1"
		cfg.Server.URL = "https://server.invalid" // not dialled: WithServer replaces the client
		cfg.Spool.Dir = t.TempDir()
		cfg.Events.File = ""
		cfg.Compliance = cc
		for _, f := range edit {
			f(&cfg)
		}
		var mu sync.Mutex
		var calls [][]string
		inv := func(_ context.Context, r string, skip, extra []string, tmp string) (*model.Inventory, error) {
			if fi, err := os.Stat(tmp); err != nil || !fi.IsDir() || filepath.Dir(tmp) != filepath.Dir(cfg.Spool.Dir) {
				return nil, fmt.Errorf("temporary directory %q not in the state directory", tmp)
			}
			mu.Lock()
			defer mu.Unlock()
			calls = append(calls, append(append([]string{r}, skip...), extra...))
			return &model.Inventory{Packages: []model.Package{{Name: "tar", Version: "1.34", Type: "deb"}}}, nil
		}
		a, err := New(cfg, WithServer(srv), WithModules(stateModule{"integrity", map[string]any{"state": "running"}}), WithHostInventory(inv))
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- a.Run(ctx) }()
		deadline := time.Now().Add(10 * time.Second)
		for !wait(srv) && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		defer mu.Unlock()
		return srv, calls
	}

	t.Run("default on, inventory delayed", func(t *testing.T) {
		srv, calls := run(t, ComplianceConfig{HostRoot: root, Proc: "none", Interval: time.Second},
			func(s *postureServer) bool { return len(s.sent()) >= 2 })
		ps := srv.sent()
		if len(ps) < 2 {
			t.Fatalf("%d postures sent", len(ps))
		}
		if len(calls) != 0 || ps[0].Inventory != nil {
			t.Errorf("host inventory taken before its default delay: %v", calls)
		}
		n := ps[0]
		if n.Node != "n1" || n.Root != root || len(n.Sudoers) != 1 || n.Sudoers[0].Allowed || n.ListeningRead {
			t.Errorf("posture %+v", n)
		}
		if m := n.Modules["integrity"]; !m.Active {
			t.Errorf("modules %+v", n.Modules)
		}
	})
	t.Run("inventory after its delay", func(t *testing.T) {
		srv, calls := run(t, ComplianceConfig{HostRoot: root, Proc: "none", Interval: time.Hour, InventoryDelay: 50 * time.Millisecond,
			InventorySkipDirs: []string{"work"}, InventoryDirs: []string{"/opt/cni/bin"}},
			func(s *postureServer) bool { return len(s.sent()) >= 2 })
		ps := srv.sent()
		if len(ps) < 2 || ps[0].Inventory != nil || ps[1].Inventory == nil || len(ps[1].Inventory.Packages) != 1 {
			t.Fatalf("postures %d, want one without the inventory then one with it", len(ps))
		}
		if len(calls) != 1 || strings.Join(calls[0], " ") != root+" work /opt/cni/bin" {
			t.Errorf("inventory calls %v", calls)
		}
	})
	t.Run("root of the runtime module's hostRoot", func(t *testing.T) {
		// The DaemonSet sets modules.runtime.hostRoot: /proc/1/root (its
		// container's root is the agent image's).
		srv, _ := run(t, ComplianceConfig{Proc: "none", Interval: time.Hour},
			func(s *postureServer) bool { return len(s.sent()) >= 1 },
			func(c *Config) { c.Modules.Runtime.HostRoot = root })
		if ps := srv.sent(); len(ps) == 0 || ps[0].Root != root || len(ps[0].Sudoers) != 1 {
			t.Fatalf("posture not read under the runtime module's hostRoot %s", root)
		}
	})
	t.Run("off", func(t *testing.T) {
		off := false
		start := time.Now()
		srv, calls := run(t, ComplianceConfig{Enabled: &off, HostRoot: root, Interval: time.Second},
			func(*postureServer) bool { return time.Since(start) > 1500*time.Millisecond })
		if len(srv.sent()) != 0 || len(calls) != 0 {
			t.Errorf("posture off: %d sent, %d inventories", len(srv.sent()), len(calls))
		}
	})
}
