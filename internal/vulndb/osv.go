package vulndb

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"unicode"
)

// Record is the part of an OSV record (https://ossf.github.io/osv-schema/)
// that mamori keeps: what matching, severity and reports need. Fields the
// store does not need (credits, range database_specific, Go symbol lists …)
// are dropped at import, which keeps the DB small.
type Record struct {
	SchemaVersion string `json:"schema_version,omitempty"`
	ID            string `json:"id"`
	// Modified, Published and Withdrawn are RFC 3339 strings as published;
	// kept as text so that one odd timestamp does not cost the record.
	Modified  string   `json:"modified"`
	Published string   `json:"published,omitempty"`
	Withdrawn string   `json:"withdrawn,omitempty"`
	Aliases   []string `json:"aliases,omitempty"`
	// Upstream and Related name other IDs too (Debian and AlmaLinux use them
	// for the CVE an advisory is about).
	Upstream   []string    `json:"upstream,omitempty"`
	Related    []string    `json:"related,omitempty"`
	Summary    string      `json:"summary,omitempty"`
	Details    string      `json:"details,omitempty"`
	Severity   []Severity  `json:"severity,omitempty"`
	Affected   []Affected  `json:"affected,omitempty"`
	References []Reference `json:"references,omitempty"`
	// DatabaseSpecific keeps only the severity GitHub advisories carry
	// ("HIGH", "MODERATE" …).
	DatabaseSpecific *Specific `json:"database_specific,omitempty"`
}

// Severity is one OSV severity entry: Type is CVSS_V2, CVSS_V3, CVSS_V4 or
// Ubuntu; Score is the vector (or Ubuntu's priority word).
type Severity struct {
	Type  string `json:"type"`
	Score string `json:"score"`
}

// Reference is one OSV reference.
type Reference struct {
	Type string `json:"type,omitempty"`
	URL  string `json:"url"`
}

// Package names an affected package in one ecosystem.
type Package struct {
	Ecosystem string `json:"ecosystem"`
	Name      string `json:"name"`
	PURL      string `json:"purl,omitempty"`
}

// Affected is one affected[] entry.
type Affected struct {
	Package  Package    `json:"package"`
	Severity []Severity `json:"severity,omitempty"`
	Ranges   []Range    `json:"ranges,omitempty"`
	Versions []string   `json:"versions,omitempty"`
	// EcosystemSpecific and DatabaseSpecific keep only the distro severity
	// words some sources put there (Debian's "urgency", "severity").
	EcosystemSpecific *Specific `json:"ecosystem_specific,omitempty"`
	DatabaseSpecific  *Specific `json:"database_specific,omitempty"`
}

// Range is one affected range. Type is SEMVER, ECOSYSTEM or GIT.
type Range struct {
	Type   string  `json:"type"`
	Events []Event `json:"events"`
}

// Event is one range event; exactly one field is set.
type Event struct {
	Introduced   string `json:"introduced,omitempty"`
	Fixed        string `json:"fixed,omitempty"`
	LastAffected string `json:"last_affected,omitempty"`
	Limit        string `json:"limit,omitempty"`
}

// Specific is the subset of a *_specific object that mamori reads. Values
// that are not strings are ignored rather than failing the record.
type Specific struct {
	Severity looseString `json:"severity,omitempty"`
	Urgency  looseString `json:"urgency,omitempty"`
}

func (s *Specific) empty() bool { return s == nil || (s.Severity == "" && s.Urgency == "") }

// looseString decodes a JSON string and ignores any other JSON value.
type looseString string

func (l *looseString) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*l = looseString(s)
	}
	return nil
}

// ParseRecord decodes one OSV JSON record and checks what matching relies on:
// an ID, a modified time, and package names and ecosystems in every affected
// entry. It returns ErrInvalidRecord (wrapped) for anything else.
func ParseRecord(data []byte) (*Record, error) {
	if len(data) > MaxRecordBytes {
		return nil, fmt.Errorf("%w: %d bytes is over the %d byte limit", ErrInvalidRecord, len(data), MaxRecordBytes)
	}
	var r Record
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&r); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidRecord, err)
	}
	if err := r.validate(); err != nil {
		return nil, err
	}
	r.compact()
	return &r, nil
}

func (r *Record) validate() error {
	if r.ID == "" || len(r.ID) > 256 || strings.ContainsFunc(r.ID, func(c rune) bool { return unicode.IsSpace(c) || c == 0 }) {
		return fmt.Errorf("%w: missing or malformed id %q", ErrInvalidRecord, truncate(r.ID, 64))
	}
	if r.Modified == "" {
		return fmt.Errorf("%w: %s: missing modified", ErrInvalidRecord, r.ID)
	}
	for i, a := range r.Affected {
		if a.Package.Ecosystem == "" || a.Package.Name == "" {
			// Records may carry affected entries without a package (GIT only);
			// they cannot be matched by package but are not invalid.
			continue
		}
		if strings.ContainsRune(a.Package.Ecosystem, 0) || strings.ContainsRune(a.Package.Name, 0) {
			return fmt.Errorf("%w: %s: affected[%d]: NUL in package", ErrInvalidRecord, r.ID, i)
		}
		for j, rg := range a.Ranges {
			for k, e := range rg.Events {
				if n := e.count(); n != 1 {
					return fmt.Errorf("%w: %s: affected[%d].ranges[%d].events[%d] has %d fields, want 1", ErrInvalidRecord, r.ID, i, j, k, n)
				}
			}
		}
	}
	return nil
}

