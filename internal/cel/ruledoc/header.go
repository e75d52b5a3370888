package ruledoc

import (
	"fmt"
	"maps"
	"regexp"

	"go.yaml.in/yaml/v3"

	"mamori/internal/model"
)

// MaxRules bounds the rules of one load.
const MaxRules = 10_000

// Header is what a rule of every kind has: its ID, title, description,
// severity, ATT&CK tactic and technique, and tags.
type Header struct {
	ID          string
	Title       string
	Description string
	Severity    model.Severity
	// Tactic and Technique are MITRE ATT&CK IDs ("TA0006", "T1552.001").
	Tactic    string
	Technique string
	Tags      []string
	// Pos is where the rule starts.
	Pos Pos
	// Label names the rule in messages: `rule "id"`, or "rule" when it
	// has no id.
	Label string

	sev, tactic, technique *yaml.Node
	nerr                   int // errors recorded before the rule
}

// Attack is what a rule kind asks of a rule's ATT&CK IDs.
type Attack int

const (
	// AttackOptional: tactic and technique may be left out, but a
	// technique needs its tactic.
	AttackOptional Attack = iota
	// AttackRequired: tactic and technique are required.
	AttackRequired
)

var (
	ruleIDRE    = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,63}$`)
	techniqueRE = regexp.MustCompile(`^T[0-9]{4}(\.[0-9]{3})?$`)
)

// tactics are the ATT&CK enterprise tactics (which contain the containers
// matrix's), by ID. Read only.
var tactics = map[string]string{
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

// Tactics returns the ATT&CK tactics a rule may name, by ID (a new map
// each call).
func Tactics() map[string]string { return maps.Clone(tactics) }

// Rule reads the rule mapping n: the header's fields into the returned
// Header, and the rule kind's own fields through own (an unknown or
// repeated key is an error naming the fields of both). It returns nil for
// a rule not to be read further: one past MaxRules (said once), or one
// whose id is missing, not lower-case letters, digits, '.', '_' and '-',
// or defined before (each said). Rule only keeps the nodes of the
// severity, tactic and technique; CheckHeader checks them.
func (r *Reader) Rule(f File, n *yaml.Node, own map[string]func(*yaml.Node)) *Header {
	r.nrules++
	if r.nrules > MaxRules {
		if r.nrules == MaxRules+1 {
			r.Errorf(f.Pos(n), "more than %d rules", MaxRules)
		}
		return nil
	}
	h := &Header{Pos: f.Pos(n), Label: "rule", nerr: r.NumErrors()}
	if id := LookupScalar(n, "id"); id != "" {
		h.Label = fmt.Sprintf("rule %q", id)
	}
	label := h.Label
	handlers := map[string]func(*yaml.Node){
		"id":          func(v *yaml.Node) { h.ID, _ = r.Scalar(f, v, label+": id") },
		"title":       func(v *yaml.Node) { h.Title, _ = r.Scalar(f, v, label+": title") },
		"description": func(v *yaml.Node) { h.Description, _ = r.Scalar(f, v, label+": description") },
		"severity":    func(v *yaml.Node) { h.sev = v },
		"tactic":      func(v *yaml.Node) { h.tactic = v },
		"technique":   func(v *yaml.Node) { h.technique = v },
		"tags":        func(v *yaml.Node) { h.Tags = r.Strings(f, v, label+": tags") },
	}
	for k, fn := range own {
		handlers[k] = fn
	}
	r.Fields(f, n, label, handlers)
	switch {
	case h.ID == "":
		r.Errorf(h.Pos, "rule: id is required")
		return nil
	case !ruleIDRE.MatchString(h.ID):
		r.Errorf(h.Pos, "%s: an id is lower-case letters, digits, '.', '_' and '-' (at most 64)", label)
		return nil
	}
	if at, dup := r.ruleIDs[h.ID]; dup {
		r.Errorf(h.Pos, "%s: already defined at %s", label, at)
		return nil
	}
	r.ruleIDs[h.ID] = h.Pos
	return h
}

// HasRule reports whether Rule read a rule with the given id.
func (r *Reader) HasRule(id string) bool {
	_, ok := r.ruleIDs[id]
	return ok
}

// Need records "<rule>: <field> is required" at the rule unless present.
func (r *Reader) Need(h *Header, present bool, field string) {
	if !present {
		r.Errorf(h.Pos, "%s: %s is required", h.Label, field)
	}
}

// CheckHeader checks the header Rule read: the title and severity are
// required (and the tactic and technique with AttackRequired), the
// severity is a known one, the tactic an ATT&CK tactic ID and the
// technique an ATT&CK technique ID (with AttackOptional, given with its
// tactic).
func (r *Reader) CheckHeader(f File, h *Header, attack Attack) {
	label := h.Label
	r.Need(h, h.Title != "", "title")
	r.Need(h, h.sev != nil, "severity")
	if attack == AttackRequired {
		r.Need(h, h.tactic != nil, "tactic")
		r.Need(h, h.technique != nil, "technique")
	}
	if h.sev != nil {
		if s, ok := r.Scalar(f, h.sev, label+": severity"); ok {
			sev, err := model.ParseSeverity(s)
			if err != nil || sev == model.SeverityUnknown {
				r.Errorf(f.Pos(h.sev), "%s: unknown severity %q (want critical, high, medium, low or negligible)", label, s)
				sev = 0
			}
			h.Severity = sev
		}
	}
	if h.tactic != nil {
		if s, ok := r.Scalar(f, h.tactic, label+": tactic"); ok {
			if _, known := tactics[s]; !known {
				r.Errorf(f.Pos(h.tactic), "%s: tactic %q is not an ATT&CK tactic ID (TA0001-TA0011, TA0040, TA0042, TA0043)", label, s)
			}
			h.Tactic = s
		}
	}
	if h.technique != nil {
		if s, ok := r.Scalar(f, h.technique, label+": technique"); ok {
			if !techniqueRE.MatchString(s) {
				r.Errorf(f.Pos(h.technique), "%s: technique %q is not an ATT&CK technique ID (T1234 or T1234.567)", label, s)
			}
			if attack == AttackOptional && h.tactic == nil {
				r.Errorf(f.Pos(h.technique), "%s: a technique needs its tactic", label)
			}
			h.Technique = s
		}
	}
}

// Clean reports whether no error was recorded since Rule began reading h.
func (r *Reader) Clean(h *Header) bool { return r.NumErrors() == h.nerr }
