package store

import (
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"mamori/internal/model"
)

// Input caps that the store itself enforces (the server also caps the body).
const (
	// maxIDLen bounds IDs and names used as keys (scan IDs, target names,
	// advisory IDs): real ones are well under 1 KiB.
	maxIDLen = 4096
	// maxTypeLen bounds short enumerations (target type, finding kind).
	maxTypeLen = 64
)

// checker collects the first problem found in a result.
type checker struct{ err error }

func (c *checker) fail(format string, args ...any) {
	if c.err == nil {
		c.err = fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
	}
}

// str refuses text that a database cannot store faithfully: PostgreSQL
// rejects NUL bytes and invalid UTF-8 in text columns.
func (c *checker) str(field, v string) {
	if c.err != nil {
		return
	}
	if strings.IndexByte(v, 0) >= 0 {
		c.fail("%s contains a NUL byte", field)
		return
	}
	if !utf8.ValidString(v) {
		c.fail("%s is not valid UTF-8", field)
	}
}

func (c *checker) required(field, v string, maxLen int) {
	if strings.TrimSpace(v) == "" {
		c.fail("%s is empty", field)
		return
	}
	if len(v) > maxLen {
		c.fail("%s is longer than %d bytes", field, maxLen)
		return
	}
	c.str(field, v)
}

// validateResult checks a result with the one model validation (the
// clock check is the ingest's, not the store's) and wraps its error in
// ErrInvalid.
func validateResult(res *model.Result) error {
	if err := res.Validate(time.Time{}); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	return nil
}

// validateMatches checks the rows of a re-match (ReplaceVulnerabilities, ReplaceMatches).
func validateMatches(vulns []model.Vulnerability, malware []model.Finding) error {
	if err := model.ValidateVulnerabilities(vulns); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	if err := model.ValidateFindings(malware); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	return nil
}
