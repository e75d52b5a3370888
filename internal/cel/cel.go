// Package cel is mamori's one CEL environment package. Policy rules (admission and continuous
// compliance), runtime rules and host log rules all build their environments here, so every rule
// kind gets the same guarantees:
//
//   - typed inputs: variables are declared with types (dotted names such as "proc.exe" are
//     allowed), so `proc.exe.startsWith(1)` is a compile error, not a runtime surprise;
//   - a static cost limit: cel-go's cost estimate of every expression is computed at load and an
//     expression whose worst case exceeds the limit is rejected then, never at evaluation;
//   - a second fence at evaluation: a runtime cost limit and an interrupt check driven by the
//     caller's context;
//   - errors that name the file, line and column the expression came from (YAMLSource maps
//     CEL's positions inside a YAML scalar back into the file);
//   - a small shared library (path.base, path.dir, path.match, path.under, ip.inCIDR,
//     ip.isPrivate, startsWithAny, ...) with declared costs.
//
// The package is pure: no I/O, no global mutable state.
package cel

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	celgo "cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"cel.dev/cel-go/ext"
)

// Type is a CEL type. The package re-exports the few constructors rule kinds need so that they
// do not import cel-go themselves.
type Type = celgo.Type

// Value is a CEL value as produced by evaluation and consumed by activations.
type Value = ref.Val

// Scalar types.
var (
	String    = celgo.StringType
	Int       = celgo.IntType
	Uint      = celgo.UintType
	Bool      = celgo.BoolType
	Double    = celgo.DoubleType
	Bytes     = celgo.BytesType
	Dyn       = celgo.DynType
	Timestamp = celgo.TimestampType
	Duration  = celgo.DurationType
)

// ListOf is the type list(elem).
func ListOf(elem *Type) *Type { return celgo.ListType(elem) }

// MapOf is the type map(key, value).
func MapOf(key, value *Type) *Type { return celgo.MapType(key, value) }

// Limits and defaults. Cost units are cel-go's: roughly one unit per primitive operation, string
// scans at 0.1 unit per byte.
const (
	// DefaultCostLimit bounds the static worst-case cost of one expression. 100,000 units is a few
	// hundred microseconds at worst on these machines: generous for admission and log rules over
	// whole objects. Runtime rules, evaluated per kernel event, set a much lower limit.
	DefaultCostLimit uint64 = 100_000
	// DefaultMaxSize is assumed for a declared variable without a size: 4096 bytes for a string
	// (PATH_MAX), 4096 elements for a list or entries for a map.
	DefaultMaxSize uint64 = 4096
	// DefaultInterruptCheckFrequency is how many comprehension iterations run between two checks
	// of the caller's context.
	DefaultInterruptCheckFrequency uint = 100
	// MaxExprSize bounds an expression's length in code points before it is parsed.
	MaxExprSize = 32 << 10
	// maxParseRecursion bounds the parser's nesting depth (cel-go's default is 250).
	maxParseRecursion = 100
	// maxExprNodes bounds the number of AST nodes of one expression.
	maxExprNodes = 10_000
	// maxRegexProgramSize bounds a compiled regular expression (re2 program instructions).
	maxRegexProgramSize = 10_000
)

// Var declares one input variable of an environment.
type Var struct {
	// Name is the variable's name as written in expressions; dotted names ("proc.exe") declare a
	// qualified variable that is read as one value.
	Name string
	// Type is the variable's CEL type.
	Type *Type
	// MaxSize bounds the value for the static cost estimate: bytes of a string, elements of a
	// list, entries of a map. Zero means DefaultMaxSize.
	MaxSize uint64
	// ElemSize bounds each element of a list or each value of a map (bytes when they are strings).
	// Zero means DefaultMaxSize.
	ElemSize uint64
	// KeySize bounds each key of a map. Zero means DefaultMaxSize.
	KeySize uint64
	// Doc is a one-line description, shown in documentation.
	Doc string
}

