// Package composer orders Packagist (Composer) versions the way
// composer/semver does: each version is normalised by
// VersionParser::normalize ("v1.2" → "1.2.0.0", "1.0-beta2" →
// "1.0.0.0-beta2", "1.0.x-dev" → "1.0.9999999.9999999-dev", "2010-01-02"
// → "2010.01.02") and the normalised forms are ordered by PHP's
// version_compare (dev < alpha = a < beta = b < RC = rc < release <
// patch = pl = p; any other word sorts lowest).
//
// Named branches ("dev-master", "dev-feature") have no order in Composer
// (Constraint::versionCompare refuses to compare them); Parse rejects them.
//
// No maintained Go library implements this pair, hence this one.
package composer

import (
	"errors"
	"fmt"
	"regexp"
	"strings"

	"mamori/internal/version/internal/digits"
)

var (
	// ErrInvalid is wrapped by every parse error.
	ErrInvalid = errors.New("composer: invalid version")
	// ErrBranch is returned for dev branches, which Composer does not order.
	ErrBranch = errors.New("composer: branch versions cannot be ordered")
)

// maxLen bounds a version handed to the regular expressions.
const maxLen = 256

// modifier is VersionParser::$modifierRegex.
const modifier = `[._-]?(?:(stable|beta|b|RC|alpha|a|patch|pl|p)((?:[.-]?\d+)*)?)?([.-]?dev)?`

var (
	aliasRe     = regexp.MustCompile(`^([^,\s]+) +as +([^,\s]+)$`)
	stabilityRe = regexp.MustCompile(`(?i)@(?:stable|RC|beta|alpha|dev)$`)
	metadataRe  = regexp.MustCompile(`^([^,\s+]+)\+[^\s]+$`)
	classicalRe = regexp.MustCompile(`(?i)^v?(\d{1,5})(\.\d+)?(\.\d+)?(\.\d+)?` + modifier + `$`)
	dateRe      = regexp.MustCompile(`(?i)^v?(\d{4}(?:[.:-]?\d{2}){1,6}(?:[.:-]?\d{1,3}){0,2})` + modifier + `$`)
	devRe       = regexp.MustCompile(`(?i)^(.*?)[.-]?dev$`)
	branchRe    = regexp.MustCompile(`(?i)^v?(\d+)(\.(?:\d+|[xX*]))?(\.(?:\d+|[xX*]))?(\.(?:\d+|[xX*]))?$`)
	nonDigitRe  = regexp.MustCompile(`\D`)
)

// Version is a normalised Composer version split into version_compare parts.
type Version struct {
	raw        string
	normalized string
	parts      []string
}

// Parse normalises v as VersionParser::normalize does.
func Parse(v string) (Version, error) {
	if len(v) > maxLen {
		return Version{}, fmt.Errorf("%w: longer than %d bytes", ErrInvalid, maxLen)
	}
	n, err := Normalize(v)
	if err != nil {
		return Version{}, err
	}
	return Version{raw: v, normalized: n, parts: canonicalize(n)}, nil
}

// Normalize returns Composer's normalised form of v.
func Normalize(v string) (string, error) {
	s := strings.TrimSpace(v)
	if s == "" {
		return "", fmt.Errorf("%w: empty", ErrInvalid)
	}
	if m := aliasRe.FindStringSubmatch(s); m != nil {
		s = m[1]
	}
	if m := stabilityRe.FindString(s); m != "" {
		s = s[:len(s)-len(m)]
	}
	switch s {
	case "master", "trunk", "default":
		s = "dev-" + s
	}
	if len(s) >= 4 && strings.EqualFold(s[:4], "dev-") {
		return "", fmt.Errorf("%w: %q", ErrBranch, v)
	}
	if m := metadataRe.FindStringSubmatch(s); m != nil {
		s = m[1]
	}
	var m []string
	var out string
	if m = classicalRe.FindStringSubmatch(s); m != nil {
		out = m[1] + orZero(m[2]) + orZero(m[3]) + orZero(m[4])
		m = m[5:]
	} else if m = dateRe.FindStringSubmatch(s); m != nil {
		out = nonDigitRe.ReplaceAllString(m[1], ".")
		m = m[2:]
	}
	if m != nil {
		// m[0] stability, m[1] its number, m[2] "-dev".
		if m[0] != "" {
			if m[0] == "stable" {
				return out, nil
			}
			out += "-" + expandStability(m[0]) + strings.TrimLeft(m[1], ".-")
		}
		if m[2] != "" {
			out += "-dev"
		}
		return out, nil
	}
	if m := devRe.FindStringSubmatch(s); m != nil {
		if b := branchRe.FindStringSubmatch(strings.TrimSpace(m[1])); b != nil {
			var sb strings.Builder
			for _, p := range b[1:5] {
				if p == "" {
					p = ".x"
				}
				p = strings.NewReplacer("*", "x", "X", "x").Replace(p)
				sb.WriteString(p)
			}
			return strings.ReplaceAll(sb.String(), "x", "9999999") + "-dev", nil
		}
		return "", fmt.Errorf("%w: %q", ErrBranch, v)
	}
	return "", fmt.Errorf("%w: %q", ErrInvalid, v)
}

