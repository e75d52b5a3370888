package agent

import (
	"fmt"
	"os"
	"slices"
	"sort"

	"mamori/internal/model"
	"mamori/internal/policy"
	"mamori/internal/runtime/event"
	"mamori/internal/runtime/rules"
)

// RuleConfig is what the runtime module's rules come from: rule files
// (loaded after the built-in rules), and either the policy's runtime
// ruleset references (a local policy file, or the cluster policy / host
// group settings the server gives) or, without them, the rulesets the rule
// files define, or the default ruleset (every rule with its own action).
type RuleConfig struct {
	Files []rules.Source
	// Refs are the policy's runtime section; nil: not from a policy.
	Refs []policy.RulesetRef
	// Policy applies its exceptions to each match (nil: none).
	Policy *policy.Evaluator
	// PolicyVersion is the server's version of the policy (0: a local file).
	PolicyVersion int
	// Origin says where the rulesets came from, for logs and stats
	// ("default", "rule files", "policy FILE", "server").
	Origin string
}

// ruleState is one built engine and what it was built from.
type ruleState struct {
	engine        *rules.Engine
	policy        *policy.Evaluator
	policyVersion int
	// refName maps an engine ruleset's name to the policy's ruleset name
	// (they differ for a ruleset the policy references twice).
	refName map[string]string
	origin  string
	names   []string // the rulesets in force
}

// LoadRuleConfig reads the local rule files and policy file of a
// runtime configuration (for an agent without a server).
func LoadRuleConfig(files []string, policyFile string) (RuleConfig, error) {
	rc := RuleConfig{Origin: "default"}
	for _, f := range files {
		st, err := os.Stat(f)
		if err != nil {
			return rc, fmt.Errorf("rule file: %w", err)
		}
		if st.Size() > rules.MaxFileSize {
			return rc, fmt.Errorf("rule file %s: %d bytes is over the limit of %d", f, st.Size(), rules.MaxFileSize)
		}
		data, err := os.ReadFile(f)
		if err != nil {
			return rc, fmt.Errorf("rule file: %w", err)
		}
		rc.Files = append(rc.Files, rules.Source{Name: f, Data: data})
		rc.Origin = "rule files"
	}
	if policyFile != "" {
		data, err := os.ReadFile(policyFile)
		if err != nil {
			return rc, fmt.Errorf("policy file: %w", err)
		}
		p, err := policy.Parse(policyFile, data)
		if err != nil {
			return rc, err
		}
		ev, err := policy.Compile(p)
		if err != nil {
			return rc, fmt.Errorf("policy %s: %w", policyFile, err)
		}
		rc.Policy = ev
		rc.Refs = ev.Runtime()
		if rc.Refs == nil {
			rc.Refs = []policy.RulesetRef{}
		}
		rc.Origin = "policy " + policyFile
	}
	return rc, nil
}

// buildRules loads the catalog and the engine of a rule configuration.
// Errors name the file and line (rule files) or the ruleset reference.
func buildRules(rc RuleConfig) (*ruleState, error) {
	cat, err := rules.LoadBuiltin(rc.Files...)
	if err != nil {
		return nil, err
	}
	var sets []*rules.Ruleset
	switch {
	case rc.Refs != nil:
		sets, err = RulesetsFromPolicy(cat, rc.Refs)
		if err != nil {
			return nil, err
		}
	case len(cat.Rulesets()) > 0:
		sets = cat.Rulesets()
	default:
		sets = []*rules.Ruleset{rules.DefaultRuleset()}
	}
	eng, err := rules.NewEngine(cat, sets...)
	if err != nil {
		return nil, err
	}
	st := &ruleState{engine: eng, policy: rc.Policy, policyVersion: rc.PolicyVersion, origin: rc.Origin, refName: map[string]string{}}
	for i, s := range sets {
		st.names = append(st.names, s.Name)
		if rc.Refs != nil {
			st.refName[s.Name] = rc.Refs[i].Ruleset
		}
	}
	return st, nil
}

