package rules

import (
	"fmt"
	"slices"

	"go.yaml.in/yaml/v3"

	"mamori/internal/cel/ruledoc"
	"mamori/internal/model"
	"mamori/internal/runtime/event"
)

// Ruleset is a set of enabled rules, each with its action, for the workloads its selector picks.
type Ruleset struct {
	Name string
	// Namespaces limits the ruleset to containers in these Kubernetes namespaces (containerd
	// namespaces on a plain host); empty: every namespace.
	Namespaces []string
	// Labels limits it to containers whose pod (or container) labels match; nil: any labels.
	Labels *LabelSelector
	// Host says whether it applies to processes on the host, outside containers. Unset, it does
	// when the ruleset has no namespace or label selector.
	Host *bool
	// Entries enable and disable rules, in order: a later entry overrides an earlier one for the
	// rules both select.
	Entries []Entry
	Pos     Pos

	entries []entry
}

// Entry selects rules of a ruleset: one rule by ID, every rule with a tag, or all rules.
type Entry struct {
	ID  string
	Tag string
	All bool
	// Action overrides the rule's default action; "" keeps it.
	Action model.Action
	// Disabled removes the selected rules from the ruleset.
	Disabled bool
}

type entry struct {
	Entry
	pos Pos
}

// LabelSelector is a Kubernetes label selector (metav1.LabelSelector).
type LabelSelector struct {
	MatchLabels      map[string]string
	MatchExpressions []LabelRequirement
}

// LabelRequirement is one match expression: Operator is In, NotIn, Exists or DoesNotExist.
type LabelRequirement struct {
	Key      string
	Operator string
	Values   []string
}

// Matches reports whether labels satisfy the selector (every requirement, as Kubernetes does).
func (s *LabelSelector) Matches(labels map[string]string) bool {
	if s == nil {
		return true
	}
	for k, v := range s.MatchLabels {
		if got, ok := labels[k]; !ok || got != v {
			return false
		}
	}
	for _, r := range s.MatchExpressions {
		v, ok := labels[r.Key]
		switch r.Operator {
		case "In":
			if !ok || !slices.Contains(r.Values, v) {
				return false
			}
		case "NotIn":
			if ok && slices.Contains(r.Values, v) {
				return false
			}
		case "Exists":
			if !ok {
				return false
			}
		case "DoesNotExist":
			if ok {
				return false
			}
		default:
			return false
		}
	}
	return true
}

func (s *LabelSelector) validate() error {
	if s == nil {
		return nil
	}
	for _, r := range s.MatchExpressions {
		if r.Key == "" {
			return fmt.Errorf("match expression without key")
		}
		switch r.Operator {
		case "In", "NotIn":
			if len(r.Values) == 0 {
				return fmt.Errorf("match expression on %q: %s needs values", r.Key, r.Operator)
			}
		case "Exists", "DoesNotExist":
			if len(r.Values) != 0 {
				return fmt.Errorf("match expression on %q: %s takes no values", r.Key, r.Operator)
			}
		default:
			return fmt.Errorf("match expression on %q: unknown operator %q (want In, NotIn, Exists or DoesNotExist)", r.Key, r.Operator)
		}
	}
	return nil
}

// appliesToHost reports whether the ruleset covers host processes.
func (rs *Ruleset) appliesToHost() bool {
	if rs.Host != nil {
		return *rs.Host
	}
	return len(rs.Namespaces) == 0 && rs.Labels == nil
}

// Applies reports whether the ruleset covers events of the given container (zero: the host).
func (rs *Ruleset) Applies(c *event.Container) bool {
	if c.IsHost() {
		return rs.appliesToHost()
	}
	if len(rs.Namespaces) > 0 && !slices.Contains(rs.Namespaces, c.Namespace) {
		return false
	}
	return rs.Labels.Matches(c.Labels)
}

// DefaultRuleset enables every rule of the catalog with its default action, for the host and
// every container: what the agent runs with when no ruleset is configured.
func DefaultRuleset() *Ruleset {
	return &Ruleset{Name: "default", Entries: []Entry{{All: true}}}
}

// Validate checks a ruleset built in Go (rulesets read from files are checked by Load) against
// a catalog.
func (rs *Ruleset) Validate(cat *Catalog) error {
	if rs.Name == "" {
		return fmt.Errorf("%w: ruleset without a name", ErrInvalid)
	}
	if err := rs.Labels.validate(); err != nil {
		return fmt.Errorf("%w: ruleset %q: labels: %w", ErrInvalid, rs.Name, err)
	}
	for _, e := range rs.allEntries() {
		n := 0
		if e.ID != "" {
			n++
			if cat.Rule(e.ID) == nil {
				return fmt.Errorf("%w: ruleset %q: unknown rule %q", ErrInvalid, rs.Name, e.ID)
			}
		}
		if e.Tag != "" {
			n++
		}
		if e.All {
			n++
		}
		if n != 1 {
			return fmt.Errorf("%w: ruleset %q: an entry names exactly one of id, tag or all", ErrInvalid, rs.Name)
		}
		if e.Action != "" {
			if _, err := parseAction(string(e.Action)); err != nil {
				return fmt.Errorf("%w: ruleset %q: %w", ErrInvalid, rs.Name, err)
			}
		}
	}
	return nil
}

func (rs *Ruleset) allEntries() []entry {
	if len(rs.entries) > 0 {
		return rs.entries
	}
	out := make([]entry, len(rs.Entries))
	for i, e := range rs.Entries {
		out[i] = entry{Entry: e, pos: rs.Pos}
	}
	return out
}

