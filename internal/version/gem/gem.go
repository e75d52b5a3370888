// Package gem orders RubyGems versions as Gem::Version#<=> does
// (rubygems/lib/rubygems/version.rb): the version is split into runs of
// digits and runs of letters; a "-" reads as ".pre."; trailing zeros of the
// numeric part and of the pre-release part are dropped; a letter segment
// (pre-release) sorts before any number, so 1.0.a < 1.0 < 1.0.1.
//
// No maintained Go library implements Gem::Version, hence this one.
package gem

import (
	"errors"
	"fmt"
	"strings"

	"mamori/internal/version/internal/digits"
)

// ErrInvalid is wrapped by every parse error.
var ErrInvalid = errors.New("gem: invalid version")

// maxLen bounds a version; no real gem version comes near it.
const maxLen = 256

type segment struct {
	s     string // digits without leading zeros, or letters
	alpha bool
}

// Version is a parsed gem version in canonical segments.
type Version struct {
	raw  string
	segs []segment
}

// Parse validates v against Gem::Version::ANCHORED_VERSION_PATTERN:
// [0-9]+(\.[0-9a-zA-Z]+)*(-[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*)? with optional
// surrounding whitespace. An empty string is version "0", as in RubyGems.
func Parse(v string) (Version, error) {
	s := strings.TrimSpace(v)
	if len(s) > maxLen {
		return Version{}, fmt.Errorf("%w: longer than %d bytes", ErrInvalid, maxLen)
	}
	if s == "" {
		s = "0"
	}
	if err := validate(s); err != nil {
		return Version{}, fmt.Errorf("%w: %q: %s", ErrInvalid, v, err)
	}
	// _segments: scan(/[0-9]+|[a-z]+/i) after gsub("-", ".pre.").
	var segs []segment
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == '-':
			segs = append(segs, segment{s: "pre", alpha: true})
			i++
		case digits.IsDigit(c):
			n := digits.Span(s[i:])
			segs = append(segs, segment{s: digits.TrimZeros(s[i : i+n])})
			i += n
		case isAlpha(c):
			j := i
			for j < len(s) && isAlpha(s[j]) {
				j++
			}
			segs = append(segs, segment{s: s[i:j], alpha: true})
			i = j
		default:
			i++
		}
	}
	return Version{raw: v, segs: canonical(segs)}, nil
}

// canonical drops trailing zeros from the numeric prefix and from the rest
// (Gem::Version#canonical_segments).
func canonical(segs []segment) []segment {
	first := len(segs)
	for i, s := range segs {
		if s.alpha {
			first = i
			break
		}
	}
	num := trimZeros(segs[:first])
	rest := trimZeros(segs[first:])
	out := make([]segment, 0, len(num)+len(rest))
	return append(append(out, num...), rest...)
}

func trimZeros(segs []segment) []segment {
	n := len(segs)
	for n > 0 && !segs[n-1].alpha && segs[n-1].s == "" {
		n--
	}
	return segs[:n]
}

func validate(s string) error {
	if !digits.IsDigit(s[0]) {
		return errors.New("must start with a digit")
	}
	pre := false
	prev := byte('0')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case digits.IsDigit(c) || isAlpha(c):
		case c == '.':
			if prev == '.' || prev == '-' || i == len(s)-1 {
				return errors.New("empty segment")
			}
		case c == '-':
			if pre {
				// After the first '-', '-' is part of a segment.
				break
			}
			if prev == '.' || i == len(s)-1 {
				return errors.New("empty segment")
			}
			pre = true
		default:
			return fmt.Errorf("invalid character %q", c)
		}
		prev = c
	}
	return nil
}

func isAlpha(c byte) bool { return ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z') }

// String returns the version as parsed.
func (v Version) String() string { return v.raw }

// Compare returns -1, 0 or +1 as v sorts before, with or after w.
func (v Version) Compare(w Version) int {
	n := max(len(v.segs), len(w.segs))
	zero := segment{}
	for i := 0; i < n; i++ {
		a, b := zero, zero
		if i < len(v.segs) {
			a = v.segs[i]
		}
		if i < len(w.segs) {
			b = w.segs[i]
		}
		switch {
		case a == b:
			continue
		case a.alpha && !b.alpha:
			return -1
		case !a.alpha && b.alpha:
			return 1
		case a.alpha:
			return strings.Compare(a.s, b.s) // Ruby String#<=>: bytewise
		default:
			return digits.Compare(a.s, b.s)
		}
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
