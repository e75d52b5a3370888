package secret

import (
	"bytes"
	"strconv"

	"gopkg.in/yaml.v3"

	"mamori/internal/model"
)

// deepState is one file's decoding stage: its budgets (shared by every
// depth), what was reported, and the file's parse, made at most once.
type deepState struct {
	s       *Scanner
	path    string
	content []byte
	base    model.Location // Path or Config of every finding
	lines   lineIndex      // newline offsets, when withLines
	// withLines is false for a text that is not a file (no line numbers).
	withLines bool

	budget int // decoded bytes left
	tokens int // values left to decode
	seen   map[string]bool
	out    []model.Finding

	parsed bool
	docs   []*yaml.Node
	paths  *pathIndex
}

// deep runs the decoding stage and the structural detectors over content
// (whose plain-text findings are outer) and returns their findings.
func (s *Scanner) deep(path string, content []byte, base model.Location, withLines bool, outer []candidate) []model.Finding {
	st := &deepState{s: s, path: path, content: content, base: base, budget: decodeBudget, tokens: maxDecodeTokens,
		seen: map[string]bool{}}
	if withLines {
		st.lines, st.withLines = newLineIndex(content), true
	}
	for _, c := range outer {
		// A decoded copy of what the plain text already shows, on the same
		// line by the same rule, is the same finding.
		st.seen[s.rules[c.rule].ID+"\x00"+strconv.Itoa(c.startLine)] = true
	}
	st.k8sSecrets()
	findTokens(content, func(t token) bool {
		if st.tokens <= 0 || st.budget <= 0 {
			return false
		}
		dec, ok := decodeToken(content, t)
		if !ok {
			return true
		}
		line := st.line(t.start)
		col := st.col(t.start)
		st.layer(dec, 1, t.kind, line, func() string { return st.keyPath(line, col) })
		return true
	})
	return st.out
}

// k8sSecrets reports Kubernetes Secret objects and scans their decoded
// data values.
func (st *deepState) k8sSecrets() {
	c := st.content
	if !bytes.Contains(c, []byte("Secret")) || !bytes.Contains(c, []byte("kind")) || !looksStructured(st.path, c) {
		return
	}
	for _, so := range k8sSecrets(st.parse()) {
		loc := st.base
		if st.withLines {
			loc.StartLine, loc.EndLine = so.kindLine, so.kindLine
		}
		loc.KeyPath = so.doc
		st.add(model.Finding{
			Kind: model.KindSecret, ID: ruleK8sSecret.ID, Title: ruleK8sSecret.Title, Severity: ruleK8sSecret.Severity,
			Category: ruleK8sSecret.Category, Description: ruleK8sSecret.Description, Remediation: ruleK8sSecret.Remediation,
			Location: loc, Evidence: so.evidence(), Controls: []string{controlEmbeddedSecrets},
		}, ruleK8sSecret.ID+"\x00"+so.doc)
		for i, v := range so.data {
			// Block scalars may wrap the base64: drop the white space.
			raw := bytes.Join(bytes.Fields([]byte(v.Value)), nil)
			dec, ok := decodeToken(raw, token{0, len(raw), encBase64})
			if !ok || st.tokens <= 0 || st.budget <= 0 {
				continue
			}
			kp := so.dataKeys[i]
			st.layer(dec, 1, encBase64, v.Line, func() string { return kp })
		}
	}
}

// layer scans decoded text found at line of the file (keyPath names where
// in the file's structure), then decodes what it holds in turn, up to
// maxDecodeDepth.
func (st *deepState) layer(text []byte, depth int, chain string, line int, keyPath func() string) {
	st.budget -= len(text)
	st.tokens--
	if st.budget < 0 {
		return
	}
	cands := st.s.scan(st.path, text)
	var inner *pathIndex
	if len(cands) > 0 && looksStructured("", text) {
		inner = newPathIndex(parseDocuments(text))
	}
	var innerLines lineIndex
	if inner != nil {
		innerLines = newLineIndex(text)
	}
	for _, c := range cands {
		r := st.s.rules[c.rule]
		kp := keyPath()
		if inner != nil {
			if p := inner.at(c.startLine, innerLines.column(c.secret.start)); p != "" {
				kp = joinPaths(kp, p)
			}
		}
		loc := st.base
		if st.withLines {
			loc.StartLine, loc.EndLine = line, line
		}
		loc.Encoding, loc.KeyPath = chain, kp
		f := st.s.toFinding(c, loc)
		st.add(f, r.ID+"\x00"+strconv.Itoa(line), r.ID+"\x00"+strconv.Itoa(line)+"\x00"+c.secretString)
	}
	if depth >= maxDecodeDepth {
		return
	}
	findTokens(text, func(t token) bool {
		if st.tokens <= 0 || st.budget <= 0 {
			return false
		}
		dec, ok := decodeToken(text, t)
		if !ok {
			return true
		}
		st.layer(dec, depth+1, chain+"/"+t.kind, line, keyPath)
		return true
	})
}

// add appends f unless one of its keys was reported already.
func (st *deepState) add(f model.Finding, keys ...string) {
	for _, k := range keys {
		if st.seen[k] {
			return
		}
	}
	for _, k := range keys {
		st.seen[k] = true
	}
	st.out = append(st.out, f)
}

func (st *deepState) parse() []*yaml.Node {
	if !st.parsed {
		st.parsed = true
		st.docs = parseDocuments(st.content)
	}
	return st.docs
}

// keyPath is the key path at (line, col) of the file, "" when the file is
// not YAML/JSON. The file is parsed on the first call only.
func (st *deepState) keyPath(line, col int) string {
	if !st.withLines || !looksStructured(st.path, st.content) {
		return ""
	}
	if st.paths == nil {
		st.paths = newPathIndex(st.parse())
	}
	return st.paths.at(line, col)
}

func (st *deepState) line(off int) int {
	if !st.withLines {
		return 0
	}
	return st.lines.line(off)
}

func (st *deepState) col(off int) int {
	if !st.withLines {
		return 0
	}
	return st.lines.column(off)
}

// joinPaths joins the key path of a decoded document to the outer one.
func joinPaths(outer, inner string) string {
	if outer == "" {
		return inner
	}
	return outer + " > " + inner
}
