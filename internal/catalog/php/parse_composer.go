package php

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"

	"mamori/internal/model"
)

// ErrUnknownShape is returned for JSON that is neither form of installed.json.
var ErrUnknownShape = errors.New("php: installed.json is neither an array nor an object with packages")

// composerLock is composer.lock (https://getcomposer.org/doc/01-basic-usage.md#commit-your-composer-lock-file-to-version-control).
type composerLock struct {
	Packages    []composerPackage `json:"packages"`
	PackagesDev []composerPackage `json:"packages-dev"`
}

// installedV2 is vendor/composer/installed.json as Composer 2 writes it.
type installedV2 struct {
	Packages        []composerPackage `json:"packages"`
	DevPackageNames []string          `json:"dev-package-names"`
}

var (
	_ parseFunc = parseComposerLock
	_ parseFunc = parseInstalledJSON
)

// parseComposerLock reads composer.lock: "packages" and, as Dev,
// "packages-dev".
func parseComposerLock(path string, data []byte) ([]model.Package, error) {
	var lock composerLock
	if err := json.Unmarshal(data, &lock); err != nil {
		return nil, fmt.Errorf("parse composer.lock: %w", err)
	}
	var pkgs []model.Package
	for _, sec := range []struct {
		list []composerPackage
		dev  bool
	}{{lock.Packages, false}, {lock.PackagesDev, true}} {
		for _, p := range sec.list {
			if pkg, ok := newPackage(p, path, sec.dev); ok {
				pkgs = append(pkgs, pkg)
			}
		}
	}
	return dedupe(pkgs), nil
}

// parseInstalledJSON reads vendor/composer/installed.json: a plain array of
// packages (Composer 1) or {"packages": [...], "dev": bool,
// "dev-package-names": [...]} (Composer 2, which also says which installed
// packages are development-only).
func parseInstalledJSON(path string, data []byte) ([]model.Package, error) {
	var list []composerPackage
	dev := map[string]bool{}
	switch trimmed := bytes.TrimLeft(data, " \t\r\n\ufeff"); {
	case len(trimmed) > 0 && trimmed[0] == '[':
		if err := json.Unmarshal(trimmed, &list); err != nil {
			return nil, fmt.Errorf("parse installed.json (Composer 1): %w", err)
		}
	case len(trimmed) > 0 && trimmed[0] == '{':
		var v2 installedV2
		if err := json.Unmarshal(trimmed, &v2); err != nil {
			return nil, fmt.Errorf("parse installed.json (Composer 2): %w", err)
		}
		list = v2.Packages
		for _, n := range v2.DevPackageNames {
			dev[n] = true
		}
	default:
		return nil, ErrUnknownShape
	}
	var pkgs []model.Package
	for _, p := range list {
		if pkg, ok := newPackage(p, path, dev[p.Name]); ok {
			pkgs = append(pkgs, pkg)
		}
	}
	return dedupe(pkgs), nil
}
