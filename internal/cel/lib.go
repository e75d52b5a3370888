package cel

import (
	"errors"
	"fmt"
	"net/netip"
	gopath "path"
	"strings"

	celgo "cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/ast"
	"cel.dev/cel-go/common/cost"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"cel.dev/cel-go/common/types/traits"
)

// library is the helper set every rule kind shares. Each function is pure and allocation-free
// on its common path, and declares its cost so the static estimate bounds it.
//
//	path.base(string) string             last element of a slash-separated path ("" for "")
//	path.dir(string) string              all but the last element ("" for "")
//	path.ext(string) string              extension of the last element, dot included
//	path.match(string, string) bool      glob match: * ? [..] within one segment, ** any segments
//	path.match(string, list) bool        any of the globs matches
//	path.under(string, string) bool      the path is the directory or below it ("/etc" holds "/etc/x", not "/etcx")
//	path.under(string, list) bool        under any of the directories
//	ip.inCIDR(string, string) bool       the address is in the CIDR (v4, v6, v4-mapped v6)
//	ip.inCIDR(string, list) bool         in any of the CIDRs
//	ip.isPrivate(string) bool            RFC 1918 / RFC 4193 address
//	ip.isLoopback(string) bool           127/8 or ::1
//	ip.isLinkLocal(string) bool          169.254/16 or fe80::/10
//	string.startsWithAny(list) bool      the string starts with one of the prefixes
//	string.endsWithAny(list) bool        the string ends with one of the suffixes
//	string.containsAny(list) bool        the string contains one of the substrings
//
// String set membership is CEL's own `x in list` (a hash lookup when the list is a declared List
// or a literal) and the sets extension (sets.contains, sets.intersects).
type library struct{}

var _ celgo.SingletonLibrary = library{}

func (library) LibraryName() string { return "mamori.cel.lib" }

// cost helpers: scan costs follow cel-go's string traversal factor (0.1 per byte).
func scan(q cost.QuantityExpr) cost.QuantityExpr { return cost.StringScan(q) }

func one() cost.QuantityExpr { return cost.Const(1) }

