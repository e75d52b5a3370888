package npm

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"mamori/internal/model"
)

// ErrUnsupportedLock is returned for a lock file of a version or shape this
// package does not read.
var ErrUnsupportedLock = errors.New("npm: unsupported lock file")

// packageLock is package-lock.json
// (https://docs.npmjs.com/cli/v10/configuring-npm/package-lock-json).
// Version 1 has only the nested "dependencies" tree; version 2 has both;
// version 3 has only the flat "packages" map keyed by install path.
type packageLock struct {
	LockfileVersion int                       `json:"lockfileVersion"`
	Packages        map[string]lockPackage    `json:"packages"`
	Dependencies    map[string]lockDependency `json:"dependencies"`
}

// lockPackage is one entry of the v2/v3 "packages" map.
type lockPackage struct {
	Name    string          `json:"name"`
	Version string          `json:"version"`
	Link    bool            `json:"link"`
	Dev     bool            `json:"dev"`
	License json.RawMessage `json:"license"`
}

// lockDependency is one entry of the v1 "dependencies" tree.
type lockDependency struct {
	Version      string                    `json:"version"`
	Dev          bool                      `json:"dev"`
	Bundled      bool                      `json:"bundled"`
	Dependencies map[string]lockDependency `json:"dependencies"`
}

var _ parseFunc = parsePackageLock

// parsePackageLock reads package-lock.json (or npm-shrinkwrap-style content
// with the same schema). With a "packages" map (v2, v3) it is used alone:
// the root "" and link entries (workspaces, file: links) are skipped, and so
// are entries not installed under a node_modules directory (workspace
// sources, which are the project's own code). With only "dependencies" (v1)
// the tree is walked; aliases ("npm:real@1.0.0") resolve to the real package
// and non-registry versions (git, file:, URLs) are skipped.
func parsePackageLock(path string, data []byte) ([]model.Package, error) {
	var lock packageLock
	if err := json.Unmarshal(data, &lock); err != nil {
		return nil, fmt.Errorf("parse package-lock.json: %w", err)
	}
	if lock.LockfileVersion < 1 || lock.LockfileVersion > 3 {
		return nil, fmt.Errorf("%w: lockfileVersion %d", ErrUnsupportedLock, lock.LockfileVersion)
	}
	var pkgs []model.Package
	if lock.Packages != nil {
		for key, e := range lock.Packages {
			if key == "" || e.Link {
				continue
			}
			i := strings.LastIndex(key, "node_modules/")
			if i < 0 || (i > 0 && key[i-1] != '/') {
				continue // a workspace's own source directory
			}
			name, version := e.Name, e.Version
			if name == "" {
				name = key[i+len("node_modules/"):]
			}
			name, version = resolveAlias(name, version)
			if !validName(name) || !validVersion(version) {
				continue
			}
			pkgs = append(pkgs, newPackage(name, version, path, e.Dev, licenses(e.License, nil)))
		}
		return dedupe(pkgs), nil
	}
	walkV1(lock.Dependencies, path, &pkgs)
	return dedupe(pkgs), nil
}

// walkV1 appends the packages of a v1 dependencies tree. Recursion depth is
// bounded by encoding/json's nesting limit.
func walkV1(deps map[string]lockDependency, path string, out *[]model.Package) {
	for name, d := range deps {
		name, version := resolveAlias(name, d.Version)
		if validName(name) && validVersion(version) {
			*out = append(*out, newPackage(name, version, path, d.Dev, nil))
		}
		walkV1(d.Dependencies, path, out)
	}
}

// resolveAlias returns the real package of an aliased entry
// ("string-width-cjs" with version "npm:string-width@4.2.3"), as npm writes
// it in v1 trees and, when the lock was built from node_modules, in v2/v3.
func resolveAlias(name, version string) (string, string) {
	if real, ok := strings.CutPrefix(version, "npm:"); ok {
		if n, v, ok := splitNameRange(real); ok {
			return n, v
		}
	}
	return name, version
}
