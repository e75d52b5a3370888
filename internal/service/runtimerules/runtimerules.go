// Package runtimerules is the server's view of the node agent's runtime
// rules: the catalogue of built-in rules (internal/runtime/rules) with
// their ATT&CK mapping, conditions and default actions; which of them each
// stored policy's runtime rulesets enable, with which action; and the
// ATT&CK matrix of runtime events, counted by tactic and technique over the
// Events page's filters. The API (/api/v1/runtime/rules,
// /api/v1/runtime/rulesets, /api/v1/events/attack) and the console's
// Rulesets and ATT&CK pages call it. It only reads: rulesets are edited as
// part of their policy (service/policies).
package runtimerules

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"mamori/internal/api"
	"mamori/internal/model"
	"mamori/internal/policy"
	"mamori/internal/runtime/rules"
	"mamori/internal/service/events"
	"mamori/internal/service/policies"
	"mamori/internal/store"
)

// DefaultRuleset is the ruleset every catalogue has: every rule with its
// own action (rules.DefaultRuleset).
const DefaultRuleset = "default"

// HostGroups lists the host groups (service/hosts).
type HostGroups interface {
	ListGroups(ctx context.Context) ([]api.HostGroup, error)
}

// Service reads the rule catalogue, the policies' rulesets and the event
// counts of the ATT&CK matrix.
type Service struct {
	events   *events.Service
	policies *policies.Service
	groups   HostGroups

	// The built-in catalogue is compiled on first use (about 0.1 s of CEL
	// compilation), then kept: it is part of the binary.
	mu      sync.Mutex
	cat     *rules.Catalog
	catalog []Rule
}

// New returns the service over the events and policies services and the
// host groups (nil: none shown).
func New(ev *events.Service, pol *policies.Service, groups HostGroups) *Service {
	return &Service{events: ev, policies: pol, groups: groups}
}

// Rule is one rule of the catalogue as people read it.
type Rule struct {
	ID, Title, Description string
	Severity               model.Severity
	// Tactic and Technique are ATT&CK IDs; the names are "" when unknown.
	Tactic, TacticName       string
	Technique, TechniqueName string
	Kinds                    []string
	// Condition is the CEL condition as written (lists and macros by name).
	Condition, Output string
	Tags              []string
	// Action is the default action (log, isolate, terminate).
	Action model.Action
	// File is the built-in rule file and line that defines the rule.
	File string
}

func (s *Service) load() (*rules.Catalog, []Rule, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cat != nil {
		return s.cat, s.catalog, nil
	}
	cat, err := rules.LoadBuiltin()
	if err != nil {
		return nil, nil, fmt.Errorf("runtime rules: built-in catalogue: %w", err)
	}
	tactics, techniques := rules.Tactics(), techniqueNames()
	out := make([]Rule, 0, len(cat.Rules()))
	for _, r := range cat.Rules() {
		kinds := make([]string, len(r.Kinds))
		for i, k := range r.Kinds {
			kinds[i] = string(k)
		}
		a := r.Action
		if a == "" {
			a = model.ActionLog
		}
		out = append(out, Rule{ID: r.ID, Title: r.Title, Description: strings.TrimSpace(r.Description), Severity: r.Severity,
			Tactic: r.Tactic, TacticName: tactics[r.Tactic], Technique: r.Technique, TechniqueName: techniques[r.Technique],
			Kinds: kinds, Condition: strings.TrimSpace(r.Condition), Output: strings.TrimSpace(r.Output), Tags: slices.Clone(r.Tags), Action: a,
			File: r.Pos.String()})
	}
	s.cat, s.catalog = cat, out
	return cat, out, nil
}

// Rules returns the built-in rule catalogue in its files' order.
func (s *Service) Rules(context.Context) ([]Rule, error) {
	_, rs, err := s.load()
	if err != nil {
		return nil, err
	}
	return slices.Clone(rs), nil
}

// ---------------------------------------------------------------------------
// Rulesets of the policies

// PolicyRulesets is what one stored policy (its latest version) turns on in
// the node agents: each runtime ruleset reference resolved against the
// built-in catalogue.
type PolicyRulesets struct {
	Policy   string
	Version  int
	Clusters []string
	// ParseError is set when the stored document does not parse with this
	// server (then Rulesets is empty).
	ParseError string
	Rulesets   []RulesetView
}

