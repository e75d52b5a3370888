// Package apk orders Alpine, Wolfi and Chainguard package versions as
// apk-tools does (src/version.c of apk-tools 2.14/3.x; the format is
// digit{.digit}...{letter}{_suffix{number}}...{~hash}{-rN}).
//
// It is written here rather than taken from knqyf263/go-apk-version, which
// ports the 2020 apk-tools code and gets documented cases wrong:
// "1.0_rc1" sorts after "1.0" there (a pre-release must sort before its
// release), "~hash" commit suffixes are rejected, and numbers overflow int.
package apk

import (
	"errors"
	"fmt"
	"strings"

	"mamori/internal/version/internal/digits"
)

// ErrInvalid is wrapped by every parse error.
var ErrInvalid = errors.New("apk: invalid version")

type tokenKind uint8

// Token kinds in the order apk-tools declares them; the order matters:
// when two versions agree on a common prefix, the one whose next token kind
// is larger sorts lower.
const (
	tokInitialDigit tokenKind = iota
	tokDigit
	tokLetter
	tokSuffix
	tokSuffixNo
	tokCommitHash
	tokRevisionNo
	tokEnd
)

// Suffix ranks: pre-release suffixes sort below "no suffix", post-release
// suffixes above it.
const (
	sufAlpha = iota + 1
	sufBeta
	sufPre
	sufRC
	sufNone
	sufCVS
	sufSVN
	sufGit
	sufHg
	sufP
)

var suffixes = map[string]int{
	"alpha": sufAlpha, "beta": sufBeta, "pre": sufPre, "rc": sufRC,
	"cvs": sufCVS, "svn": sufSVN, "git": sufGit, "hg": sufHg, "p": sufP,
}

type token struct {
	kind   tokenKind
	suffix int    // for tokSuffix
	value  string // digits, the letter, the suffix name or the hash
}

// Version is a parsed apk version: its tokens, ending with tokEnd.
type Version struct {
	raw    string
	tokens []token
}

// Parse tokenizes v and validates it as apk_version_validate does.
func Parse(v string) (Version, error) {
	s := v
	n := digits.Span(s)
	if n == 0 {
		return Version{}, fmt.Errorf("%w: %q: must start with a digit", ErrInvalid, v)
	}
	toks := make([]token, 0, 8)
	toks = append(toks, token{kind: tokInitialDigit, value: s[:n]})
	s = s[n:]
	last := tokInitialDigit
	for s != "" {
		var t token
		c := s[0]
		switch {
		case 'a' <= c && c <= 'z':
			if last > tokDigit {
				return Version{}, fmt.Errorf("%w: %q: letter after %s", ErrInvalid, v, kindName(last))
			}
			t = token{kind: tokLetter, value: s[:1]}
			s = s[1:]
		case c == '.' || digits.IsDigit(c):
			if c == '.' {
				if last > tokDigit {
					return Version{}, fmt.Errorf("%w: %q: '.' after %s", ErrInvalid, v, kindName(last))
				}
				s = s[1:]
			}
			switch last {
			case tokInitialDigit, tokDigit:
				t.kind = tokDigit
			case tokSuffix:
				t.kind = tokSuffixNo
			default:
				return Version{}, fmt.Errorf("%w: %q: number after %s", ErrInvalid, v, kindName(last))
			}
			n := digits.Span(s)
			if n == 0 {
				return Version{}, fmt.Errorf("%w: %q: missing number", ErrInvalid, v)
			}
			t.value, s = s[:n], s[n:]
		case c == '_':
			if last > tokSuffixNo {
				return Version{}, fmt.Errorf("%w: %q: suffix after %s", ErrInvalid, v, kindName(last))
			}
			s = s[1:]
			n := 0
			for n < len(s) && 'a' <= s[n] && s[n] <= 'z' {
				n++
			}
			rank, ok := suffixes[s[:n]]
			if !ok {
				return Version{}, fmt.Errorf("%w: %q: unknown suffix %q", ErrInvalid, v, s[:n])
			}
			t = token{kind: tokSuffix, suffix: rank, value: s[:n]}
			s = s[n:]
		case c == '~':
			if last >= tokCommitHash {
				return Version{}, fmt.Errorf("%w: %q: '~' after %s", ErrInvalid, v, kindName(last))
			}
			s = s[1:]
			n := 0
			for n < len(s) && isHex(s[n]) {
				n++
			}
			if n == 0 {
				return Version{}, fmt.Errorf("%w: %q: empty commit hash", ErrInvalid, v)
			}
			t = token{kind: tokCommitHash, value: s[:n]}
			s = s[n:]
		case c == '-':
			if last >= tokRevisionNo || !strings.HasPrefix(s, "-r") {
				return Version{}, fmt.Errorf("%w: %q: bad revision", ErrInvalid, v)
			}
			s = s[2:]
			n := digits.Span(s)
			if n == 0 {
				return Version{}, fmt.Errorf("%w: %q: revision without number", ErrInvalid, v)
			}
			t = token{kind: tokRevisionNo, value: s[:n]}
			s = s[n:]
		default:
			return Version{}, fmt.Errorf("%w: %q: invalid character %q", ErrInvalid, v, c)
		}
		toks = append(toks, t)
		last = t.kind
	}
	toks = append(toks, token{kind: tokEnd})
	return Version{raw: v, tokens: toks}, nil
}

func isHex(c byte) bool {
	return digits.IsDigit(c) || ('a' <= c && c <= 'f') || ('A' <= c && c <= 'F')
}

func kindName(k tokenKind) string {
	return [...]string{"first number", "number", "letter", "suffix", "suffix number", "commit hash", "revision", "end"}[k]
}

// String returns the version as parsed.
func (v Version) String() string { return v.raw }

// Compare returns -1, 0 or +1 as v sorts before, with or after w, following
// apk_version_compare.
func (v Version) Compare(w Version) int {
	if len(v.tokens) == 0 || len(w.tokens) == 0 { // zero Versions
		return cmpInt(len(v.tokens), len(w.tokens))
	}
	i := 0
	for ; v.tokens[i].kind == w.tokens[i].kind && v.tokens[i].kind < tokEnd; i++ {
		if c := cmpToken(v.tokens[i], w.tokens[i]); c != 0 {
			return c
		}
	}
	a, b := v.tokens[i], w.tokens[i]
	if a.kind == b.kind {
		return 0
	}
	// The common prefix is equal. The longer version is greater unless it
	// continues with a pre-release suffix.
	if a.kind == tokSuffix && a.suffix < sufNone {
		return -1
	}
	if b.kind == tokSuffix && b.suffix < sufNone {
		return 1
	}
	if a.kind > b.kind {
		return -1
	}
	return 1
}

func cmpToken(a, b token) int {
	switch a.kind {
	case tokDigit:
		if a.value[0] == '0' || b.value[0] == '0' {
			// A component with a leading zero compares as a string
			// (Gentoo's rule): 1.02 < 1.1 and 1.0 < 1.00.
			return strings.Compare(a.value, b.value)
		}
		return digits.Compare(a.value, b.value)
	case tokInitialDigit, tokSuffixNo, tokRevisionNo:
		return digits.Compare(a.value, b.value)
	case tokSuffix:
		return cmpInt(a.suffix, b.suffix)
	}
	// Letters and commit hashes compare as strings.
	return strings.Compare(a.value, b.value)
}

func cmpInt(a, b int) int {
	switch {
	case a < b:
		return -1
	case a > b:
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
