package hostsettings

import (
	"fmt"
	"maps"
	"slices"

	"mamori/internal/api"
	"mamori/internal/model"
	"mamori/internal/runtime/rules"
)

// MaxRuntimeRulesets bounds a group's runtime ruleset references (the
// built-in rule files define a handful of rulesets).
const MaxRuntimeRulesets = 32

// checkRuntimeRulesets checks a group's runtime ruleset references against
// the built-in rule catalogue as the agent applies them
// (agent.RulesetsFromPolicy): the ruleset exists ("default": every rule),
// the actions are log, isolate or terminate, and each rule named in rules
// is one the ruleset enables. An agent with a server loads no rule files
// of its own, so the built-in catalogue is exactly what it resolves against.
func checkRuntimeRulesets(p *problems, refs []api.RuntimeRulesetRef) {
	if len(refs) == 0 {
		return
	}
	const f = "runtimeRulesets"
	if len(refs) > MaxRuntimeRulesets {
		p.add(f, "%d rulesets, at most %d", len(refs), MaxRuntimeRulesets)
		return
	}
	cat, err := rules.LoadBuiltin()
	if err != nil {
		p.add(f, "the built-in rules do not load: %v", err)
		return
	}
	named := map[string]*rules.Ruleset{}
	var names []string
	for _, rs := range cat.Rulesets() {
		named[rs.Name] = rs
		names = append(names, rs.Name)
	}
	if _, ok := named["default"]; !ok {
		named["default"] = rules.DefaultRuleset()
		names = append(names, "default")
	}
	slices.Sort(names)
	for i, ref := range refs {
		field := fmt.Sprintf("%s[%d]", f, i)
		base := named[ref.Ruleset]
		if base == nil {
			p.add(field+".ruleset", "%q is not a ruleset of the built-in rules (%s)", clip(ref.Ruleset), joinQuoted(names))
			continue
		}
		if ref.Action != "" && !runtimeAction(ref.Action) {
			p.add(field+".action", "%q is not log, isolate or terminate", clip(string(ref.Action)))
		}
		enabled := enabledRules(cat, base)
		for _, id := range slices.Sorted(maps.Keys(ref.Rules)) {
			a := ref.Rules[id]
			switch {
			case cat.Rule(id) == nil:
				p.add(field+".rules", "%q is not a built-in rule", clip(id))
			case !enabled[id]:
				p.add(field+".rules", "rule %q is not in ruleset %q", id, ref.Ruleset)
			}
			if !runtimeAction(a) {
				p.add(field+".rules."+clip(id), "%q is not log, isolate or terminate", clip(string(a)))
			}
		}
	}
}

// runtimeAction: the actions of a runtime rule.
func runtimeAction(a model.Action) bool {
	return a == model.ActionLog || a == model.ActionIsolate || a == model.ActionTerminate
}

// enabledRules applies a ruleset's entries, in order, to the catalogue:
// the IDs of the rules it enables.
func enabledRules(cat *rules.Catalog, rs *rules.Ruleset) map[string]bool {
	out := map[string]bool{}
	for _, r := range cat.Rules() {
		for _, e := range rs.Entries {
			if !(e.All || e.ID == r.ID || (e.Tag != "" && slices.Contains(r.Tags, e.Tag))) {
				continue
			}
			out[r.ID] = !e.Disabled
		}
	}
	return out
}

func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}

func joinQuoted(ss []string) string {
	out := ""
	for i, s := range ss {
		if i > 0 {
			out += ", "
		}
		out += fmt.Sprintf("%q", s)
	}
	return out
}