// RulesetView is one runtime ruleset reference of a policy.
type RulesetView struct {
	// Index is the reference's position in the policy's runtime section.
	Index   int
	Ruleset string
	// Scope says which containers: "" for every container.
	Scope string
	// Host says whether processes outside containers are covered.
	Host bool
	// Action is the action the reference gives every rule it does not
	// name ("" keeps each rule's own).
	Action model.Action
	// Known is false when the ruleset is not in the built-in rule files:
	// the agents resolve it from their own rule files, so the server cannot
	// say which rules it enables (Rules then lists only the overrides).
	Known bool
	// Rules are the rules enabled, by ID, with their action.
	Rules map[string]model.Action
	// Problems are what an agent would refuse in the reference (a rule
	// override naming an unknown rule or one the ruleset does not enable).
	Problems []string
}

// Enabled returns the action of a rule in this ruleset, or "" when off.
func (v RulesetView) Enabled(id string) model.Action { return v.Rules[id] }

// PolicyRulesets resolves the runtime section of every stored policy, by
// policy name. Policies without a runtime section are listed with none:
// their agents run no runtime rule.
func (s *Service) PolicyRulesets(ctx context.Context) ([]PolicyRulesets, error) {
	cat, _, err := s.load()
	if err != nil {
		return nil, err
	}
	views, err := s.policies.List(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]PolicyRulesets, 0, len(views))
	for _, v := range views {
		pr := PolicyRulesets{Policy: v.Version.Policy, Version: v.Version.Version, Clusters: v.Clusters, Rulesets: []RulesetView{}}
		doc, err := policy.Parse(v.Version.Policy+".yaml", []byte(v.Version.Document))
		if err != nil {
			pr.ParseError = err.Error()
			out = append(out, pr)
			continue
		}
		for i, ref := range doc.Runtime {
			pr.Rulesets = append(pr.Rulesets, resolve(cat, i, ref))
		}
		out = append(out, pr)
	}
	return out, nil
}

// resolve applies a policy's ruleset reference to the catalogue as the
// node agent does (internal/agent RulesetsFromPolicy): the named ruleset's
// rules ("default": every rule with its own action), then the reference's
// action for every rule, then its per-rule actions.
func resolve(cat *rules.Catalog, i int, ref policy.RulesetRef) RulesetView {
	v := RulesetView{Index: i, Ruleset: ref.Ruleset, Action: ref.Action, Rules: map[string]model.Action{}, Problems: []string{}}
	v.Scope = scope(ref.Match)
	v.Host = ref.Match == nil || (len(ref.Match.Namespaces) == 0 && ref.Match.Selector == nil)
	if ref.Host != nil {
		v.Host = *ref.Host
	}
	var base *rules.Ruleset
	for _, rs := range cat.Rulesets() {
		if rs.Name == ref.Ruleset {
			base = rs
		}
	}
	if base == nil && ref.Ruleset == DefaultRuleset {
		base = rules.DefaultRuleset()
	}
	v.Known = base != nil
	enabled := map[string]model.Action{}
	if base != nil {
		enabled = enabledRules(cat, base)
		for id, a := range enabled {
			if ref.Action != "" {
				a = ref.Action
			}
			v.Rules[id] = a
		}
	}
	for _, id := range slices.Sorted(maps.Keys(ref.Rules)) {
		a := ref.Rules[id]
		switch {
		case cat.Rule(id) == nil && base != nil:
			v.Problems = append(v.Problems, fmt.Sprintf("rule %q is not a built-in rule", id))
		case base != nil && enabled[id] == "":
			v.Problems = append(v.Problems, fmt.Sprintf("rule %q is not in ruleset %q", id, ref.Ruleset))
		default:
			v.Rules[id] = a
		}
	}
	return v
}

// enabledRules applies a ruleset's entries, in order, to the catalogue:
// the rules it enables, each with its action (the rule's own when the
// entry names none).
func enabledRules(cat *rules.Catalog, rs *rules.Ruleset) map[string]model.Action {
	out := map[string]model.Action{}
	for _, r := range cat.Rules() {
		for _, e := range rs.Entries {
			if !(e.All || e.ID == r.ID || (e.Tag != "" && slices.Contains(r.Tags, e.Tag))) {
				continue
			}
			if e.Disabled {
				delete(out, r.ID)
				continue
			}
			a := e.Action
			if a == "" {
				a = r.Action
			}
			if a == "" {
				a = model.ActionLog
			}
			out[r.ID] = a
		}
	}
	return out
}