// enabled returns the rules the ruleset enables with their actions.
func (rs *Ruleset) enabled(cat *Catalog) map[*Rule]model.Action {
	out := map[*Rule]model.Action{}
	for _, e := range rs.allEntries() {
		for _, r := range cat.rules {
			if !e.selects(r) {
				continue
			}
			if e.Disabled {
				delete(out, r)
				continue
			}
			a := e.Action
			if a == "" {
				a = r.Action
			}
			out[r] = a
		}
	}
	return out
}

func (e entry) selects(r *Rule) bool {
	switch {
	case e.All:
		return true
	case e.ID != "":
		return e.ID == r.ID
	case e.Tag != "":
		return slices.Contains(r.Tags, e.Tag)
	}
	return false
}

// ruleset reads one ruleset of a rule file.
func (l *loader) ruleset(f ruledoc.File, n *yaml.Node) {
	rs := &Ruleset{Pos: f.Pos(n)}
	label := "ruleset"
	if name := ruledoc.LookupScalar(n, "name"); name != "" {
		label = fmt.Sprintf("ruleset %q", name)
	}
	nerr := l.NumErrors()
	var hostNode *yaml.Node
	l.Fields(f, n, label, map[string]func(*yaml.Node){
		"name":       func(v *yaml.Node) { rs.Name, _ = l.Scalar(f, v, label+": name") },
		"namespaces": func(v *yaml.Node) { rs.Namespaces = l.Strings(f, v, label+": namespaces") },
		"labels":     func(v *yaml.Node) { rs.Labels = l.labelSelector(f, v, label) },
		"host":       func(v *yaml.Node) { hostNode = v },
		"rules": func(v *yaml.Node) {
			l.Seq(f, v, label+": rules", func(f ruledoc.File, e *yaml.Node) { l.rulesetEntry(f, e, rs, label) })
		},
	})
	if hostNode != nil {
		b := l.Boolean(f, hostNode, label+": host")
		rs.Host = &b
	}
	if rs.Name == "" {
		l.Errorf(rs.Pos, "ruleset: name is required")
	}
	for _, prev := range l.rulesets {
		if prev.Name == rs.Name && rs.Name != "" {
			l.Errorf(rs.Pos, "%s: already defined at %s", label, prev.Pos)
		}
	}
	if l.NumErrors() == nerr {
		l.rulesets = append(l.rulesets, rs)
	}
}

func (l *loader) rulesetEntry(f ruledoc.File, n *yaml.Node, rs *Ruleset, label string) {
	e := entry{pos: f.Pos(n)}
	nerr := l.NumErrors()
	l.Fields(f, n, label+": rule entry", map[string]func(*yaml.Node){
		"id":  func(v *yaml.Node) { e.ID, _ = l.Scalar(f, v, label+": id") },
		"tag": func(v *yaml.Node) { e.Tag, _ = l.Scalar(f, v, label+": tag") },
		"all": func(v *yaml.Node) { e.All = l.Boolean(f, v, label+": all") },
		"action": func(v *yaml.Node) {
			s, ok := l.Scalar(f, v, label+": action")
			if !ok {
				return
			}
			a, err := parseAction(s)
			if err != nil {
				l.Errorf(f.Pos(v), "%s: %v", label, err)
			}
			e.Action = a
		},
		"enabled": func(v *yaml.Node) { e.Disabled = !l.Boolean(f, v, label+": enabled") },
	})
	n1 := 0
	for _, set := range []bool{e.ID != "", e.Tag != "", e.All} {
		if set {
			n1++
		}
	}
	if n1 != 1 {
		l.Errorf(e.pos, "%s: a rule entry names exactly one of id, tag or all: true", label)
	}
	if l.NumErrors() == nerr {
		rs.entries = append(rs.entries, e)
		rs.Entries = append(rs.Entries, e.Entry)
	}
}

func (l *loader) labelSelector(f ruledoc.File, n *yaml.Node, label string) *LabelSelector {
	s := &LabelSelector{}
	l.Fields(f, n, label+": labels", map[string]func(*yaml.Node){
		"matchLabels": func(v *yaml.Node) {
			if v.Kind != yaml.MappingNode {
				l.Errorf(f.Pos(v), "%s: matchLabels: want a mapping", label)
				return
			}
			s.MatchLabels = map[string]string{}
			for i := 0; i+1 < len(v.Content); i += 2 {
				val, _ := l.Scalar(f, v.Content[i+1], label+": matchLabels")
				s.MatchLabels[v.Content[i].Value] = val
			}
		},
		"matchExpressions": func(v *yaml.Node) {
			l.Seq(f, v, label+": matchExpressions", func(f ruledoc.File, e *yaml.Node) {
				var r LabelRequirement
				l.Fields(f, e, label+": match expression", map[string]func(*yaml.Node){
					"key":      func(v *yaml.Node) { r.Key, _ = l.Scalar(f, v, label+": key") },
					"operator": func(v *yaml.Node) { r.Operator, _ = l.Scalar(f, v, label+": operator") },
					"values":   func(v *yaml.Node) { r.Values = l.Strings(f, v, label+": values") },
				})
				s.MatchExpressions = append(s.MatchExpressions, r)
			})
		},
	})
	if err := s.validate(); err != nil {
		l.Errorf(f.Pos(n), "%s: labels: %v", label, err)
	}
	return s
}
