package secret

import (
	"fmt"
	"io"
	"os"
	"regexp"

	"sigs.k8s.io/yaml"

	"mamori/internal/model"
)

// maxConfigSize caps a rules file read into memory (1 MiB holds thousands of rules).
const maxConfigSize = 1 << 20

// Config is the YAML configuration of custom secret rules:
//
//	disable-builtin-rules: false      # true drops every built-in rule
//	disable-rules: [jwt, generic-secret]
//	disable-allow-rules: [jwt-io-example]
//	rules:
//	  - id: acme-token
//	    title: ACME API token
//	    category: ACME
//	    severity: high
//	    regex: 'acme_[0-9a-f]{32}'
//	    keywords: [acme_]
//	    path: '\.env$'           # optional: only files whose path matches
//	    secret-group: secret     # optional named group holding the secret
//	    multiline: false
//	    entropy: 3.0             # optional minimum Shannon entropy
//	allow-rules:
//	  - id: test-fixtures
//	    description: our test keys
//	    path: '^src/test/'
//	    regex: 'AKIA[0-9A-Z]{16}'   # matched against the secret and the match
type Config struct {
	DisableBuiltinRules bool          `json:"disable-builtin-rules,omitempty"`
	DisableRules        []string      `json:"disable-rules,omitempty"`
	DisableAllowRules   []string      `json:"disable-allow-rules,omitempty"`
	Rules               []ConfigRule  `json:"rules,omitempty"`
	AllowRules          []ConfigAllow `json:"allow-rules,omitempty"`
}

// ConfigRule is a custom rule in a Config.
type ConfigRule struct {
	ID          string   `json:"id"`
	Title       string   `json:"title,omitempty"`
	Category    string   `json:"category,omitempty"`
	Severity    string   `json:"severity,omitempty"`
	Regex       string   `json:"regex"`
	Keywords    []string `json:"keywords,omitempty"`
	Path        string   `json:"path,omitempty"`
	SecretGroup string   `json:"secret-group,omitempty"`
	Multiline   bool     `json:"multiline,omitempty"`
	Entropy     float64  `json:"entropy,omitempty"`
	Description string   `json:"description,omitempty"`
	Remediation string   `json:"remediation,omitempty"`
}

// ConfigAllow is an allow rule in a Config.
type ConfigAllow struct {
	ID          string `json:"id"`
	Description string `json:"description,omitempty"`
	Regex       string `json:"regex,omitempty"`
	Path        string `json:"path,omitempty"`
}

// LoadConfig reads a YAML (or JSON) rules file. Unknown fields are errors,
// so that a misspelt key does not silently disable a rule.
func LoadConfig(path string) (*Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%w: open %s: %w", ErrInvalidConfig, path, err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxConfigSize+1))
	if err != nil {
		return nil, fmt.Errorf("%w: read %s: %w", ErrInvalidConfig, path, err)
	}
	if len(b) > maxConfigSize {
		return nil, fmt.Errorf("%w: %s is larger than %d bytes", ErrInvalidConfig, path, maxConfigSize)
	}
	c, err := ParseConfig(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// ParseConfig parses a YAML (or JSON) rules document.
func ParseConfig(b []byte) (*Config, error) {
	var c Config
	if err := yaml.UnmarshalStrict(b, &c); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	return &c, nil
}

// apply returns the rule and allow-rule lists after the configuration's
// removals and additions; custom rules come after the built-ins.
func (c *Config) apply(rules []Rule, allow []*AllowRule) ([]Rule, []*AllowRule, error) {
	known := map[string]bool{}
	for _, r := range rules {
		known[r.ID] = true
	}
	for _, id := range c.DisableRules {
		if !known[id] {
			return nil, nil, fmt.Errorf("%w: disable-rules: no built-in rule %q", ErrInvalidConfig, id)
		}
	}
	var out []Rule
	if !c.DisableBuiltinRules {
		for _, r := range rules {
			if !contains(c.DisableRules, r.ID) {
				out = append(out, r)
			}
		}
	}
	for i, cr := range c.Rules {
		re, err := regexp.Compile(cr.Regex)
		if err != nil {
			return nil, nil, fmt.Errorf("%w: rules[%d] %q: regex: %w", ErrInvalidConfig, i, cr.ID, err)
		}
		r := Rule{
			ID: cr.ID, Title: cr.Title, Category: cr.Category, Regex: re,
			Keywords: append([]string(nil), cr.Keywords...), SecretGroup: cr.SecretGroup,
			Multiline: cr.Multiline, MinEntropy: cr.Entropy, Lookbehind: LineStart,
			Description: cr.Description, Remediation: cr.Remediation,
		}
		if r.Category == "" {
			r.Category = "Custom"
		}
		if cr.Severity != "" {
			sev, err := model.ParseSeverity(cr.Severity)
			if err != nil {
				return nil, nil, fmt.Errorf("%w: rules[%d] %q: %w", ErrInvalidConfig, i, cr.ID, err)
			}
			r.Severity = sev
		}
		if cr.Path != "" {
			if r.Path, err = regexp.Compile(cr.Path); err != nil {
				return nil, nil, fmt.Errorf("%w: rules[%d] %q: path: %w", ErrInvalidConfig, i, cr.ID, err)
			}
		}
		out = append(out, r)
	}
	var outAllow []*AllowRule
	for _, a := range allow {
		if !contains(c.DisableAllowRules, a.ID) {
			outAllow = append(outAllow, a)
		}
	}
	for i, ca := range c.AllowRules {
		a := &AllowRule{ID: ca.ID, Description: ca.Description}
		if ca.Regex == "" && ca.Path == "" {
			return nil, nil, fmt.Errorf("%w: allow-rules[%d] %q: needs regex or path", ErrInvalidConfig, i, ca.ID)
		}
		var err error
		if ca.Regex != "" {
			if a.Regex, err = regexp.Compile(ca.Regex); err != nil {
				return nil, nil, fmt.Errorf("%w: allow-rules[%d] %q: regex: %w", ErrInvalidConfig, i, ca.ID, err)
			}
		}
		if ca.Path != "" {
			if a.Path, err = regexp.Compile(ca.Path); err != nil {
				return nil, nil, fmt.Errorf("%w: allow-rules[%d] %q: path: %w", ErrInvalidConfig, i, ca.ID, err)
			}
		}
		outAllow = append(outAllow, a)
	}
	return out, outAllow, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
