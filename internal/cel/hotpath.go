package cel

import (
	"strings"

	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"cel.dev/cel-go/interpreter"
)

// hotPath is the planner decorator of the hot-path program (EvalBounded). It replaces two
// generic steps with direct ones, with the same results (TestHotPathSameResults compares them
// with the fenced program, which keeps the plain plan: its cost tracking prices each step):
//
//   - a declared variable read at the top level of an expression is an index into the Fields
//     activation, not a lookup of its name through the frame and a map;
//   - path.match with constant patterns (a declared list, a literal) matches a GlobSet compiled
//     once, instead of scanning every pattern on every evaluation (malformed patterns are left
//     to the plain call, which reports them when the match reaches them); startsWithAny and
//     endsWithAny with a constant list look only at the entries that begin (end) with the
//     string's first (last) byte.
func (e *Env) hotPath(i interpreter.InterpretableV2) (interpreter.InterpretableV2, error) {
	if a, ok := i.(interpreter.InterpretableAttribute); ok {
		return e.fieldAttr(a), nil
	}
	return constArgs(i)
}

// fieldAttr reads a declared variable straight from the Fields of e when the activation is one
// (and no comprehension scope is pushed); otherwise, and for anything but a plain variable, the
// planned attribute runs.
func (e *Env) fieldAttr(a interpreter.InterpretableAttribute) interpreter.InterpretableV2 {
	na, ok := a.Attr().(interpreter.NamespacedAttribute)
	if !ok || len(na.Qualifiers()) != 0 || len(na.CandidateVariableNames()) != 1 {
		return a
	}
	idx, ok := e.index[na.CandidateVariableNames()[0]]
	if !ok {
		return a
	}
	return &fieldRead{InterpretableAttribute: a, attr: na, env: e, i: idx}
}

// fieldRead is a declared variable read from Fields by position.
type fieldRead struct {
	interpreter.InterpretableAttribute
	// the planner may add qualifiers after this decorator ran (obj.a, m["k"], has()): then the
	// planned attribute applies them
	attr interpreter.NamespacedAttribute
	env  *Env // Fields of another Env take the planned path
	i    int
}

func (r *fieldRead) Exec(f *interpreter.ExecutionFrame) ref.Val {
	if fs, ok := f.Unwrap().(*Fields); ok && fs.env == r.env && len(r.attr.Qualifiers()) == 0 {
		return r.Adapter().NativeToValue(fs.value(r.i))
	}
	return r.InterpretableAttribute.Exec(f)
}

// constArgs prepares the constant list of a path.match, startsWithAny or endsWithAny call
// (hotPath).
func constArgs(i interpreter.InterpretableV2) (interpreter.InterpretableV2, error) {
	call, ok := i.(interpreter.InterpretableCall)
	if !ok {
		return i, nil
	}
	args := call.Args()
	if len(args) != 2 {
		return i, nil
	}
	c, ok := args[1].(interpreter.InterpretableConst)
	if !ok {
		return i, nil
	}
	var list []string
	if s, ok := c.Value().(types.String); ok {
		list = []string{string(s)}
	} else if r := eachString(c.Value(), func(p string) (bool, error) {
		list = append(list, p)
		return false, nil
	}); r != types.False {
		return i, nil // not a list of strings
	}
	var m stringMatcher
	switch call.OverloadID() {
	case "path_match_string_list", "path_match_string_string":
		set, err := CompileGlobs(list)
		if err != nil {
			return i, nil
		}
		m = set
	case "string_starts_with_any_list":
		m = newAffixSet(list, false)
	case "string_ends_with_any_list":
		m = newAffixSet(list, true)
	default:
		return i, nil
	}
	return &constListCall{InterpretableCall: call, arg: args[0], m: m}, nil
}

// stringMatcher is a prepared constant list.
type stringMatcher interface{ Match(string) bool }

// affixSet is a list of prefixes (or suffixes) indexed by their first (last) byte.
type affixSet struct {
	suffix bool
	empty  bool // "" is in the list: every string matches
	by     [256][]string
}

func newAffixSet(list []string, suffix bool) *affixSet {
	a := &affixSet{suffix: suffix}
	for _, x := range list {
		if x == "" {
			a.empty = true
			continue
		}
		b := x[0]
		if suffix {
			b = x[len(x)-1]
		}
		a.by[b] = append(a.by[b], x)
	}
	return a
}

func (a *affixSet) Match(s string) bool {
	if a.empty {
		return true
	}
	if s == "" {
		return false
	}
	if a.suffix {
		for _, x := range a.by[s[len(s)-1]] {
			if strings.HasSuffix(s, x) {
				return true
			}
		}
		return false
	}
	for _, x := range a.by[s[0]] {
		if strings.HasPrefix(s, x) {
			return true
		}
	}
	return false
}

// constListCall is a call of a library function with a constant list, over the prepared list.
type constListCall struct {
	interpreter.InterpretableCall
	arg interpreter.InterpretableV2
	m   stringMatcher
}

func (g *constListCall) Exec(f *interpreter.ExecutionFrame) ref.Val { return g.match(g.arg.Exec(f)) }

func (g *constListCall) Eval(a interpreter.Activation) ref.Val { return g.match(g.arg.Eval(a)) }

func (g *constListCall) match(v ref.Val) ref.Val {
	s, ok := v.(types.String)
	if !ok {
		if types.IsUnknownOrError(v) {
			return v
		}
		return types.MaybeNoSuchOverloadErr(v)
	}
	return types.Bool(g.m.Match(string(s)))
}