func (library) CompileOptions() []celgo.EnvOption {
	listStr := ListOf(String)
	// A list argument costs one comparison per element, each bounded by the scan of the longer
	// operand.
	perElem := func(target cost.QuantityExpr, list int) cost.QuantityExpr {
		return cost.Sum(one(), cost.Mul(cost.Length(cost.Arg(list)), cost.Sum(one(), scan(target), scan(cost.ArgElem(list)))))
	}
	globCost := func(name, glob cost.QuantityExpr) cost.QuantityExpr {
		// one path.Match per (pattern segment, name segment) pair; bounded by len(name)*len(glob).
		return cost.Sum(one(), scan(cost.Mul(cost.Sum(one(), name), cost.Sum(one(), glob))))
	}
	return []celgo.EnvOption{
		celgo.Function("path.base",
			celgo.Overload("path_base_string", []*Type{String}, String, celgo.UnaryBinding(strFn(pathBase)))),
		celgo.Function("path.dir",
			celgo.Overload("path_dir_string", []*Type{String}, String, celgo.UnaryBinding(strFn(pathDir)))),
		celgo.Function("path.ext",
			celgo.Overload("path_ext_string", []*Type{String}, String, celgo.UnaryBinding(strFn(gopath.Ext)))),
		celgo.Function("path.match",
			celgo.Overload("path_match_string_string", []*Type{String, String}, Bool, celgo.BinaryBinding(pathMatchOne)),
			celgo.Overload("path_match_string_list", []*Type{String, listStr}, Bool, celgo.BinaryBinding(pathMatchAny))),
		celgo.Function("path.under",
			celgo.Overload("path_under_string_string", []*Type{String, String}, Bool, celgo.BinaryBinding(pathUnderOne)),
			celgo.Overload("path_under_string_list", []*Type{String, listStr}, Bool, celgo.BinaryBinding(pathUnderAny))),
		celgo.Function("ip.inCIDR",
			celgo.Overload("ip_in_cidr_string_string", []*Type{String, String}, Bool, celgo.BinaryBinding(inCIDROne)),
			celgo.Overload("ip_in_cidr_string_list", []*Type{String, listStr}, Bool, celgo.BinaryBinding(inCIDRAny))),
		celgo.Function("ip.isPrivate",
			celgo.Overload("ip_is_private_string", []*Type{String}, Bool, celgo.UnaryBinding(addrFn(netip.Addr.IsPrivate)))),
		celgo.Function("ip.isLoopback",
			celgo.Overload("ip_is_loopback_string", []*Type{String}, Bool, celgo.UnaryBinding(addrFn(netip.Addr.IsLoopback)))),
		celgo.Function("ip.isLinkLocal",
			celgo.Overload("ip_is_link_local_string", []*Type{String}, Bool, celgo.UnaryBinding(addrFn(netip.Addr.IsLinkLocalUnicast)))),
		celgo.Function("startsWithAny",
			celgo.MemberOverload("string_starts_with_any_list", []*Type{String, listStr}, Bool,
				celgo.BinaryBinding(strListFn(strings.HasPrefix)))),
		celgo.Function("endsWithAny",
			celgo.MemberOverload("string_ends_with_any_list", []*Type{String, listStr}, Bool,
				celgo.BinaryBinding(strListFn(strings.HasSuffix)))),
		celgo.Function("containsAny",
			celgo.MemberOverload("string_contains_any_list", []*Type{String, listStr}, Bool,
				celgo.BinaryBinding(strListFn(strings.Contains)))),
		celgo.CostModel(
			cost.Overload("path_base_string", cost.EvalCost(cost.Sum(one(), scan(cost.Arg(0)))), cost.ResultSize(cost.Arg(0))),
			cost.Overload("path_dir_string", cost.EvalCost(cost.Sum(one(), scan(cost.Arg(0)))), cost.ResultSize(cost.Arg(0))),
			cost.Overload("path_ext_string", cost.EvalCost(cost.Sum(one(), scan(cost.Arg(0)))), cost.ResultSize(cost.Arg(0))),
			cost.Overload("path_match_string_string", cost.EvalCost(globCost(cost.Arg(0), cost.Arg(1)))),
			cost.Overload("path_match_string_list", cost.EvalCost(cost.Sum(one(),
				cost.Mul(cost.Length(cost.Arg(1)), globCost(cost.Arg(0), cost.ArgElem(1)))))),
			cost.Overload("path_under_string_string", cost.EvalCost(cost.Sum(one(), scan(cost.Arg(1))))),
			cost.Overload("path_under_string_list", cost.EvalCost(perElem(cost.Arg(0), 1))),
			cost.Overload("ip_in_cidr_string_string", cost.EvalCost(cost.Sum(cost.Const(4), scan(cost.Arg(0)), scan(cost.Arg(1))))),
			cost.Overload("ip_in_cidr_string_list", cost.EvalCost(cost.Sum(cost.Const(4), scan(cost.Arg(0)),
				cost.Mul(cost.Length(cost.Arg(1)), cost.Sum(cost.Const(4), scan(cost.ArgElem(1))))))),
			cost.Overload("ip_is_private_string", cost.EvalCost(cost.Sum(cost.Const(2), scan(cost.Arg(0))))),
			cost.Overload("ip_is_loopback_string", cost.EvalCost(cost.Sum(cost.Const(2), scan(cost.Arg(0))))),
			cost.Overload("ip_is_link_local_string", cost.EvalCost(cost.Sum(cost.Const(2), scan(cost.Arg(0))))),
			cost.MemberOverload("string_starts_with_any_list", cost.EvalCost(perElem(cost.Target(), 0))),
			cost.MemberOverload("string_ends_with_any_list", cost.EvalCost(perElem(cost.Target(), 0))),
			cost.MemberOverload("string_contains_any_list", cost.EvalCost(perElem(cost.Target(), 0))),
		),
	}
}

func (library) ProgramOptions() []celgo.ProgramOption { return nil }

func strFn(f func(string) string) func(ref.Val) ref.Val {
	return func(v ref.Val) ref.Val {
		s, ok := v.(types.String)
		if !ok {
			return types.MaybeNoSuchOverloadErr(v)
		}
		return types.String(f(string(s)))
	}
}

func pathBase(p string) string {
	if p == "" {
		return ""
	}
	return gopath.Base(p)
}

func pathDir(p string) string {
	if p == "" {
		return ""
	}
	return gopath.Dir(p)
}

