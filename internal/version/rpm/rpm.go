// Package rpm orders RPM package versions ([epoch:]version[-release]) as
// rpm's rpmvercmp does, for Red Hat, AlmaLinux, Rocky Linux, SUSE, openSUSE
// and the other rpm-based distributions.
//
// Segment comparison is knqyf263/go-rpm-version, which handles '~' (sorts
// before everything, even the end) and '^' (sorts after the end, before any
// further segment) as rpm 4.15+ does. This package adds what the library
// leaves out: a malformed epoch ("x:1.0") is an error here instead of being
// silently read as 0.
package rpm

import (
	"errors"
	"fmt"
	"strings"

	rpmversion "github.com/knqyf263/go-rpm-version"

	"mamori/internal/version/internal/digits"
)

// ErrInvalid is wrapped by every parse error.
var ErrInvalid = errors.New("rpm: invalid version")

// maxEpochDigits: rpm stores the epoch as a 32-bit integer.
const maxEpochDigits = 10

// Version is a parsed EVR.
type Version struct {
	raw string
	v   rpmversion.Version
}

// Parse validates v as [epoch:]version[-release].
func Parse(v string) (Version, error) {
	s := strings.TrimSpace(v)
	if s == "" {
		return Version{}, fmt.Errorf("%w: empty", ErrInvalid)
	}
	rest := s
	if epoch, r, ok := strings.Cut(s, ":"); ok {
		if !digits.All(epoch) || len(digits.TrimZeros(epoch)) > maxEpochDigits {
			return Version{}, fmt.Errorf("%w: %q: epoch is not a number", ErrInvalid, v)
		}
		rest = r
	}
	ver, _, _ := strings.Cut(rest, "-")
	if ver == "" {
		return Version{}, fmt.Errorf("%w: %q: empty version", ErrInvalid, v)
	}
	return Version{raw: v, v: rpmversion.NewVersion(s)}, nil
}

// String returns the version as parsed.
func (v Version) String() string { return v.raw }

// Compare returns -1, 0 or +1 as v sorts before, with or after w.
func (v Version) Compare(w Version) int {
	c := v.v.Compare(w.v)
	switch {
	case c < 0:
		return -1
	case c > 0:
		return 1
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
