package agent

import (
	"context"
	"strings"
	"testing"
	"time"
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