// eachString calls f on each string of a CEL list until it returns true. Lists built from
// declared Lists hold []string and literals []ref.Val: both are walked without allocating.
func eachString(v ref.Val, f func(string) (bool, error)) ref.Val {
	switch l := v.Value().(type) {
	case []string:
		for _, s := range l {
			if ok, err := f(s); err != nil || ok {
				return result(ok, err)
			}
		}
		return types.False
	case []ref.Val:
		for _, e := range l {
			s, isStr := e.(types.String)
			if !isStr {
				return types.MaybeNoSuchOverloadErr(e)
			}
			if ok, err := f(string(s)); err != nil || ok {
				return result(ok, err)
			}
		}
		return types.False
	}
	lister, ok := v.(traits.Lister)
	if !ok {
		return types.MaybeNoSuchOverloadErr(v)
	}
	for it := lister.Iterator(); it.HasNext() == types.True; {
		e := it.Next()
		s, isStr := e.(types.String)
		if !isStr {
			return types.MaybeNoSuchOverloadErr(e)
		}
		if ok, err := f(string(s)); err != nil || ok {
			return result(ok, err)
		}
	}
	return types.False
}

func result(ok bool, err error) ref.Val {
	if err != nil {
		return types.WrapErr(err)
	}
	return types.Bool(ok)
}

func strListFn(pred func(s, x string) bool) func(ref.Val, ref.Val) ref.Val {
	return func(target, list ref.Val) ref.Val {
		s, ok := target.(types.String)
		if !ok {
			return types.MaybeNoSuchOverloadErr(target)
		}
		return eachString(list, func(x string) (bool, error) { return pred(string(s), x), nil })
	}
}

func pathUnder(p, dir string) bool {
	if dir == "" {
		return false
	}
	if dir != "/" {
		dir = strings.TrimSuffix(dir, "/")
	}
	if !strings.HasPrefix(p, dir) {
		return false
	}
	return len(p) == len(dir) || dir == "/" || p[len(dir)] == '/'
}

func pathUnderOne(p, dir ref.Val) ref.Val {
	ps, ok1 := p.(types.String)
	ds, ok2 := dir.(types.String)
	if !ok1 || !ok2 {
		return types.NoSuchOverloadErr()
	}
	return types.Bool(pathUnder(string(ps), string(ds)))
}

func pathUnderAny(p, dirs ref.Val) ref.Val {
	ps, ok := p.(types.String)
	if !ok {
		return types.MaybeNoSuchOverloadErr(p)
	}
	return eachString(dirs, func(d string) (bool, error) { return pathUnder(string(ps), d), nil })
}

func pathMatchOne(p, glob ref.Val) ref.Val {
	ps, ok1 := p.(types.String)
	gs, ok2 := glob.(types.String)
	if !ok1 || !ok2 {
		return types.NoSuchOverloadErr()
	}
	return result(Glob(string(gs), string(ps)))
}

func pathMatchAny(p, globs ref.Val) ref.Val {
	ps, ok := p.(types.String)
	if !ok {
		return types.MaybeNoSuchOverloadErr(p)
	}
	return eachString(globs, func(g string) (bool, error) { return Glob(g, string(ps)) })
}

// maxGlobSegments bounds the number of slash-separated segments of a glob (the matcher keeps
// its state set in one word).
const maxGlobSegments = 63

// ErrBadGlob reports a malformed glob.
var ErrBadGlob = errors.New("bad glob pattern")

// Glob reports whether name matches the slash-separated glob pattern. Within a segment, *, ?,
// [class] and \ escapes mean what they mean to path.Match; a segment that is exactly ** matches
// zero or more whole segments. The match runs in O(segments(name) x segments(pattern)) segment
// comparisons and does not allocate.
func Glob(pattern, name string) (bool, error) {
	var segs [maxGlobSegments + 1]string
	n := 0
	for rest := pattern; ; {
		if n == maxGlobSegments {
			return false, fmt.Errorf("%w: more than %d segments", ErrBadGlob, maxGlobSegments)
		}
		i := strings.IndexByte(rest, '/')
		if i < 0 {
			segs[n] = rest
			n++
			break
		}
		segs[n] = rest[:i]
		n++
		rest = rest[i+1:]
	}
	closure := func(set uint64) uint64 {
		for i := 0; i < n; i++ {
			if set&(1<<i) != 0 && segs[i] == "**" {
				set |= 1 << (i + 1)
			}
		}
		return set
	}
	state := closure(1)
	for rest := name; ; {
		var seg string
		i := strings.IndexByte(rest, '/')
		if i < 0 {
			seg = rest
		} else {
			seg = rest[:i]
		}
		var next uint64
		for j := 0; j < n; j++ {
			if state&(1<<j) == 0 {
				continue
			}
			if segs[j] == "**" {
				next |= 1 << j
				continue
			}
			ok, err := gopath.Match(segs[j], seg)
			if err != nil {
				return false, fmt.Errorf("%w: %q: %w", ErrBadGlob, pattern, err)
			}
			if ok {
				next |= 1 << (j + 1)
			}
		}
		state = closure(next)
		if state == 0 || i < 0 {
			break
		}
		rest = rest[i+1:]
	}
	return state&(1<<n) != 0, nil
}

