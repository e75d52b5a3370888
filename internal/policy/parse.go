package policy

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// MaxPolicySize bounds a policy document. Real policies are a few KiB.
const MaxPolicySize = 1 << 20

// ErrInvalid is wrapped by every error about a policy document.
var ErrInvalid = errors.New("policy: invalid")

// Error is one problem in a policy document, at a place in its file.
type Error struct {
	File   string
	Line   int // 1-based; 0 when unknown
	Column int // 1-based; 0 when unknown
	// Path is where in the document ("admission[2].vulnerabilities.severity").
	Path string
	Msg  string
}

func (e *Error) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File)
		b.WriteByte(':')
	}
	if e.Line > 0 {
		b.WriteString(strconv.Itoa(e.Line))
		b.WriteByte(':')
		if e.Column > 0 {
			b.WriteString(strconv.Itoa(e.Column))
			b.WriteByte(':')
		}
	}
	if b.Len() > 0 {
		b.WriteByte(' ')
	}
	if e.Path != "" {
		b.WriteString(e.Path)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Unwrap makes errors.Is(err, ErrInvalid) true.
func (e *Error) Unwrap() error { return ErrInvalid }

// Errors is every problem found in one document, in file order.
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

// source is where a parsed policy came from, for positions in errors.
type source struct {
	file string
	data []byte
	root *yaml.Node // the document's top mapping
}

// Parse reads one policy document (YAML or JSON) and validates it. file
// names the document in errors; nothing is read from disk. Every problem
// found is reported, each with its line.
func Parse(file string, data []byte) (*Policy, error) {
	if len(data) > MaxPolicySize {
		return nil, Errors{{File: file, Msg: fmt.Sprintf("policy of %d bytes exceeds %d", len(data), MaxPolicySize)}}
	}
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, Errors{{File: file, Msg: "empty policy"}}
		}
		return nil, yamlErrors(file, err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		line := extra.Line
		if len(extra.Content) > 0 {
			line = extra.Content[0].Line
		}
		if err != nil {
			return nil, yamlErrors(file, err)
		}
		return nil, Errors{{File: file, Line: line, Msg: "more than one document: one policy per file"}}
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 || doc.Content[0].Kind != yaml.MappingNode {
		return nil, Errors{{File: file, Line: doc.Line, Column: doc.Column, Msg: "a policy is a mapping (apiVersion, kind, name, rules ...)"}}
	}
	var p Policy
	strict := yaml.NewDecoder(bytes.NewReader(data))
	strict.KnownFields(true)
	if err := strict.Decode(&p); err != nil {
		return nil, yamlErrors(file, err)
	}
	p.src = &source{file: file, data: data, root: doc.Content[0]}
	if err := p.Validate(); err != nil {
		return nil, err
	}
	return &p, nil
}

var yamlLine = regexp.MustCompile(`^(?:yaml: )?line (\d+): (.*)$`)
var yamlField = regexp.MustCompile(`^field (\S+) not found in type \S+$`)

// yamlErrors turns go-yaml's errors into positioned Errors.
func yamlErrors(file string, err error) Errors {
	var msgs []string
	var te *yaml.TypeError
	if errors.As(err, &te) {
		msgs = te.Errors
	} else {
		msgs = []string{err.Error()}
	}
	out := make(Errors, 0, len(msgs))
	for _, m := range msgs {
		e := &Error{File: file, Msg: strings.TrimPrefix(m, "yaml: ")}
		if sm := yamlLine.FindStringSubmatch(strings.TrimSpace(m)); sm != nil {
			e.Line, _ = strconv.Atoi(sm[1])
			e.Msg = sm[2]
		}
		if fm := yamlField.FindStringSubmatch(e.Msg); fm != nil {
			e.Msg = "unknown field " + strconv.Quote(fm[1])
		}
		e.Msg = strings.ReplaceAll(e.Msg, "model.Action", "action")
		out = append(out, e)
	}
	return out
}

// node finds the node at a path of mapping keys (string) and sequence
// indexes (int); it returns the deepest node found.
func (src *source) node(path ...any) *yaml.Node {
	if src == nil || src.root == nil {
		return nil
	}
	n := src.root
	for _, p := range path {
		var next *yaml.Node
		switch k := p.(type) {
		case string:
			if n.Kind == yaml.MappingNode {
				for i := 0; i+1 < len(n.Content); i += 2 {
					if n.Content[i].Value == k {
						next = n.Content[i+1]
						break
					}
				}
			}
		case int:
			if n.Kind == yaml.SequenceNode && k >= 0 && k < len(n.Content) {
				next = n.Content[k]
			}
		}
		if next == nil {
			return n
		}
		n = next
	}
	return n
}

// errAt makes an Error at a path of the document.
func (p *Policy) errAt(msg string, path ...any) *Error {
	e := &Error{Path: pathString(path), Msg: msg}
	if p.src != nil {
		e.File = p.src.file
		if n := p.src.node(path...); n != nil {
			e.Line, e.Column = n.Line, n.Column
		}
	}
	return e
}

func pathString(path []any) string {
	var b strings.Builder
	for _, p := range path {
		switch k := p.(type) {
		case string:
			if b.Len() > 0 {
				b.WriteByte('.')
			}
			b.WriteString(k)
		case int:
			b.WriteByte('[')
			b.WriteString(strconv.Itoa(k))
			b.WriteByte(']')
		}
	}
	return b.String()
}
