// Package ruledoc reads the YAML rule documents of mamori's CEL rule kinds
// (the runtime rules of internal/runtime/rules and the log rules of
// internal/host/loginspect/rules): the file envelope with its size limit
// and syntax errors, mappings whose unknown and repeated keys are errors,
// the typed scalars and lists, the lists and macros every rule file may
// define, and the header every rule has (id, title, description,
// severity, ATT&CK tactic and technique, tags). Each problem is collected
// with its file, line and column, not only the first; the rule kinds add
// their own sections (rulesets, disabled ...) and rule fields through the
// same Reader. Template splits their output templates and Bit and its
// kin handle the bit sets (event kinds, record sources) a rule applies to.
package ruledoc

import (
	"errors"
	"fmt"
	"io/fs"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"mamori/internal/cel"
)

// Pos is a position in a rule file.
type Pos struct {
	File   string
	Line   int
	Column int
}

func (p Pos) String() string {
	if p.Line == 0 {
		return p.File
	}
	return fmt.Sprintf("%s:%d:%d", p.File, p.Line, p.Column)
}

// File is one rule file being read.
type File struct {
	Name string
	Data []byte
}

// Pos is the position of n in f.
func (f File) Pos(n *yaml.Node) Pos { return Pos{File: f.Name, Line: n.Line, Column: n.Column} }

// Source is the CEL source of the expression in the scalar n.
func (f File) Source(n *yaml.Node) cel.Source { return cel.YAMLSource(f.Name, f.Data, n) }

