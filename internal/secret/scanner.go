package secret

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"unicode/utf8"

	"mamori/internal/model"
)

const (
	// DefaultMaxFileSize is the largest file the analyzer reads (10 MiB):
	// secrets live in configuration and source files; larger files are
	// archives, databases or media, and reading them costs memory and time
	// for no expected finding.
	DefaultMaxFileSize = 10 << 20
	// maxFindingsPerFile bounds the findings reported for one file (a dump
	// of thousands of keys is reported as its first findings, not all).
	maxFindingsPerFile = 100
	// maxMatchesPerRun bounds the matches one regex run may return.
	maxMatchesPerRun = 1000
	// binarySniffLen is how much of a file is checked for NUL bytes to
	// decide it is binary (git and grep use the same 8000-byte heuristic).
	binarySniffLen = 8 << 10
)

// Scanner applies secret rules to bytes. It is immutable once built and
// safe for concurrent use.
type Scanner struct {
	rules       []*Rule
	allow       []*AllowRule
	index       *keywordIndex
	kwRules     [][]int // keyword index -> rule indexes
	noKeyword   []int   // rules without keywords: always run on whole content
	showSecrets bool
	maxFileSize int64
	noDecode    bool
	digest      string
}

// Option configures a Scanner (and the Analyzer built on one).
type Option func(*options) error

type options struct {
	showSecrets bool
	maxFileSize int64
	noDecode    bool
	config      *Config
}

// WithDecoding turns the decoding stage (base64, hex and percent-encoded
// values decoded and scanned again; Kubernetes Secret objects) on or off.
// On by default.
func WithDecoding(on bool) Option {
	return func(o *options) error { o.noDecode = !on; return nil }
}

// WithShowSecrets puts the raw secret into each finding's Evidence instead
// of the redacted form. Off by default: reports are often shared.
func WithShowSecrets(show bool) Option {
	return func(o *options) error { o.showSecrets = show; return nil }
}

// WithMaxFileSize sets the largest file scanned (default DefaultMaxFileSize).
func WithMaxFileSize(n int64) Option {
	return func(o *options) error {
		if n <= 0 {
			return fmt.Errorf("secret: max file size %d: must be positive", n)
		}
		o.maxFileSize = n
		return nil
	}
}

// WithConfig adds custom rules and allow rules and disables built-ins as
// the configuration says (see LoadConfig).
func WithConfig(c *Config) Option {
	return func(o *options) error { o.config = c; return nil }
}

// WithConfigFile reads a YAML configuration file (see LoadConfig).
func WithConfigFile(path string) Option {
	return func(o *options) error {
		c, err := LoadConfig(path)
		if err != nil {
			return err
		}
		o.config = c
		return nil
	}
}

// NewScanner builds a Scanner with the built-in rules and allow rules,
// adjusted by the options.
func NewScanner(opts ...Option) (*Scanner, error) {
	o := options{maxFileSize: DefaultMaxFileSize}
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, err
		}
	}
	rules := BuiltinRules()
	allow := builtinAllowRules()
	if o.config != nil {
		var err error
		rules, allow, err = o.config.apply(rules, allow)
		if err != nil {
			return nil, err
		}
	}
	s := &Scanner{allow: allow, showSecrets: o.showSecrets, maxFileSize: o.maxFileSize, noDecode: o.noDecode}
	kwPos := map[string]int{}
	var kws []string
	seen := map[string]bool{}
	for i := range rules {
		r := &rules[i]
		if err := r.compile(); err != nil {
			return nil, err
		}
		if seen[r.ID] {
			return nil, fmt.Errorf("%w: duplicate rule id %q", ErrInvalidRule, r.ID)
		}
		seen[r.ID] = true
		ri := len(s.rules)
		s.rules = append(s.rules, r)
		if len(r.Keywords) == 0 {
			s.noKeyword = append(s.noKeyword, ri)
			continue
		}
		for _, k := range r.Keywords {
			ki, ok := kwPos[k]
			if !ok {
				ki = len(kws)
				kwPos[k] = ki
				kws = append(kws, k)
				s.kwRules = append(s.kwRules, nil)
			}
			if n := len(s.kwRules[ki]); n == 0 || s.kwRules[ki][n-1] != ri {
				s.kwRules[ki] = append(s.kwRules[ki], ri)
			}
		}
	}
	s.index = newKeywordIndex(kws)
	s.digest = s.computeDigest()
	return s, nil
}

