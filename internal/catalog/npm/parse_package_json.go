package npm

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	"mamori/internal/model"
)

// packageJSON holds the fields of package.json that cataloging needs
// (https://docs.npmjs.com/cli/v10/configuring-npm/package-json).
type packageJSON struct {
	Name    string `json:"name"`
	Version string `json:"version"`
	// License is a SPDX expression string, or in old packages an object
	// {"type": "MIT", "url": ...}.
	License json.RawMessage `json:"license"`
	// Licenses is the deprecated array form: [{"type": "MIT"}] or ["MIT"].
	Licenses json.RawMessage `json:"licenses"`
}

var _ parseFunc = parsePackageJSON

// parsePackageJSON reads the package.json of an installed package. A file
// without a valid name or registry-style version describes no package and
// yields nothing (and no error); a file that is not a JSON object is an error.
func parsePackageJSON(path string, data []byte) ([]model.Package, error) {
	var pj packageJSON
	if err := json.Unmarshal(data, &pj); err != nil {
		return nil, fmt.Errorf("parse package.json: %w", err)
	}
	name := strings.TrimSpace(pj.Name)
	version := strings.TrimSpace(pj.Version)
	if !validName(name) || !validVersion(version) {
		return nil, nil
	}
	return []model.Package{newPackage(name, version, path, false, licenses(pj.License, pj.Licenses))}, nil
}

// licenses returns the declared licenses from the "license" and legacy
// "licenses" fields, ignoring shapes it does not know.
func licenses(license, legacy json.RawMessage) []string {
	var out []string
	add := func(s string) {
		s = strings.TrimSpace(s)
		if s != "" && len(s) <= 256 {
			out = append(out, s)
		}
	}
	addAny := func(raw json.RawMessage) {
		raw = bytes.TrimSpace(raw)
		if len(raw) == 0 {
			return
		}
		switch raw[0] {
		case '"':
			var s string
			if json.Unmarshal(raw, &s) == nil {
				add(s)
			}
		case '{':
			var o struct {
				Type string `json:"type"`
			}
			if json.Unmarshal(raw, &o) == nil {
				add(o.Type)
			}
		}
	}
	addAny(license)
	if len(out) == 0 {
		var arr []json.RawMessage
		if len(legacy) > 0 && json.Unmarshal(legacy, &arr) == nil {
			for _, e := range arr {
				addAny(e)
			}
		}
	}
	return out
}