// compact drops what matching never reads, so the stored form is small.
func (r *Record) compact() {
	if r.DatabaseSpecific.empty() {
		r.DatabaseSpecific = nil
	}
	kept := r.Affected[:0]
	for _, a := range r.Affected {
		if a.Package.Ecosystem == "" || a.Package.Name == "" {
			continue
		}
		if a.EcosystemSpecific.empty() {
			a.EcosystemSpecific = nil
		}
		if a.DatabaseSpecific.empty() {
			a.DatabaseSpecific = nil
		}
		rs := a.Ranges[:0]
		for _, rg := range a.Ranges {
			if rg.Type == RangeGit { // commit ranges cannot be matched against installed versions
				continue
			}
			rs = append(rs, rg)
		}
		a.Ranges = rs
		kept = append(kept, a)
	}
	r.Affected = kept
}

func (e Event) count() int {
	n := 0
	for _, s := range [...]string{e.Introduced, e.Fixed, e.LastAffected, e.Limit} {
		if s != "" {
			n++
		}
	}
	return n
}

// OSV range types.
const (
	RangeSemver    = "SEMVER"
	RangeEcosystem = "ECOSYSTEM"
	RangeGit       = "GIT"
)

// canonicalBase returns the OSV spelling of an ecosystem base name
// (https://ossf.github.io/osv-schema/#defined-ecosystems), matched
// case-insensitively, so that "pypi" and "PyPI" are one key; unknown names
// are returned unchanged.
func canonicalBase(base string) string {
	switch strings.ToLower(base) {
	case "almalinux":
		return "AlmaLinux"
	case "alpine":
		return "Alpine"
	case "android":
		return "Android"
	case "bitnami":
		return "Bitnami"
	case "chainguard":
		return "Chainguard"
	case "cran":
		return "CRAN"
	case "crates.io":
		return "crates.io"
	case "debian":
		return "Debian"
	case "go":
		return "Go"
	case "hackage":
		return "Hackage"
	case "hex":
		return "Hex"
	case "mageia":
		return "Mageia"
	case "maven":
		return "Maven"
	case "npm":
		return "npm"
	case "nuget":
		return "NuGet"
	case "opensuse":
		return "openSUSE"
	case "oss-fuzz":
		return "OSS-Fuzz"
	case "packagist":
		return "Packagist"
	case "photon os":
		return "Photon OS"
	case "pub":
		return "Pub"
	case "pypi":
		return "PyPI"
	case "red hat":
		return "Red Hat"
	case "rocky linux":
		return "Rocky Linux"
	case "rubygems":
		return "RubyGems"
	case "suse":
		return "SUSE"
	case "swifturl":
		return "SwiftURL"
	case "ubuntu":
		return "Ubuntu"
	case "wolfi":
		return "Wolfi"
	case "github actions":
		return "GitHub Actions"
	}
	return base
}

// SplitEcosystem splits an OSV ecosystem into its canonical base name and
// release scope: "Debian:12" → ("Debian", "12"), "Ubuntu:22.04:LTS" →
// ("Ubuntu", "22.04:LTS"), "npm" → ("npm", "").
func SplitEcosystem(eco string) (base, scope string) {
	eco = strings.TrimSpace(eco)
	base, scope, _ = strings.Cut(eco, ":")
	return canonicalBase(strings.TrimSpace(base)), strings.TrimSpace(scope)
}

// CanonicalEcosystem returns eco with its base name spelt as OSV spells it.
func CanonicalEcosystem(eco string) string {
	base, scope := SplitEcosystem(eco)
	if scope == "" {
		return base
	}
	return base + ":" + scope
}

// NormalizeName returns the form of a package name used as a key in eco:
// PyPI names are normalised per PEP 503 (lowercase, runs of -_. become -);
// other ecosystems' names are case-sensitive and kept as they are.
func NormalizeName(eco, name string) string {
	base, _ := SplitEcosystem(eco)
	name = strings.TrimSpace(name)
	if base != "PyPI" {
		return name
	}
	var b strings.Builder
	b.Grow(len(name))
	sep := false
	for _, c := range strings.ToLower(name) {
		if c == '-' || c == '_' || c == '.' {
			sep = true
			continue
		}
		if sep && b.Len() > 0 {
			b.WriteByte('-')
		}
		sep = false
		b.WriteRune(c)
	}
	return b.String()
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