func (s *Scanner) computeDigest() string {
	h := sha256.New()
	fmt.Fprintf(h, "show=%t max=%d decode=%t depth=%d\n", s.showSecrets, s.maxFileSize, !s.noDecode, maxDecodeDepth)
	for _, r := range s.rules {
		fmt.Fprintf(h, "r %s %s %d %q %v %t %d %v %v %g %d %t\n", r.ID, r.Title, r.Severity, r.Regex, r.Keywords,
			r.Multiline, r.Lookbehind, r.Requires, r.Path, r.MinEntropy, r.MinLength*1000000+r.MaxLength, r.Placeholders)
	}
	for _, a := range s.allow {
		fmt.Fprintf(h, "a %s %v %v\n", a.ID, a.Regex, a.Path)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// Rules returns the scanner's rules (for documentation and listing).
func (s *Scanner) Rules() []Rule {
	out := make([]Rule, len(s.rules))
	for i, r := range s.rules {
		out[i] = *r
	}
	return out
}

// IsBinary reports whether content looks binary: a NUL byte in its first
// 8 KiB. Binary files are not scanned (a DER or PKCS#12 key is therefore
// not detected; PEM keys, the common form in images, are text).
func IsBinary(content []byte) bool {
	n := len(content)
	if n > binarySniffLen {
		n = binarySniffLen
	}
	return bytes.IndexByte(content[:n], 0) >= 0
}

// span is a half-open byte range.
type span struct{ start, end int }

// candidate is a match before it becomes a finding.
type candidate struct {
	rule         int
	secret       span
	match        span
	startLine    int
	endLine      int
	secretString string
}

// Scan returns the secrets found in content, which came from path (used
// for rule path filters, allow rules and the findings' Location.Path).
// Content is scanned as given: callers skip binary files (IsBinary).
//
// Encoded values (base64, hex, percent-encoding) are decoded and scanned
// again, and Kubernetes Secret objects reported, unless the Scanner was
// built WithDecoding(false); such findings say how they were encoded
// (Location.Encoding) and where in a YAML/JSON file they are (KeyPath).
func (s *Scanner) Scan(path string, content []byte) []model.Finding {
	cands := s.scan(path, content)
	out := make([]model.Finding, 0, len(cands))
	for _, c := range cands {
		out = append(out, s.toFinding(c, model.Location{Path: path, StartLine: c.startLine, EndLine: c.endLine}))
	}
	if !s.noDecode {
		out = append(out, s.deep(path, content, model.Location{Path: path}, true, cands)...)
	}
	if len(out) > maxFindingsPerFile {
		out = out[:maxFindingsPerFile]
	}
	return out
}

// ScanText scans a short text that is not a file (an environment variable,
// a history entry); the findings' Location.Config is set to field and
// line numbers are omitted.
func (s *Scanner) ScanText(field, text string) []model.Finding {
	cands := s.scan("", []byte(text))
	out := make([]model.Finding, 0, len(cands))
	seen := map[string]bool{}
	for _, c := range cands {
		key := s.rules[c.rule].ID + "\x00" + c.secretString
		if seen[key] {
			continue
		}
		seen[key] = true
		f := s.toFinding(c, model.Location{Config: field})
		f.Controls = append(f.Controls, controlCISDocker410)
		out = append(out, f)
	}
	if !s.noDecode {
		for _, f := range s.deep("", []byte(text), model.Location{Config: field}, false, cands) {
			f.Controls = append(f.Controls, controlCISDocker410)
			out = append(out, f)
		}
	}
	return out
}

func (s *Scanner) scan(path string, content []byte) []candidate {
	if len(content) == 0 {
		return nil
	}
	// eligible caches, per rule, whether its Path and Requires conditions
	// hold for this file: 0 unknown, 1 yes, 2 no.
	eligible := make([]uint8, len(s.rules))
	ok := func(ri int) bool {
		switch eligible[ri] {
		case 1:
			return true
		case 2:
			return false
		}
		r := s.rules[ri]
		e := (r.Path == nil || r.Path.MatchString(path)) && (r.Requires == nil || r.Requires.Match(content))
		eligible[ri] = 2
		if e {
			eligible[ri] = 1
		}
		return e
	}

	var cands []candidate
	windows := make([][]span, len(s.rules))
	whole := make([]bool, len(s.rules))
	doneTo := make([]int, len(s.rules)) // anchored rules: end of the last match
	s.index.scan(content, func(kw, off int) {
		for _, ri := range s.kwRules[kw] {
			r := s.rules[ri]
			switch {
			case whole[ri]:
			case r.Multiline:
				whole[ri] = ok(ri)
			case r.anchored != nil:
				if off < doneTo[ri] || r.literal != nil && !bytes.HasPrefix(content[off:], r.literal) {
					continue
				}
				end := lineEnd(content, off)
				if r.Assignment && !bytes.ContainsAny(content[off:min(end, off+assignmentReach)], "=:") {
					continue
				}
				if !ok(ri) {
					continue
				}
				var m []int
				cands, m = s.runRegex(cands, ri, r.anchored, path, content, off, end, 1)
				if m != nil {
					doneTo[ri] = off + m[1]
				}
			default:
				ws := windows[ri]
				if n := len(ws); n > 0 && off < ws[n-1].end {
					continue // already inside this rule's last window
				}
				if r.Assignment && !bytes.ContainsAny(content[off:lineEnd(content, off)], "=:") {
					continue
				}
				if !ok(ri) {
					continue
				}
				start := bytes.LastIndexByte(content[:off], '\n') + 1
				if r.Lookbehind > 0 && off-r.Lookbehind > start {
					start = off - r.Lookbehind
				}
				windows[ri] = append(ws, span{start, lineEnd(content, off)})
			}
		}
	})
	for _, ri := range s.noKeyword {
		whole[ri] = ok(ri)
	}
	// Line windows and whole-file rules.
	for ri, r := range s.rules {
		if whole[ri] {
			cands, _ = s.runRegex(cands, ri, r.Regex, path, content, 0, len(content), maxMatchesPerRun)
			continue
		}
		for _, w := range windows[ri] {
			cands, _ = s.runRegex(cands, ri, r.Regex, path, content, w.start, w.end, maxMatchesPerRun)
		}
	}
	if len(cands) == 0 {
		return nil
	}
	cands = dedupe(cands)
	if len(cands) > maxFindingsPerFile {
		cands = cands[:maxFindingsPerFile]
	}
	// Line numbers, counted incrementally over offset-sorted candidates.
	line, pos := 1, 0
	for i := range cands {
		c := &cands[i]
		line += bytes.Count(content[pos:c.secret.start], []byte{'\n'})
		pos = c.secret.start
		c.startLine = line
		c.endLine = line + bytes.Count(content[c.secret.start:c.secret.end], []byte{'\n'})
	}
	return cands
}

// maxLineSpan bounds how far past a keyword a single-line rule looks for
// the end of its match: without it, thousands of keywords on one
// megabyte-long minified line would each scan to the line's end. No
// single-line secret format is longer.
const maxLineSpan = 8 << 10

// lineEnd returns the end of the line holding off, at most maxLineSpan
// bytes after off.
func lineEnd(content []byte, off int) int {
	lim := min(len(content), off+maxLineSpan)
	if i := bytes.IndexByte(content[off:lim], '\n'); i >= 0 {
		return off + i
	}
	return lim
}

// runRegex runs re (rule ri's expression or its anchored form) on
// content[start:end], appends accepted candidates, and returns the last
// match's submatch indexes relative to start (nil when none).
func (s *Scanner) runRegex(cands []candidate, ri int, re *regexp.Regexp, path string, content []byte, start, end, max int) ([]candidate, []int) {
	r := s.rules[ri]
	region := content[start:end]
	var last []int
	var ms [][]int
	if max == 1 {
		if m := re.FindSubmatchIndex(region); m != nil {
			ms = [][]int{m}
		}
	} else {
		ms = re.FindAllSubmatchIndex(region, max)
	}
	for _, m := range ms {
		last = m
		ss, se := r.secretSpan(m)
		sec := region[ss:se]
		if gluedLeft(content, start+ss) {
			continue
		}
		if !s.accept(r, sec, region[m[0]:m[1]], path) {
			continue
		}
		cands = append(cands, candidate{
			rule:         ri,
			secret:       span{start + ss, start + se},
			match:        span{start + m[0], start + m[1]},
			secretString: string(sec),
		})
	}
	return cands, last
}

// accept applies the rule's value tests and the allow rules to a secret.
func (s *Scanner) accept(r *Rule, sec, match []byte, path string) bool {
	if len(sec) == 0 || len(sec) < r.MinLength || r.MaxLength > 0 && len(sec) > r.MaxLength {
		return false
	}
	if r.MinEntropy > 0 && shannonEntropy(sec) < r.MinEntropy {
		return false
	}
	// Vendors' documentation keys (AKIAIOSFODNN7EXAMPLE ...) say EXAMPLE.
	if bytes.Contains(bytes.ToLower(sec), []byte("example")) {
		return false
	}
	if r.Placeholders && (looksLikePlaceholder(sec) || encodedPlaceholder(sec)) {
		return false
	}
	for _, a := range s.allow {
		if a.allows(path, sec, match) {
			return false
		}
	}
	return true
}

// dedupe sorts candidates by offset and drops a candidate whose secret lies
// inside another's (a private key inside a GCP key file, a GitHub token
// inside a generic "token=" assignment): the rule listed first wins on equal
// spans, the wider span wins otherwise.
func dedupe(c []candidate) []candidate {
	sort.SliceStable(c, func(i, j int) bool {
		if c[i].secret.start != c[j].secret.start {
			return c[i].secret.start < c[j].secret.start
		}
		if c[i].secret.end != c[j].secret.end {
			return c[i].secret.end > c[j].secret.end
		}
		return c[i].rule < c[j].rule
	})
	out := c[:0]
	maxEnd := -1
	for _, x := range c {
		if x.secret.end <= maxEnd {
			continue // contained in an earlier (wider or equal, preferred) span
		}
		out = append(out, x)
		maxEnd = x.secret.end
	}
	return out
}

func (s *Scanner) toFinding(c candidate, loc model.Location) model.Finding {
	r := s.rules[c.rule]
	ev := Redact(c.secretString)
	if s.showSecrets {
		ev = c.secretString
	}
	f := model.Finding{
		Kind:        model.KindSecret,
		ID:          r.ID,
		Title:       r.Title,
		Severity:    r.Severity,
		Location:    loc,
		Category:    r.Category,
		Description: r.Description,
		Remediation: r.Remediation,
		Evidence:    ev,
		Controls:    []string{controlEmbeddedSecrets},
	}
	if f.Remediation == "" {
		f.Remediation = defaultRemediation
	}
	if isDockerfile(loc.Path) {
		f.Controls = append(f.Controls, controlCISDocker410)
	}
	return f
}

const defaultRemediation = "Remove the secret from the image and revoke it; pass secrets at run time " +
	"(orchestrator secrets, mounted files) or at build time with BuildKit secret mounts " +
	"(RUN --mount=type=secret), never in layers, ENV or build arguments."

// isDockerfile reports whether path names a Dockerfile or Containerfile.
func isDockerfile(path string) bool {
	base := path[strings.LastIndexByte(path, '/')+1:]
	lb := strings.ToLower(base)
	return lb == "dockerfile" || lb == "containerfile" || strings.HasSuffix(lb, ".dockerfile") ||
		strings.HasPrefix(lb, "dockerfile.") || strings.HasSuffix(lb, ".containerfile")
}

// gluedLeft reports whether the secret starting at off directly follows a
// letter or digit: "XAKIA..." is part of a longer word, not an access key.
func gluedLeft(content []byte, off int) bool {
	if off == 0 {
		return false
	}
	c := content[off-1]
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

// encodedPlaceholder reports whether sec is base64 of a placeholder: a
// Kubernetes Secret's "password: Y2hhbmdlbWU=" is "changeme".
func encodedPlaceholder(sec []byte) bool {
	if len(sec) < 8 || len(sec)%4 != 0 {
		return false
	}
	dec, err := base64.StdEncoding.DecodeString(string(sec))
	return err == nil && len(dec) > 0 && utf8.Valid(dec) && placeholderValue(bytes.TrimSpace(dec))
}
