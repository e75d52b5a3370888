package rules

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"mamori/internal/cel"
	"mamori/internal/cel/ruledoc"
	"mamori/internal/host/loginspect/decode"
)

// Source is one YAML rule file.
type Source = ruledoc.File

// Limits on rule files.
const (
	// MaxFileSize bounds one rule file.
	MaxFileSize = 4 << 20
	// RuleCostLimit bounds the static worst-case cost of one condition (cel-go cost units: about
	// one per primitive operation, 0.1 per byte scanned). A regular expression over the whole
	// message (8 KiB) costs about 820 for the scan; log rules run per line, not per kernel event,
	// so they get twice the runtime rules' budget.
	RuleCostLimit uint64 = 100_000
)

// ErrInvalid classifies rule-file errors that are not CEL errors (schema, IDs, references).
var ErrInvalid = errors.New("loginspect rules: invalid rule file")

// Catalog is a loaded, validated set of rules, lists and macros.
type Catalog struct {
	env      *cel.Env
	fields   []field
	rules    []*Rule // enabled rules, in load order
	byID     map[string]*Rule
	disabled []string
}

// Rules returns the enabled rules in load order.
func (c *Catalog) Rules() []*Rule { return append([]*Rule(nil), c.rules...) }

// Rule returns the enabled rule with the given ID, or nil.
func (c *Catalog) Rule(id string) *Rule { return c.byID[id] }

// Disabled returns the IDs of rules the files disabled.
func (c *Catalog) Disabled() []string { return append([]string(nil), c.disabled...) }

// Env returns the CEL environment the rules were compiled in.
func (c *Catalog) Env() *cel.Env { return c.env }

// Load parses and validates rule files, in order: lists may append to lists of earlier files,
// rules may use lists and macros of any file, and `disabled:` switches off rules of any file.
// Every problem found is returned (a cel.Errors of positioned errors), not only the first.
func Load(srcs ...Source) (*Catalog, error) {
	l := &loader{Reader: ruledoc.NewReader(ErrInvalid), known: knownTypes()}
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
	byName := map[string]int{}
	for i := range fs {
		byName[fs[i].name] = i
	}
	disabled := map[string]bool{}
	for _, d := range l.disabled {
		if !l.HasRule(d.id) {
			l.Errorf(d.pos, "disabled: unknown rule %q", d.id)
			continue
		}
		disabled[d.id] = true
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
			if i, ok := byName[v]; ok && fs[i].sources&r.sources != r.sources {
				l.Errorf(rr.condPos, "rule %q: condition reads %s, which %s records do not have (narrow the rule's sources)",
					r.ID, v, strings.Join(sourceNames(r.sources&^fs[i].sources), ", "))
			}
		}
		if t := r.Threshold; t != nil {
			l.threshold(r, rr, env, fs, byName)
		}
		if r.Output != "" {
			parts, err := parseOutput(r.Output, fs, byName, r.sources, r.Threshold != nil)
			if err != nil {
				l.Errorf(rr.outputPos, "rule %q: output: %v", r.ID, err)
			}
			r.output = parts
		}
		if disabled[r.ID] {
			cat.disabled = append(cat.disabled, r.ID)
			continue
		}
		cat.rules = append(cat.rules, r)
		cat.byID[r.ID] = r
	}
	if l.NumErrors() > 0 {
		return nil, l.Errors()
	}
	return cat, nil
}

