// Package maven orders Maven artifact versions as Maven's ComparableVersion
// does (qualifiers alpha < beta < milestone < rc = cr < snapshot < "" = ga =
// final = release < sp < unknown qualifiers; trailing zeros and "null"
// qualifiers ignored), using masahiro331/go-mvn-version.
package maven

import (
	"errors"
	"fmt"
	"strings"

	mvn "github.com/masahiro331/go-mvn-version"
)

// ErrInvalid is wrapped by every parse error.
var ErrInvalid = errors.New("maven: invalid version")

// maxLen bounds a version: ComparableVersion accepts any string, but the
// library's list nesting grows with it.
const maxLen = 256

// Version is a parsed Maven version.
type Version struct {
	v mvn.Version
}

// Parse reads v. Maven itself accepts any string as a version; this rejects
// only empty, over-long and whitespace-containing ones.
func Parse(v string) (Version, error) {
	s := strings.TrimSpace(v)
	if s == "" {
		return Version{}, fmt.Errorf("%w: empty", ErrInvalid)
	}
	if len(s) > maxLen {
		return Version{}, fmt.Errorf("%w: longer than %d bytes", ErrInvalid, maxLen)
	}
	if strings.ContainsAny(s, " \t\r\n") {
		return Version{}, fmt.Errorf("%w: %q: embedded whitespace", ErrInvalid, v)
	}
	p, err := mvn.NewVersion(s)
	if err != nil {
		return Version{}, fmt.Errorf("%w: %q: %w", ErrInvalid, v, err)
	}
	return Version{v: p}, nil
}

// String returns the version as parsed.
func (v Version) String() string { return v.v.String() }

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
