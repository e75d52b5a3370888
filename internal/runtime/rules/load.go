package rules

import (
	"errors"
	"fmt"
	"strings"

	"go.yaml.in/yaml/v3"

	"mamori/internal/cel"
	"mamori/internal/cel/ruledoc"
	"mamori/internal/model"
	"mamori/internal/runtime/event"
)

// Source is one YAML rule file.
type Source = ruledoc.File

// Limits on rule files.
const (
	// MaxFileSize bounds one rule file.
	MaxFileSize = 4 << 20
	// RuleCostLimit bounds the static worst-case cost of one rule's condition (cel-go cost units;
	// a unit is about one primitive operation, a byte scanned costs 0.1). The worst case is a
	// path of 4 KiB matched against every glob of a long list: the costliest built-in rule,
	// credential-file-read (27 globs), is estimated at about 25,000. Nested loops over arguments
	// (proc.args.exists(a, proc.args.exists(...))) are far over the limit, and so is scanning every
	// argument for a substring (64 arguments of up to 4 KiB): match proc.cmdline instead.
	RuleCostLimit uint64 = 50_000
)

// ErrInvalid classifies rule-file errors that are not CEL errors (schema, IDs, references).
var ErrInvalid = errors.New("rules: invalid rule file")

// Catalog is a loaded, validated set of rules, lists, macros and rulesets.
type Catalog struct {
	env      *cel.Env
	fields   []field
	rules    []*Rule
	byID     map[string]*Rule
	rulesets []*Ruleset
}

// Rules returns the rules in load order.
func (c *Catalog) Rules() []*Rule { return append([]*Rule(nil), c.rules...) }

// Rule returns the rule with the given ID, or nil.
func (c *Catalog) Rule(id string) *Rule { return c.byID[id] }

// Rulesets returns the rulesets the files defined, in load order.
func (c *Catalog) Rulesets() []*Ruleset { return append([]*Ruleset(nil), c.rulesets...) }

// Env returns the CEL environment the rules were compiled in.
func (c *Catalog) Env() *cel.Env { return c.env }

// Load parses and validates rule files, in order: lists may append to lists of earlier files,
// and rules may use lists and macros of any file. Every problem found is returned (a cel.Errors
// of positioned errors), not only the first.
func Load(srcs ...Source) (*Catalog, error) {
	l := &loader{Reader: ruledoc.NewReader(ErrInvalid)}
	for _, src := range srcs {
		l.file(src)
	}
	if l.NumErrors() > 0 {
		return nil, l.Errors()
	}
	fs := fields()
	env := l.Env(celVars(fs), cel.WithCostLimit(RuleCostLimit))
	if env == nil {
		return nil, l.Errors()
	}
	cat := &Catalog{env: env, fields: fs, byID: map[string]*Rule{}}
	byName := map[string]*field{}
	for i := range fs {
		byName[fs[i].name] = &fs[i]
	}
	for _, rr := range l.rules {
		r := rr.rule
		prg, err := env.CompileBool(rr.cond)
		if err != nil {
			l.AddCEL(err, fmt.Sprintf("rule %q: condition: ", r.ID))
			continue
		}
		r.prg = prg
		for _, v := range prg.Vars() {
			if f := byName[v]; f != nil && f.kinds&r.kinds != r.kinds {
				l.Errorf(rr.condPos, "rule %q: condition reads %s, which %s events do not have", r.ID, v, strings.Join(kindNames(r.kinds&^f.kinds), ", "))
			}
		}
		if r.Output != "" {
			parts, err := parseOutput(r.Output, byName, r.kinds)
			if err != nil {
				l.Errorf(rr.outputPos, "rule %q: output: %v", r.ID, err)
			}
			r.output = parts
		}
		cat.rules = append(cat.rules, r)
		cat.byID[r.ID] = r
	}
	for _, rs := range l.rulesets {
		for _, sel := range rs.entries {
			if sel.ID != "" && cat.byID[sel.ID] == nil {
				l.Errorf(sel.pos, "ruleset %q: unknown rule %q", rs.Name, sel.ID)
			}
		}
		cat.rulesets = append(cat.rulesets, rs)
	}
	if l.NumErrors() > 0 {
		return nil, l.Errors()
	}
	return cat, nil
}

