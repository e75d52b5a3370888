// Package python catalogs Python packages (PyPI ecosystem).
//
// Two kinds of analyzer are offered, and a scan runs one kind or the other so
// that the same package is never reported twice:
//
//   - NewInstalled: what is installed on disk in an image or root file
//     system: *.dist-info/METADATA (wheels, pip), *.egg-info/PKG-INFO and
//     EGG-INFO/PKG-INFO (setuptools), and bare *.egg-info files (distutils).
//   - NewLock: what a source tree declares: poetry.lock, Pipfile.lock and
//     requirements*.txt (exact "==" pins only).
//
// Every package gets Type model.TypePyPI, Ecosystem model.EcosystemPyPI
// and a purl pkg:pypi/<name>@<version> whose name is normalised per PEP 503,
// while Package.Name keeps the name as the project spells it.
package python

import (
	"errors"
	"strings"

	"mamori/internal/analyzer"
	"mamori/internal/catalog/filecat"
)

// Cataloger names, also used as Package.Cataloger and analyzer names.
const (
	CatalogerInstalled    = "python-installed"
	CatalogerPoetryLock   = "poetry-lock"
	CatalogerPipfileLock  = "pipfile-lock"
	CatalogerRequirements = "pip-requirements"
)

// Size caps: each file is read into memory whole.
const (
	// maxMetadataSize: METADATA carries the project's long description
	// (the PyPI page); the largest real ones are a few hundred KiB.
	maxMetadataSize = 16 << 20
	// maxLockSize: poetry.lock and Pipfile.lock of large projects are a few
	// MiB (hashes of every wheel); 64 MiB bounds a hostile file.
	maxLockSize = 64 << 20
	// maxRequirementsSize: requirements files are small text; hash-pinned
	// ones for hundreds of packages stay far below this.
	maxRequirementsSize = 16 << 20
)

// ErrTooLarge is returned for a file above the cap of its kind.
var ErrTooLarge = errors.New("python: file too large")

// analyzerVersion is bumped when the output of any Python analyzer may change.
const analyzerVersion = 1

// NewInstalled returns the analyzer for installed Python distributions.
func NewInstalled() []analyzer.Analyzer {
	return []analyzer.Analyzer{
		filecat.New(CatalogerInstalled, analyzerVersion, isInstalledMetadata, parseMetadata, maxMetadataSize, ErrTooLarge),
	}
}

// NewLock returns the analyzers for Python lock and requirements files in a
// source tree. Files inside installed trees (site-packages, dist-packages,
// node_modules) are ignored: they belong to dependencies.
func NewLock() []analyzer.Analyzer {
	return []analyzer.Analyzer{
		filecat.New(CatalogerPoetryLock, analyzerVersion, lockPath(baseIs("poetry.lock")), parsePoetryLock, maxLockSize, ErrTooLarge),
		filecat.New(CatalogerPipfileLock, analyzerVersion, lockPath(baseIs("Pipfile.lock")), parsePipfileLock, maxLockSize, ErrTooLarge),
		filecat.New(CatalogerRequirements, analyzerVersion, lockPath(isRequirementsPath), parseRequirements, maxRequirementsSize, ErrTooLarge),
	}
}

// isInstalledMetadata reports whether path holds the core metadata of an
// installed distribution.
func isInstalledMetadata(path string) bool {
	switch {
	case strings.HasSuffix(path, ".dist-info/METADATA"),
		strings.HasSuffix(path, ".egg-info/PKG-INFO"),
		strings.HasSuffix(path, "/EGG-INFO/PKG-INFO") || path == "EGG-INFO/PKG-INFO":
		return true
	case strings.HasSuffix(path, ".egg-info"):
		// A bare file written by distutils' install_egg_info; Required is
		// only asked about regular files, so this is not the directory.
		return len(path) > len(".egg-info") && path[len(path)-len(".egg-info")-1] != '/'
	}
	return false
}

// lockPath matches with ok, outside installed trees.
func lockPath(ok func(path string) bool) func(string) bool {
	return func(path string) bool {
		if !ok(path) {
			return false
		}
		for _, dir := range []string{"site-packages/", "dist-packages/", "node_modules/"} {
			if strings.HasPrefix(path, dir) || strings.Contains(path, "/"+dir) {
				return false
			}
		}
		return true
	}
}

// isRequirementsPath matches pip requirements files by the names projects
// give them: requirements.txt, requirements-dev.txt, dev-requirements.txt,
// test_requirements.txt ..., and any *.txt in a "requirements" directory
// (requirements/base.txt).
func isRequirementsPath(path string) bool {
	if !strings.HasSuffix(path, ".txt") {
		return false
	}
	slash := strings.LastIndexByte(path, '/')
	if strings.Contains(path[slash+1:], "requirements") {
		return true
	}
	dir := path[:max(slash, 0)]
	return dir == "requirements" || strings.HasSuffix(dir, "/requirements")
}

func baseIs(base string) func(string) bool {
	return func(path string) bool {
		return path == base || strings.HasSuffix(path, "/"+base)
	}
}

// parseFunc is the shape of every parser of this package.
type parseFunc = filecat.ParseFunc
