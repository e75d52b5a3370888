package python

import (
	"encoding/json"
	"fmt"
	"strings"

	"mamori/internal/model"
)

// pipfileLock is Pipfile.lock (JSON, written by pipenv): the "default"
// and "develop" sections map names to pinned entries.
type pipfileLock struct {
	Default map[string]pipfileEntry `json:"default"`
	Develop map[string]pipfileEntry `json:"develop"`
}

type pipfileEntry struct {
	// Version is "==1.2.3"; absent for VCS and path entries.
	Version string `json:"version"`
}

var _ parseFunc = parsePipfileLock

// parsePipfileLock reads Pipfile.lock. Entries without a "==" version (git,
// editable paths) are skipped; a package in both sections is not Dev.
func parsePipfileLock(path string, data []byte) ([]model.Package, error) {
	var lock pipfileLock
	if err := json.Unmarshal(data, &lock); err != nil {
		return nil, fmt.Errorf("parse Pipfile.lock: %w", err)
	}
	var pkgs []model.Package
	for _, sec := range []struct {
		entries map[string]pipfileEntry
		dev     bool
	}{{lock.Default, false}, {lock.Develop, true}} {
		for name, e := range sec.entries {
			v, ok := strings.CutPrefix(e.Version, "==")
			if !ok {
				continue
			}
			v = strings.TrimPrefix(v, "=") // "===" arbitrary equality
			if validName(name) && validVersion(v) {
				pkgs = append(pkgs, newPackage(name, v, path, sec.dev, nil))
			}
		}
	}
	return dedupe(pkgs), nil
}