// List is a named constant list of strings that expressions refer to by name
// (`proc.name in shell_binaries`). Membership tests against it compile to a hash lookup.
type List struct {
	Name   string
	Values []string
}

// Macro is a named boolean expression that other expressions use by name; it is type-checked
// once and inlined where it is referenced. Macros may use lists and other macros (no cycles).
type Macro struct {
	Name   string
	Source Source
}

// Errors classifying a failed compilation; test with errors.Is on the returned error.
var (
	// ErrSyntax: the expression does not parse.
	ErrSyntax = errors.New("cel: syntax error")
	// ErrType: the expression does not type-check (undeclared names, wrong argument types, a
	// non-boolean condition).
	ErrType = errors.New("cel: type error")
	// ErrTooExpensive: the static cost estimate exceeds the limit.
	ErrTooExpensive = errors.New("cel: expression too expensive")
	// ErrDeclaration: a variable, list or macro declaration is invalid.
	ErrDeclaration = errors.New("cel: bad declaration")
)

// Option configures an Env.
type Option func(*options) error

type options struct {
	costLimit        uint64
	runtimeCostLimit uint64
	interruptFreq    uint
	lists            []List
	macros           []Macro
}

// WithCostLimit sets the static cost limit: Compile rejects an expression whose estimated
// worst-case cost exceeds n. The default is DefaultCostLimit.
func WithCostLimit(n uint64) Option {
	return func(o *options) error {
		if n == 0 {
			return fmt.Errorf("%w: cost limit must be positive", ErrDeclaration)
		}
		o.costLimit = n
		return nil
	}
}

// WithRuntimeCostLimit sets the cost limit enforced while evaluating, the second fence behind
// the static estimate; 0 (the default) means "the static cost limit". Evaluation stops with an
// error when it is reached.
func WithRuntimeCostLimit(n uint64) Option {
	return func(o *options) error {
		o.runtimeCostLimit = n
		return nil
	}
}

// WithInterruptCheckFrequency sets how many comprehension iterations run between two checks of
// the evaluation context. The default is DefaultInterruptCheckFrequency.
func WithInterruptCheckFrequency(n uint) Option {
	return func(o *options) error {
		if n == 0 {
			return fmt.Errorf("%w: interrupt check frequency must be positive", ErrDeclaration)
		}
		o.interruptFreq = n
		return nil
	}
}

// WithLists declares named constant string lists.
func WithLists(lists ...List) Option {
	return func(o *options) error {
		o.lists = append(o.lists, lists...)
		return nil
	}
}

// WithMacros declares named boolean expressions that are inlined where referenced.
func WithMacros(macros ...Macro) Option {
	return func(o *options) error {
		o.macros = append(o.macros, macros...)
		return nil
	}
}

func makeOptions(opts []Option) (options, error) {
	o := options{costLimit: DefaultCostLimit, interruptFreq: DefaultInterruptCheckFrequency}
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return options{}, err
		}
	}
	if o.runtimeCostLimit == 0 {
		o.runtimeCostLimit = o.costLimit
	}
	return o, nil
}

// Env is a compiled environment: declared variables, lists, macros and the shared library.
// It is safe for concurrent use.
type Env struct {
	env    *celgo.Env
	opts   options
	vars   []Var
	index  map[string]int    // variable name -> position in vars
	sizes  map[string]sizeOf // variable and list name -> size bounds, for the estimator
	macros map[string]*macroDef
	lists  map[string][]string
	inline *celgo.StaticOptimizer // nil when there are no macros
}

type sizeOf struct {
	size, elem, key uint64
}

type macroDef struct {
	src  Source
	ast  *celgo.Ast
	deps []string
}