// ValidateGlob reports a malformed glob pattern.
func ValidateGlob(pattern string) error {
	_, err := Glob(pattern, "")
	if err != nil {
		return err
	}
	// path.Match only reports a bad pattern when it reaches the bad part: check every segment.
	for _, seg := range strings.Split(pattern, "/") {
		if seg == "**" {
			continue
		}
		if _, err := gopath.Match(seg, ""); err != nil {
			return fmt.Errorf("%w: %q: %w", ErrBadGlob, pattern, err)
		}
	}
	return nil
}

func parseAddr(s string) (netip.Addr, bool) {
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}, false
	}
	return a.Unmap(), true
}

func inCIDR(addr, cidr string) (bool, error) {
	p, err := netip.ParsePrefix(cidr)
	if err != nil {
		return false, fmt.Errorf("ip.inCIDR: %w", err)
	}
	a, ok := parseAddr(addr)
	if !ok {
		return false, nil
	}
	return p.Contains(a), nil
}

func inCIDROne(addr, cidr ref.Val) ref.Val {
	as, ok1 := addr.(types.String)
	cs, ok2 := cidr.(types.String)
	if !ok1 || !ok2 {
		return types.NoSuchOverloadErr()
	}
	return result(inCIDR(string(as), string(cs)))
}

func inCIDRAny(addr, cidrs ref.Val) ref.Val {
	as, ok := addr.(types.String)
	if !ok {
		return types.MaybeNoSuchOverloadErr(addr)
	}
	return eachString(cidrs, func(c string) (bool, error) { return inCIDR(string(as), c) })
}

func addrFn(pred func(netip.Addr) bool) func(ref.Val) ref.Val {
	return func(v ref.Val) ref.Val {
		s, ok := v.(types.String)
		if !ok {
			return types.MaybeNoSuchOverloadErr(v)
		}
		a, ok := parseAddr(string(s))
		return types.Bool(ok && pred(a))
	}
}

// literalValidator rejects, at compile time, glob patterns and CIDRs written as literals (or
// declared lists) that would only fail at evaluation.
type literalValidator struct{}

var _ celgo.ASTValidator = literalValidator{}

func (literalValidator) Name() string { return "mamori.cel.literals" }

func (literalValidator) Validate(_ *celgo.Env, _ celgo.ValidatorConfig, a *ast.AST, iss *celgo.Issues) {
	root := ast.NavigateAST(a)
	check := func(fn string, valid func(string) error) {
		for _, call := range ast.MatchDescendants(root, ast.FunctionMatcher(fn)) {
			args := call.AsCall().Args()
			if len(args) != 2 {
				continue
			}
			arg := args[1]
			for _, lit := range literalStrings(a, arg) {
				if err := valid(lit.s); err != nil {
					iss.ReportErrorAtID(lit.id, "%s: %v", fn, err)
				}
			}
		}
	}
	check("path.match", ValidateGlob)
	check("ip.inCIDR", func(s string) error {
		_, err := netip.ParsePrefix(s)
		return err
	})
}

type literalString struct {
	id int64
	s  string
}

// literalStrings returns the string literals an argument is made of: a string literal, a list
// literal of them, or a declared list.
func literalStrings(a *ast.AST, e ast.Expr) []literalString {
	switch e.Kind() {
	case ast.LiteralKind:
		if s, ok := e.AsLiteral().(types.String); ok {
			return []literalString{{e.ID(), string(s)}}
		}
	case ast.ListKind:
		var out []literalString
		for _, el := range e.AsList().Elements() {
			if el.Kind() == ast.LiteralKind {
				if s, ok := el.AsLiteral().(types.String); ok {
					out = append(out, literalString{el.ID(), string(s)})
				}
			}
		}
		return out
	case ast.IdentKind:
		if ref, ok := a.ReferenceMap()[e.ID()]; ok && ref.Value != nil {
			if ss, ok := ref.Value.Value().([]string); ok {
				out := make([]literalString, len(ss))
				for i, s := range ss {
					out[i] = literalString{e.ID(), s}
				}
				return out
			}
		}
	}
	return nil
}
