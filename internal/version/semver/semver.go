// Package semver orders Semantic Versioning 2.0.0 versions (semver.org §11)
// for npm, Go modules, crates.io and the other OSV ecosystems whose ranges
// are of type SEMVER.
//
// Parsing is Masterminds/semver/v3, lenient the way OSV data needs: a
// leading "v" (Go modules, "v1.2.3") is accepted and missing minor or patch
// numbers read as 0 ("1.2" is 1.2.0). Build metadata is ignored for
// ordering (§10).
package semver

import (
	"errors"
	"fmt"
	"strings"

	msemver "github.com/Masterminds/semver/v3"
)

// ErrInvalid is wrapped by every parse error.
var ErrInvalid = errors.New("semver: invalid version")

// Version is a parsed semantic version.
type Version struct {
	v *msemver.Version
}

// Parse reads v, with or without a leading "v".
func Parse(v string) (Version, error) {
	s := strings.TrimSpace(v)
	if s == "" {
		return Version{}, fmt.Errorf("%w: empty", ErrInvalid)
	}
	p, err := msemver.NewVersion(s)
	if err != nil {
		return Version{}, fmt.Errorf("%w: %q: %w", ErrInvalid, v, err)
	}
	return Version{v: p}, nil
}

// String returns the version as parsed.
func (v Version) String() string {
	if v.v == nil {
		return ""
	}
	return v.v.Original()
}

// Compare returns -1, 0 or +1 as v sorts before, with or after w.
func (v Version) Compare(w Version) int {
	if v.v == nil || w.v == nil {
		switch {
		case v.v == nil && w.v == nil:
			return 0
		case v.v == nil:
			return -1
		}
		return 1
	}
	return v.v.Compare(w.v)
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
