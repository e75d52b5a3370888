// Package pep440 orders Python package versions per PEP 440 (epochs,
// pre-, post- and dev-releases, local versions), using
// aquasecurity/go-pep440-version, which ports pypa/packaging's Version.
// The library is wrong on one documented case, fixed here by normalising
// its input: local labels that differ only in case or separators
// ("1.0+ubuntu-1", "1.0+Ubuntu.1") must be equal.
package pep440

import (
	"errors"
	"fmt"
	"strings"

	pep "github.com/aquasecurity/go-pep440-version"
)

// ErrInvalid is wrapped by every parse error.
var ErrInvalid = errors.New("pep440: invalid version")

// maxLen bounds what is handed to the library's regular expression; no
// real version comes near it.
const maxLen = 256

// Version is a parsed PEP 440 version.
type Version struct {
	raw string
	v   pep.Version
	ok  bool
}

// Parse reads v in any spelling PEP 440 normalises ("1.0RC1", "v1.0",
// "1.0-1" for a post-release).
func Parse(v string) (Version, error) {
	s := strings.TrimSpace(v)
	if s == "" {
		return Version{}, fmt.Errorf("%w: empty", ErrInvalid)
	}
	if len(s) > maxLen {
		return Version{}, fmt.Errorf("%w: longer than %d bytes", ErrInvalid, maxLen)
	}
	p, err := pep.Parse(normalizeLocal(s))
	if err != nil {
		return Version{}, fmt.Errorf("%w: %q: %w", ErrInvalid, v, err)
	}
	return Version{raw: v, v: p, ok: true}, nil
}

// normalizeLocal works around go-pep440-version comparing local labels
// case-sensitively and with their separators: PEP 440 ("Local version
// identifiers", "Case sensitivity") says 1.0+ubuntu-1 == 1.0+Ubuntu.1, as
// pypa/packaging does. The whole version is case-insensitive, so it is
// lowered; in the local part '-' and '_' become '.'.
func normalizeLocal(s string) string {
	s = strings.ToLower(s)
	i := strings.IndexByte(s, '+')
	if i < 0 {
		return s
	}
	return s[:i+1] + strings.NewReplacer("-", ".", "_", ".").Replace(s[i+1:])
}

// String returns the version as parsed.
func (v Version) String() string { return v.raw }

// Compare returns -1, 0 or +1 as v sorts before, with or after w.
func (v Version) Compare(w Version) int {
	if !v.ok || !w.ok {
		switch {
		case v.ok == w.ok:
			return 0
		case !v.ok:
			return -1
		}
		return 1
	}
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
