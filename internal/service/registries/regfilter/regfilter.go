// Package regfilter is the syntax of a registry's repository and tag
// filters, shared by the server's API, its scheduler and the console form.
// The store keeps both filters as the text below (store.Registry's
// RepositoryFilter and TagFilter).
//
// Repository filter: comma-separated path.Match globs ("team-a/*, base/*");
// empty selects every repository. "*" does not cross "/": "team/*" matches
// "team/app", not "team/a/b" (write "team/*/*" for that).
//
// Tag filter: comma-separated terms, each one of
//   - a glob ("v*", "latest", "1.2?"): the tag must match one of the globs
//     (no glob: every tag);
//   - "latest:N": keep only the N highest remaining tags in version order
//     (numbers compared as numbers: v1.10 > v1.9; registries do not give push
//     times in tag lists, so version order is the cheap, predictable order);
//   - "regex:EXPR" (Go RE2 syntax), which must be the last term: EXPR is the
//     rest of the text, commas included; the tag must also match it.
//
// Example: "v*, latest:5, regex:^v[0-9]+(\.[0-9]+){1,2}$".
package regfilter

import (
	"errors"
	"fmt"
	"path"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// Limits, each with its reason.
const (
	// MaxPatterns: a handful of globs is normal; hundreds is a mistake.
	MaxPatterns = 100
	// MaxPatternLen bounds one glob or the regex (RE2 runs in linear time,
	// so only the size needs a bound).
	MaxPatternLen = 1024
	// MaxLatest bounds "latest:N".
	MaxLatest = 1000
)

// ErrInvalid: a filter that does not parse.
var ErrInvalid = errors.New("regfilter: invalid filter")

// Tags is a parsed tag filter.
type Tags struct {
	// Include are globs; a tag must match one (none: every tag).
	Include []string `json:"include,omitempty"`
	// Regex, when set, must match too.
	Regex string `json:"regex,omitempty"`
	// Latest > 0 keeps only the Latest highest tags in version order.
	Latest int `json:"latest,omitempty"`

	re *regexp.Regexp
}

// ParseRepositories parses a repository filter.
func ParseRepositories(s string) ([]string, error) {
	globs := splitTerms(s)
	if err := checkGlobs("repository filter", globs); err != nil {
		return nil, err
	}
	return globs, nil
}

// FormatRepositories is the text form of a repository filter.
func FormatRepositories(globs []string) string { return strings.Join(globs, ", ") }

// ParseTags parses a tag filter.
func ParseTags(s string) (Tags, error) {
	var t Tags
	rest := strings.TrimSpace(s)
	if i := strings.Index(rest, "regex:"); i >= 0 {
		if i > 0 && !strings.HasSuffix(strings.TrimSpace(rest[:i]), ",") {
			return t, fmt.Errorf("%w: tag filter: \"regex:\" must start a term", ErrInvalid)
		}
		t.Regex = strings.TrimSpace(rest[i+len("regex:"):])
		rest = strings.TrimSuffix(strings.TrimSpace(rest[:i]), ",")
		if t.Regex == "" {
			return t, fmt.Errorf("%w: tag filter: empty regex", ErrInvalid)
		}
	}
	for _, term := range splitTerms(rest) {
		if v, ok := strings.CutPrefix(term, "latest:"); ok {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > MaxLatest {
				return t, fmt.Errorf("%w: tag filter: %q: want latest:N with N from 1 to %d", ErrInvalid, term, MaxLatest)
			}
			if t.Latest != 0 {
				return t, fmt.Errorf("%w: tag filter: latest:N given twice", ErrInvalid)
			}
			t.Latest = n
			continue
		}
		t.Include = append(t.Include, term)
	}
	if err := t.compile(); err != nil {
		return Tags{}, err
	}
	return t, nil
}

// Validate checks a Tags built by hand (the JSON API) and prepares it.
func (t *Tags) Validate() error { return t.compile() }

func (t *Tags) compile() error {
	if err := checkGlobs("tag filter", t.Include); err != nil {
		return err
	}
	for _, g := range t.Include {
		if strings.Contains(g, ",") || strings.HasPrefix(g, "latest:") || strings.HasPrefix(g, "regex:") {
			return fmt.Errorf("%w: tag filter: glob %q cannot be written in the filter syntax", ErrInvalid, g)
		}
	}
	if t.Latest < 0 || t.Latest > MaxLatest {
		return fmt.Errorf("%w: tag filter: latest %d: want 0 (all) to %d", ErrInvalid, t.Latest, MaxLatest)
	}
	t.re = nil
	if t.Regex == "" {
		return nil
	}
	if len(t.Regex) > MaxPatternLen {
		return fmt.Errorf("%w: tag filter: regex over %d characters", ErrInvalid, MaxPatternLen)
	}
	re, err := regexp.Compile(t.Regex)
	if err != nil {
		return fmt.Errorf("%w: tag filter: regex: %v", ErrInvalid, err)
	}
	t.re = re
	return nil
}

// String is the text form of t; ParseTags(t.String()) gives t back.
func (t Tags) String() string {
	terms := append([]string(nil), t.Include...)
	if t.Latest > 0 {
		terms = append(terms, "latest:"+strconv.Itoa(t.Latest))
	}
	if t.Regex != "" {
		terms = append(terms, "regex:"+t.Regex)
	}
	return strings.Join(terms, ", ")
}

// Apply returns the selected tags, highest version first. t must come from
// ParseTags or have passed Validate.
func (t Tags) Apply(tags []string) []string {
	var out []string
	for _, tag := range tags {
		if len(t.Include) > 0 && !MatchAny(t.Include, tag) {
			continue
		}
		if t.re != nil && !t.re.MatchString(tag) {
			continue
		}
		out = append(out, tag)
	}
	sort.SliceStable(out, func(i, j int) bool { return VersionLess(out[j], out[i]) })
	if t.Latest > 0 && len(out) > t.Latest {
		out = out[:t.Latest]
	}
	return out
}

// MatchAny reports whether s matches one of the globs; no globs match everything.
func MatchAny(globs []string, s string) bool {
	if len(globs) == 0 {
		return true
	}
	for _, g := range globs {
		if ok, _ := path.Match(g, s); ok {
			return true
		}
	}
	return false
}

func splitTerms(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

func checkGlobs(what string, globs []string) error {
	if len(globs) > MaxPatterns {
		return fmt.Errorf("%w: %s: at most %d patterns", ErrInvalid, what, MaxPatterns)
	}
	for _, g := range globs {
		if g == "" || len(g) > MaxPatternLen || strings.ContainsAny(g, " \t\r\n") {
			return fmt.Errorf("%w: %s: pattern %q: empty, over %d characters, or with spaces", ErrInvalid, what, g, MaxPatternLen)
		}
		if _, err := path.Match(g, ""); err != nil {
			return fmt.Errorf("%w: %s: pattern %q: %v", ErrInvalid, what, g, err)
		}
	}
	return nil
}

// VersionLess orders tags as versions: runs of digits compare as numbers,
// other runs as strings, a number after text ("v" < "1", so version tags
// rank above "latest" or "dev"); of a tag and its extension, a "-suffix"
// (pre-release) is less, any other extension more.
func VersionLess(a, b string) bool {
	for a != "" && b != "" {
		ca, ra := chunk(a)
		cb, rb := chunk(b)
		if ca != cb {
			da, db := isDigit(ca[0]), isDigit(cb[0])
			switch {
			case da && db:
				na, nb := strings.TrimLeft(ca, "0"), strings.TrimLeft(cb, "0")
				if len(na) != len(nb) {
					return len(na) < len(nb)
				}
				if na != nb {
					return na < nb
				}
				if len(ca) != len(cb) { // same value, different zero padding
					return len(ca) < len(cb)
				}
			case da != db:
				return db
			default:
				return ca < cb
			}
		}
		a, b = ra, rb
	}
	// One is a prefix of the other: "v2.0.0-rc1" is a pre-release of
	// "v2.0.0" (less); "v1.0" extends "v1" (more).
	if strings.HasPrefix(a, "-") {
		return true
	}
	if strings.HasPrefix(b, "-") {
		return false
	}
	return len(a) < len(b)
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func chunk(s string) (string, string) {
	d := isDigit(s[0])
	i := 1
	for i < len(s) && isDigit(s[i]) == d {
		i++
	}
	return s[:i], s[i:]
}