// NewEnv builds an environment from a declared variable set and options. Lists and macros are
// validated here; a macro that does not compile is reported with its file and line.
func NewEnv(vars []Var, opts ...Option) (*Env, error) {
	o, err := makeOptions(opts)
	if err != nil {
		return nil, err
	}
	e := &Env{
		opts:   o,
		vars:   append([]Var(nil), vars...),
		index:  make(map[string]int, len(vars)),
		sizes:  make(map[string]sizeOf, len(vars)+len(o.lists)),
		macros: make(map[string]*macroDef, len(o.macros)),
		lists:  make(map[string][]string, len(o.lists)),
	}
	envOpts := []celgo.EnvOption{
		ext.Strings(),
		ext.Sets(),
		ext.Math(),
		celgo.Lib(library{}),
		celgo.ParserExpressionSizeLimit(MaxExprSize),
		celgo.ParserRecursionLimit(maxParseRecursion),
		celgo.ExpressionNodeLimit(maxExprNodes),
		celgo.RegexProgramSizeLimit(maxRegexProgramSize),
		celgo.ASTValidators(literalValidator{}),
	}
	for i, v := range e.vars {
		if err := checkName(v.Name); err != nil {
			return nil, fmt.Errorf("%w: variable %q: %w", ErrDeclaration, v.Name, err)
		}
		if v.Type == nil {
			return nil, fmt.Errorf("%w: variable %q has no type", ErrDeclaration, v.Name)
		}
		if _, dup := e.index[v.Name]; dup {
			return nil, fmt.Errorf("%w: variable %q declared twice", ErrDeclaration, v.Name)
		}
		e.index[v.Name] = i
		e.sizes[v.Name] = sizeOf{size: orDefault(v.MaxSize), elem: orDefault(v.ElemSize), key: orDefault(v.KeySize)}
		envOpts = append(envOpts, celgo.VariableWithDoc(v.Name, v.Type, v.Doc))
	}
	for _, l := range o.lists {
		if err := e.claim(l.Name, "list"); err != nil {
			return nil, err
		}
		var longest uint64
		for _, s := range l.Values {
			longest = max(longest, uint64(len(s)))
		}
		e.sizes[l.Name] = sizeOf{size: uint64(len(l.Values)), elem: longest}
		vals := append([]string(nil), l.Values...)
		e.lists[l.Name] = vals
		envOpts = append(envOpts, celgo.Constant(l.Name, ListOf(String), types.NewStringList(types.DefaultTypeAdapter, vals)))
	}
	for _, m := range o.macros {
		if err := e.claim(m.Name, "macro"); err != nil {
			return nil, err
		}
		e.macros[m.Name] = &macroDef{src: m.Source}
		envOpts = append(envOpts, celgo.Variable(m.Name, Bool))
	}
	env, err := celgo.NewEnv(envOpts...)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrDeclaration, err)
	}
	e.env = env
	if len(o.macros) > 0 {
		if err := e.compileMacros(o.macros); err != nil {
			return nil, err
		}
	}
	return e, nil
}

// claim reserves a name for a list or macro, refusing clashes with variables and each other.
func (e *Env) claim(name, what string) error {
	if err := checkName(name); err != nil {
		return fmt.Errorf("%w: %s %q: %w", ErrDeclaration, what, name, err)
	}
	if _, clash := e.index[name]; clash {
		return fmt.Errorf("%w: %s %q has the name of a variable", ErrDeclaration, what, name)
	}
	if _, clash := e.sizes[name]; clash {
		return fmt.Errorf("%w: %s %q declared twice", ErrDeclaration, what, name)
	}
	if _, clash := e.macros[name]; clash {
		return fmt.Errorf("%w: %s %q declared twice", ErrDeclaration, what, name)
	}
	return nil
}

