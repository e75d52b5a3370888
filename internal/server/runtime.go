package server

import (
	"net/http"

	"mamori/internal/api"
	"mamori/internal/service/events"
	"mamori/internal/service/runtimerules"
)

// Runtime rules and the ATT&CK matrix (service/runtimerules): the built-in
// rule catalogue, the rules each policy's rulesets enable, and events
// counted by ATT&CK tactic and technique.

func (s *Server) handleRuntimeRules(w http.ResponseWriter, r *http.Request) {
	rs, err := s.runtimeRules.Rules(r.Context())
	if err != nil {
		s.fail(w, r, "runtime rules", err)
		return
	}
	out := api.RuntimeRuleList{Rules: make([]api.RuntimeRule, 0, len(rs))}
	for _, x := range rs {
		out.Rules = append(out.Rules, api.RuntimeRule{ID: x.ID, Title: x.Title, Description: x.Description, Severity: x.Severity,
			Tactic: x.Tactic, TacticName: x.TacticName, Technique: x.Technique, TechniqueName: x.TechniqueName,
			Kinds: x.Kinds, Condition: x.Condition, Output: x.Output, Tags: x.Tags, Action: x.Action, File: x.File})
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) handleRuntimeRulesets(w http.ResponseWriter, r *http.Request) {
	ps, err := s.runtimeRules.PolicyRulesets(r.Context())
	if err != nil {
		s.fail(w, r, "runtime rulesets", err)
		return
	}
	groups, err := s.runtimeRules.HostGroupRulesets(r.Context())
	if err != nil {
		s.fail(w, r, "runtime rulesets", err)
		return
	}
	out := api.RuntimeRulesetList{Policies: make([]api.PolicyRuntime, 0, len(ps)), HostGroups: make([]api.HostGroupRuntime, 0, len(groups))}
	for _, g := range groups {
		hg := api.HostGroupRuntime{Group: g.Group, Cluster: g.Cluster, Default: g.Default, Members: g.Members,
			Policies: make([]api.HostGroupPolicy, 0, len(g.Policies))}
		for _, p := range g.Policies {
			hg.Policies = append(hg.Policies, api.HostGroupPolicy{Policy: p.Policy, Nodes: p.Nodes})
		}
		hg.GroupRulesets, hg.Rulesets = g.GroupRulesets, make([]api.ResolvedRuleset, 0, len(g.Rulesets))
		for _, v := range g.Rulesets {
			hg.Rulesets = append(hg.Rulesets, api.ResolvedRuleset{Index: v.Index, Ruleset: v.Ruleset, Scope: v.Scope, Host: v.Host,
				Action: v.Action, Known: v.Known, Rules: v.Rules, Problems: v.Problems})
		}
		out.HostGroups = append(out.HostGroups, hg)
	}
	for _, p := range ps {
		pr := api.PolicyRuntime{Policy: p.Policy, Version: p.Version, Clusters: p.Clusters, ParseError: p.ParseError,
			Rulesets: make([]api.ResolvedRuleset, 0, len(p.Rulesets))}
		if pr.Clusters == nil {
			pr.Clusters = []string{}
		}
		for _, v := range p.Rulesets {
			pr.Rulesets = append(pr.Rulesets, api.ResolvedRuleset{Index: v.Index, Ruleset: v.Ruleset, Scope: v.Scope, Host: v.Host,
				Action: v.Action, Known: v.Known, Rules: v.Rules, Problems: v.Problems})
		}
		out.Policies = append(out.Policies, pr)
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) handleEventsAttack(w http.ResponseWriter, r *http.Request) {
	f, err := events.ParseCountFilter(r.URL.Query())
	if err != nil {
		s.fail(w, r, "events", err)
		return
	}
	m, err := s.runtimeRules.Matrix(r.Context(), f)
	if err != nil {
		s.fail(w, r, "events", err)
		return
	}
	writeJSON(w, http.StatusOK, apiAttackMatrix(m))
}

func apiAttackMatrix(m runtimerules.Matrix) api.AttackMatrix {
	out := api.AttackMatrix{Events: m.Events, Covered: m.Covered, Tactics: make([]api.AttackTactic, 0, len(m.Tactics))}
	if t := m.Filter.Since; !t.IsZero() {
		out.Since = &t
	}
	if t := m.Filter.Until; !t.IsZero() {
		out.Until = &t
	}
	for _, t := range m.Tactics {
		at := api.AttackTactic{ID: t.ID, Name: t.Name, Containers: t.Containers, Events: t.Events,
			Techniques: make([]api.AttackTechnique, 0, len(t.Techniques))}
		for _, c := range t.Techniques {
			at.Techniques = append(at.Techniques, api.AttackTechnique{Tactic: c.Tactic, Technique: c.Technique, Name: c.Name,
				Events: c.Events, Rules: c.Rules})
		}
		out.Tactics = append(out.Tactics, at)
	}
	return out
}
