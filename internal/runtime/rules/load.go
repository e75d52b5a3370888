package rules

import (
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"mamori/internal/cel"
	"mamori/internal/model"
	"mamori/internal/runtime/event"
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
	// RuleCostLimit bounds the static worst-case cost of one rule's condition (cel-go cost units;
	// a unit is about one primitive operation, a byte scanned costs 0.1). The worst case is a
	// path of 4 KiB matched against every glob of a long list: the costliest built-in rule,
	// credential-file-read (27 globs), is estimated at about 25,000. Nested loops over arguments
	// (proc.args.exists(a, proc.args.exists(...))) are far over the limit, and so is scanning every
	// argument for a substring (64 arguments of up to 4 KiB): match proc.cmdline instead.
	RuleCostLimit uint64 = 50_000
)

// maxRules bounds the rules of one load.
const maxRules = 10_000

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
	l := &loader{lists: map[string]*rawList{}, macroNames: map[string]Pos{}, ids: map[string]Pos{}}
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
	env, err := cel.NewEnv(celVars(fs),
		cel.WithCostLimit(RuleCostLimit),
		cel.WithLists(lists...),
		cel.WithMacros(l.macros...))
	if err != nil {
		for _, e := range celErrors(err) {
			l.errs = append(l.errs, friendly(e))
		}
		return nil, l.sorted()
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
			for _, e := range celErrors(err) {
				e = friendly(e)
				e.Msg = fmt.Sprintf("rule %q: condition: %s", r.ID, e.Msg)
				l.errs = append(l.errs, e)
			}
			continue
		}
		r.prg = prg
		for _, v := range prg.Vars() {
			if f := byName[v]; f != nil && f.kinds&r.kinds != r.kinds {
				l.errAt(rr.condPos, "rule %q: condition reads %s, which %s events do not have", r.ID, v, strings.Join(kindNames(r.kinds&^f.kinds), ", "))
			}
		}
		if r.Output != "" {
			parts, err := parseOutput(r.Output, byName, r.kinds)
			if err != nil {
				l.errAt(rr.outputPos, "rule %q: output: %v", r.ID, err)
			}
			r.output = parts
		}
		cat.rules = append(cat.rules, r)
		cat.byID[r.ID] = r
	}
	for _, rs := range l.rulesets {
		for _, sel := range rs.entries {
			if sel.ID != "" && cat.byID[sel.ID] == nil {
				l.errAt(sel.pos, "ruleset %q: unknown rule %q", rs.Name, sel.ID)
			}
		}
		cat.rulesets = append(cat.rulesets, rs)
	}
	if len(l.errs) > 0 {
		return nil, l.sorted()
	}
	return cat, nil
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

// friendly rewrites CEL's message for an undeclared plain name, which in rule files is a list or
// macro that does not exist.
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
	if strings.Contains(name, ".") {
		c := *e
		c.Msg = e.Msg[:i] + "unknown field '" + name + "'" + suggestion(e.Msg)
		return &c
	}
	c := *e
	c.Msg = e.Msg[:i] + "unknown list or macro '" + name + "'" + suggestion(e.Msg)
	return &c
}

func suggestion(msg string) string {
	if i := strings.Index(msg, " (did you mean"); i >= 0 {
		return msg[i:]
	}
	return ""
}

func kindNames(s kindSet) []string {
	var out []string
	for i, k := range event.Kinds {
		if s&(1<<i) != 0 {
			out = append(out, string(k))
		}
	}
	return out
}

type rawList struct {
	items []string
	pos   Pos
}

type rawRule struct {
	rule      *Rule
	cond      cel.Source
	condPos   Pos
	outputPos Pos
}

type loader struct {
	errs       cel.Errors
	lists      map[string]*rawList
	listOrder  []string
	macros     []cel.Macro
	macroNames map[string]Pos
	rules      []rawRule
	ids        map[string]Pos
	rulesets   []*Ruleset
	nrules     int
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

// yamlFile is one file being read.
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
	if doc.Kind == 0 || len(doc.Content) == 0 { // empty file
		return
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		l.errAt(f.pos(root), "want a mapping with lists, macros, rules and rulesets")
		return
	}
	l.fields(f, root, "file", map[string]func(*yaml.Node){
		"lists":    func(n *yaml.Node) { l.seq(f, n, "lists", l.list) },
		"macros":   func(n *yaml.Node) { l.seq(f, n, "macros", l.macro) },
		"rules":    func(n *yaml.Node) { l.seq(f, n, "rules", l.rule) },
		"rulesets": func(n *yaml.Node) { l.seq(f, n, "rulesets", l.ruleset) },
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
	r := &Rule{Pos: f.pos(n)}
	var cond, output *yaml.Node
	var kindsNode, sevNode, tacticNode, techNode, actionNode *yaml.Node
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
		"kinds":       func(v *yaml.Node) { kindsNode = v },
		"condition":   func(v *yaml.Node) { cond = v },
		"output":      func(v *yaml.Node) { output = v },
		"tags":        func(v *yaml.Node) { r.Tags = l.strings(f, v, label+": tags") },
		"action":      func(v *yaml.Node) { actionNode = v },
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
	need(tacticNode != nil, "tactic")
	need(techNode != nil, "technique")
	need(kindsNode != nil, "kinds")
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
			if _, known := Tactics()[s]; !known {
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
			r.Technique = s
		}
	}
	if kindsNode != nil {
		if kindsNode.Kind != yaml.SequenceNode || len(kindsNode.Content) == 0 {
			l.errAt(f.pos(kindsNode), "%s: kinds: want a non-empty list of event kinds", label)
			ok = false
		} else {
			for _, kn := range kindsNode.Content {
				k, err := event.ParseKind(kn.Value)
				if err != nil || kn.Kind != yaml.ScalarNode || k != event.Kind(kn.Value) {
					l.errAt(f.pos(kn), "%s: unknown event kind %q", label, kn.Value)
					ok = false
					continue
				}
				if r.kinds&kindBit(k) != 0 {
					l.errAt(f.pos(kn), "%s: event kind %q listed twice", label, kn.Value)
					ok = false
					continue
				}
				r.kinds |= kindBit(k)
				r.Kinds = append(r.Kinds, k)
			}
		}
	}
	r.Action = model.ActionLog
	if actionNode != nil {
		if s, isStr := l.scalar(f, actionNode, label+": action"); isStr {
			a, err := parseAction(s)
			if err != nil {
				l.errAt(f.pos(actionNode), "%s: %v", label, err)
				ok = false
			}
			r.Action = a
		}
	}
	rr := rawRule{rule: r}
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

// lookupScalar returns the scalar value of key in a mapping node, or "".
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

// yamlErrorPos takes the line out of a YAML syntax error ("yaml: line 12: ...").
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
