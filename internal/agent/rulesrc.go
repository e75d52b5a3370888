package agent

import (
	"fmt"

	"mamori/internal/api"
	"mamori/internal/policy"
)

// Where an agent with a server takes its runtime rulesets from, first
// that applies (docs/agent.md, Rulesets):
//
//  1. the policy the server assigns to the agent's cluster (its runtime
//     section and exceptions: GET /api/v1/agents/policy, checked at every
//     heartbeat);
//  2. the runtime rulesets of the agent's host group (the group's
//     runtimeRulesets setting, fetched with the host settings by the
//     hostsync module, kept for the next start): how a bare host without
//     Kubernetes gets its rulesets from the server;
//  3. the default ruleset (every rule with its own action).
//
// Each source is set on its own schedule; the choice is made again
// whenever one changes, and the runtime module's rules are replaced only
// when the chosen source's content changed. An agent without a server
// never uses this: its rules are the configuration's files.
type serverRules struct {
	cluster    *RuleConfig // nil: no policy (or not known yet)
	clusterKey string
	host       *RuleConfig // nil: the group selects none
	hostKey    string
	applied    string // key of the rules in force ("" none yet)
	failed     string // key that failed to build (logged once)
}

// setClusterRules records the cluster policy's rules (nil: none) and
// applies the choice.
func (a *Agent) setClusterRules(rc *RuleConfig, key string) {
	a.rulesMu.Lock()
	defer a.rulesMu.Unlock()
	a.rules.cluster, a.rules.clusterKey = rc, "policy "+key
	a.applyServerRulesLocked()
}

// SetHostRulesets records the runtime rulesets of the agent's host group
// (the hostsync module calls it with each settings version it applies,
// refs nil or empty when the group selects none) and applies the choice.
func (a *Agent) SetHostRulesets(group string, version int, refs []api.RuntimeRulesetRef) {
	a.rulesMu.Lock()
	defer a.rulesMu.Unlock()
	if len(refs) == 0 {
		a.rules.host, a.rules.hostKey = nil, ""
	} else {
		rc := HostRulesets(group, version, refs)
		a.rules.host, a.rules.hostKey = &rc, fmt.Sprintf("host group %s v%d", group, version)
	}
	a.applyServerRulesLocked()
}

// HostRulesets turns a host group's runtime ruleset references into the
// runtime module's rule configuration: policy references without a
// Kubernetes scope.
func HostRulesets(group string, version int, refs []api.RuntimeRulesetRef) RuleConfig {
	out := make([]policy.RulesetRef, len(refs))
	for i, r := range refs {
		host := true
		if r.Host != nil {
			host = *r.Host
		}
		out[i] = policy.RulesetRef{Ruleset: r.Ruleset, Host: &host, Action: r.Action, Rules: r.Rules}
	}
	return RuleConfig{Refs: out, Origin: fmt.Sprintf("host group %s v%d (from the server)", group, version)}
}

func (a *Agent) applyServerRulesLocked() {
	if a.runtime == nil || a.server == nil {
		return
	}
	rc, key := RuleConfig{Origin: "default (the server assigns no policy and the host group no rulesets)"}, "default"
	switch {
	case a.rules.cluster != nil:
		rc, key = *a.rules.cluster, a.rules.clusterKey
	case a.rules.host != nil:
		rc, key = *a.rules.host, a.rules.hostKey
	}
	if key == a.rules.applied || key == a.rules.failed {
		return
	}
	if err := a.runtime.SetRules(rc); err != nil {
		// Logged once per version; the previous rules stay in force.
		a.rules.failed = key
		a.log.Error("the server's rulesets name rulesets or rules the agent cannot run; the rules in force stay",
			"from", key, "error", err)
		return
	}
	a.rules.applied, a.rules.failed = key, ""
	a.setState(func(s *ServerState) { s.Policy = rc.Origin })
}
