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
	"regexp"

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
func Tactics() map[string]string {
	return map[string]string{
		"TA0001": "Initial Access",
		"TA0002": "Execution",
		"TA0003": "Persistence",
		"TA0004": "Privilege Escalation",
		"TA0005": "Defense Evasion",
		"TA0006": "Credential Access",
		"TA0007": "Discovery",
		"TA0008": "Lateral Movement",
		"TA0009": "Collection",
		"TA0010": "Exfiltration",
		"TA0011": "Command and Control",
		"TA0040": "Impact",
		"TA0042": "Resource Development",
		"TA0043": "Reconnaissance",
	}
}

var (
	techniqueRE = regexp.MustCompile(`^T[0-9]{4}(\.[0-9]{3})?$`)
	ruleIDRE    = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,63}$`)
)

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

func parseSeverity(s string) (model.Severity, error) {
	sev, err := model.ParseSeverity(s)
	if err != nil || sev == model.SeverityUnknown {
		return 0, fmt.Errorf("unknown severity %q (want critical, high, medium, low or negligible)", s)
	}
	return sev, nil
}
