package api

import (
	"time"

	"mamori/internal/model"
)

// Runtime rules and the ATT&CK matrix (service/runtimerules): read-only
// views for people (viewer and above).
const (
	// PathRuntimeRules lists the built-in runtime rule catalogue.
	PathRuntimeRules = Prefix + "/runtime/rules"
	// PathRuntimeRulesets lists, per policy, the runtime rules its rulesets enable.
	PathRuntimeRulesets = Prefix + "/runtime/rulesets"
	// PathEventsAttack counts events by ATT&CK tactic and technique.
	PathEventsAttack = Prefix + "/events/attack"
)

// RuntimeRule is one rule of the built-in runtime rule catalogue
// (internal/runtime/rules, docs/runtime-rules.md).
type RuntimeRule struct {
	ID          string         `json:"id"`
	Title       string         `json:"title"`
	Description string         `json:"description,omitempty"`
	Severity    model.Severity `json:"severity"`
	// Tactic and Technique are MITRE ATT&CK IDs ("TA0002", "T1059.004").
	Tactic        string `json:"tactic"`
	TacticName    string `json:"tacticName,omitempty"`
	Technique     string `json:"technique"`
	TechniqueName string `json:"techniqueName,omitempty"`
	// Kinds are the event kinds the rule reads (exec, open, connect ...).
	Kinds []string `json:"kinds"`
	// Condition is the CEL condition as written; Output the message template.
	Condition string   `json:"condition"`
	Output    string   `json:"output,omitempty"`
	Tags      []string `json:"tags"`
	// Action is the default action: log, isolate or terminate.
	Action model.Action `json:"action"`
	// File is where the rule is defined ("builtin/execution.yaml:12:5").
	File string `json:"file"`
}

// RuntimeRuleList answers GET /api/v1/runtime/rules.
type RuntimeRuleList struct {
	Rules []RuntimeRule `json:"rules"`
}

// RuntimeRulesetList answers GET /api/v1/runtime/rulesets: each stored
// policy (at its latest version) with the runtime rules its rulesets turn
// on in the node agents.
type RuntimeRulesetList struct {
	Policies []PolicyRuntime `json:"policies"`
	// HostGroups are the host groups with the policy whose rulesets each
	// member runs, and the group's own rulesets, which the members whose
	// cluster enforces no policy run (bare hosts).
	HostGroups []HostGroupRuntime `json:"hostGroups"`
}

// HostGroupRuntime is a host group and the rulesets its members run.
type HostGroupRuntime struct {
	Group   string `json:"group"`
	Cluster string `json:"cluster,omitempty"`
	Default bool   `json:"default"`
	Members int    `json:"members"`
	// Policies groups the members' nodes by the policy their cluster
	// enforces ("" for none: they run the group's rulesets).
	Policies []HostGroupPolicy `json:"policies"`
	// GroupRulesets says the group selects runtime rulesets
	// (settings.runtimeRulesets); false: its members without a policy run
	// the default ruleset. Rulesets are the ones they run, resolved.
	GroupRulesets bool              `json:"groupRulesets"`
	Rulesets      []ResolvedRuleset `json:"rulesets"`
}

// HostGroupPolicy is the members of a host group running one policy's rulesets.
type HostGroupPolicy struct {
	Policy string   `json:"policy"`
	Nodes  []string `json:"nodes"`
}

// PolicyRuntime is the runtime section of one policy, resolved.
type PolicyRuntime struct {
	Policy   string   `json:"policy"`
	Version  int      `json:"version"`
	Clusters []string `json:"clusters"`
	// ParseError is set when the stored document does not parse with this server.
	ParseError string            `json:"parseError,omitempty"`
	Rulesets   []ResolvedRuleset `json:"rulesets"`
}

// ResolvedRuleset is one ruleset reference of a policy's runtime section
// resolved against the built-in catalogue as the node agent resolves it.
type ResolvedRuleset struct {
	// Index is the reference's position in the policy's runtime section.
	Index   int    `json:"index"`
	Ruleset string `json:"ruleset"`
	// Scope names the namespaces and labels it is limited to ("" for all).
	Scope string `json:"scope,omitempty"`
	// Host: processes outside containers are covered too.
	Host bool `json:"host"`
	// Action, when set, is the action of every rule the reference does not name.
	Action model.Action `json:"action,omitempty"`
	// Known is false for a ruleset defined in the agents' own rule files
	// (not built in): Rules then holds only the per-rule actions.
	Known bool `json:"known"`
	// Rules maps each enabled rule ID to its action.
	Rules map[string]model.Action `json:"rules"`
	// Problems are what an agent would refuse in this reference.
	Problems []string `json:"problems"`
}

// AttackMatrix answers GET /api/v1/events/attack: the events the filters
// select, counted by ATT&CK tactic and technique, with the techniques the
// built-in rules detect (count 0 when nothing fired).
type AttackMatrix struct {
	// Since and Until are the time bounds counted (absent: unbounded).
	Since *time.Time `json:"since,omitempty"`
	Until *time.Time `json:"until,omitempty"`
	// Events is the number of events with a technique counted.
	Events int64 `json:"events"`
	// Covered is the number of (tactic, technique) cells a built-in rule detects.
	Covered int            `json:"covered"`
	Tactics []AttackTactic `json:"tactics"`
}

// AttackTactic is one column: the ATT&CK for Containers tactics always,
// in ATT&CK's order, then the other tactics a rule or an event names, and
// last ("id" empty) the events whose tactic is unknown or missing.
type AttackTactic struct {
	ID         string            `json:"id"`
	Name       string            `json:"name"`
	Containers bool              `json:"containers"`
	Events     int64             `json:"events"`
	Techniques []AttackTechnique `json:"techniques"`
}

// AttackTechnique is one cell: a technique under a tactic.
type AttackTechnique struct {
	// Tactic is the tactic the events named ("" when they named none).
	Tactic    string `json:"tactic"`
	Technique string `json:"technique"`
	Name      string `json:"name,omitempty"`
	Events    int64  `json:"events"`
	// Rules are the built-in rules that detect it.
	Rules []string `json:"rules"`
}
