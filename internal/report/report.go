// Package report writes scan results in the formats users and tools read:
// a table for people, mamori's JSON (docs/json-output.md), CycloneDX and
// SPDX SBOMs, SARIF for code-scanning UIs and JUnit for CI dashboards.
package report

import (
	"fmt"
	"io"
	"strings"

	"mamori/internal/model"
)

// Format names an output format.
type Format string

const (
	FormatTable     Format = "table"
	FormatJSON      Format = "json"
	FormatCycloneDX Format = "cyclonedx"
	FormatSPDXJSON  Format = "spdx-json"
	FormatSARIF     Format = "sarif"
	FormatJUnit     Format = "junit"
)

// Formats lists every format, for help texts and validation.
var formats = []Format{FormatTable, FormatJSON, FormatCycloneDX, FormatSPDXJSON, FormatSARIF, FormatJUnit}

// Formats returns the supported formats.
func Formats() []Format { return append([]Format(nil), formats...) }

// ParseFormat validates a format name.
func ParseFormat(s string) (Format, error) {
	for _, f := range formats {
		if string(f) == strings.ToLower(s) {
			return f, nil
		}
	}
	names := make([]string, len(formats))
	for i, f := range formats {
		names[i] = string(f)
	}
	return "", fmt.Errorf("report: unknown format %q (want one of %s)", s, strings.Join(names, ", "))
}

// Options tune a report.
type Options struct {
	// SBOM says the user asked for an inventory only: the table lists
	// packages rather than vulnerabilities.
	SBOM bool
}

// Write writes results (one per target) in format f.
func Write(w io.Writer, f Format, results []*model.Result, opts Options) error {
	switch f {
	case FormatTable:
		return writeTable(w, results, opts)
	case FormatJSON:
		return writeJSON(w, results)
	case FormatCycloneDX:
		return writeCycloneDX(w, results)
	case FormatSPDXJSON:
		return writeSPDX(w, results)
	case FormatSARIF:
		return writeSARIF(w, results)
	case FormatJUnit:
		return writeJUnit(w, results)
	}
	return fmt.Errorf("report: unknown format %q", f)
}

// warnings lists the results' warnings, each prefixed with its target's
// name when there is more than one target.
func warnings(results []*model.Result) []string {
	var out []string
	for _, r := range results {
		for _, w := range r.Warnings {
			if len(results) > 1 {
				w = r.Target.Name + ": " + w
			}
			out = append(out, w)
		}
	}
	return out
}
