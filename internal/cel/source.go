package cel

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	celgo "cel.dev/cel-go/cel"
	"go.yaml.in/yaml/v3"
)

// Source is an expression and where it came from. Line and Column (1-based, in characters) give
// the position of the expression's first character in File; zero when unknown. Errors found in
// the expression are reported at their position in File.
type Source struct {
	File   string
	Expr   string
	Line   int
	Column int
	// pos maps each character (rune) of Expr to its position in File, when known (YAMLSource).
	pos []filePos
}

type filePos struct{ line, col int32 }

// Text is a Source with no file position, for expressions typed on a command line or in tests.
func Text(expr string) Source { return Source{Expr: expr} }

// YAMLSource returns the Source of a YAML scalar node holding an expression: the node's value,
// with a map from each character back to its line and column in the file (data is the whole file
// the node was decoded from). Plain, quoted, literal (|) and folded (>) scalars are mapped; where
// YAML rewrote the text beyond whitespace folding (escape sequences), positions after the rewrite
// fall back to the scalar's start.
func YAMLSource(file string, data []byte, n *yaml.Node) Source {
	s := Source{File: file, Expr: n.Value, Line: n.Line, Column: n.Column}
	if n.Line <= 0 || n.Column <= 0 || len(data) == 0 {
		return s
	}
	lines := strings.Split(string(data), "\n")
	line, col := n.Line, n.Column // 1-based, col in runes
	switch n.Style {
	case yaml.LiteralStyle, yaml.FoldedStyle:
		line, col = n.Line+1, 1
	case yaml.DoubleQuotedStyle, yaml.SingleQuotedStyle:
		col++
	}
	if line > len(lines) {
		return s
	}
	// raw reads the rune at (line, col) as it appears in the file; '\n' past a line's end.
	cur := []rune(lines[line-1])
	raw := func() (rune, bool) {
		if col-1 < len(cur) {
			return cur[col-1], true
		}
		if line < len(lines) {
			return '\n', true
		}
		return 0, false
	}
	advance := func() {
		if col-1 < len(cur) {
			col++
			return
		}
		line++
		col = 1
		if line <= len(lines) {
			cur = []rune(lines[line-1])
		}
	}
	pos := make([]filePos, 0, utf8.RuneCountInString(n.Value))
	for _, v := range n.Value {
		matched := false
		for !matched {
			r, ok := raw()
			if !ok {
				return s.withPartial(pos)
			}
			switch {
			case r == v:
				pos = append(pos, filePos{int32(line), int32(col)})
				advance()
				matched = true
			case isFoldable(r):
				advance()
			case isSpace(v):
				// Whitespace YAML produced by folding a line break: no character of its own.
				pos = append(pos, filePos{int32(line), int32(col)})
				matched = true
			default:
				return s.withPartial(pos)
			}
		}
	}
	s.pos = pos
	return s
}

func (s Source) withPartial(pos []filePos) Source {
	s.pos = pos
	return s
}

// isFoldable: characters of a YAML scalar's source that its value may not contain (indentation,
// line breaks, quotes and escapes).
func isFoldable(r rune) bool {
	switch r {
	case ' ', '\t', '\n', '\r', '\\', '"', '\'':
		return true
	}
	return false
}

func isSpace(r rune) bool { return r == ' ' || r == '\n' || r == '\t' || r == '\r' }

// position maps a CEL location (1-based line, 0-based column in runes, relative to Expr) to a
// 1-based line and column in File.
func (s Source) position(line, col int) (int, int) {
	if line < 1 || col < 0 {
		return s.Line, s.Column
	}
	idx, ok := runeIndex(s.Expr, line, col)
	if ok && idx < len(s.pos) {
		return int(s.pos[idx].line), int(s.pos[idx].col)
	}
	if s.Line == 0 {
		return line, col + 1
	}
	if line == 1 {
		return s.Line, s.Column + col
	}
	return s.Line + line - 1, col + 1
}

// runeIndex converts a line/column inside expr to a rune offset.
func runeIndex(expr string, line, col int) (int, bool) {
	idx, l := 0, 1
	for _, r := range expr {
		if l == line {
			break
		}
		idx++
		if r == '\n' {
			l++
		}
	}
	if l != line {
		return 0, false
	}
	return idx + col, true
}

// Error is one problem in an expression or declaration, at a position in a file.
type Error struct {
	File   string
	Line   int // 1-based; 0 when unknown
	Column int // 1-based; 0 when unknown
	Msg    string
	Err    error // the class: ErrSyntax, ErrType, ErrTooExpensive or ErrDeclaration
}

func (e *Error) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File)
		b.WriteByte(':')
	}
	if e.Line > 0 {
		fmt.Fprintf(&b, "%d:", e.Line)
		if e.Column > 0 {
			fmt.Fprintf(&b, "%d:", e.Column)
		}
	}
	if b.Len() > 0 {
		b.WriteByte(' ')
	}
	b.WriteString(e.Msg)
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

// Errors is every problem found in one compilation, in source order.
type Errors []*Error

func (es Errors) Error() string {
	parts := make([]string, len(es))
	for i, e := range es {
		parts[i] = e.Error()
	}
	return strings.Join(parts, "\n")
}

// Unwrap lets errors.Is and errors.As see each error.
func (es Errors) Unwrap() []error {
	out := make([]error, len(es))
	for i, e := range es {
		out[i] = e
	}
	return out
}

// appendErr flattens err into errs.
func appendErr(errs Errors, err error) Errors {
	var list Errors
	var one *Error
	switch {
	case errors.As(err, &list):
		return append(errs, list...)
	case errors.As(err, &one):
		return append(errs, one)
	default:
		return append(errs, &Error{Msg: err.Error(), Err: err})
	}
}

// prefixed returns err with prefix added to each message, keeping positions.
func prefixed(err error, prefix string) error {
	var out Errors
	for _, e := range appendErr(nil, err) {
		c := *e
		c.Msg = prefix + c.Msg
		out = append(out, &c)
	}
	return out
}

// issues converts cel-go's issues to positioned Errors of the given class.
func (s Source) issues(iss *celgo.Issues, class error) Errors {
	var out Errors
	for _, ce := range iss.Errors() {
		e := &Error{File: s.File, Msg: ce.Message, Err: class}
		if ce.Location != nil && ce.Location.Line() > 0 {
			e.Line, e.Column = s.position(ce.Location.Line(), ce.Location.Column())
		} else {
			e.Line, e.Column = s.Line, s.Column
		}
		out = append(out, e)
	}
	if len(out) == 0 {
		out = append(out, &Error{File: s.File, Line: s.Line, Column: s.Column, Msg: "invalid expression", Err: class})
	}
	return out
}

// errorAt is a single positioned error at the start of the source.
func (s Source) errorAt(class error, format string, args ...any) Errors {
	return Errors{{File: s.File, Line: s.Line, Column: s.Column, Msg: fmt.Sprintf(format, args...), Err: class}}
}
