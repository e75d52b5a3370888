// Package secret finds clear-text credentials (cloud keys, tokens, private
// keys, passwords) in file contents and in an image's configuration
// (NIST SP 800-190 §4.1.4 "Embedded clear text secrets", CIS Docker
// Benchmark 4.10).
//
// A Scanner holds compiled rules (the built-in set, optionally filtered and
// extended by a YAML configuration) and allow rules. Scanning is two-stage:
// a single pass over the bytes finds each rule's keywords
// case-insensitively (see keywords.go), and a rule's regular expression runs
// only on the lines that hold one of its keywords (or, for multi-line rules
// such as private keys, on the whole file once a keyword was seen). The raw
// secret never leaves the package unless the Scanner was built with
// WithShowSecrets: every finding's Evidence is redacted.
package secret

import (
	"errors"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"

	"mamori/internal/model"
)

// Sentinel errors.
var (
	// ErrInvalidRule is returned for a rule that cannot be compiled (bad
	// regular expression, missing id, keyword too short ...).
	ErrInvalidRule = errors.New("secret: invalid rule")
	// ErrInvalidConfig is returned for a configuration file that cannot be read.
	ErrInvalidConfig = errors.New("secret: invalid configuration")
)

// Controls every secret finding serves: NIST SP 800-190 §4.1.4.
const controlEmbeddedSecrets = "4.1.4"

// controlCISDocker410 is CIS Docker Benchmark 4.10 "Ensure secrets are not
// stored in Dockerfiles"; added to findings from an image's configuration
// (ENV, build arguments in history) and from Dockerfiles.
const controlCISDocker410 = "CIS-Docker-4.10"

// minKeywordLen is the shortest keyword accepted: a one-byte keyword would
// match nearly every file and defeat the prefilter.
const minKeywordLen = 2

// Rule is one secret detection rule.
type Rule struct {
	// ID is the stable rule identifier ("aws-access-key-id").
	ID       string
	Title    string
	Category string
	Severity model.Severity
	// Keywords are ASCII strings, matched case-insensitively; the regex only
	// runs near (or, for Multiline rules, in files with) one of them. A rule
	// without keywords runs on every file's whole content.
	Keywords []string
	// Regex finds the secret. The secret is the submatch named by
	// SecretGroup, else the first non-empty capture group, else the whole match.
	Regex       *regexp.Regexp
	SecretGroup string
	// Multiline rules run on the whole file (when a keyword is present);
	// the others run on each line holding a keyword.
	Multiline bool
	// Lookbehind says where a single-line rule's regex starts relative to a
	// keyword occurrence. 0 (the built-ins' default): the match starts at
	// the keyword, and the regex is tried once there, anchored — one short
	// attempt per occurrence instead of a scan of the line. N > 0: the match
	// may start up to N bytes before the keyword (a token whose keyword is
	// in its middle). LineStart (-1): anywhere on the keyword's line (the
	// default for custom rules, whose regexes we cannot vet).
	Lookbehind int
	// Assignment says the keyword is the key of an assignment: a rule is
	// only tried where an '=' or ':' follows the keyword within
	// assignmentReach bytes on its line (a cheap test that spares the regex
	// every keyword in prose or code that assigns nothing).
	Assignment bool
	// Requires, when set, must also match somewhere in the file (for
	// example `"type": "service_account"` for a GCP key file).
	Requires *regexp.Regexp
	// Path, when set, restricts the rule to files whose path matches.
	Path *regexp.Regexp
	// MinEntropy is the least Shannon entropy (bits per byte) the secret
	// must have; 0 disables the test.
	MinEntropy float64
	// MinLength and MaxLength bound the secret's length; 0 disables a
	// test. (Bounds are checked here rather than written as {m,n} in the
	// regex: large counted repetitions blow up the compiled program and
	// push Go's regexp from its backtracker onto the slower NFA.)
	MinLength int
	MaxLength int
	// Placeholders makes the rule drop secrets that look like placeholders
	// (changeme, xxx, ${VAR}, <password> ...): set on generic rules.
	Placeholders bool
	// Peers names the equivalent rules of gitleaks (v8.30) and trivy
	// (v0.74) as "gitleaks:<id>" and "trivy:<id>" (docs/checks.md).
	Peers []string
	// Description and Remediation are copied into findings.
	Description string
	Remediation string

	secretIdx int            // submatch index of SecretGroup, -1 when unnamed
	anchored  *regexp.Regexp // \A(?:Regex), for Lookbehind == 0
	literal   []byte         // case-sensitive literal prefix of Regex, tested before an anchored attempt
}

// assignmentReach is how far after a keyword an assignment operator is
// looked for ("AWS_SECRET_ACCESS_KEY_ID" = ..., "mailgun.private-key":).
const assignmentReach = 64

// LineStart is the Lookbehind of a rule whose match may start anywhere on
// the keyword's line.
const LineStart = -1

