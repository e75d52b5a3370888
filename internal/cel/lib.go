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
	"cel.dev/cel-go/common/decls"
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
	return []celgo.EnvOption{
		celgo.Function("path.base", decls.DisableTypeGuards(true),
			celgo.Overload("path_base_string", []*Type{String}, String, celgo.UnaryBinding(strFn(pathBase)))),
		celgo.Function("path.dir", decls.DisableTypeGuards(true),
			celgo.Overload("path_dir_string", []*Type{String}, String, celgo.UnaryBinding(strFn(pathDir)))),
		celgo.Function("path.ext", decls.DisableTypeGuards(true),
			celgo.Overload("path_ext_string", []*Type{String}, String, celgo.UnaryBinding(strFn(gopath.Ext)))),
		celgo.Function("path.match", decls.DisableTypeGuards(true),
			celgo.Overload("path_match_string_string", []*Type{String, String}, Bool, celgo.BinaryBinding(pathMatchOne)),
			celgo.Overload("path_match_string_list", []*Type{String, listStr}, Bool, celgo.BinaryBinding(pathMatchAny))),
		celgo.Function("path.under", decls.DisableTypeGuards(true),
			celgo.Overload("path_under_string_string", []*Type{String, String}, Bool, celgo.BinaryBinding(pathUnderOne)),
			celgo.Overload("path_under_string_list", []*Type{String, listStr}, Bool, celgo.BinaryBinding(pathUnderAny))),
		celgo.Function("ip.inCIDR", decls.DisableTypeGuards(true),
			celgo.Overload("ip_in_cidr_string_string", []*Type{String, String}, Bool, celgo.BinaryBinding(inCIDROne)),
			celgo.Overload("ip_in_cidr_string_list", []*Type{String, listStr}, Bool, celgo.BinaryBinding(inCIDRAny))),
		celgo.Function("ip.isPrivate", decls.DisableTypeGuards(true),
			celgo.Overload("ip_is_private_string", []*Type{String}, Bool, celgo.UnaryBinding(addrFn(netip.Addr.IsPrivate)))),
		celgo.Function("ip.isLoopback", decls.DisableTypeGuards(true),
			celgo.Overload("ip_is_loopback_string", []*Type{String}, Bool, celgo.UnaryBinding(addrFn(netip.Addr.IsLoopback)))),
		celgo.Function("ip.isLinkLocal", decls.DisableTypeGuards(true),
			celgo.Overload("ip_is_link_local_string", []*Type{String}, Bool, celgo.UnaryBinding(addrFn(netip.Addr.IsLinkLocalUnicast)))),
		celgo.Function("startsWithAny", decls.DisableTypeGuards(true),
			celgo.MemberOverload("string_starts_with_any_list", []*Type{String, listStr}, Bool,
				celgo.BinaryBinding(strListFn(strings.HasPrefix)))),
		celgo.Function("endsWithAny", decls.DisableTypeGuards(true),
			celgo.MemberOverload("string_ends_with_any_list", []*Type{String, listStr}, Bool,
				celgo.BinaryBinding(strListFn(strings.HasSuffix)))),
		celgo.Function("containsAny", decls.DisableTypeGuards(true),
			celgo.MemberOverload("string_contains_any_list", []*Type{String, listStr}, Bool,
				celgo.BinaryBinding(strListFn(strings.Contains)))),
		celgo.CostModel(
			cost.Overload("path_base_string", cost.EvalCost(cost.Sum(one(), scan(cost.Arg(0)))), cost.ResultSize(cost.Arg(0))),
			cost.Overload("path_dir_string", cost.EvalCost(cost.Sum(one(), scan(cost.Arg(0)))), cost.ResultSize(cost.Arg(0))),
			cost.Overload("path_ext_string", cost.EvalCost(cost.Sum(one(), scan(cost.Arg(0)))), cost.ResultSize(cost.Arg(0))),
			// Globs are priced by globUnits, from the patterns when they are known at compile time
			// (literals, declared lists: estimator.EstimateCallCost) and from their sizes otherwise.
			cost.Overload("path_match_string_string", cost.ManualCost(estimateGlobCall, trackGlobCall)),
			cost.Overload("path_match_string_list", cost.ManualCost(estimateGlobCall, trackGlobCall)),
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

// globUnits bounds, in cost units, the work of Glob(pattern, name) for a name of at most n bytes.
// Segments before the first "**" are each compared with one name segment (once); segments after
// it may be compared with every name segment. A segment with '*' may backtrack over the name
// segment it is compared with. Linear work is priced like a string scan (0.1 per byte), the
// products like a regular expression (0.1 x 0.25 per byte pair).
func globUnits(pattern string, n uint64) uint64 {
	var lin, quad uint64
	n1 := n + 1
	lin = n1 // walking the name
	afterDouble := false
	segs := uint64(0)
	for rest := pattern; ; {
		seg := rest
		i := strings.IndexByte(rest, '/')
		if i >= 0 {
			seg = rest[:i]
		}
		segs++
		l := uint64(len(seg)) + 1
		star := strings.IndexByte(seg, '*') >= 0
		switch {
		case seg == "**":
			afterDouble = true
			lin += n1
		case !afterDouble && !star:
			lin += l
		case !afterDouble:
			quad += l * n1
		case !star:
			quad += l * n1
		default:
			quad += 2 * l * n1
		}
		if i < 0 {
			break
		}
		rest = rest[i+1:]
	}
	// The state-set loop runs once per name segment and pattern segment. Without "**" a match
	// ends after at most segs name segments (each state lives for one name segment).
	if afterDouble {
		quad += segs * n1 / 2
	} else {
		quad += segs * (segs + 1)
	}
	return 1 + cost.SafeCeil(float64(lin)*cost.StringTraversalCostFactor) +
		cost.SafeCeil(float64(quad)*cost.StringTraversalCostFactor*cost.RegexStringLengthCostFactor)
}

// globUnitsWorst bounds globUnits for every pattern of at most m bytes.
func globUnitsWorst(m, n uint64) uint64 {
	n1, m1 := n+1, m+1
	lin := n1*(1+m1/3) + m1
	quad := 2*m1*n1 + m1*n1/2
	return 1 + cost.SafeCeil(float64(lin)*cost.StringTraversalCostFactor) +
		cost.SafeCeil(float64(quad)*cost.StringTraversalCostFactor*cost.RegexStringLengthCostFactor)
}

// globPatternsUnits prices matching a name of at most n bytes against known patterns.
func globPatternsUnits(patterns []string, n uint64) uint64 {
	total := uint64(1)
	for _, p := range patterns {
		total = cost.SafeAdd(total, globUnits(p, n))
	}
	return total
}

// estimateGlobCall prices path.match: from the patterns when they are literals, from the sizes
// otherwise. A name (a declared list or a variable) is left to the Env's estimator, which knows
// the lists (estimator.EstimateCallCost).
func estimateGlobCall(est cost.Estimator, _ *cost.AstNode, args []cost.AstNode) *cost.CallEstimate {
	if len(args) != 2 {
		return nil
	}
	if e := args[1].Expr(); e != nil && e.Kind() == ast.IdentKind {
		return nil
	}
	name := cost.EstimateSize(est, args[0])
	if patterns, ok := literalPatterns(args[1]); ok {
		return cost.NewCallEstimate(cost.RangedCostEstimate(1, globPatternsUnits(patterns, name.Max)), nil)
	}
	return worstGlobCall(est, args)
}

// worstGlobCall bounds path.match for patterns known only by their sizes.
func worstGlobCall(est cost.Estimator, args []cost.AstNode) *cost.CallEstimate {
	name := cost.EstimateSize(est, args[0])
	pat := cost.EstimateSize(est, args[1])
	if args[1].Type() != nil && args[1].Type().Kind() == types.ListKind {
		elem := cost.UnknownSizeEstimate()
		if pat.Elem != nil {
			elem = *pat.Elem
		}
		per := globUnitsWorst(elem.Max, name.Max)
		return cost.NewCallEstimate(cost.RangedCostEstimate(1, cost.SafeAdd(1, cost.SafeMultiply(pat.Max, per))), nil)
	}
	return cost.NewCallEstimate(cost.RangedCostEstimate(1, globUnitsWorst(pat.Max, name.Max)), nil)
}

// literalPatterns returns the strings of a string literal or a list literal of string literals.
func literalPatterns(node cost.AstNode) ([]string, bool) {
	e := node.Expr()
	if e == nil {
		return nil, false
	}
	switch e.Kind() {
	case ast.LiteralKind:
		if s, ok := e.AsLiteral().(types.String); ok {
			return []string{string(s)}, true
		}
	case ast.ListKind:
		var out []string
		for _, el := range e.AsList().Elements() {
			if el.Kind() != ast.LiteralKind {
				return nil, false
			}
			s, ok := el.AsLiteral().(types.String)
			if !ok {
				return nil, false
			}
			out = append(out, string(s))
		}
		return out, true
	}
	return nil, false
}

// trackGlobCall charges the actual bound of a call at evaluation.
func trackGlobCall(args []ref.Val, _ ref.Val) *uint64 {
	var c uint64 = 1
	if len(args) == 2 {
		if name, ok := args[0].(types.String); ok {
			n := uint64(len(name))
			if p, ok := args[1].(types.String); ok {
				c = globUnits(string(p), n)
			} else {
				eachString(args[1], func(p string) (bool, error) {
					c = cost.SafeAdd(c, globUnits(p, n))
					return false, nil
				})
			}
		}
	}
	return &c
}

// maxGlobSegments bounds the number of slash-separated segments of a glob (the matcher keeps
// its state set in one word).
const maxGlobSegments = 63

// ErrBadGlob reports a malformed glob.
var ErrBadGlob = errors.New("bad glob pattern")

// Glob reports whether name matches the slash-separated glob pattern. Within a segment, *, ?,
// [class] and \ escapes mean what they mean to path.Match; a segment that is exactly ** matches
// zero or more whole segments. The match runs in O(segments(name) x segments(pattern)) segment
// comparisons, stops at the first name segment no pattern state survives, and does not
// allocate. A malformed pattern is reported when the match reaches the malformed segment
// (ValidateGlob checks a whole pattern). CompileGlobs prepares a fixed list of patterns once.
func Glob(pattern, name string) (bool, error) {
	// The literal part before the first meta character, up to its last slash, must be a prefix
	// of the name: most patterns of a list are rejected here.
	meta := globMeta(pattern)
	if meta < 0 {
		return pattern == name, nil
	}
	if !strings.HasPrefix(name, globPrefix(pattern, meta)) {
		return false, nil
	}
	if strings.Count(pattern, "/")+1 > maxGlobSegments {
		return false, fmt.Errorf("%w: more than %d segments", ErrBadGlob, maxGlobSegments)
	}
	var buf [maxGlobSegments]string
	segs, dbl := splitGlob(pattern, buf[:0])
	return matchSegments(pattern, segs, dbl, name)
}

// globPrefix is the literal part of a pattern before its first meta character (at meta), up to
// its last slash: a prefix of every name the pattern matches ("" when there is none to check).
func globPrefix(pattern string, meta int) string {
	if cut := strings.LastIndexByte(pattern[:meta], '/'); cut > 0 {
		return pattern[:cut]
	}
	return ""
}

// splitGlob appends the segments of a pattern (at most maxGlobSegments) to segs and marks the
// "**" ones in dbl.
func splitGlob(pattern string, segs []string) ([]string, uint64) {
	var dbl uint64
	for rest := pattern; ; {
		var seg string
		last := strings.IndexByte(rest, '/') < 0
		seg, rest = cutSegment(rest)
		if seg == "**" {
			dbl |= 1 << len(segs)
		}
		segs = append(segs, seg)
		if last {
			return segs, dbl
		}
	}
}

// matchSegments runs the match of Glob over a pattern split by splitGlob: a set of pattern
// positions (one bit each) advanced one name segment at a time.
func matchSegments(pattern string, segs []string, dbl uint64, name string) (bool, error) {
	n := len(segs)
	closure := func(set uint64) uint64 {
		for j := 0; j < n; j++ {
			if set&dbl&(1<<j) != 0 {
				set |= 1 << (j + 1)
			}
		}
		return set
	}
	state := closure(1)
	// A trailing "**" matches whatever remains once it is reached.
	tail := uint64(1) << (n - 1)
	if dbl&tail == 0 {
		tail = 0
	}
	for rest := name; ; {
		if state&tail != 0 {
			return true, nil
		}
		var seg string
		last := strings.IndexByte(rest, '/') < 0
		seg, rest = cutSegment(rest)
		var next uint64
		live := state &^ (1 << n) // the accepting state consumes nothing
		for j := 0; live != 0 && j < n; j++ {
			if live&(1<<j) == 0 {
				continue
			}
			live &^= 1 << j
			if dbl&(1<<j) != 0 {
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
		if state == 0 || last {
			break
		}
	}
	return state&(1<<n) != 0, nil
}

// globMeta is the index of the first meta character (* ? [ \) of a pattern, or -1.
func globMeta(p string) int {
	for i := 0; i < len(p); i++ {
		switch p[i] {
		case '*', '?', '[', '\\':
			return i
		}
	}
	return -1
}

// cutSegment splits off the first slash-separated segment.
func cutSegment(s string) (seg, rest string) {
	if i := strings.IndexByte(s, '/'); i >= 0 {
		return s[:i], s[i+1:]
	}
	return s, ""
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