// HostGroupView is a host group with the runtime rulesets its agents run.
// An agent runs the rulesets of the policy its cluster enforces; one whose
// cluster enforces none (a bare host, or a cluster without a policy) runs
// the group's own runtime rulesets (its runtimeRulesets setting), else the
// default ruleset. The members are listed by the policy they run.
type HostGroupView struct {
	Group, Cluster string
	Default        bool
	Members        int
	// Policies are the policies the members' clusters enforce, each with
	// those members' nodes; Policy "" collects the members whose cluster
	// enforces none, or that belong to no cluster: they run Rulesets.
	Policies []GroupPolicy
	// Rulesets are the group's runtime rulesets resolved against the
	// built-in catalogue; GroupRulesets says the group selects them (false:
	// the default ruleset, shown resolved).
	Rulesets      []RulesetView
	GroupRulesets bool
}

// GroupPolicy is the members of a host group that run one policy's rulesets.
type GroupPolicy struct {
	Policy string
	Nodes  []string
}

// HostGroupRulesets lists the host groups (none when the service has no
// host groups) with the policy each member runs the rulesets of and the
// group's own rulesets.
func (s *Service) HostGroupRulesets(ctx context.Context) ([]HostGroupView, error) {
	if s.groups == nil {
		return []HostGroupView{}, nil
	}
	cat, _, err := s.load()
	if err != nil {
		return nil, err
	}
	gs, err := s.groups.ListGroups(ctx)
	if err != nil {
		return nil, fmt.Errorf("runtime rulesets: host groups: %w", err)
	}
	cs, err := s.policies.Clusters(ctx)
	if err != nil {
		return nil, err
	}
	enforced := map[string]string{}
	for _, c := range cs {
		enforced[c.Name] = c.Policy
	}
	out := make([]HostGroupView, 0, len(gs))
	for _, g := range gs {
		v := HostGroupView{Group: g.Name, Cluster: g.Cluster, Default: g.Default, Members: len(g.Members), Policies: []GroupPolicy{},
			Rulesets: []RulesetView{}}
		byPolicy := map[string][]string{}
		for _, m := range g.Members {
			p := enforced[m.Cluster]
			byPolicy[p] = append(byPolicy[p], m.Node)
		}
		for _, p := range slices.Sorted(maps.Keys(byPolicy)) {
			nodes := byPolicy[p]
			slices.Sort(nodes)
			v.Policies = append(v.Policies, GroupPolicy{Policy: p, Nodes: nodes})
		}
		refs := g.Settings.RuntimeRulesets
		v.GroupRulesets = len(refs) > 0
		if !v.GroupRulesets {
			refs = []api.RuntimeRulesetRef{{Ruleset: DefaultRuleset}}
		}
		for i, r := range refs {
			v.Rulesets = append(v.Rulesets, resolve(cat, i, policy.RulesetRef{Ruleset: r.Ruleset, Host: r.Host, Action: r.Action, Rules: r.Rules}))
		}
		out = append(out, v)
	}
	return out, nil
}

func scope(m *policy.Match) string {
	if m == nil {
		return ""
	}
	var parts []string
	if len(m.Namespaces) > 0 {
		parts = append(parts, "namespaces "+strings.Join(m.Namespaces, ", "))
	}
	if sel := m.Selector; sel != nil {
		var terms []string
		for _, k := range slices.Sorted(maps.Keys(sel.MatchLabels)) {
			terms = append(terms, k+"="+sel.MatchLabels[k])
		}
		for _, r := range sel.MatchExpressions {
			t := r.Key + " " + r.Operator
			if len(r.Values) > 0 {
				t += " (" + strings.Join(r.Values, ", ") + ")"
			}
			terms = append(terms, t)
		}
		parts = append(parts, "labels "+strings.Join(terms, ", "))
	}
	return strings.Join(parts, "; ")
}

// ---------------------------------------------------------------------------
// The ATT&CK matrix

