package integrity

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"path"
	"strings"

	"go.yaml.in/yaml/v3"
)

// RuleSet says which paths are monitored and which of their attributes
// are compared. docs/host-integrity.md documents the format; DefaultRules
// is the embedded set for a Linux container node.
type RuleSet struct {
	// Exclude applies to every rule (patterns as in Rule.Exclude).
	Exclude []string `yaml:"exclude"`
	Rules   []Rule   `yaml:"rules"`
}

// Rule is one group of monitored paths.
type Rule struct {
	// Name identifies the rule in events; unique, 1-64 of [a-z0-9._-].
	Name     string   `yaml:"name"`
	Severity Severity `yaml:"severity"`
	// Paths are absolute. A directory is walked (see Recursive); a path
	// with glob characters (*?[) is expanded at each scan
	// ("/home/*/.ssh/authorized_keys"). Missing paths are not an error: a
	// path that appears later is reported as added.
	Paths []string `yaml:"paths"`
	// Recursive walks directories to any depth (the default); false keeps
	// to the directory and its direct entries.
	Recursive *bool `yaml:"recursive"`
	// Exclude skips paths: a pattern with a "/" is matched (path.Match)
	// against the absolute path and excludes a directory's whole subtree;
	// a pattern without "/" is matched against the base name ("*.log").
	Exclude []string `yaml:"exclude"`
	// Checks are the attributes compared: names from ParseCheck ("sha256",
	// "mode" ...), "all", and "-name" to remove one ("all", "-mtime").
	// Empty means all.
	Checks []string `yaml:"checks"`

	checks Check // parsed
}

// Limits of a rule set.
const (
	maxRules        = 256
	maxRulePaths    = 256
	maxRulePatterns = 256
	maxRuleNameLen  = 64
)

//go:embed default_rules.yaml
var defaultRulesYAML []byte

// DefaultRules returns the embedded rule set for a Linux container node:
// binaries, libraries, /etc, kubelet and container runtime configuration,
// SSH, cron and systemd units, with logs and caches excluded.
// It is parsed on each call, so callers may change their copy.
func DefaultRules() (*RuleSet, error) {
	rs, err := ParseRules(defaultRulesYAML)
	if err != nil {
		return nil, fmt.Errorf("embedded default rules: %w", err)
	}
	return rs, nil
}

// DefaultRulesYAML returns the text of the embedded default rule set.
func DefaultRulesYAML() []byte { return bytes.Clone(defaultRulesYAML) }

// ParseRules reads a YAML rule set, refusing unknown fields, and validates it.
func ParseRules(data []byte) (*RuleSet, error) {
	if len(data) > 1<<20 {
		return nil, fmt.Errorf("%w: rule set of %d bytes (at most 1 MiB)", ErrInvalidRules, len(data))
	}
	var rs RuleSet
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&rs); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidRules, err)
	}
	if err := rs.Validate(); err != nil {
		return nil, err
	}
	return &rs, nil
}

// Validate checks the rule set and parses its checks; every problem is
// reported.
func (rs *RuleSet) Validate() error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: "+format, append([]any{ErrInvalidRules}, args...)...))
	}
	if len(rs.Rules) == 0 {
		bad("no rules")
	}
	if len(rs.Rules) > maxRules {
		bad("%d rules (at most %d)", len(rs.Rules), maxRules)
		return errors.Join(errs...)
	}
	checkPatterns(bad, "exclude", rs.Exclude)
	names := map[string]bool{}
	for i := range rs.Rules {
		r := &rs.Rules[i]
		label := fmt.Sprintf("rule %d %q", i, r.Name)
		if !validRuleName(r.Name) {
			bad("%s: name must be 1-%d characters of a-z 0-9 . _ -", label, maxRuleNameLen)
		}
		if names[r.Name] {
			bad("%s: duplicate name", label)
		}
		names[r.Name] = true
		switch r.Severity {
		case SeverityCritical, SeverityHigh, SeverityMedium, SeverityLow:
		case "":
			r.Severity = SeverityMedium
		default:
			bad("%s: severity %q is not critical, high, medium or low", label, r.Severity)
		}
		if len(r.Paths) == 0 || len(r.Paths) > maxRulePaths {
			bad("%s: needs 1-%d paths", label, maxRulePaths)
		}
		for j, p := range r.Paths {
			if err := checkRulePath(p); err != nil {
				bad("%s: paths[%d] %q: %v", label, j, p, err)
			}
		}
		checkPatterns(bad, label+": exclude", r.Exclude)
		c, err := parseChecks(r.Checks)
		if err != nil {
			bad("%s: checks: %v", label, err)
		}
		r.checks = c
	}
	return errors.Join(errs...)
}

