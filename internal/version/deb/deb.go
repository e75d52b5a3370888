// Package deb orders Debian and Ubuntu package versions exactly as dpkg
// does (Debian Policy §5.6.12; dpkg lib/dpkg/version.c verrevcmp).
//
// It is written here rather than taken from knqyf263/go-deb-version because
// that library converts each digit run with strconv.Atoi and silently treats
// a run that overflows int64 as 0 ("99999999999999999999" == "1"), while
// dpkg compares digit runs of any length. It also accepts an empty revision
// ("1.0-"), which dpkg rejects.
package deb

import (
	"errors"
	"fmt"
	"strings"

	"mamori/internal/version/internal/digits"
)

// ErrInvalid is wrapped by every parse error.
var ErrInvalid = errors.New("deb: invalid version")

// maxEpochDigits bounds the epoch; dpkg stores it in an int and rejects
// anything above INT_MAX, which has 10 digits.
const maxEpochDigits = 10

// Version is a parsed [epoch:]upstream_version[-debian_revision].
type Version struct {
	Epoch    string // digits with leading zeros removed; "" means 0
	Upstream string
	Revision string
}

// Parse splits v into epoch, upstream version and revision and checks the
// characters Debian Policy §5.6.12 allows. Like dpkg it tolerates an upstream
// version that does not start with a digit (dpkg only warns).
func Parse(v string) (Version, error) {
	s := strings.TrimSpace(v)
	if s == "" {
		return Version{}, fmt.Errorf("%w: empty", ErrInvalid)
	}
	if strings.ContainsAny(s, " \t\n\r\v\f") {
		return Version{}, fmt.Errorf("%w: %q: embedded whitespace", ErrInvalid, v)
	}
	var out Version
	if epoch, rest, ok := strings.Cut(s, ":"); ok {
		if epoch == "" {
			return Version{}, fmt.Errorf("%w: %q: empty epoch", ErrInvalid, v)
		}
		if !digits.All(epoch) {
			return Version{}, fmt.Errorf("%w: %q: epoch is not a number", ErrInvalid, v)
		}
		epoch = digits.TrimZeros(epoch)
		if len(epoch) > maxEpochDigits || (len(epoch) == maxEpochDigits && epoch > "2147483647") {
			return Version{}, fmt.Errorf("%w: %q: epoch too big", ErrInvalid, v)
		}
		if rest == "" {
			return Version{}, fmt.Errorf("%w: %q: nothing after colon", ErrInvalid, v)
		}
		out.Epoch, s = epoch, rest
	}
	if i := strings.LastIndexByte(s, '-'); i >= 0 {
		out.Upstream, out.Revision = s[:i], s[i+1:]
		if out.Revision == "" {
			return Version{}, fmt.Errorf("%w: %q: empty revision", ErrInvalid, v)
		}
	} else {
		out.Upstream = s
	}
	if out.Upstream == "" {
		return Version{}, fmt.Errorf("%w: %q: empty upstream version", ErrInvalid, v)
	}
	for i := 0; i < len(out.Upstream); i++ {
		if !upstreamChar(out.Upstream[i]) {
			return Version{}, fmt.Errorf("%w: %q: invalid character %q in upstream version", ErrInvalid, v, out.Upstream[i])
		}
	}
	for i := 0; i < len(out.Revision); i++ {
		if c := out.Revision[i]; c == '-' || c == ':' || !upstreamChar(c) {
			return Version{}, fmt.Errorf("%w: %q: invalid character %q in revision", ErrInvalid, v, c)
		}
	}
	return out, nil
}

// upstreamChar is Policy's alphabet: alphanumerics and . + - ~ (and : after an
// epoch). dpkg itself also passes '_' through, which some old packages use.
func upstreamChar(c byte) bool {
	return isAlpha(c) || digits.IsDigit(c) || strings.IndexByte(".+-~:_", c) >= 0
}

// Compare returns -1, 0 or +1 as v sorts before, with or after w.
func (v Version) Compare(w Version) int {
	if c := digits.Compare(v.Epoch, w.Epoch); c != 0 {
		return c
	}
	if c := verrevcmp(v.Upstream, w.Upstream); c != 0 {
		return c
	}
	return verrevcmp(v.Revision, w.Revision)
}

// String renders the version in canonical form (no zero epoch).
func (v Version) String() string {
	var b strings.Builder
	if v.Epoch != "" {
		b.WriteString(v.Epoch)
		b.WriteByte(':')
	}
	b.WriteString(v.Upstream)
	if v.Revision != "" {
		b.WriteByte('-')
		b.WriteString(v.Revision)
	}
	return b.String()
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

func isAlpha(c byte) bool { return ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z') }

// order is dpkg's weight of a non-digit character: '~' sorts before
// everything, even the end of the string; letters sort before non-letters.
// The end of the string and digits weigh 0.
func order(s string, i int) int {
	if i >= len(s) {
		return 0
	}
	c := s[i]
	switch {
	case digits.IsDigit(c):
		return 0
	case isAlpha(c):
		return int(c)
	case c == '~':
		return -1
	}
	return int(c) + 256
}

// verrevcmp compares alternating non-digit and digit runs (Policy §5.6.12).
func verrevcmp(a, b string) int {
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		for (i < len(a) && !digits.IsDigit(a[i])) || (j < len(b) && !digits.IsDigit(b[j])) {
			ac, bc := order(a, i), order(b, j)
			if ac != bc {
				if ac < bc {
					return -1
				}
				return 1
			}
			i++
			j++
		}
		if i > len(a) {
			i = len(a)
		}
		if j > len(b) {
			j = len(b)
		}
		na, nb := digits.Span(a[i:]), digits.Span(b[j:])
		// An absent digit run counts as 0.
		if c := digits.Compare(a[i:i+na], b[j:j+nb]); c != 0 {
			return c
		}
		i += na
		j += nb
	}
	return 0
}
