// Package version orders package versions the way each ecosystem's own
// package manager does: dpkg for Debian and Ubuntu, rpm for the Red Hat and
// SUSE families, apk-tools for Alpine, Wolfi and Chainguard, SemVer 2.0 for
// npm, Go and crates.io, PEP 440 for PyPI, Maven's ComparableVersion,
// RubyGems' Gem::Version, NuGet's NuGetVersion and Composer's version_compare
// on normalised versions.
//
// Each scheme lives in its own sub-package (deb, rpm, apk, semver, pep440,
// maven, gem, nuget, composer) with the same shape: Parse, Version.Compare
// and Compare. This package maps OSV ecosystem names to them.
package version

import (
	"errors"
	"fmt"
	"strings"

	"mamori/internal/version/apk"
	"mamori/internal/version/composer"
	"mamori/internal/version/deb"
	"mamori/internal/version/gem"
	"mamori/internal/version/maven"
	"mamori/internal/version/nuget"
	"mamori/internal/version/pep440"
	"mamori/internal/version/rpm"
	"mamori/internal/version/semver"
)

var (
	// ErrUnknownEcosystem is returned by For and Compare for an ecosystem
	// with no known version ordering.
	ErrUnknownEcosystem = errors.New("version: unknown ecosystem")
	// ErrInvalid wraps every parse error, whatever the scheme.
	ErrInvalid = errors.New("version: invalid version")
	// ErrMixedSchemes is returned when comparing Versions parsed by
	// different schemes.
	ErrMixedSchemes = errors.New("version: versions of different schemes")
)

// Comparer orders versions of one ecosystem.
type Comparer interface {
	// Compare returns -1 if a < b, 0 if a == b and +1 if a > b, or an error
	// (wrapping ErrInvalid) if either is not a version of the scheme.
	Compare(a, b string) (int, error)
}

// For returns the comparer for an OSV ecosystem name. Release suffixes are
// ignored ("Debian:12" is Debian, "Alpine:v3.18" is Alpine). Names are
// matched case-insensitively. The comparer is always a *Scheme, so callers
// that compare one version against many can use Scheme.Parse.
func For(ecosystem string) (Comparer, error) {
	s, err := SchemeFor(ecosystem)
	if err != nil {
		return nil, err
	}
	return s, nil
}

// Compare orders a and b with the ordering of ecosystem.
func Compare(ecosystem, a, b string) (int, error) {
	s, err := SchemeFor(ecosystem)
	if err != nil {
		return 0, err
	}
	return s.Compare(a, b)
}

// SchemeFor is For with the concrete type.
func SchemeFor(ecosystem string) (*Scheme, error) {
	base, _, _ := strings.Cut(ecosystem, ":")
	base = strings.ToLower(strings.TrimSpace(base))
	switch base {
	case "debian", "ubuntu":
		return debScheme, nil
	case "alpine", "wolfi", "chainguard", "minimos":
		// Wolfi, Chainguard and MinimOS are apk-based distributions.
		return apkScheme, nil
	case "almalinux", "rocky linux", "red hat", "suse", "opensuse", "mageia",
		"openeuler", "photon os", "azure linux", "amazon linux", "oracle linux":
		return rpmScheme, nil
	case "npm", "crates.io", "go", "hex", "pub", "bitnami", "swifturl", "github actions":
		// OSV orders all of these by SemVer 2.0 (ossf/osv-schema,
		// "ecosystem" table: type SEMVER ranges).
		return semverScheme, nil
	case "pypi":
		return pep440Scheme, nil
	case "maven":
		return mavenScheme, nil
	case "rubygems":
		return gemScheme, nil
	case "nuget":
		return nugetScheme, nil
	case "packagist":
		return composerScheme, nil
	}
	return nil, fmt.Errorf("%w: %q", ErrUnknownEcosystem, ecosystem)
}

// Scheme is one version ordering. It is immutable and safe for concurrent use.
type Scheme struct {
	name    string
	parse   func(string) (any, error)
	compare func(a, b any) int
}

// Name is the scheme's short name ("deb", "rpm", "apk", "semver", "pep440",
// "maven", "gem", "nuget", "composer").
func (s *Scheme) Name() string { return s.name }

// Compare implements Comparer.
func (s *Scheme) Compare(a, b string) (int, error) {
	va, err := s.parse(a)
	if err != nil {
		return 0, fmt.Errorf("%w: %s %q: %w", ErrInvalid, s.name, a, err)
	}
	vb, err := s.parse(b)
	if err != nil {
		return 0, fmt.Errorf("%w: %s %q: %w", ErrInvalid, s.name, b, err)
	}
	return s.compare(va, vb), nil
}

// Parse parses v once, for comparing it against many others with
// Version.Compare. The error wraps ErrInvalid.
func (s *Scheme) Parse(v string) (Version, error) {
	p, err := s.parse(v)
	if err != nil {
		return Version{}, fmt.Errorf("%w: %s %q: %w", ErrInvalid, s.name, v, err)
	}
	return Version{scheme: s, raw: v, parsed: p}, nil
}

// Version is a version parsed by a Scheme. The zero Version is invalid.
type Version struct {
	scheme *Scheme
	raw    string
	parsed any
}

// String returns the version as it was given to Parse.
func (v Version) String() string { return v.raw }

// Compare orders v against w. Both must come from the same Scheme's Parse;
// otherwise (or for a zero Version) it returns ErrMixedSchemes.
func (v Version) Compare(w Version) (int, error) {
	if v.scheme == nil || v.scheme != w.scheme {
		return 0, fmt.Errorf("%w: %q and %q", ErrMixedSchemes, v.raw, w.raw)
	}
	return v.scheme.compare(v.parsed, w.parsed), nil
}

// comparable is what every scheme sub-package's Version implements.
type comparable[V any] interface {
	Compare(V) int
}

func newScheme[V comparable[V]](name string, parse func(string) (V, error)) *Scheme {
	return &Scheme{
		name: name,
		parse: func(s string) (any, error) {
			v, err := parse(s)
			if err != nil {
				return nil, err
			}
			return v, nil
		},
		compare: func(a, b any) int {
			// The type assertions cannot fail: a Scheme only ever
			// compares values its own parse produced.
			return sign(a.(V).Compare(b.(V)))
		},
	}
}

func sign(c int) int {
	switch {
	case c < 0:
		return -1
	case c > 0:
		return 1
	}
	return 0
}

// The schemes are immutable values built once; they hold no mutable state.
var (
	debScheme      = newScheme("deb", deb.Parse)
	rpmScheme      = newScheme("rpm", rpm.Parse)
	apkScheme      = newScheme("apk", apk.Parse)
	semverScheme   = newScheme("semver", semver.Parse)
	pep440Scheme   = newScheme("pep440", pep440.Parse)
	mavenScheme    = newScheme("maven", maven.Parse)
	gemScheme      = newScheme("gem", gem.Parse)
	nugetScheme    = newScheme("nuget", nuget.Parse)
	composerScheme = newScheme("composer", composer.Parse)
)
