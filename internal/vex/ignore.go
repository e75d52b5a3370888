package vex

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"mamori/internal/model"
)

// MaxFileBytes bounds an ignore file or VEX document read into memory:
// hand-written suppressions are a few KiB.
const MaxFileBytes = 8 << 20

// ErrInvalid is returned (wrapped) for an ignore file or VEX document that
// cannot be used.
var ErrInvalid = errors.New("vex: invalid suppression file")

// IgnoreRule is one entry of an ignore file:
//
//	ignore:
//	  - id: CVE-2023-45853              # the advisory ID or any alias
//	    package: zlib                   # optional: package or source package name
//	    purl: pkg:deb/debian/zlib1g     # optional: purl; without version = all versions
//	    reason: minizip is not shipped  # required
//	    expires: 2026-06-30             # optional: last day it applies (or RFC 3339)
type IgnoreRule struct {
	ID      string `yaml:"id" json:"id"`
	Package string `yaml:"package,omitempty" json:"package,omitempty"`
	PURL    string `yaml:"purl,omitempty" json:"purl,omitempty"`
	Reason  string `yaml:"reason" json:"reason"`
	Expires string `yaml:"expires,omitempty" json:"expires,omitempty"`
	// until is when the entry stops applying (zero: never).
	until time.Time
}

type ignoreFile struct {
	Ignore []IgnoreRule `yaml:"ignore"`
}

// ParseIgnore reads an ignore file. Unknown keys, entries without id or
// reason, and unreadable expiry dates are errors (wrapping ErrInvalid), so
// that a typo never silently ignores more, or less, than meant.
func ParseIgnore(data []byte) ([]IgnoreRule, error) {
	if len(data) > MaxFileBytes {
		return nil, fmt.Errorf("%w: ignore file over %d bytes", ErrInvalid, MaxFileBytes)
	}
	var f ignoreFile
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	for i := range f.Ignore {
		ig := &f.Ignore[i]
		ig.ID = strings.TrimSpace(ig.ID)
		if ig.ID == "" {
			return nil, fmt.Errorf("%w: ignore[%d]: missing id", ErrInvalid, i)
		}
		if strings.TrimSpace(ig.Reason) == "" {
			return nil, fmt.Errorf("%w: ignore[%d] (%s): missing reason", ErrInvalid, i, ig.ID)
		}
		if ig.Expires != "" {
			t, err := parseExpiry(ig.Expires)
			if err != nil {
				return nil, fmt.Errorf("%w: ignore[%d] (%s): expires %q: want YYYY-MM-DD or RFC 3339", ErrInvalid, i, ig.ID, ig.Expires)
			}
			ig.until = t
		}
	}
	return f.Ignore, nil
}

// LoadIgnoreFile reads and parses an ignore file.
func LoadIgnoreFile(path string) ([]IgnoreRule, error) {
	data, err := readCapped(path)
	if err != nil {
		return nil, err
	}
	rules, err := ParseIgnore(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return rules, nil
}

// parseExpiry reads a date (the entry applies through that whole day, UTC)
// or an RFC 3339 time (it applies until that instant).
func parseExpiry(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	if d, err := time.Parse(time.DateOnly, s); err == nil {
		return d.Add(24 * time.Hour), nil
	}
	return time.Parse(time.RFC3339, s)
}

func (ig *IgnoreRule) expired(now time.Time) bool {
	return !ig.until.IsZero() && !now.Before(ig.until)
}

func (ig *IgnoreRule) matches(v model.Vulnerability) bool {
	if !idMatches(ig.ID, v) {
		return false
	}
	if ig.Package != "" && ig.Package != v.Package.Name && ig.Package != v.Package.SourceName {
		return false
	}
	if ig.PURL != "" && !purlMatches(ig.PURL, v.Package.PURL) {
		return false
	}
	return true
}

func readCapped(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("vex: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxFileBytes+1))
	if err != nil {
		return nil, fmt.Errorf("vex: read %s: %w", path, err)
	}
	if len(data) > MaxFileBytes {
		return nil, fmt.Errorf("%w: %s is over %d bytes", ErrInvalid, path, MaxFileBytes)
	}
	return data, nil
}