func orZero(p string) string {
	if p == "" {
		return ".0"
	}
	return p
}

func expandStability(s string) string {
	switch strings.ToLower(s) {
	case "a":
		return "alpha"
	case "b":
		return "beta"
	case "p", "pl":
		return "patch"
	case "rc":
		return "RC"
	}
	return strings.ToLower(s)
}

// canonicalize splits as PHP's php_canonicalize_version does: '-', '_', '+'
// and other non-alphanumerics separate, and so does every change between
// digits and non-digits.
func canonicalize(s string) []string {
	var parts []string
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case digits.IsDigit(c):
			n := digits.Span(s[i:])
			parts = append(parts, s[i:i+n])
			i += n
		case isAlpha(c):
			j := i
			for j < len(s) && isAlpha(s[j]) {
				j++
			}
			parts = append(parts, s[i:j])
			i = j
		default:
			i++
		}
	}
	return parts
}

func isAlpha(c byte) bool { return ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z') }

// specialForm is PHP's compare_special_version_forms table, matched by
// prefix in this order; "#" stands for a number. Unknown words rank lowest.
func specialForm(s string) int {
	for _, f := range [...]struct {
		name string
		rank int
	}{{"dev", 0}, {"alpha", 1}, {"a", 1}, {"beta", 2}, {"b", 2}, {"RC", 3}, {"rc", 3}, {"#", 4}, {"pl", 5}, {"p", 5}} {
		if strings.HasPrefix(s, f.name) {
			return f.rank
		}
	}
	return -6
}

func cmpForms(a, b string) int {
	fa, fb := specialForm(a), specialForm(b)
	switch {
	case fa < fb:
		return -1
	case fa > fb:
		return 1
	}
	return 0
}

const numberForm = "#N#"

// String returns the version as parsed.
func (v Version) String() string { return v.raw }

// Normalized returns Composer's normalised form.
func (v Version) Normalized() string { return v.normalized }

// Compare returns -1, 0 or +1 as v sorts before, with or after w, as PHP's
// version_compare on the normalised forms.
func (v Version) Compare(w Version) int {
	a, b := v.parts, w.parts
	i := 0
	for ; i < len(a) && i < len(b); i++ {
		an, bn := digits.IsDigit(a[i][0]), digits.IsDigit(b[i][0])
		var c int
		switch {
		case an && bn:
			c = digits.Compare(a[i], b[i])
		case !an && !bn:
			c = cmpForms(a[i], b[i])
		case an:
			c = cmpForms(numberForm, b[i])
		default:
			c = cmpForms(a[i], numberForm)
		}
		if c != 0 {
			return c
		}
	}
	switch {
	case i < len(a):
		if digits.IsDigit(a[i][0]) {
			return 1
		}
		return cmpForms(a[i], numberForm)
	case i < len(b):
		if digits.IsDigit(b[i][0]) {
			return -1
		}
		return cmpForms(numberForm, b[i])
	}
	return 0
}

// Compare parses and orders a and b.
func Compare(a, b string) (int, error) {
	va, err := Parse(a)
	if err != nil {
		return 0, err
	}
	vb, err := Parse(b)
	if err != nil {
		return 0, err
	}
	return va.Compare(vb), nil
}