// compile validates r and resolves its secret group.
func (r *Rule) compile() error {
	if r.ID == "" {
		return fmt.Errorf("%w: rule without id", ErrInvalidRule)
	}
	if r.Regex == nil {
		return fmt.Errorf("%w: %s: no regex", ErrInvalidRule, r.ID)
	}
	for i, k := range r.Keywords {
		if len(k) < minKeywordLen {
			return fmt.Errorf("%w: %s: keyword %q shorter than %d bytes", ErrInvalidRule, r.ID, k, minKeywordLen)
		}
		for j := 0; j < len(k); j++ {
			if k[j] >= 0x80 {
				return fmt.Errorf("%w: %s: keyword %q is not ASCII", ErrInvalidRule, r.ID, k)
			}
		}
		r.Keywords[i] = strings.ToLower(k)
	}
	r.secretIdx = -1
	if r.SecretGroup != "" {
		r.secretIdx = r.Regex.SubexpIndex(r.SecretGroup)
		if r.secretIdx < 0 {
			return fmt.Errorf("%w: %s: regex has no group named %q", ErrInvalidRule, r.ID, r.SecretGroup)
		}
	}
	if r.Lookbehind < LineStart {
		return fmt.Errorf("%w: %s: lookbehind %d", ErrInvalidRule, r.ID, r.Lookbehind)
	}
	if r.Lookbehind == 0 && !r.Multiline && len(r.Keywords) > 0 {
		a, err := regexp.Compile(`\A(?:` + r.Regex.String() + `)`)
		if err != nil {
			return fmt.Errorf("%w: %s: anchor: %w", ErrInvalidRule, r.ID, err)
		}
		r.anchored = a
		if lit, _ := r.Regex.LiteralPrefix(); lit != "" {
			r.literal = []byte(lit)
		}
	}
	if r.Severity == model.SeverityUnknown {
		r.Severity = model.SeverityMedium
	}
	if r.Title == "" {
		r.Title = r.ID
	}
	return nil
}

// secretSpan picks the secret's byte span out of a submatch index slice.
func (r *Rule) secretSpan(m []int) (int, int) {
	if r.secretIdx > 0 && 2*r.secretIdx+1 < len(m) && m[2*r.secretIdx] >= 0 {
		return m[2*r.secretIdx], m[2*r.secretIdx+1]
	}
	for g := 1; 2*g+1 < len(m); g++ {
		if m[2*g] >= 0 && m[2*g+1] > m[2*g] {
			return m[2*g], m[2*g+1]
		}
	}
	return m[0], m[1]
}

// AllowRule suppresses findings. When both Regex and Path are set both must
// match; a rule with only Path suppresses every finding in matching files;
// one with only Regex suppresses any secret (or whole match) it matches.
type AllowRule struct {
	ID          string
	Description string
	Regex       *regexp.Regexp
	Path        *regexp.Regexp
}

func (a *AllowRule) allows(path string, secret, match []byte) bool {
	if a.Path != nil && !a.Path.MatchString(path) {
		return false
	}
	if a.Regex != nil {
		return a.Regex.Match(secret) || a.Regex.Match(match)
	}
	return a.Path != nil
}

// shannonEntropy returns the entropy of b in bits per byte.
func shannonEntropy(b []byte) float64 {
	if len(b) == 0 {
		return 0
	}
	var counts [256]int
	for _, c := range b {
		counts[c]++
	}
	n := float64(len(b))
	var h float64
	for _, c := range counts {
		if c == 0 {
			continue
		}
		p := float64(c) / n
		h -= p * math.Log2(p)
	}
	return h
}

// placeholderWords are lower-case fragments that mark a value as a
// placeholder or a reference, not a secret.
var placeholderWords = []string{
	"changeme", "change_me", "change-me", "example", "xxxx", "placeholder",
	"dummy", "sample", "your_", "your-", "yourpass", "insert", "replace",
	"redacted", "secret123", "password123", "passw0rd", "p@ssw0rd", "******",
	"notasecret", "not_a_secret", "fake", "todo", "fixme", "${", "{{", "}}",
	"$(", "%(", "#{", "<", ">", "process.env", "os.environ", "getenv",
	"env[", "environ[", "<nil>", "undefined", "null", "none", "true", "false",
	"abcdef", "123456", "qwerty", "password", "secret", "token",
}

// looksLikePlaceholder reports whether v is a placeholder, a variable
// reference or program text rather than a literal secret.
func looksLikePlaceholder(v []byte) bool {
	lv := strings.ToLower(string(v))
	for _, w := range placeholderWords {
		if strings.Contains(lv, w) {
			return true
		}
	}
	if lv[0] == '$' || lv[0] == '%' || lv[0] == '@' || lv[0] == '/' || lv[0] == '.' {
		return true
	}
	if identifierRE.Match(v) {
		return true
	}
	// A URL is an endpoint (token_url = "https://..."); credentials inside
	// URLs are the url-credentials rule's job.
	if strings.Contains(lv, "://") {
		return true
	}
	// A run of one character ("aaaaaaaa", "00000000").
	same := true
	for i := 1; i < len(v); i++ {
		if v[i] != v[0] {
			same = false
			break
		}
	}
	return same
}

// identifierRE matches program identifiers and dotted/called expressions
// (self.password, config.get_token(), settings.API_KEY, my-secret-name):
// these are code or names, not secret values. A value with digits mixed in
// the middle of letters ("s3cr3tValue") does not look like an identifier.
var identifierRE = regexp.MustCompile(`^(?:[A-Za-z_][A-Za-z_]*(?:(?:[.-]|::?|->)[A-Za-z_][A-Za-z_]*)*(?:\(\))?|[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+)$`)

// Redact returns the evidence shown for a secret: a short prefix, "****"
// and the length. The prefix is at most 4 bytes and at most a fifth of the
// secret, so short secrets show little or nothing.
func Redact(secret string) string {
	n := len(secret)
	p := n / 5
	if p > 4 {
		p = 4
	}
	prefix := secret[:p]
	// Never cut inside a multi-byte character or show a line break.
	prefix = strings.ToValidUTF8(prefix, "")
	prefix = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return -1
		}
		return r
	}, prefix)
	return prefix + "****(" + strconv.Itoa(n) + " chars)"
}
