package secret

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"path"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"gopkg.in/yaml.v3"

	"mamori/internal/model"
)

// Structured files (YAML and JSON, Kubernetes manifests and Helm output
// among them) get two things the byte rules cannot give: the key path of a
// finding, and detectors that read the structure itself.
const (
	// maxStructuredSize bounds the files parsed as YAML/JSON: manifests and
	// configuration are small; a larger file is data.
	maxStructuredSize = 2 << 20
	// maxDocuments bounds the documents of one YAML stream.
	maxDocuments = 1000
	// maxNodes bounds the nodes walked in one file (a deeply nested or
	// enormous document costs no more than this).
	maxNodes = 200000
)

// ruleK8sSecret is the structural rule for Kubernetes Secret objects.
var ruleK8sSecret = Rule{
	ID:       "kubernetes-secret-manifest",
	Title:    "Kubernetes Secret manifest with data",
	Category: "Kubernetes",
	Severity: model.SeverityHigh,
	Peers:    []string{"gitleaks:kubernetes-secret-yaml"},
	Description: "A Kubernetes Secret object with non-empty data or stringData is stored in the image or " +
		"repository: whoever can read the file has the credentials, whatever they look like. Its " +
		"base64 data values are decoded and scanned as well.",
	Remediation: "Keep Secret values out of images and repositories: create Secrets at deploy time " +
		"(kubectl create secret, an external secrets operator, sealed or SOPS-encrypted secrets), and revoke what was committed.",
}

// StructuralRules returns the rules whose findings come from reading a
// document's structure rather than a regular expression (for listings).
func StructuralRules() []Rule { return []Rule{ruleK8sSecret} }

// looksStructured reports whether content is worth parsing as YAML/JSON.
func looksStructured(p string, content []byte) bool {
	if len(content) > maxStructuredSize {
		return false
	}
	switch strings.ToLower(path.Ext(p)) {
	case ".yaml", ".yml", ".json":
		return true
	}
	t := bytes.TrimLeft(content, " \t\r\n")
	return len(t) > 0 && (t[0] == '{' || t[0] == '[' || bytes.HasPrefix(t, []byte("---")) || bytes.HasPrefix(t, []byte("apiVersion:")))
}

// parseDocuments reads every YAML (or JSON) document of content; nil when
// it does not parse. Aliases are never expanded by the walks below.
func parseDocuments(content []byte) []*yaml.Node {
	dec := yaml.NewDecoder(bytes.NewReader(content))
	var docs []*yaml.Node
	for len(docs) < maxDocuments {
		var n yaml.Node
		if err := dec.Decode(&n); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			return docs // keep the documents before a broken one
		}
		docs = append(docs, &n)
	}
	return docs
}

// scalarPos is where a scalar value sits, and its key path.
type scalarPos struct {
	line, col, endLine int
	path               string
}

// pathIndex finds the key path of a position in a parsed file.
type pathIndex struct{ scalars []scalarPos }

// newPathIndex indexes the scalars of docs by position.
func newPathIndex(docs []*yaml.Node) *pathIndex {
	idx := &pathIndex{}
	nodes := 0
	var walk func(n *yaml.Node, p string)
	walk = func(n *yaml.Node, p string) {
		if nodes++; nodes > maxNodes {
			return
		}
		switch n.Kind {
		case yaml.DocumentNode:
			for _, c := range n.Content {
				walk(c, p)
			}
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				walk(n.Content[i+1], joinKey(p, n.Content[i].Value))
			}
		case yaml.SequenceNode:
			for i, c := range n.Content {
				walk(c, p+"["+strconv.Itoa(i)+"]")
			}
		case yaml.ScalarNode:
			end := n.Line + strings.Count(n.Value, "\n")
			if n.Style&(yaml.LiteralStyle|yaml.FoldedStyle) != 0 {
				end++ // the value starts on the line after the indicator
			}
			idx.scalars = append(idx.scalars, scalarPos{n.Line, n.Column, end, p})
		}
	}
	for i, d := range docs {
		prefix := ""
		if len(docs) > 1 {
			prefix = "[" + strconv.Itoa(i) + "]"
		}
		walk(d, prefix)
	}
	sort.SliceStable(idx.scalars, func(i, j int) bool {
		a, b := idx.scalars[i], idx.scalars[j]
		if a.line != b.line {
			return a.line < b.line
		}
		return a.col < b.col
	})
	return idx
}

// at returns the key path of the scalar holding (line, col), "" if none.
func (idx *pathIndex) at(line, col int) string {
	if idx == nil {
		return ""
	}
	// The last scalar starting at or before (line, col) whose lines reach line.
	i := sort.Search(len(idx.scalars), func(i int) bool {
		s := idx.scalars[i]
		return s.line > line || s.line == line && s.col > col
	})
	for j := i - 1; j >= 0 && j >= i-64; j-- {
		if s := idx.scalars[j]; s.endLine >= line {
			return s.path
		}
	}
	return ""
}