// compileMacros checks every macro, orders them by dependency and inlines each macro's
// dependencies into it, so that a rule needs one inlining pass.
func (e *Env) compileMacros(macros []Macro) error {
	var errs Errors
	for _, m := range macros {
		def := e.macros[m.Name]
		a, err := e.check(m.Source, Bool)
		if err != nil {
			errs = appendErr(errs, prefixed(err, "macro "+m.Name+": "))
			continue
		}
		def.ast = a
		for _, name := range referencedNames(a) {
			if _, ok := e.macros[name]; ok {
				def.deps = append(def.deps, name)
			}
		}
	}
	if len(errs) > 0 {
		return errs
	}
	// Depth-first topological order with cycle detection.
	const (
		unvisited = iota
		visiting
		done
	)
	state := make(map[string]int, len(macros))
	var order []string
	var visit func(name string, path []string) error
	visit = func(name string, path []string) error {
		switch state[name] {
		case done:
			return nil
		case visiting:
			def := e.macros[name]
			return &Error{File: def.src.File, Line: def.src.Line, Column: def.src.Column, Err: ErrDeclaration,
				Msg: fmt.Sprintf("macro %s is defined in terms of itself (%s)", name, strings.Join(append(path, name), " -> "))}
		}
		state[name] = visiting
		deps := append([]string(nil), e.macros[name].deps...)
		sort.Strings(deps)
		for _, d := range deps {
			if err := visit(d, append(path, name)); err != nil {
				return err
			}
		}
		state[name] = done
		order = append(order, name)
		return nil
	}
	names := make([]string, 0, len(macros))
	for _, m := range macros {
		names = append(names, m.Name)
	}
	for _, n := range names {
		if err := visit(n, nil); err != nil {
			return err
		}
	}
	// Inline in dependency order: each macro's dependencies are already free of macro names.
	for _, name := range order {
		def := e.macros[name]
		if len(def.deps) == 0 {
			continue
		}
		inl := make([]*celgo.InlineVariable, 0, len(def.deps))
		for _, d := range def.deps {
			inl = append(inl, celgo.NewInlineVariable(d, e.macros[d].ast))
		}
		a, err := e.inlineWith(def.src, def.ast, inl)
		if err != nil {
			return err
		}
		def.ast = a
	}
	inl := make([]*celgo.InlineVariable, 0, len(order))
	for _, name := range order {
		inl = append(inl, celgo.NewInlineVariable(name, e.macros[name].ast))
	}
	so, err := celgo.NewStaticOptimizer(celgo.NewInliningOptimizer(inl...))
	if err != nil {
		return fmt.Errorf("%w: macros: %w", ErrDeclaration, err)
	}
	e.inline = so
	return nil
}

func (e *Env) inlineWith(src Source, a *celgo.Ast, inl []*celgo.InlineVariable) (*celgo.Ast, error) {
	so, err := celgo.NewStaticOptimizer(celgo.NewInliningOptimizer(inl...))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrDeclaration, err)
	}
	out, iss := so.Optimize(e.env, a)
	if iss.Err() != nil {
		return nil, src.issues(iss, ErrType)
	}
	return out, nil
}

// Vars returns the declared variables, in declaration order.
func (e *Env) Vars() []Var { return append([]Var(nil), e.vars...) }

// VarIndex returns the position of a declared variable in Vars, or -1.
func (e *Env) VarIndex(name string) int {
	if i, ok := e.index[name]; ok {
		return i
	}
	return -1
}

// CostLimit returns the static cost limit of the environment.
func (e *Env) CostLimit() uint64 { return e.opts.costLimit }

func orDefault(n uint64) uint64 {
	if n == 0 {
		return DefaultMaxSize
	}
	return n
}

// checkName accepts identifiers and dotted identifiers: [A-Za-z_][A-Za-z0-9_]*(\.[...])*.
func checkName(name string) error {
	if name == "" {
		return errors.New("empty name")
	}
	for _, part := range strings.Split(name, ".") {
		if part == "" {
			return errors.New("empty name segment")
		}
		for i, r := range part {
			ok := r == '_' || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') || (i > 0 && r >= '0' && r <= '9')
			if !ok {
				return fmt.Errorf("invalid character %q", r)
			}
		}
		if isReserved(part) {
			return fmt.Errorf("%q is a reserved word", part)
		}
	}
	return nil
}

// isReserved reports CEL's reserved words and literals, which cannot name anything.
func isReserved(word string) bool {
	switch word {
	case "true", "false", "null", "in", "as", "break", "const", "continue", "else", "for",
		"function", "if", "import", "let", "loop", "package", "namespace", "return", "var",
		"void", "while":
		return true
	}
	return false
}
