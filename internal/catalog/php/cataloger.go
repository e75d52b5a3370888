// Package php catalogs PHP packages installed or locked by Composer
// (Packagist ecosystem).
//
// Two kinds of analyzer are offered, and a scan runs one kind or the other so
// that the same package is never reported twice:
//
//   - NewInstalled: packages installed on disk, read from
//     vendor/composer/installed.json (Composer 1 array, Composer 2 object).
//   - NewLock: packages a project locks, read from composer.lock.
//
// Every package gets Type model.TypeComposer, Ecosystem
// model.EcosystemPackagist and a purl pkg:composer/vendor/name@version.
//
// Versions: a leading "v" ("v6.4.8", as Packagist shows tags) is removed.
// Composer itself normalises it away (version_normalized "6.4.8.0"), the
// GitHub advisories that OSV's Packagist records come from give ranges
// without it ("fixed": "6.4.8"), and osv-scanner's Packagist comparison
// strips it too; keeping it would make "v6.4.8" and "6.4.8" two versions.
package php

import (
	"errors"
	"strings"

	"mamori/internal/analyzer"
	"mamori/internal/catalog/filecat"
)

// Cataloger names, also used as Package.Cataloger and analyzer names.
const (
	CatalogerInstalled    = "composer-installed"
	CatalogerComposerLock = "composer-lock"
)

// maxJSONSize caps installed.json and composer.lock: both carry the full
// composer.json of every package (descriptions, autoload maps) and reach a
// few MiB for large applications; 64 MiB bounds a hostile file.
const maxJSONSize = 64 << 20

// ErrTooLarge is returned for a file above the cap.
var ErrTooLarge = errors.New("php: file too large")

// analyzerVersion is bumped when the output of any PHP analyzer may change.
const analyzerVersion = 1

// NewInstalled returns the analyzer for Composer's installed.json.
func NewInstalled() []analyzer.Analyzer {
	return []analyzer.Analyzer{filecat.New(CatalogerInstalled, analyzerVersion, isInstalledJSON, parseInstalledJSON, maxJSONSize, ErrTooLarge)}
}

// NewLock returns the analyzer for composer.lock. Lock files inside a
// vendor directory (shipped by dependencies) are ignored.
func NewLock() []analyzer.Analyzer {
	return []analyzer.Analyzer{filecat.New(CatalogerComposerLock, analyzerVersion, isProjectComposerLock, parseComposerLock, maxJSONSize, ErrTooLarge)}
}

// isInstalledJSON matches <vendor-dir>/composer/installed.json.
func isInstalledJSON(path string) bool {
	return path == "composer/installed.json" || strings.HasSuffix(path, "/composer/installed.json")
}

// isProjectComposerLock matches composer.lock outside any vendor directory.
func isProjectComposerLock(path string) bool {
	if path != "composer.lock" && !strings.HasSuffix(path, "/composer.lock") {
		return false
	}
	return !strings.HasPrefix(path, "vendor/") && !strings.Contains(path, "/vendor/")
}

// parseFunc is the shape of every parser of this package.
type parseFunc = filecat.ParseFunc