// threshold compiles and checks a rule's threshold.
func (l *loader) threshold(r *Rule, rr rawRule, env *cel.Env, fs []field, byName map[string]int) {
	t := r.Threshold
	r.distIdx = -1
	for _, k := range t.Key {
		i, ok := byName[k]
		switch {
		case !ok:
			l.Errorf(rr.thresholdPos, "rule %q: threshold key: unknown field %q", r.ID, k)
			continue
		case !fs[i].scalar:
			l.Errorf(rr.thresholdPos, "rule %q: threshold key: %s is a %s; a key is made of string and int fields", r.ID, k, fs[i].typ)
			continue
		case fs[i].sources&r.sources != r.sources:
			l.Errorf(rr.thresholdPos, "rule %q: threshold key: %s is not set for %s records", r.ID, k, strings.Join(sourceNames(r.sources&^fs[i].sources), ", "))
			continue
		}
		r.keyIdx = append(r.keyIdx, i)
	}
	if t.Distinct != "" {
		i, ok := byName[t.Distinct]
		if !ok || !fs[i].scalar {
			l.Errorf(rr.thresholdPos, "rule %q: threshold distinct: %q is not a string or int field", r.ID, t.Distinct)
		} else {
			r.distIdx = i
		}
	}
	if t.Weight != "" {
		prg, err := env.Compile(rr.weight)
		if err != nil {
			l.AddCEL(err, fmt.Sprintf("rule %q: threshold weight: ", r.ID))
			return
		}
		if !prg.OutputType().IsExactType(cel.Int) {
			l.Errorf(rr.weightPos, "rule %q: threshold weight must be an int, not a %s", r.ID, prg.OutputType())
			return
		}
		r.weight = prg
	}
}

type rawRule struct {
	rule                             *Rule
	cond, weight                     cel.Source
	condPos, outputPos, thresholdPos Pos
	weightPos                        Pos
}

type disabledRef struct {
	id  string
	pos Pos
}

type loader struct {
	*ruledoc.Reader // errors, lists and macros
	rules           []rawRule
	disabled        []disabledRef
	known           map[string]bool
}

func (l *loader) file(f ruledoc.File) {
	root := l.Root(f, MaxFileSize, "lists, macros, rules and disabled")
	if root == nil {
		return
	}
	l.Fields(f, root, "file", map[string]func(*yaml.Node){
		"lists":  func(n *yaml.Node) { l.Seq(f, n, "lists", l.List) },
		"macros": func(n *yaml.Node) { l.Seq(f, n, "macros", l.Macro) },
		"rules":  func(n *yaml.Node) { l.Seq(f, n, "rules", l.rule) },
		"disabled": func(n *yaml.Node) {
			if n.Kind != yaml.SequenceNode {
				l.Errorf(f.Pos(n), "disabled: want a list of rule IDs")
				return
			}
			for _, item := range n.Content {
				if id, ok := l.Scalar(f, item, "disabled"); ok {
					l.disabled = append(l.disabled, disabledRef{id, f.Pos(item)})
				}
			}
		},
	})
}