// joinKey appends a mapping key to a path, quoting keys with dots, spaces
// or brackets.
func joinKey(p, k string) string {
	if strings.ContainsAny(k, ".[] \"") || k == "" {
		k = strconv.Quote(k)
	}
	if p == "" {
		return k
	}
	return p + "." + k
}

// secretObject is a Kubernetes Secret found in a document.
type secretObject struct {
	name, namespace string
	doc             string // key path prefix of its document
	kindLine        int
	keys            []string
	data            []*yaml.Node // data values, base64
	dataKeys        []string
}

// k8sSecrets finds Secret objects (also inside a List's items) whose data
// or stringData holds a value that is not empty, a template or a
// placeholder.
func k8sSecrets(docs []*yaml.Node) []secretObject {
	var out []secretObject
	var visit func(n *yaml.Node, doc string, depth int)
	visit = func(n *yaml.Node, doc string, depth int) {
		if n == nil || depth > 4 {
			return
		}
		if n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
			visit(n.Content[0], doc, depth)
			return
		}
		if n.Kind != yaml.MappingNode {
			return
		}
		kind := mapValue(n, "kind")
		if kind != nil && kind.Value == "List" {
			if items := mapValue(n, "items"); items != nil && items.Kind == yaml.SequenceNode {
				for i, it := range items.Content {
					visit(it, joinKey(doc, "items")+"["+strconv.Itoa(i)+"]", depth+1)
				}
			}
			return
		}
		if kind == nil || kind.Value != "Secret" {
			return
		}
		so := secretObject{doc: doc, kindLine: kind.Line}
		if md := mapValue(n, "metadata"); md != nil {
			if v := mapValue(md, "name"); v != nil {
				so.name = v.Value
			}
			if v := mapValue(md, "namespace"); v != nil {
				so.namespace = v.Value
			}
		}
		for _, field := range []string{"data", "stringData"} {
			m := mapValue(n, field)
			if m == nil || m.Kind != yaml.MappingNode {
				continue
			}
			for i := 0; i+1 < len(m.Content); i += 2 {
				k, v := m.Content[i].Value, m.Content[i+1]
				if v.Kind != yaml.ScalarNode || !realValue(v.Value) {
					continue
				}
				so.keys = append(so.keys, k)
				if field == "data" {
					so.data = append(so.data, v)
					so.dataKeys = append(so.dataKeys, joinKey(joinKey(doc, "data"), k))
				}
			}
		}
		if len(so.keys) > 0 {
			out = append(out, so)
		}
	}
	for i, d := range docs {
		doc := ""
		if len(docs) > 1 {
			doc = "[" + strconv.Itoa(i) + "]"
		}
		visit(d, doc, 0)
	}
	return out
}

// realValue reports whether a Secret value is a value: not empty, not a
// Helm/Go template, not a placeholder (changeme, ${VAR}, <password>).
func realValue(v string) bool {
	t := strings.TrimSpace(v)
	if t == "" || strings.Contains(t, "{{") || strings.HasPrefix(t, "${") {
		return false
	}
	if dec, err := base64.StdEncoding.DecodeString(t); err == nil && len(dec) > 0 && utf8.Valid(dec) {
		t = strings.TrimSpace(string(dec)) // a base64 placeholder is still a placeholder
	}
	return t != "" && !placeholderValue([]byte(t))
}

// maxPlaceholderLen: placeholders are short.
const maxPlaceholderLen = 64

// placeholderValue reports whether a whole (decoded) value is a
// placeholder: one short word that looksLikePlaceholder ("changeme",
// "<password>", "${TOKEN}"). Longer text or text with structure (an
// assignment, a key, a JSON document) is content, whatever words it holds.
func placeholderValue(v []byte) bool {
	return len(v) <= maxPlaceholderLen && !bytes.ContainsAny(v, " \t\r\n=:") && looksLikePlaceholder(v)
}

// mapValue returns the value of key in mapping n, nil when absent.
func mapValue(n *yaml.Node, key string) *yaml.Node {
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}

// secretEvidence describes a Secret object without its values.
func (so secretObject) evidence() string {
	name := so.name
	if so.namespace != "" {
		name = so.namespace + "/" + name
	}
	if name == "" {
		name = "(unnamed)"
	}
	keys := so.keys
	more := ""
	if len(keys) > 8 {
		keys, more = keys[:8], fmt.Sprintf(" and %d more", len(so.keys)-8)
	}
	return fmt.Sprintf("Secret %s: keys %s%s", name, strings.Join(keys, ", "), more)
}