func validRuleName(s string) bool {
	if s == "" || len(s) > maxRuleNameLen {
		return false
	}
	for _, c := range []byte(s) {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

func checkRulePath(p string) error {
	switch {
	case !strings.HasPrefix(p, "/"):
		return errors.New("not absolute")
	case path.Clean(p) != p:
		return fmt.Errorf("not clean (write %s)", path.Clean(p))
	case strings.ContainsRune(p, 0):
		return errors.New("contains NUL")
	}
	if _, err := path.Match(p, ""); err != nil {
		return errors.New("bad glob pattern")
	}
	return nil
}

func checkPatterns(bad func(string, ...any), label string, ps []string) {
	if len(ps) > maxRulePatterns {
		bad("%s: %d patterns (at most %d)", label, len(ps), maxRulePatterns)
		return
	}
	for i, p := range ps {
		if p == "" {
			bad("%s[%d]: empty pattern", label, i)
			continue
		}
		if _, err := path.Match(p, ""); err != nil {
			bad("%s[%d] %q: bad glob pattern", label, i, p)
		}
		if strings.Contains(p, "/") && !strings.HasPrefix(p, "/") {
			bad("%s[%d] %q: a pattern with / must be absolute", label, i, p)
		}
	}
}

func parseChecks(names []string) (Check, error) {
	if len(names) == 0 {
		return CheckAll, nil
	}
	var c Check
	for _, n := range names {
		remove := strings.HasPrefix(n, "-")
		x, ok := ParseCheck(strings.TrimPrefix(n, "-"))
		if !ok {
			return 0, fmt.Errorf("unknown attribute %q (want all, type, mode, uid, gid, size, mtime, ctime, inode, nlink, sha256, link, xattrs, acl, caps, or -name)", n)
		}
		if remove {
			c &^= x
		} else {
			c |= x
		}
	}
	if c == 0 {
		return 0, errors.New("no attribute left to compare")
	}
	return c, nil
}

// recursive reports whether the rule walks directories to any depth.
func (r *Rule) recursive() bool { return r.Recursive == nil || *r.Recursive }

// hasGlob reports whether p has glob characters.
func hasGlob(p string) bool { return strings.ContainsAny(p, "*?[") }

// excluded reports whether p is excluded by the rule set's or rule's
// patterns (p itself; ancestors are the caller's business: walks prune at
// excluded directories).
func (rs *RuleSet) excluded(rule int, p string) bool {
	base := path.Base(p)
	match := func(ps []string) bool {
		for _, pat := range ps {
			target := base
			if strings.Contains(pat, "/") {
				target = p
			}
			if ok, _ := path.Match(pat, target); ok {
				return true
			}
		}
		return false
	}
	return match(rs.Exclude) || (rule >= 0 && rule < len(rs.Rules) && match(rs.Rules[rule].Exclude))
}

// excludedTree reports whether p or one of its ancestors below the root
// is excluded.
func (rs *RuleSet) excludedTree(rule int, root, p string) bool {
	for q := p; ; q = path.Dir(q) {
		if rs.excluded(rule, q) {
			return true
		}
		if q == root || q == "/" || len(q) <= len(root) {
			return false
		}
	}
}

// ruleIndex returns the index of the rule named name, -1 when none.
func (rs *RuleSet) ruleIndex(name string) int {
	for i := range rs.Rules {
		if rs.Rules[i].Name == name {
			return i
		}
	}
	return -1
}

// names returns the rule names in order.
func (rs *RuleSet) names() []string {
	out := make([]string, len(rs.Rules))
	for i := range rs.Rules {
		out[i] = rs.Rules[i].Name
	}
	return out
}