func (l *loader) rule(f ruledoc.File, n *yaml.Node) {
	var cond, output, srcNode, evNode, thNode *yaml.Node
	h := l.Rule(f, n, map[string]func(*yaml.Node){
		"sources":   func(v *yaml.Node) { srcNode = v },
		"events":    func(v *yaml.Node) { evNode = v },
		"condition": func(v *yaml.Node) { cond = v },
		"threshold": func(v *yaml.Node) { thNode = v },
		"output":    func(v *yaml.Node) { output = v },
	})
	if h == nil {
		return
	}
	label := h.Label
	l.CheckHeader(f, h, ruledoc.AttackOptional)
	l.Need(h, cond != nil, "condition")
	r := &Rule{ID: h.ID, Title: h.Title, Description: h.Description, Severity: h.Severity,
		Tactic: h.Tactic, Technique: h.Technique, Tags: h.Tags, Pos: h.Pos, distIdx: -1}
	r.sources = allSources
	if srcNode != nil {
		r.sources = 0
		if srcNode.Kind != yaml.SequenceNode || len(srcNode.Content) == 0 {
			l.Errorf(f.Pos(srcNode), "%s: sources: want a non-empty list of sources", label)
		} else {
			for _, sn := range srcNode.Content {
				b := sourceBit(decode.Source(sn.Value))
				if sn.Kind != yaml.ScalarNode || b == 0 {
					l.Errorf(f.Pos(sn), "%s: unknown source %q (want %s)", label, sn.Value, strings.Join(sourceNames(allSources), ", "))
					continue
				}
				if r.sources&b != 0 {
					l.Errorf(f.Pos(sn), "%s: source %q listed twice", label, sn.Value)
					continue
				}
				r.sources |= b
				r.Sources = append(r.Sources, decode.Source(sn.Value))
			}
		}
	} else {
		r.Sources = append(r.Sources, decode.Sources...)
	}
	if evNode != nil {
		if evNode.Kind != yaml.SequenceNode || len(evNode.Content) == 0 {
			l.Errorf(f.Pos(evNode), "%s: events: want a non-empty list of event types", label)
		} else {
			seen := map[string]bool{}
			for _, en := range evNode.Content {
				v := en.Value
				if en.Kind != yaml.ScalarNode || !l.known[v] && !(strings.HasPrefix(v, decode.TypeAuditdPrefix) && len(v) > len(decode.TypeAuditdPrefix)) {
					l.Errorf(f.Pos(en), "%s: unknown event type %q", label, v)
					continue
				}
				if seen[v] {
					l.Errorf(f.Pos(en), "%s: event type %q listed twice", label, v)
					continue
				}
				seen[v] = true
				r.Events = append(r.Events, v)
			}
		}
	}
	rr := rawRule{rule: r}
	if thNode != nil {
		rr.thresholdPos = f.Pos(thNode)
		r.Threshold, rr.weight, rr.weightPos = l.parseThreshold(f, thNode, label)
	}
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

// parseThreshold reads count, window, key, weight, distinct and max_keys.
func (l *loader) parseThreshold(f ruledoc.File, n *yaml.Node, label string) (*Threshold, cel.Source, Pos) {
	t := &Threshold{Count: 1, MaxKeys: DefaultKeys}
	var weight cel.Source
	var weightPos Pos
	var windowNode *yaml.Node
	l.Fields(f, n, label+": threshold", map[string]func(*yaml.Node){
		"count": func(v *yaml.Node) {
			c, err := strconv.Atoi(v.Value)
			if v.Kind != yaml.ScalarNode || err != nil || c < 1 || c > MaxCount {
				l.Errorf(f.Pos(v), "%s: threshold count: want a number from 1 to %d", label, MaxCount)
				return
			}
			t.Count = c
		},
		"window": func(v *yaml.Node) {
			windowNode = v
			d, err := time.ParseDuration(v.Value)
			if v.Kind != yaml.ScalarNode || err != nil || d < time.Second || d > MaxWindow {
				l.Errorf(f.Pos(v), "%s: threshold window: want a duration from 1s to 24h (\"90s\", \"10m\")", label)
				return
			}
			t.Window = d
		},
		"key": func(v *yaml.Node) {
			t.Key = l.Strings(f, v, label+": threshold key")
			if len(t.Key) > MaxKeyFields {
				l.Errorf(f.Pos(v), "%s: threshold key: at most %d fields", label, MaxKeyFields)
			}
		},
		"weight": func(v *yaml.Node) {
			if s, ok := l.Scalar(f, v, label+": threshold weight"); ok {
				t.Weight = s
				weight, weightPos = f.Source(v), f.Pos(v)
			}
		},
		"distinct": func(v *yaml.Node) { t.Distinct, _ = l.Scalar(f, v, label+": threshold distinct") },
		"max_keys": func(v *yaml.Node) {
			c, err := strconv.Atoi(v.Value)
			if v.Kind != yaml.ScalarNode || err != nil || c < 1 || c > MaxKeysLimit {
				l.Errorf(f.Pos(v), "%s: threshold max_keys: want a number from 1 to %d", label, MaxKeysLimit)
				return
			}
			t.MaxKeys = c
		},
	})
	if windowNode == nil {
		l.Errorf(f.Pos(n), "%s: threshold: window is required", label)
	}
	// Each key keeps at most Count matches: bound the whole state.
	if t.Count > 0 && t.MaxKeys*t.Count > maxStateSlots {
		t.MaxKeys = max(1, maxStateSlots/t.Count)
	}
	return t, weight, weightPos
}
