package rules

import (
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"mamori/internal/cel"
	"mamori/internal/host/loginspect/decode"
)

// Source is one YAML rule file.
type Source struct {
	Name string
	Data []byte
}

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

// maxRules bounds the rules of one load.
const maxRules = 10_000

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
	l := &loader{lists: map[string]*rawList{}, macroNames: map[string]Pos{}, ids: map[string]Pos{}, known: knownTypes()}
	for _, src := range srcs {
		l.file(src)
	}
	if len(l.errs) > 0 {
		return nil, l.sorted()
	}
	var lists []cel.List
	for _, name := range l.listOrder {
		lists = append(lists, cel.List{Name: name, Values: l.lists[name].items})
	}
	fs := fields()
	env, err := cel.NewEnv(celVars(fs), cel.WithCostLimit(RuleCostLimit), cel.WithLists(lists...), cel.WithMacros(l.macros...))
	if err != nil {
		for _, e := range celErrors(err) {
			l.errs = append(l.errs, friendly(e))
		}
		return nil, l.sorted()
	}
	cat := &Catalog{env: env, fields: fs, byID: map[string]*Rule{}}
	byName := map[string]int{}
	for i := range fs {
		byName[fs[i].name] = i
	}
	disabled := map[string]bool{}
	for _, d := range l.disabled {
		if _, ok := l.ids[d.id]; !ok {
			l.errAt(d.pos, "disabled: unknown rule %q", d.id)
			continue
		}
		disabled[d.id] = true
	}
	for _, rr := range l.rules {
		r := rr.rule
		prg, err := env.CompileBool(rr.cond)
		if err != nil {
			for _, e := range celErrors(err) {
				e = friendly(e)
				e.Msg = fmt.Sprintf("rule %q: condition: %s", r.ID, e.Msg)
				l.errs = append(l.errs, e)
			}
			continue
		}
		r.prg = prg
		for _, v := range prg.Vars() {
			if i, ok := byName[v]; ok && fs[i].sources&r.sources != r.sources {
				l.errAt(rr.condPos, "rule %q: condition reads %s, which %s records do not have (narrow the rule's sources)",
					r.ID, v, strings.Join(sourceNames(r.sources&^fs[i].sources), ", "))
			}
		}
		if t := r.Threshold; t != nil {
			l.threshold(r, rr, env, fs, byName)
		}
		if r.Output != "" {
			parts, err := parseOutput(r.Output, fs, byName, r.sources, r.Threshold != nil)
			if err != nil {
				l.errAt(rr.outputPos, "rule %q: output: %v", r.ID, err)
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
	if len(l.errs) > 0 {
		return nil, l.sorted()
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
			l.errAt(rr.thresholdPos, "rule %q: threshold key: unknown field %q", r.ID, k)
			continue
		case !fs[i].scalar:
			l.errAt(rr.thresholdPos, "rule %q: threshold key: %s is a %s; a key is made of string and int fields", r.ID, k, fs[i].typ)
			continue
		case fs[i].sources&r.sources != r.sources:
			l.errAt(rr.thresholdPos, "rule %q: threshold key: %s is not set for %s records", r.ID, k, strings.Join(sourceNames(r.sources&^fs[i].sources), ", "))
			continue
		}
		r.keyIdx = append(r.keyIdx, i)
	}
	if t.Distinct != "" {
		i, ok := byName[t.Distinct]
		if !ok || !fs[i].scalar {
			l.errAt(rr.thresholdPos, "rule %q: threshold distinct: %q is not a string or int field", r.ID, t.Distinct)
		} else {
			r.distIdx = i
		}
	}
	if t.Weight != "" {
		prg, err := env.Compile(rr.weight)
		if err != nil {
			for _, e := range celErrors(err) {
				e = friendly(e)
				e.Msg = fmt.Sprintf("rule %q: threshold weight: %s", r.ID, e.Msg)
				l.errs = append(l.errs, e)
			}
			return
		}
		if !prg.OutputType().IsExactType(cel.Int) {
			l.errAt(rr.weightPos, "rule %q: threshold weight must be an int, not a %s", r.ID, prg.OutputType())
			return
		}
		r.weight = prg
	}
}

// celErrors flattens an error from the cel package into positioned errors.
func celErrors(err error) cel.Errors {
	var list cel.Errors
	if errors.As(err, &list) {
		return list
	}
	var one *cel.Error
	if errors.As(err, &one) {
		return cel.Errors{one}
	}
	return cel.Errors{{Msg: err.Error(), Err: err}}
}

// friendly rewrites CEL's message for an undeclared name: a dotted name is a field that does not
// exist, a plain one a list or macro that does not.
func friendly(e *cel.Error) *cel.Error {
	const prefix = "undeclared reference to '"
	i := strings.Index(e.Msg, prefix)
	if i < 0 {
		return e
	}
	name := e.Msg[i+len(prefix):]
	if j := strings.IndexByte(name, '\''); j >= 0 {
		name = name[:j]
	}
	suffix := ""
	if k := strings.Index(e.Msg, " (did you mean"); k >= 0 {
		suffix = e.Msg[k:]
	}
	c := *e
	if strings.Contains(name, ".") {
		c.Msg = e.Msg[:i] + "unknown field '" + name + "'" + suffix
	} else {
		c.Msg = e.Msg[:i] + "unknown list or macro '" + name + "'" + suffix
	}
	return &c
}

type rawList struct {
	items []string
	pos   Pos
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
	errs       cel.Errors
	lists      map[string]*rawList
	listOrder  []string
	macros     []cel.Macro
	macroNames map[string]Pos
	rules      []rawRule
	ids        map[string]Pos
	disabled   []disabledRef
	nrules     int
	known      map[string]bool
}

func (l *loader) errAt(p Pos, format string, args ...any) {
	l.errs = append(l.errs, &cel.Error{File: p.File, Line: p.Line, Column: p.Column, Msg: fmt.Sprintf(format, args...), Err: ErrInvalid})
}

func (l *loader) sorted() cel.Errors {
	sort.SliceStable(l.errs, func(i, j int) bool {
		a, b := l.errs[i], l.errs[j]
		if a.File != b.File {
			return a.File < b.File
		}
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		return a.Column < b.Column
	})
	return l.errs
}

type yamlFile struct {
	name string
	data []byte
}

func (f yamlFile) pos(n *yaml.Node) Pos { return Pos{File: f.name, Line: n.Line, Column: n.Column} }

func (l *loader) file(src Source) {
	f := yamlFile{name: src.Name, data: src.Data}
	if len(src.Data) > MaxFileSize {
		l.errAt(Pos{File: src.Name}, "file is %d bytes, more than the limit of %d", len(src.Data), MaxFileSize)
		return
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(src.Data, &doc); err != nil {
		l.errAt(yamlErrorPos(src.Name, err), "%s", yamlErrorMsg(err))
		return
	}
	if doc.Kind == 0 || len(doc.Content) == 0 {
		return
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		l.errAt(f.pos(root), "want a mapping with lists, macros, rules and disabled")
		return
	}
	l.fields(f, root, "file", map[string]func(*yaml.Node){
		"lists":  func(n *yaml.Node) { l.seq(f, n, "lists", l.list) },
		"macros": func(n *yaml.Node) { l.seq(f, n, "macros", l.macro) },
		"rules":  func(n *yaml.Node) { l.seq(f, n, "rules", l.rule) },
		"disabled": func(n *yaml.Node) {
			if n.Kind != yaml.SequenceNode {
				l.errAt(f.pos(n), "disabled: want a list of rule IDs")
				return
			}
			for _, item := range n.Content {
				if id, ok := l.scalar(f, item, "disabled"); ok {
					l.disabled = append(l.disabled, disabledRef{id, f.pos(item)})
				}
			}
		},
	})
}

// fields dispatches a mapping's keys to handlers, reporting unknown and repeated keys.
func (l *loader) fields(f yamlFile, n *yaml.Node, what string, handlers map[string]func(*yaml.Node)) {
	if n.Kind != yaml.MappingNode {
		l.errAt(f.pos(n), "%s: want a mapping", what)
		return
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		h, ok := handlers[k.Value]
		if !ok {
			names := make([]string, 0, len(handlers))
			for name := range handlers {
				names = append(names, name)
			}
			sort.Strings(names)
			l.errAt(f.pos(k), "%s: unknown field %q (want %s)", what, k.Value, strings.Join(names, ", "))
			continue
		}
		if seen[k.Value] {
			l.errAt(f.pos(k), "%s: field %q given twice", what, k.Value)
			continue
		}
		seen[k.Value] = true
		h(v)
	}
}

func (l *loader) seq(f yamlFile, n *yaml.Node, what string, each func(yamlFile, *yaml.Node)) {
	if n.Kind != yaml.SequenceNode {
		l.errAt(f.pos(n), "%s: want a list", what)
		return
	}
	for _, item := range n.Content {
		each(f, item)
	}
}

func (l *loader) scalar(f yamlFile, n *yaml.Node, what string) (string, bool) {
	if n.Kind != yaml.ScalarNode || n.Tag == "!!null" {
		l.errAt(f.pos(n), "%s: want a string", what)
		return "", false
	}
	return n.Value, true
}

func (l *loader) strings(f yamlFile, n *yaml.Node, what string) []string {
	if n.Kind != yaml.SequenceNode {
		l.errAt(f.pos(n), "%s: want a list of strings", what)
		return nil
	}
	out := make([]string, 0, len(n.Content))
	for _, item := range n.Content {
		if s, ok := l.scalar(f, item, what); ok {
			out = append(out, s)
		}
	}
	return out
}

func (l *loader) boolean(f yamlFile, n *yaml.Node, what string) bool {
	var b bool
	if n.Kind != yaml.ScalarNode || n.Decode(&b) != nil {
		l.errAt(f.pos(n), "%s: want true or false", what)
	}
	return b
}

func (l *loader) list(f yamlFile, n *yaml.Node) {
	var name string
	var items []string
	var appendTo, hasItems bool
	l.fields(f, n, "list", map[string]func(*yaml.Node){
		"name":   func(v *yaml.Node) { name, _ = l.scalar(f, v, "list name") },
		"items":  func(v *yaml.Node) { items, hasItems = l.strings(f, v, "list items"), true },
		"append": func(v *yaml.Node) { appendTo = l.boolean(f, v, "list append") },
	})
	p := f.pos(n)
	switch {
	case name == "":
		l.errAt(p, "list: name is required")
		return
	case !nameRE.MatchString(name):
		l.errAt(p, "list %q: a name is letters, digits and _", name)
		return
	case !hasItems:
		l.errAt(p, "list %q: items is required", name)
		return
	}
	prev, exists := l.lists[name]
	switch {
	case appendTo && !exists:
		l.errAt(p, "list %q: append to a list that is not defined before", name)
	case appendTo:
		prev.items = append(prev.items, items...)
	case exists:
		l.errAt(p, "list %q: already defined at %s (use append: true to extend it)", name, prev.pos)
	default:
		if at, ok := l.macroNames[name]; ok {
			l.errAt(p, "list %q: a macro of that name is defined at %s", name, at)
			return
		}
		l.lists[name] = &rawList{items: items, pos: p}
		l.listOrder = append(l.listOrder, name)
	}
}

func (l *loader) macro(f yamlFile, n *yaml.Node) {
	var name string
	var cond *yaml.Node
	l.fields(f, n, "macro", map[string]func(*yaml.Node){
		"name":      func(v *yaml.Node) { name, _ = l.scalar(f, v, "macro name") },
		"condition": func(v *yaml.Node) { cond = v },
	})
	p := f.pos(n)
	switch {
	case name == "":
		l.errAt(p, "macro: name is required")
		return
	case !nameRE.MatchString(name):
		l.errAt(p, "macro %q: a name is letters, digits and _", name)
		return
	case cond == nil:
		l.errAt(p, "macro %q: condition is required", name)
		return
	}
	if _, ok := l.scalar(f, cond, "macro condition"); !ok {
		return
	}
	if at, ok := l.macroNames[name]; ok {
		l.errAt(p, "macro %q: already defined at %s", name, at)
		return
	}
	if prev, ok := l.lists[name]; ok {
		l.errAt(p, "macro %q: a list of that name is defined at %s", name, prev.pos)
		return
	}
	l.macroNames[name] = p
	l.macros = append(l.macros, cel.Macro{Name: name, Source: cel.YAMLSource(f.name, f.data, cond)})
}

func (l *loader) rule(f yamlFile, n *yaml.Node) {
	r := &Rule{Pos: f.pos(n), distIdx: -1}
	var cond, output, sevNode, tacticNode, techNode, srcNode, evNode, thNode *yaml.Node
	l.nrules++
	if l.nrules > maxRules {
		if l.nrules == maxRules+1 {
			l.errAt(f.pos(n), "more than %d rules", maxRules)
		}
		return
	}
	nerr := len(l.errs)
	label := "rule"
	if id := lookupScalar(n, "id"); id != "" {
		label = fmt.Sprintf("rule %q", id)
	}
	l.fields(f, n, label, map[string]func(*yaml.Node){
		"id":          func(v *yaml.Node) { r.ID, _ = l.scalar(f, v, label+": id") },
		"title":       func(v *yaml.Node) { r.Title, _ = l.scalar(f, v, label+": title") },
		"description": func(v *yaml.Node) { r.Description, _ = l.scalar(f, v, label+": description") },
		"severity":    func(v *yaml.Node) { sevNode = v },
		"tactic":      func(v *yaml.Node) { tacticNode = v },
		"technique":   func(v *yaml.Node) { techNode = v },
		"sources":     func(v *yaml.Node) { srcNode = v },
		"events":      func(v *yaml.Node) { evNode = v },
		"condition":   func(v *yaml.Node) { cond = v },
		"threshold":   func(v *yaml.Node) { thNode = v },
		"output":      func(v *yaml.Node) { output = v },
		"tags":        func(v *yaml.Node) { r.Tags = l.strings(f, v, label+": tags") },
	})
	switch {
	case r.ID == "":
		l.errAt(r.Pos, "rule: id is required")
		return
	case !ruleIDRE.MatchString(r.ID):
		l.errAt(r.Pos, "%s: an id is lower-case letters, digits, '.', '_' and '-' (at most 64)", label)
		return
	}
	if at, dup := l.ids[r.ID]; dup {
		l.errAt(r.Pos, "%s: already defined at %s", label, at)
		return
	}
	l.ids[r.ID] = r.Pos
	ok := len(l.errs) == nerr
	need := func(present bool, field string) {
		if !present {
			l.errAt(r.Pos, "%s: %s is required", label, field)
			ok = false
		}
	}
	need(r.Title != "", "title")
	need(sevNode != nil, "severity")
	need(cond != nil, "condition")
	if sevNode != nil {
		if s, isStr := l.scalar(f, sevNode, label+": severity"); isStr {
			sev, err := parseSeverity(s)
			if err != nil {
				l.errAt(f.pos(sevNode), "%s: %v", label, err)
				ok = false
			}
			r.Severity = sev
		}
	}
	if tacticNode != nil {
		if s, isStr := l.scalar(f, tacticNode, label+": tactic"); isStr {
			if _, known := tactics[s]; !known {
				l.errAt(f.pos(tacticNode), "%s: tactic %q is not an ATT&CK tactic ID (TA0001-TA0011, TA0040, TA0042, TA0043)", label, s)
				ok = false
			}
			r.Tactic = s
		}
	}
	if techNode != nil {
		if s, isStr := l.scalar(f, techNode, label+": technique"); isStr {
			if !techniqueRE.MatchString(s) {
				l.errAt(f.pos(techNode), "%s: technique %q is not an ATT&CK technique ID (T1234 or T1234.567)", label, s)
				ok = false
			}
			if tacticNode == nil {
				l.errAt(f.pos(techNode), "%s: a technique needs its tactic", label)
				ok = false
			}
			r.Technique = s
		}
	}
	r.sources = allSources
	if srcNode != nil {
		r.sources = 0
		if srcNode.Kind != yaml.SequenceNode || len(srcNode.Content) == 0 {
			l.errAt(f.pos(srcNode), "%s: sources: want a non-empty list of sources", label)
			ok = false
		} else {
			for _, sn := range srcNode.Content {
				b := sourceBit(decode.Source(sn.Value))
				if sn.Kind != yaml.ScalarNode || b == 0 {
					l.errAt(f.pos(sn), "%s: unknown source %q (want %s)", label, sn.Value, strings.Join(sourceNames(allSources), ", "))
					ok = false
					continue
				}
				if r.sources&b != 0 {
					l.errAt(f.pos(sn), "%s: source %q listed twice", label, sn.Value)
					ok = false
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
			l.errAt(f.pos(evNode), "%s: events: want a non-empty list of event types", label)
			ok = false
		} else {
			seen := map[string]bool{}
			for _, en := range evNode.Content {
				v := en.Value
				if en.Kind != yaml.ScalarNode || !l.known[v] && !(strings.HasPrefix(v, decode.TypeAuditdPrefix) && len(v) > len(decode.TypeAuditdPrefix)) {
					l.errAt(f.pos(en), "%s: unknown event type %q", label, v)
					ok = false
					continue
				}
				if seen[v] {
					l.errAt(f.pos(en), "%s: event type %q listed twice", label, v)
					ok = false
					continue
				}
				seen[v] = true
				r.Events = append(r.Events, v)
			}
		}
	}
	rr := rawRule{rule: r}
	if thNode != nil {
		rr.thresholdPos = f.pos(thNode)
		t, wsrc, wpos, good := l.parseThreshold(f, thNode, label)
		r.Threshold, rr.weight, rr.weightPos = t, wsrc, wpos
		ok = ok && good
	}
	if cond != nil {
		if s, isStr := l.scalar(f, cond, label+": condition"); isStr {
			r.Condition = s
			rr.cond = cel.YAMLSource(f.name, f.data, cond)
			rr.condPos = f.pos(cond)
		} else {
			ok = false
		}
	}
	if output != nil {
		if s, isStr := l.scalar(f, output, label+": output"); isStr {
			r.Output = s
			rr.outputPos = f.pos(output)
		}
	}
	if ok {
		l.rules = append(l.rules, rr)
	}
}

// parseThreshold reads count, window, key, weight, distinct and max_keys.
func (l *loader) parseThreshold(f yamlFile, n *yaml.Node, label string) (*Threshold, cel.Source, Pos, bool) {
	t := &Threshold{Count: 1, MaxKeys: DefaultKeys}
	var weight cel.Source
	var weightPos Pos
	nerr := len(l.errs)
	var windowNode *yaml.Node
	l.fields(f, n, label+": threshold", map[string]func(*yaml.Node){
		"count": func(v *yaml.Node) {
			c, err := strconv.Atoi(v.Value)
			if v.Kind != yaml.ScalarNode || err != nil || c < 1 || c > MaxCount {
				l.errAt(f.pos(v), "%s: threshold count: want a number from 1 to %d", label, MaxCount)
				return
			}
			t.Count = c
		},
		"window": func(v *yaml.Node) {
			windowNode = v
			d, err := time.ParseDuration(v.Value)
			if v.Kind != yaml.ScalarNode || err != nil || d < time.Second || d > MaxWindow {
				l.errAt(f.pos(v), "%s: threshold window: want a duration from 1s to 24h (\"90s\", \"10m\")", label)
				return
			}
			t.Window = d
		},
		"key": func(v *yaml.Node) {
			t.Key = l.strings(f, v, label+": threshold key")
			if len(t.Key) > MaxKeyFields {
				l.errAt(f.pos(v), "%s: threshold key: at most %d fields", label, MaxKeyFields)
			}
		},
		"weight": func(v *yaml.Node) {
			if s, ok := l.scalar(f, v, label+": threshold weight"); ok {
				t.Weight = s
				weight, weightPos = cel.YAMLSource(f.name, f.data, v), f.pos(v)
			}
		},
		"distinct": func(v *yaml.Node) { t.Distinct, _ = l.scalar(f, v, label+": threshold distinct") },
		"max_keys": func(v *yaml.Node) {
			c, err := strconv.Atoi(v.Value)
			if v.Kind != yaml.ScalarNode || err != nil || c < 1 || c > MaxKeysLimit {
				l.errAt(f.pos(v), "%s: threshold max_keys: want a number from 1 to %d", label, MaxKeysLimit)
				return
			}
			t.MaxKeys = c
		},
	})
	if windowNode == nil {
		l.errAt(f.pos(n), "%s: threshold: window is required", label)
	}
	// Each key keeps at most Count matches: bound the whole state.
	if t.Count > 0 && t.MaxKeys*t.Count > maxStateSlots {
		t.MaxKeys = max(1, maxStateSlots/t.Count)
	}
	return t, weight, weightPos, len(l.errs) == nerr
}

func lookupScalar(n *yaml.Node, key string) string {
	if n.Kind != yaml.MappingNode {
		return ""
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key && n.Content[i+1].Kind == yaml.ScalarNode {
			return n.Content[i+1].Value
		}
	}
	return ""
}

var yamlLineRE = regexp.MustCompile(`^yaml: line (\d+): `)

func yamlErrorPos(file string, err error) Pos {
	if m := yamlLineRE.FindStringSubmatch(err.Error()); m != nil {
		n, _ := strconv.Atoi(m[1])
		return Pos{File: file, Line: n}
	}
	return Pos{File: file}
}

func yamlErrorMsg(err error) string {
	return "YAML: " + yamlLineRE.ReplaceAllString(err.Error(), "")
}