// nameRE is what a list or macro name may be: a CEL identifier.
var nameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,63}$`)

type rawList struct {
	items []string
	pos   Pos
}

// Reader collects the errors, lists and macros of a set of rule files.
type Reader struct {
	invalid    error // wrapped by every error the reader makes
	errs       cel.Errors
	lists      map[string]*rawList
	listOrder  []string
	macros     []cel.Macro
	macroNames map[string]Pos
	ruleIDs    map[string]Pos // rules read by Rule
	nrules     int
}

// NewReader returns a Reader whose errors wrap invalid (the rule kind's
// ErrInvalid, for errors.Is).
func NewReader(invalid error) *Reader {
	return &Reader{invalid: invalid, lists: map[string]*rawList{}, macroNames: map[string]Pos{}, ruleIDs: map[string]Pos{}}
}

// Errorf records an error at p.
func (r *Reader) Errorf(p Pos, format string, args ...any) {
	r.errs = append(r.errs, &cel.Error{File: p.File, Line: p.Line, Column: p.Column, Msg: fmt.Sprintf(format, args...), Err: r.invalid})
}

// Add records errors made elsewhere (CEL compilation).
func (r *Reader) Add(errs ...*cel.Error) { r.errs = append(r.errs, errs...) }

// Failed reports whether any error was recorded.
func (r *Reader) Failed() bool { return len(r.errs) > 0 }

// NumErrors is how many errors are recorded so far.
func (r *Reader) NumErrors() int { return len(r.errs) }

// Errors returns the errors in file, line and column order (stable for
// errors at the same place).
func (r *Reader) Errors() cel.Errors {
	sort.SliceStable(r.errs, func(i, j int) bool {
		a, b := r.errs[i], r.errs[j]
		if a.File != b.File {
			return a.File < b.File
		}
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		return a.Column < b.Column
	})
	return r.errs
}

// Root parses f and returns its top-level mapping, or nil for an empty
// file or one with errors (recorded; want names the sections, for the
// message when the top level is not a mapping).
func (r *Reader) Root(f File, maxSize int, want string) *yaml.Node {
	if len(f.Data) > maxSize {
		r.Errorf(Pos{File: f.Name}, "file is %d bytes, more than the limit of %d", len(f.Data), maxSize)
		return nil
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(f.Data, &doc); err != nil {
		r.Errorf(yamlErrorPos(f.Name, err), "%s", yamlErrorMsg(err))
		return nil
	}
	if doc.Kind == 0 || len(doc.Content) == 0 { // empty file
		return nil
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		r.Errorf(f.Pos(root), "want a mapping with %s", want)
		return nil
	}
	return root
}

// Fields dispatches a mapping's keys to handlers, reporting unknown and
// repeated keys.
func (r *Reader) Fields(f File, n *yaml.Node, what string, handlers map[string]func(*yaml.Node)) {
	if n.Kind != yaml.MappingNode {
		r.Errorf(f.Pos(n), "%s: want a mapping", what)
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
			r.Errorf(f.Pos(k), "%s: unknown field %q (want %s)", what, k.Value, strings.Join(names, ", "))
			continue
		}
		if seen[k.Value] {
			r.Errorf(f.Pos(k), "%s: field %q given twice", what, k.Value)
			continue
		}
		seen[k.Value] = true
		h(v)
	}
}

// Seq calls each for every item of the sequence n.
func (r *Reader) Seq(f File, n *yaml.Node, what string, each func(File, *yaml.Node)) {
	if n.Kind != yaml.SequenceNode {
		r.Errorf(f.Pos(n), "%s: want a list", what)
		return
	}
	for _, item := range n.Content {
		each(f, item)
	}
}

// Scalar is the string value of n, which must be a non-null scalar.
func (r *Reader) Scalar(f File, n *yaml.Node, what string) (string, bool) {
	if n.Kind != yaml.ScalarNode || n.Tag == "!!null" {
		r.Errorf(f.Pos(n), "%s: want a string", what)
		return "", false
	}
	return n.Value, true
}

// Strings is the list of strings n holds.
func (r *Reader) Strings(f File, n *yaml.Node, what string) []string {
	if n.Kind != yaml.SequenceNode {
		r.Errorf(f.Pos(n), "%s: want a list of strings", what)
		return nil
	}
	out := make([]string, 0, len(n.Content))
	for _, item := range n.Content {
		if s, ok := r.Scalar(f, item, what); ok {
			out = append(out, s)
		}
	}
	return out
}

// Boolean is the boolean n holds.
func (r *Reader) Boolean(f File, n *yaml.Node, what string) bool {
	var b bool
	if n.Kind != yaml.ScalarNode || n.Decode(&b) != nil {
		r.Errorf(f.Pos(n), "%s: want true or false", what)
	}
	return b
}

// List reads a list definition: {name, items, append}. A list may extend
// one defined before (append: true), in this file or an earlier one.
func (r *Reader) List(f File, n *yaml.Node) {
	var name string
	var items []string
	var appendTo, hasItems bool
	r.Fields(f, n, "list", map[string]func(*yaml.Node){
		"name":   func(v *yaml.Node) { name, _ = r.Scalar(f, v, "list name") },
		"items":  func(v *yaml.Node) { items, hasItems = r.Strings(f, v, "list items"), true },
		"append": func(v *yaml.Node) { appendTo = r.Boolean(f, v, "list append") },
	})
	p := f.Pos(n)
	switch {
	case name == "":
		r.Errorf(p, "list: name is required")
		return
	case !nameRE.MatchString(name):
		r.Errorf(p, "list %q: a name is letters, digits and _", name)
		return
	case !hasItems:
		r.Errorf(p, "list %q: items is required", name)
		return
	}
	prev, exists := r.lists[name]
	switch {
	case appendTo && !exists:
		r.Errorf(p, "list %q: append to a list that is not defined before", name)
	case appendTo:
		prev.items = append(prev.items, items...)
	case exists:
		r.Errorf(p, "list %q: already defined at %s (use append: true to extend it)", name, prev.pos)
	default:
		if at, ok := r.macroNames[name]; ok {
			r.Errorf(p, "list %q: a macro of that name is defined at %s", name, at)
			return
		}
		r.lists[name] = &rawList{items: items, pos: p}
		r.listOrder = append(r.listOrder, name)
	}
}

// Macro reads a macro definition: {name, condition}.
func (r *Reader) Macro(f File, n *yaml.Node) {
	var name string
	var cond *yaml.Node
	r.Fields(f, n, "macro", map[string]func(*yaml.Node){
		"name":      func(v *yaml.Node) { name, _ = r.Scalar(f, v, "macro name") },
		"condition": func(v *yaml.Node) { cond = v },
	})
	p := f.Pos(n)
	switch {
	case name == "":
		r.Errorf(p, "macro: name is required")
		return
	case !nameRE.MatchString(name):
		r.Errorf(p, "macro %q: a name is letters, digits and _", name)
		return
	case cond == nil:
		r.Errorf(p, "macro %q: condition is required", name)
		return
	}
	if _, ok := r.Scalar(f, cond, "macro condition"); !ok {
		return
	}
	if at, ok := r.macroNames[name]; ok {
		r.Errorf(p, "macro %q: already defined at %s", name, at)
		return
	}
	if prev, ok := r.lists[name]; ok {
		r.Errorf(p, "macro %q: a list of that name is defined at %s", name, prev.pos)
		return
	}
	r.macroNames[name] = p
	r.macros = append(r.macros, cel.Macro{Name: name, Source: f.Source(cond)})
}

// EnvOptions are the lists and macros read, as options of cel.NewEnv.
func (r *Reader) EnvOptions() []cel.Option {
	lists := make([]cel.List, 0, len(r.listOrder))
	for _, name := range r.listOrder {
		lists = append(lists, cel.List{Name: name, Values: r.lists[name].items})
	}
	return []cel.Option{cel.WithLists(lists...), cel.WithMacros(r.macros...)}
}

// Env is the CEL environment of a set of rules: vars, the lists and macros
// read, then opts. It is nil when the lists, macros or options do not
// compile (the errors recorded).
func (r *Reader) Env(vars []cel.Var, opts ...cel.Option) *cel.Env {
	env, err := cel.NewEnv(vars, append(r.EnvOptions(), opts...)...)
	if err != nil {
		r.Add(CELErrors(err)...)
		return nil
	}
	return env
}

// AddCEL records the errors of a CEL compilation (see CELErrors), each
// message after prefix (`rule "x": condition: `).
func (r *Reader) AddCEL(err error, prefix string) {
	for _, e := range CELErrors(err) {
		e.Msg = prefix + e.Msg
		r.Add(e)
	}
}

// ReadFiles reads the named files of fsys (a rule kind's built-in set),
// in order; what names the set in an error ("built-in rules").
func ReadFiles(fsys fs.FS, what string, names ...string) ([]File, error) {
	out := make([]File, 0, len(names))
	for _, name := range names {
		data, err := fs.ReadFile(fsys, name)
		if err != nil {
			return nil, fmt.Errorf("%s %s: %w", what, name, err)
		}
		out = append(out, File{Name: name, Data: data})
	}
	return out, nil
}

// LookupScalar returns the scalar value of key in a mapping node, or "".
func LookupScalar(n *yaml.Node, key string) string {
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

// CELErrors flattens an error from the cel package into positioned errors,
// with CEL's message for an undeclared name made to speak of rule files: a
// dotted name is a field that does not exist, a plain one a list or macro
// that does not.
func CELErrors(err error) cel.Errors {
	var list cel.Errors
	var one *cel.Error
	switch {
	case errors.As(err, &list):
	case errors.As(err, &one):
		list = cel.Errors{one}
	default:
		list = cel.Errors{{Msg: err.Error(), Err: err}}
	}
	out := make(cel.Errors, len(list))
	for i, e := range list {
		out[i] = friendly(e)
	}
	return out
}

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
