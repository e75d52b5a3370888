// Package rules is log inspection's rule language and engine: YAML rules with CEL conditions
// over the typed fields of decoded log records, in the style of the runtime rules
// (internal/runtime/rules: id, title, severity, ATT&CK tactic and technique, condition, lists,
// macros, output) and compiled by the same CEL package (internal/cel), plus what log rules need:
// the sources a rule reads (syslog, journal, container, kubelet, k8s_audit, auditd, file), the
// event types it runs on (an index: a rule naming events is not evaluated for other lines) and
// a stateful threshold (a weighted count within a sliding time window per key, reported once per
// burst, with bounded state). docs/host-loginspect.md documents the language.
package rules

import (
	"time"

	"mamori/internal/cel"
	"mamori/internal/cel/ruledoc"
	"mamori/internal/host/loginspect/decode"
	"mamori/internal/model"
)

// Pos is a position in a rule file.
type Pos = ruledoc.Pos

// Rule is one log rule as loaded.
type Rule struct {
	ID          string
	Title       string
	Description string
	Severity    model.Severity
	// Tactic and Technique are MITRE ATT&CK IDs, empty when none applies.
	Tactic    string
	Technique string
	// Sources the rule reads; all when the file names none.
	Sources []decode.Source
	// Events are the event types the rule runs on; empty: every record of its sources.
	Events    []string
	Condition string
	Threshold *Threshold
	Output    string
	Tags      []string
	Pos       Pos

	prg     *cel.Program
	weight  *cel.Program // nil: each match counts 1
	output  []outputPart
	sources sourceSet
	keyIdx  []int // field indexes of Threshold.Key
	distIdx int   // field index of Threshold.Distinct, -1 when none
}

// Threshold makes a rule stateful: it reports when the weighted matches of one key reach Count
// within Window, once per burst (until the key has had no match for Window).
type Threshold struct {
	Count  int
	Window time.Duration
	// Key names the fields that tell bursts apart ("src.ip"; none: one burst for everything).
	Key []string
	// Weight is a CEL int expression a match counts for ("auth.attempts"); empty: 1 per match
	// times log.count.
	Weight string
	// Distinct names a field whose distinct values in the burst are reported (at most
	// MaxDistinct), such as the user names a brute force tried.
	Distinct string
	// MaxKeys bounds the keys tracked at once (least recently used evicted first).
	MaxKeys int
}

// Limits of thresholds.
const (
	MaxCount      = 10_000
	MaxWindow     = 24 * time.Hour
	MaxKeyFields  = 4
	MaxDistinct   = 16
	DefaultKeys   = 10_000
	MaxKeysLimit  = 1_000_000
	maxStateSlots = 2_000_000 // per rule: keys x retained matches
)

// Program returns the compiled condition.
func (r *Rule) Program() *cel.Program { return r.prg }
