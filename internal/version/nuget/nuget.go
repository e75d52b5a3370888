// Package nuget orders NuGet package versions as NuGet.Versioning's
// VersionComparer.Default does: up to four numeric parts
// (Major.Minor.Patch.Revision, missing parts are 0), then SemVer 2.0
// pre-release labels compared case-insensitively (numeric labels
// numerically and before alphanumeric ones; a release sorts after all its
// pre-releases); build metadata after '+' is ignored.
//
// No maintained Go library implements NuGetVersion, hence this one.
package nuget

import (
	"errors"
	"fmt"
	"strings"

	"mamori/internal/version/internal/digits"
)

// ErrInvalid is wrapped by every parse error.
var ErrInvalid = errors.New("nuget: invalid version")

// maxLen bounds a version; no real NuGet version comes near it.
const maxLen = 256

// Version is a parsed NuGet version.
type Version struct {
	raw     string
	parts   [4]string // digits without leading zeros
	release []string  // pre-release labels, original case
}

// Parse reads v: 1 to 4 dot-separated numbers, optionally "-" and
// dot-separated labels of [0-9A-Za-z-], optionally "+" and metadata.
func Parse(v string) (Version, error) {
	s := strings.TrimSpace(v)
	if s == "" {
		return Version{}, fmt.Errorf("%w: empty", ErrInvalid)
	}
	if len(s) > maxLen {
		return Version{}, fmt.Errorf("%w: longer than %d bytes", ErrInvalid, maxLen)
	}
	out := Version{raw: v}
	if i := strings.IndexByte(s, '+'); i >= 0 {
		meta := s[i+1:]
		s = s[:i]
		if err := labels(meta); err != nil {
			return Version{}, fmt.Errorf("%w: %q: metadata: %s", ErrInvalid, v, err)
		}
	}
	core := s
	if i := strings.IndexByte(s, '-'); i >= 0 {
		core = s[:i]
		rel := s[i+1:]
		if err := labels(rel); err != nil {
			return Version{}, fmt.Errorf("%w: %q: release label: %s", ErrInvalid, v, err)
		}
		out.release = strings.Split(rel, ".")
	}
	nums := strings.Split(core, ".")
	if len(nums) > 4 {
		return Version{}, fmt.Errorf("%w: %q: more than four numbers", ErrInvalid, v)
	}
	for i, n := range nums {
		if !digits.All(n) {
			return Version{}, fmt.Errorf("%w: %q: %q is not a number", ErrInvalid, v, n)
		}
		out.parts[i] = digits.TrimZeros(n)
	}
	return out, nil
}

// labels checks dot-separated non-empty identifiers of [0-9A-Za-z-].
func labels(s string) error {
	if s == "" {
		return errors.New("empty")
	}
	for _, l := range strings.Split(s, ".") {
		if l == "" {
			return errors.New("empty identifier")
		}
		for i := 0; i < len(l); i++ {
			c := l[i]
			if !(digits.IsDigit(c) || ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z') || c == '-') {
				return fmt.Errorf("invalid character %q", c)
			}
		}
	}
	return nil
}

// String returns the version as parsed.
func (v Version) String() string { return v.raw }

// Compare returns -1, 0 or +1 as v sorts before, with or after w.
func (v Version) Compare(w Version) int {
	for i := range v.parts {
		if c := digits.Compare(v.parts[i], w.parts[i]); c != 0 {
			return c
		}
	}
	switch {
	case len(v.release) == 0 && len(w.release) == 0:
		return 0
	case len(v.release) == 0:
		return 1
	case len(w.release) == 0:
		return -1
	}
	for i := 0; i < len(v.release) && i < len(w.release); i++ {
		if c := compareLabel(v.release[i], w.release[i]); c != 0 {
			return c
		}
	}
	switch {
	case len(v.release) < len(w.release):
		return -1
	case len(v.release) > len(w.release):
		return 1
	}
	return 0
}

// compareLabel: numeric labels compare numerically and sort before
// alphanumeric ones, which compare case-insensitively (ordinal).
func compareLabel(a, b string) int {
	an, bn := digits.All(a), digits.All(b)
	switch {
	case an && bn:
		return digits.Compare(a, b)
	case an:
		return -1
	case bn:
		return 1
	}
	return strings.Compare(strings.ToUpper(a), strings.ToUpper(b))
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
