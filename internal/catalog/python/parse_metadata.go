package python

import (
	"errors"
	"fmt"
	"strings"

	"mamori/internal/model"
)

// ErrMissingField is returned for a metadata file without a usable Name or
// Version.
var ErrMissingField = errors.New("python: metadata lacks Name or Version")

// Limits of what a license string may be to be reported as one: the License
// field of old projects often holds the whole license text.
const maxLicenseLen = 128

var _ parseFunc = parseMetadata

// parseMetadata reads core metadata
// (https://packaging.python.org/en/latest/specifications/core-metadata/):
// RFC 822 style headers up to the first empty line, then the description.
// Like Python's email parser (compat32, which pip and importlib.metadata
// use) a line starting with whitespace continues the previous header and a
// line that is not a header ends the headers.
//
// Licenses come from License-Expression (metadata 2.4); else from License
// when it is one short line and not "UNKNOWN"; else from the
// "License :: ... :: X" classifiers.
func parseMetadata(path string, data []byte) ([]model.Package, error) {
	var (
		name, version, license, expr string
		multiLineLicense             bool
		classifiers                  []string
		last                         string // key of the header being continued
	)
	text := string(data)
	for text != "" {
		var line string
		line, text, _ = strings.Cut(text, "\n")
		line = strings.TrimSuffix(line, "\r")
		if line == "" {
			break
		}
		if line[0] == ' ' || line[0] == '\t' {
			if last == "license" && strings.TrimSpace(line) != "" {
				multiLineLicense = true
			}
			continue
		}
		key, value, ok := strings.Cut(line, ":")
		if !ok {
			break
		}
		key = strings.ToLower(strings.TrimSpace(key))
		value = strings.TrimSpace(value)
		last = key
		switch key {
		case "name":
			if name == "" {
				name = value
			}
		case "version":
			if version == "" {
				version = value
			}
		case "license":
			license = value
		case "license-expression":
			expr = value
		case "classifier":
			if rest, ok := strings.CutPrefix(value, "License ::"); ok {
				parts := strings.Split(rest, "::")
				if l := strings.TrimSpace(parts[len(parts)-1]); l != "" && l != "OSI Approved" && len(l) <= maxLicenseLen {
					classifiers = append(classifiers, l)
				}
			}
		}
	}
	if !validName(name) || !validVersion(version) {
		return nil, fmt.Errorf("%w (Name %q, Version %q)", ErrMissingField, truncate(name), truncate(version))
	}
	var lics []string
	switch {
	case expr != "" && len(expr) <= maxLicenseLen:
		lics = []string{expr}
	case license != "" && !multiLineLicense && len(license) <= maxLicenseLen && !strings.EqualFold(license, "UNKNOWN"):
		lics = []string{license}
	default:
		lics = classifiers
	}
	return []model.Package{newPackage(name, version, path, false, lics)}, nil
}

func truncate(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}
