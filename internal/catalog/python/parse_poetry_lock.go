package python

import (
	"fmt"
	"slices"

	"github.com/pelletier/go-toml/v2"

	"mamori/internal/model"
)

// poetryLock is poetry.lock (TOML). Lock format 1.x marks development
// packages with category = "dev"; 2.0 drops the field; 2.1 (Poetry 2) lists
// the dependency groups of each package.
type poetryLock struct {
	Package []poetryPackage `toml:"package"`
}

type poetryPackage struct {
	Name     string   `toml:"name"`
	Version  string   `toml:"version"`
	Category string   `toml:"category"`
	Groups   []string `toml:"groups"`
	Source   struct {
		Type string `toml:"type"`
	} `toml:"source"`
}

var _ parseFunc = parsePoetryLock

// parsePoetryLock reads poetry.lock. Packages from a local directory (path
// dependencies, the project's own code) are skipped. Dev is set from the
// category (lock 1.x) or when "main" is not among the groups (lock 2.1).
func parsePoetryLock(path string, data []byte) ([]model.Package, error) {
	var lock poetryLock
	if err := toml.Unmarshal(data, &lock); err != nil {
		return nil, fmt.Errorf("parse poetry.lock: %w", err)
	}
	var pkgs []model.Package
	for _, p := range lock.Package {
		if p.Source.Type == "directory" || !validName(p.Name) || !validVersion(p.Version) {
			continue
		}
		dev := p.Category == "dev" || (len(p.Groups) > 0 && !slices.Contains(p.Groups, "main"))
		pkgs = append(pkgs, newPackage(p.Name, p.Version, path, dev, nil))
	}
	return dedupe(pkgs), nil
}