// Matrix is the ATT&CK matrix of the events a filter selects: tactics as
// columns (the ATT&CK for Containers tactics always, in ATT&CK's order,
// then others a rule or an event names), techniques as cells with their
// event counts and the built-in rules that detect them.
type Matrix struct {
	// Filter is what was counted (Since and Until bound the time).
	Filter events.Filter
	// Events is the number of events with a technique counted.
	Events  int64
	Tactics []MatrixTactic
	// Covered is the number of (tactic, technique) cells a built-in rule detects.
	Covered int
}

// MatrixTactic is one column of the matrix.
type MatrixTactic struct {
	// ID is the ATT&CK tactic ID; "" for the column of the events whose
	// tactic is unknown to this server or missing.
	ID, Name string
	// Containers is true for the tactics of the ATT&CK for Containers matrix.
	Containers bool
	Events     int64
	Techniques []MatrixCell
}

// MatrixCell is one technique under one tactic.
type MatrixCell struct {
	// Tactic is the tactic the events named (for the column of unknown
	// tactics, what the producer wrote; "" when it named none).
	Tactic, Technique, Name string
	Events                  int64
	// Rules are the built-in rules detecting this technique under this tactic.
	Rules []string
}

// Matrix counts the events f selects by tactic and technique (one store
// query) and lays them out with the techniques the built-in rules cover.
func (s *Service) Matrix(ctx context.Context, f events.Filter) (Matrix, error) {
	_, catalog, err := s.load()
	if err != nil {
		return Matrix{}, err
	}
	counts, err := s.events.CountByTechnique(ctx, f)
	if err != nil {
		return Matrix{}, err
	}
	return buildMatrix(f, catalog, counts), nil
}

func buildMatrix(f events.Filter, catalog []Rule, counts []store.TechniqueCount) Matrix {
	m := Matrix{Filter: f, Tactics: []MatrixTactic{}}
	names, techniques, containers := rules.Tactics(), techniqueNames(), containerTactics()
	type key struct{ tactic, technique string }
	cells := map[key]*MatrixCell{}
	cell := func(tac, tech string) *MatrixCell {
		k := key{tac, tech}
		if c := cells[k]; c != nil {
			return c
		}
		c := &MatrixCell{Tactic: tac, Technique: tech, Name: techniques[tech], Rules: []string{}}
		cells[k] = c
		return c
	}
	for _, r := range catalog {
		c := cell(r.Tactic, r.Technique)
		c.Rules = append(c.Rules, r.ID)
	}
	m.Covered = len(cells)
	for _, c := range counts {
		cell(c.Tactic, c.Technique).Events += c.Events
		m.Events += c.Events
	}
	byTactic := map[string][]*MatrixCell{}
	for k, c := range cells {
		col := k.tactic
		if _, known := names[col]; !known {
			col = "" // unknown or missing tactic: the last column
		}
		byTactic[col] = append(byTactic[col], c)
	}
	for _, id := range append(tacticOrder(), "") {
		cs := byTactic[id]
		if len(cs) == 0 && !containers[id] {
			continue
		}
		t := MatrixTactic{ID: id, Name: names[id], Containers: containers[id], Techniques: make([]MatrixCell, 0, len(cs))}
		if id == "" {
			t.Name = "Other or no tactic"
		}
		sort.Slice(cs, func(i, j int) bool {
			if cs[i].Technique != cs[j].Technique {
				return cs[i].Technique < cs[j].Technique
			}
			return cs[i].Tactic < cs[j].Tactic
		})
		for _, c := range cs {
			t.Events += c.Events
			t.Techniques = append(t.Techniques, *c)
		}
		m.Tactics = append(m.Tactics, t)
	}
	return m
}

// Since returns the start of a console time range ("1h", "24h", "7d",
// "30d", "90d"; "all" for none) before now.
func Since(rangeName string, now time.Time) (time.Time, bool) {
	d, ok := Ranges()[rangeName]
	if !ok {
		return time.Time{}, false
	}
	if d == 0 {
		return time.Time{}, true
	}
	return now.Add(-d), true
}

// Ranges are the time ranges the matrix offers by name (0: all time,
// bounded by the event retention).
func Ranges() map[string]time.Duration {
	return map[string]time.Duration{
		"1h": time.Hour, "24h": 24 * time.Hour, "7d": 7 * 24 * time.Hour, "30d": 30 * 24 * time.Hour,
		"90d": 90 * 24 * time.Hour, "all": 0,
	}
}