func kindNames(s kindSet) []string { return ruledoc.Names(event.Kinds, s) }

type rawRule struct {
	rule      *Rule
	cond      cel.Source
	condPos   Pos
	outputPos Pos
}

type loader struct {
	*ruledoc.Reader // errors, lists and macros
	rules           []rawRule
	rulesets        []*Ruleset
}

func (l *loader) file(f ruledoc.File) {
	root := l.Root(f, MaxFileSize, "lists, macros, rules and rulesets")
	if root == nil {
		return
	}
	l.Fields(f, root, "file", map[string]func(*yaml.Node){
		"lists":    func(n *yaml.Node) { l.Seq(f, n, "lists", l.List) },
		"macros":   func(n *yaml.Node) { l.Seq(f, n, "macros", l.Macro) },
		"rules":    func(n *yaml.Node) { l.Seq(f, n, "rules", l.rule) },
		"rulesets": func(n *yaml.Node) { l.Seq(f, n, "rulesets", l.ruleset) },
	})
}

func (l *loader) rule(f ruledoc.File, n *yaml.Node) {
	var cond, output, kindsNode, actionNode *yaml.Node
	h := l.Rule(f, n, map[string]func(*yaml.Node){
		"kinds":     func(v *yaml.Node) { kindsNode = v },
		"condition": func(v *yaml.Node) { cond = v },
		"output":    func(v *yaml.Node) { output = v },
		"action":    func(v *yaml.Node) { actionNode = v },
	})
	if h == nil {
		return
	}
	label := h.Label
	l.CheckHeader(f, h, ruledoc.AttackRequired)
	l.Need(h, kindsNode != nil, "kinds")
	l.Need(h, cond != nil, "condition")
	r := &Rule{ID: h.ID, Title: h.Title, Description: h.Description, Severity: h.Severity,
		Tactic: h.Tactic, Technique: h.Technique, Tags: h.Tags, Pos: h.Pos}
	if kindsNode != nil {
		if kindsNode.Kind != yaml.SequenceNode || len(kindsNode.Content) == 0 {
			l.Errorf(f.Pos(kindsNode), "%s: kinds: want a non-empty list of event kinds", label)
		} else {
			for _, kn := range kindsNode.Content {
				k, err := event.ParseKind(kn.Value)
				if err != nil || kn.Kind != yaml.ScalarNode || k != event.Kind(kn.Value) {
					l.Errorf(f.Pos(kn), "%s: unknown event kind %q", label, kn.Value)
					continue
				}
				if r.kinds&kindBit(k) != 0 {
					l.Errorf(f.Pos(kn), "%s: event kind %q listed twice", label, kn.Value)
					continue
				}
				r.kinds |= kindBit(k)
				r.Kinds = append(r.Kinds, k)
			}
		}
	}
	r.Action = model.ActionLog
	if actionNode != nil {
		if s, isStr := l.Scalar(f, actionNode, label+": action"); isStr {
			a, err := parseAction(s)
			if err != nil {
				l.Errorf(f.Pos(actionNode), "%s: %v", label, err)
			}
			r.Action = a
		}
	}
	rr := rawRule{rule: r}
	if cond != nil {
		if s, isStr := l.Scalar(f, cond, label+": condition"); isStr {
			r.Condition = s
			rr.cond = f.Source(cond)
			rr.condPos = f.Pos(cond)
		}
	}
	if output != nil {
		if s, isStr := l.Scalar(f, output, label+": output"); isStr {
			r.Output = s
			rr.outputPos = f.Pos(output)
		}
	}
	if l.Clean(h) {
		l.rules = append(l.rules, rr)
	}
}
