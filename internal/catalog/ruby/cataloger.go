// Package ruby catalogs Ruby gems (RubyGems ecosystem).
//
// Two kinds of analyzer are offered, and a scan runs one kind or the other so
// that the same package is never reported twice:
//
//   - NewInstalled: gems installed on disk, read from the gemspecs RubyGems
//     writes at install time (specifications/*.gemspec and
//     specifications/default/*.gemspec for Ruby's default gems).
//   - NewLock: gems a project declares, read from Gemfile.lock.
//
// Gemspecs are Ruby code; they are read textually and never evaluated.
// Every package gets Type model.TypeGem, Ecosystem
// model.EcosystemRubyGems and a purl pkg:gem/name@version (with a
// platform qualifier for installed platform gems).
package ruby

import (
	"errors"
	"strings"

	"mamori/internal/analyzer"
	"mamori/internal/catalog/filecat"
)

// Cataloger names, also used as Package.Cataloger and analyzer names.
const (
	CatalogerInstalled   = "gem-installed"
	CatalogerGemfileLock = "gemfile-lock"
)

// Size caps: each file is read into memory whole.
const (
	// maxGemspecSize: installed gemspecs list the gem's files; the largest
	// real ones are a few hundred KiB.
	maxGemspecSize = 8 << 20
	// maxLockSize: Gemfile.lock of a large application is tens of KiB;
	// 64 MiB matches the other lock-file caps and bounds a hostile file.
	maxLockSize = 64 << 20
)

// ErrTooLarge is returned for a file above the cap of its kind.
var ErrTooLarge = errors.New("ruby: file too large")

// analyzerVersion is bumped when the output of any Ruby analyzer may change.
const analyzerVersion = 1

// NewInstalled returns the analyzer for installed gems.
func NewInstalled() []analyzer.Analyzer {
	return []analyzer.Analyzer{
		filecat.New(CatalogerInstalled, analyzerVersion, isInstalledGemspec, parseGemspec, maxGemspecSize, ErrTooLarge),
	}
}

// NewLock returns the analyzer for Gemfile.lock. Lock files inside installed
// gems (gems/<name>/Gemfile.lock, shipped by some gems) are ignored.
func NewLock() []analyzer.Analyzer {
	return []analyzer.Analyzer{
		filecat.New(CatalogerGemfileLock, analyzerVersion, isProjectGemfileLock, parseGemfileLock, maxLockSize, ErrTooLarge),
	}
}

// isInstalledGemspec reports whether path is a gemspec RubyGems wrote at
// install time: <gem home>/specifications/<name>-<version>[-<platform>].gemspec
// or <gem home>/specifications/default/... for default gems. A project's own
// <name>.gemspec in a source tree is not.
func isInstalledGemspec(path string) bool {
	if !strings.HasSuffix(path, ".gemspec") {
		return false
	}
	dir := path[:max(strings.LastIndexByte(path, '/'), 0)]
	dir = strings.TrimSuffix(dir, "/default")
	return dir == "specifications" || strings.HasSuffix(dir, "/specifications")
}

// isProjectGemfileLock matches Gemfile.lock outside installed gem trees.
func isProjectGemfileLock(path string) bool {
	if path != "Gemfile.lock" && !strings.HasSuffix(path, "/Gemfile.lock") {
		return false
	}
	return !strings.Contains(path, "/gems/") && !strings.HasPrefix(path, "gems/") &&
		!strings.Contains(path, "/bundler/gems/")
}

// parseFunc is the shape of every parser of this package.
type parseFunc = filecat.ParseFunc
