// Package rules is the runtime agent's rule language and engine: YAML rules with CEL conditions
// over typed event fields, Falco-style reusable lists and macros, rulesets that enable rules per
// Kubernetes namespace and label selector with an action each (log, isolate, terminate), and
// the built-in rule set mapped to MITRE ATT&CK for Containers. docs/runtime-rules.md documents
// the language.
//
// Loading is strict (unknown fields, bad ATT&CK IDs, unknown event kinds, unknown lists, CEL type
// errors and too-expensive conditions are errors naming the file and line); evaluation is fast
// (rules pre-indexed by event kind and by ruleset selection, one reusable activation per
// goroutine, no allocation per rule evaluated).
package rules

import (
	"fmt"

	"mamori/internal/cel"
	"mamori/internal/cel/ruledoc"
	"mamori/internal/model"
	"mamori/internal/runtime/event"
)

// Pos is a position in a rule file.
type Pos = ruledoc.Pos

// Rule is one runtime rule as loaded.
type Rule struct {
	ID          string
	Title       string
	Description string
	Severity    model.Severity
	// Tactic and Technique are MITRE ATT&CK IDs ("TA0006", "T1552.001").
	Tactic    string
	Technique string
	// Kinds are the event kinds the rule applies to.
	Kinds []event.Kind
	// Condition is the CEL expression; Output the message template ("{proc.exe} read {file.path}").
	Condition string
	Output    string
	Tags      []string
	// Action is the default action (log, isolate, terminate) when a ruleset enables the rule
	// without naming one.
	Action model.Action
	Pos    Pos

	prg    *cel.Program
	output []outputPart
	kinds  kindSet
}

// Program returns the compiled condition.
func (r *Rule) Program() *cel.Program { return r.prg }

// Tactics are the ATT&CK tactics (enterprise matrix, which contains the containers matrix), by ID.
func Tactics() map[string]string { return ruledoc.Tactics() }

// actions a rule or ruleset may name.
func parseAction(s string) (model.Action, error) {
	switch model.Action(s) {
	case model.ActionLog, model.ActionIsolate, model.ActionTerminate:
		return model.Action(s), nil
	}
	return "", fmt.Errorf("unknown action %q (want log, isolate or terminate)", s)
}

// actionRank orders actions by strength: a rule enabled by several rulesets takes the strongest.
func actionRank(a model.Action) int {
	switch a {
	case model.ActionTerminate:
		return 3
	case model.ActionIsolate:
		return 2
	case model.ActionLog:
		return 1
	}
	return 0
}