// RulesetsFromPolicy turns a policy's runtime section into engine
// rulesets (docs/policies.md, Runtime rulesets): each reference names a
// ruleset of the catalog ("default": every rule with its own action),
// scoped by the reference's namespaces, pod label selector and host
// switch, with the reference's actions (Rules for single rules, Action for
// the others, else each rule's action in the named ruleset). An empty
// section enables nothing: the policy runs no runtime rule.
func RulesetsFromPolicy(cat *rules.Catalog, refs []policy.RulesetRef) ([]*rules.Ruleset, error) {
	named := map[string]*rules.Ruleset{}
	for _, rs := range cat.Rulesets() {
		named[rs.Name] = rs
	}
	used := map[string]int{}
	out := make([]*rules.Ruleset, 0, len(refs))
	for i, ref := range refs {
		base := named[ref.Ruleset]
		if base == nil && ref.Ruleset == "default" {
			base = rules.DefaultRuleset()
		}
		if base == nil {
			return nil, fmt.Errorf("policy runtime[%d]: no ruleset %q in the rule files", i, ref.Ruleset)
		}
		enabled := enabledRules(cat, base)
		for id := range ref.Rules {
			if cat.Rule(id) == nil {
				return nil, fmt.Errorf("policy runtime[%d]: ruleset %q: unknown rule %q", i, ref.Ruleset, id)
			}
			if _, ok := enabled[id]; !ok {
				return nil, fmt.Errorf("policy runtime[%d]: rule %q is not in ruleset %q", i, id, ref.Ruleset)
			}
		}
		// The engine needs distinct names; a ruleset referenced twice (for
		// two scopes) is named "<name>-<n>" from its second use on
		// (RulesetName maps it back).
		name := ref.Ruleset
		if used[name]++; used[name] > 1 {
			name = fmt.Sprintf("%s-%d", ref.Ruleset, used[ref.Ruleset])
		}
		rs := &rules.Ruleset{Name: name, Host: ref.Host}
		if m := ref.Match; m != nil {
			if len(m.ExcludeNamespaces) > 0 || m.NamespaceSelector != nil || len(m.Kinds) > 0 {
				return nil, fmt.Errorf("policy runtime[%d]: match takes namespaces and selector only", i)
			}
			rs.Namespaces = slices.Clone(m.Namespaces)
			if m.Selector != nil {
				rs.Labels = &rules.LabelSelector{MatchLabels: m.Selector.MatchLabels}
				for _, r := range m.Selector.MatchExpressions {
					rs.Labels.MatchExpressions = append(rs.Labels.MatchExpressions,
						rules.LabelRequirement{Key: r.Key, Operator: r.Operator, Values: r.Values})
				}
			}
		}
		ids := make([]string, 0, len(enabled))
		for id := range enabled {
			ids = append(ids, id)
		}
		sort.Strings(ids)
		for _, id := range ids {
			a := enabled[id]
			if ref.Action != "" {
				a = ref.Action
			}
			if x, ok := ref.Rules[id]; ok && x != "" {
				a = x
			}
			rs.Entries = append(rs.Entries, rules.Entry{ID: id, Action: a})
		}
		if len(rs.Entries) == 0 {
			// A ruleset with no rule (all disabled) selects nothing.
			rs.Entries = []rules.Entry{{All: true, Disabled: true}}
		}
		if err := rs.Validate(cat); err != nil {
			return nil, fmt.Errorf("policy runtime[%d]: %w", i, err)
		}
		out = append(out, rs)
	}
	return out, nil
}

// enabledRules applies a ruleset's entries, in order, to the catalog's
// rules: the rules it enables, each with its action.
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

// sensorKinds are the kinds the sensor must report for a catalog: every
// kind a rule reads (so that a ruleset change never needs a new sensor),
// plus what the agent's own tables follow: process life cycle (ancestry)
// and writes (the writer of an executed file).
func sensorKinds(cat *rules.Catalog) []event.Kind {
	seen := map[event.Kind]bool{event.KindExec: true, event.KindFork: true, event.KindExit: true, event.KindWrite: true}
	for _, r := range cat.Rules() {
		for _, k := range r.Kinds {
			seen[k] = true
		}
	}
	var out []event.Kind
	for _, k := range event.Kinds {
		if seen[k] {
			out = append(out, k)
		}
	}
	return out
}
