package runtimerules

import (
	"context"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"mamori/internal/agent"
	"mamori/internal/api"
	"mamori/internal/model"
	"mamori/internal/policy"
	"mamori/internal/runtime/rules"
	"mamori/internal/service/events"
	"mamori/internal/service/hosts"
	"mamori/internal/service/policies"
	"mamori/internal/store"
)

func newService(t *testing.T) (*Service, store.Store, *policies.Service) {
	t.Helper()
	st, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "data")+"/")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	pol := policies.New(st, nil, nil)
	return New(events.New(st, events.Retention{}, nil, nil), pol, hosts.New(st, nil, nil)), st, pol
}

// TestCatalogue: every built-in rule is listed with its ATT&CK names
// (each technique the rules use is named here; a new rule with a new
// technique fails until it is), condition, kinds and default action.
func TestCatalogue(t *testing.T) {
	s, _, _ := newService(t)
	rs, err := s.Rules(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	cat, err := rules.LoadBuiltin()
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != len(cat.Rules()) || len(rs) < 40 {
		t.Fatalf("%d rules, the catalogue has %d", len(rs), len(cat.Rules()))
	}
	order := tacticOrder()
	for _, r := range rs {
		if r.TechniqueName == "" {
			t.Errorf("rule %s: technique %s has no name in techniqueNames", r.ID, r.Technique)
		}
		if r.TacticName == "" || !slices.Contains(order, r.Tactic) {
			t.Errorf("rule %s: tactic %s unknown or not in tacticOrder", r.ID, r.Tactic)
		}
		if r.Condition == "" || len(r.Kinds) == 0 || r.Action == "" || r.Title == "" || r.File == "" {
			t.Errorf("rule %s: incomplete %+v", r.ID, r)
		}
	}
	if len(order) != len(rules.Tactics()) {
		t.Errorf("tacticOrder has %d tactics, rules.Tactics %d", len(order), len(rules.Tactics()))
	}
	for id := range containerTactics() {
		if !slices.Contains(order, id) {
			t.Errorf("container tactic %s not in the order", id)
		}
	}
}

const runtimePolicy = `apiVersion: mamori.dev/v1
kind: Policy
name: runtime
runtime:
  - ruleset: default
    rules:
      crypto-miner-binary: terminate
      terminal-shell-in-container: isolate
  - ruleset: pci
    match:
      namespaces: [payments, cards]
      selector: {matchLabels: {compliance: pci}}
    host: false
    action: terminate
  - ruleset: default
    match: {namespaces: [prod-payments]}
    action: isolate
    rules: {memfd-exec: terminate}
`

const badRefPolicy = `apiVersion: mamori.dev/v1
kind: Policy
name: typo
runtime:
  - ruleset: default
    rules: {no-such-rule: terminate}
`

// TestPolicyRulesets: each reference resolves as the node agent resolves
// it (agent.RulesetsFromPolicy, the code the agent runs), so the page
// shows what the agents enforce.
func TestPolicyRulesets(t *testing.T) {
	ctx := context.Background()
	s, _, pol := newService(t)
	for _, doc := range []string{runtimePolicy, badRefPolicy, string(policy.DefaultPolicyYAML())} {
		if _, err := pol.Apply(ctx, "p.yaml", []byte(doc)); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.PolicyRulesets(ctx)
	if err != nil {
		t.Fatal(err)
	}
	by := map[string]PolicyRulesets{}
	for _, p := range got {
		by[p.Policy] = p
	}
	if len(by["default"].Rulesets) != 0 {
		t.Errorf("default policy: %+v, want no runtime ruleset", by["default"].Rulesets)
	}
	rp := by["runtime"]
	if len(rp.Rulesets) != 3 || rp.Version != 1 {
		t.Fatalf("runtime policy: %+v", rp)
	}
	def, pci, scoped := rp.Rulesets[0], rp.Rulesets[1], rp.Rulesets[2]
	if !def.Known || !def.Host || def.Scope != "" || def.Enabled("crypto-miner-binary") != model.ActionTerminate ||
		def.Enabled("terminal-shell-in-container") != model.ActionIsolate || def.Enabled("exec-from-tmp") != model.ActionLog {
		t.Errorf("default ruleset: %+v", def)
	}
	if pci.Known || pci.Host || pci.Scope != "namespaces payments, cards; labels compliance=pci" || len(pci.Rules) != 0 || pci.Action != model.ActionTerminate {
		t.Errorf("pci ruleset: %+v", pci)
	}
	if scoped.Host || scoped.Enabled("memfd-exec") != model.ActionTerminate || scoped.Enabled("exec-from-tmp") != model.ActionIsolate {
		t.Errorf("scoped default: %+v", scoped)
	}

	// The agent's resolution of the same references (the known rulesets).
	cat, err := rules.LoadBuiltin()
	if err != nil {
		t.Fatal(err)
	}
	doc, err := policy.Parse("runtime.yaml", []byte(runtimePolicy))
	if err != nil {
		t.Fatal(err)
	}
	refs := []policy.RulesetRef{doc.Runtime[0], doc.Runtime[2]}
	sets, err := agent.RulesetsFromPolicy(cat, refs)
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range []RulesetView{def, scoped} {
		want := map[string]model.Action{}
		for _, e := range sets[i].Entries {
			want[e.ID] = e.Action
		}
		if !maps.Equal(v.Rules, want) {
			t.Errorf("reference %d: the page shows %v, the agent enforces %v", v.Index, v.Rules, want)
		}
		if sets[i].Host != nil && *sets[i].Host != v.Host {
			t.Errorf("reference %d: host %v, agent %v", v.Index, v.Host, *sets[i].Host)
		}
	}

	// A reference the agent would refuse is shown with the problem.
	typo := by["typo"]
	if len(typo.Rulesets) != 1 || len(typo.Rulesets[0].Problems) != 1 || typo.Rulesets[0].Enabled("no-such-rule") != "" {
		t.Errorf("typo policy: %+v", typo)
	}
	if _, err := agent.RulesetsFromPolicy(cat, mustParse(t, badRefPolicy).Runtime); err == nil {
		t.Error("the agent accepts the reference the page flags")
	}
}

func mustParse(t *testing.T, doc string) *policy.Policy {
	t.Helper()
	p, err := policy.Parse("p.yaml", []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestMatrix: the counts of one store query laid out by ATT&CK tactic:
// the containers tactics always present and in ATT&CK's order, cells of
// the built-in rules present with 0, events counted in their cell, unknown
// tactics in the last column, hostile values kept as data.
func TestMatrix(t *testing.T) {
	ctx := context.Background()
	s, st, _ := newService(t)
	now := time.Now().UTC()
	mk := func(id, tac, tech string, ago time.Duration) store.EventRecord {
		return store.EventRecord{Event: model.Event{ID: id, Time: now.Add(-ago), Source: model.SourceRuntime, Cluster: "prod",
			Namespace: "shop", Node: "node-1", Rule: model.RuleRef{ID: "r"}, Tactic: tac, Technique: tech,
			Severity: model.SeverityHigh, Action: model.ActionLog}}
	}
	if _, err := st.InsertEvents(ctx, []store.EventRecord{
		mk("a", "TA0002", "T1059.004", time.Minute), mk("b", "TA0002", "T1059.004", 2*time.Minute),
		mk("c", "TA0040", "T1496", 3*time.Minute), mk("old", "TA0040", "T1496", 48*time.Hour),
		mk("d", "TA0008", "T1550", time.Minute), // a technique no built-in rule covers
		mk("e", "TA9999", "T0001", time.Minute), mk("f", "", "T1036", time.Minute),
		mk("g", "<img src=x>", "T1059\n", time.Minute),
	}); err != nil {
		t.Fatal(err)
	}
	m, err := s.Matrix(ctx, events.Filter{Since: now.Add(-24 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, c := range m.Tactics {
		ids = append(ids, c.ID)
	}
	want := []string{"TA0001", "TA0002", "TA0003", "TA0004", "TA0005", "TA0006", "TA0007", "TA0008", "TA0011", "TA0040", ""}
	if !slices.Equal(ids, want) {
		t.Fatalf("columns %v, want %v", ids, want)
	}
	if m.Events != 7 || m.Covered < 40 {
		t.Errorf("events %d (want 7), covered %d", m.Events, m.Covered)
	}
	find := func(tac, tech string) (MatrixCell, bool) {
		for _, c := range m.Tactics {
			for _, x := range c.Techniques {
				if x.Tactic == tac && x.Technique == tech {
					return x, true
				}
			}
		}
		return MatrixCell{}, false
	}
	for _, c := range []struct {
		tac, tech string
		n         int64
		rules     bool
	}{
		{"TA0002", "T1059.004", 2, true}, {"TA0040", "T1496", 1, true}, {"TA0008", "T1550", 1, false},
		{"TA0003", "T1525", 0, true}, {"TA9999", "T0001", 1, false}, {"", "T1036", 1, false},
		{"<img src=x>", "T1059\n", 1, false},
	} {
		x, ok := find(c.tac, c.tech)
		if !ok || x.Events != c.n || (len(x.Rules) > 0) != c.rules {
			t.Errorf("cell %s/%s: %+v (found %v), want %d events, rules %v", c.tac, c.tech, x, ok, c.n, c.rules)
		}
	}
	if x, _ := find("TA0002", "T1059.004"); x.Name != "Command and Scripting Interpreter: Unix Shell" {
		t.Errorf("name %q", x.Name)
	}
	// Scope filters reach the query.
	m, err = s.Matrix(ctx, events.Filter{Cluster: "staging"})
	if err != nil || m.Events != 0 {
		t.Errorf("staging: %d events, %v", m.Events, err)
	}
}

// TestHostGroupRulesets: each host group's agents are listed by the
// policy their cluster enforces (the rulesets they run); agents of no
// cluster, or of a cluster without a policy, run the group's own runtime
// rulesets (resolved with their actions), else the default ruleset.
func TestHostGroupRulesets(t *testing.T) {
	ctx := context.Background()
	s, st, pol := newService(t)
	if _, err := pol.Apply(ctx, "runtime.yaml", []byte(runtimePolicy)); err != nil {
		t.Fatal(err)
	}
	prod, err := st.CreateCluster(ctx, "prod", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.CreateCluster(ctx, "lab", time.Now()); err != nil {
		t.Fatal(err)
	}
	if _, err := pol.Assign(ctx, prod.ID, "runtime"); err != nil {
		t.Fatal(err)
	}
	for _, a := range []store.Agent{{Cluster: "prod", Node: "p-1"}, {Cluster: "prod", Node: "p-2"}, {Cluster: "lab", Node: "l-1"}, {Node: "bastion"}} {
		if _, err := st.RegisterAgent(ctx, a); err != nil {
			t.Fatal(err)
		}
	}
	hs := hosts.New(st, nil, nil)
	if _, err := hs.CreateGroup(ctx, api.HostGroupRequest{Name: "prod-nodes", Cluster: "prod"}); err != nil {
		t.Fatal(err)
	}
	gs, err := s.HostGroupRulesets(ctx)
	if err != nil {
		t.Fatal(err)
	}
	by := map[string]HostGroupView{}
	for _, g := range gs {
		by[g.Group] = g
	}
	pg := by["prod-nodes"]
	if pg.Cluster != "prod" || pg.Members != 2 || len(pg.Policies) != 1 || pg.Policies[0].Policy != "runtime" ||
		!slices.Equal(pg.Policies[0].Nodes, []string{"p-1", "p-2"}) {
		t.Errorf("prod-nodes: %+v", pg)
	}
	def := by["default"]
	if !def.Default || def.Members != 2 || len(def.Policies) != 1 || def.Policies[0].Policy != "" ||
		!slices.Equal(def.Policies[0].Nodes, []string{"bastion", "l-1"}) {
		t.Errorf("default group: %+v", def)
	}
	if def.GroupRulesets || len(def.Rulesets) != 1 || def.Rulesets[0].Ruleset != "default" || len(def.Rulesets[0].Rules) < 40 {
		t.Errorf("default group's rulesets: %+v", def.Rulesets)
	}
	// A bare-host group with its own rulesets: the service refuses what
	// an agent would, and resolves what it takes.
	_, err = hs.CreateGroup(ctx, api.HostGroupRequest{Name: "bare", Settings: api.HostSettings{
		RuntimeRulesets: []api.RuntimeRulesetRef{{Ruleset: "default", Rules: map[string]model.Action{"no-such-rule": model.ActionLog}}}}})
	if err == nil || !strings.Contains(err.Error(), `runtimeRulesets[0].rules: "no-such-rule" is not a built-in rule`) {
		t.Fatalf("bad group rulesets: %v", err)
	}
	g, err := hs.CreateGroup(ctx, api.HostGroupRequest{Name: "bare", Settings: api.HostSettings{
		RuntimeRulesets: []api.RuntimeRulesetRef{{Ruleset: "default", Action: model.ActionLog,
			Rules: map[string]model.Action{"terminal-shell-in-container": model.ActionTerminate}}}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := hs.PlaceAgent(ctx, agentID(t, st, "bastion"), g.Name); err != nil {
		t.Fatal(err)
	}
	gs, _ = s.HostGroupRulesets(ctx)
	for _, v := range gs {
		if v.Group != "bare" {
			continue
		}
		if !v.GroupRulesets || v.Members != 1 || len(v.Rulesets) != 1 || v.Rulesets[0].Rules["terminal-shell-in-container"] != model.ActionTerminate ||
			v.Rulesets[0].Rules["package-manager-in-container"] != model.ActionLog || !v.Rulesets[0].Host {
			t.Errorf("bare group: %+v", v)
		}
		return
	}
	t.Error("group bare not listed")
}

func agentID(t *testing.T, st store.Store, node string) int64 {
	t.Helper()
	as, err := st.ListAgents(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range as {
		if a.Node == node {
			return a.ID
		}
	}
	t.Fatalf("no agent %s", node)
	return 0
}
