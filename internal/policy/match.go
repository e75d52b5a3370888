package policy

import (
	"fmt"
	"slices"
	"strings"
)

// glob is a compiled wildcard pattern: `*` matches any run of characters
// (slashes included), `?` one character; everything else is literal.
type glob struct {
	pattern string
	literal bool
}

func newGlob(p string) glob { return glob{pattern: p, literal: !strings.ContainsAny(p, "*?")} }

func (g glob) match(s string) bool {
	if g.literal {
		return g.pattern == s
	}
	return wildcard(g.pattern, s)
}

// wildcard matches with one backtracking point per star, in O(len(p)*len(s))
// at worst: no pattern can make it exponential.
func wildcard(p, s string) bool {
	pi, si := 0, 0
	star, mark := -1, 0
	for si < len(s) {
		switch {
		case pi < len(p) && (p[pi] == '?' || p[pi] == s[si]):
			pi++
			si++
		case pi < len(p) && p[pi] == '*':
			star, mark = pi, si
			pi++
		case star >= 0:
			pi = star + 1
			mark++
			si = mark
		default:
			return false
		}
	}
	for pi < len(p) && p[pi] == '*' {
		pi++
	}
	return pi == len(p)
}

type globs []glob

func newGlobs(ps []string) globs {
	if len(ps) == 0 {
		return nil
	}
	out := make(globs, len(ps))
	for i, p := range ps {
		out[i] = newGlob(p)
	}
	return out
}

func (gs globs) any(s string) bool {
	for _, g := range gs {
		if g.match(s) {
			return true
		}
	}
	return false
}

// selector is a compiled label selector. A nil selector matches everything.
type selector struct {
	labels map[string]string
	reqs   []requirement
}

type requirement struct {
	key    string
	op     string
	values []string
}

// Label selector operators.
const (
	opIn           = "In"
	opNotIn        = "NotIn"
	opExists       = "Exists"
	opDoesNotExist = "DoesNotExist"
)

func checkSelector(s *LabelSelector) error {
	if s == nil {
		return nil
	}
	for i, r := range s.MatchExpressions {
		if r.Key == "" {
			return fmt.Errorf("matchExpressions[%d]: key is empty", i)
		}
		switch r.Operator {
		case opIn, opNotIn:
			if len(r.Values) == 0 {
				return fmt.Errorf("matchExpressions[%d]: operator %s needs values", i, r.Operator)
			}
		case opExists, opDoesNotExist:
			if len(r.Values) > 0 {
				return fmt.Errorf("matchExpressions[%d]: operator %s takes no values", i, r.Operator)
			}
		default:
			return fmt.Errorf("matchExpressions[%d]: unknown operator %q (want In, NotIn, Exists or DoesNotExist)", i, r.Operator)
		}
	}
	return nil
}

func newSelector(s *LabelSelector) *selector {
	if s == nil || (len(s.MatchLabels) == 0 && len(s.MatchExpressions) == 0) {
		return nil
	}
	out := &selector{labels: s.MatchLabels}
	for _, r := range s.MatchExpressions {
		out.reqs = append(out.reqs, requirement{key: r.Key, op: r.Operator, values: slices.Clone(r.Values)})
	}
	return out
}

func (s *selector) matches(labels map[string]string) bool {
	if s == nil {
		return true
	}
	for k, v := range s.labels {
		if got, ok := labels[k]; !ok || got != v {
			return false
		}
	}
	for _, r := range s.reqs {
		v, ok := labels[r.key]
		switch r.op {
		case opIn:
			if !ok || !slices.Contains(r.values, v) {
				return false
			}
		case opNotIn:
			if ok && slices.Contains(r.values, v) {
				return false
			}
		case opExists:
			if !ok {
				return false
			}
		case opDoesNotExist:
			if ok {
				return false
			}
		}
	}
	return true
}

// matcher is a compiled Match. A nil matcher matches everything.
type matcher struct {
	namespaces globs
	exclude    globs
	pods       *selector
	nsSel      *selector
	kinds      []string
}

func newMatcher(m *Match) *matcher {
	if m == nil {
		return nil
	}
	out := &matcher{
		namespaces: newGlobs(m.Namespaces),
		exclude:    newGlobs(m.ExcludeNamespaces),
		pods:       newSelector(m.Selector),
		nsSel:      newSelector(m.NamespaceSelector),
		kinds:      slices.Clone(m.Kinds),
	}
	if out.namespaces == nil && out.exclude == nil && out.pods == nil && out.nsSel == nil && len(out.kinds) == 0 {
		return nil
	}
	return out
}

// scope is where a subject is: what matchers and exceptions look at.
type scope struct {
	namespace string
	kind      string
	podLabels map[string]string
	nsLabels  map[string]string
}

func (m *matcher) matches(s *scope) bool {
	if m == nil {
		return true
	}
	if m.namespaces != nil && !m.namespaces.any(s.namespace) {
		return false
	}
	if m.exclude.any(s.namespace) {
		return false
	}
	if len(m.kinds) > 0 && !slices.Contains(m.kinds, s.kind) {
		return false
	}
	return m.pods.matches(s.podLabels) && m.nsSel.matches(s.nsLabels)
}
