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
// Every package gets Type inventory.TypeComposer, Ecosystem
// inventory.EcosystemPackagist and a purl pkg:composer/vendor/name@version.
//
// Versions: a leading "v" ("v6.4.8", as Packagist shows tags) is removed.
// Composer itself normalises it away (version_normalized "6.4.8.0"), the
// GitHub advisories that OSV's Packagist records come from give ranges
// without it ("fixed": "6.4.8"), and osv-scanner's Packagist comparison
// strips it too; keeping it would make "v6.4.8" and "6.4.8" two versions.
package php

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strings"

	"mamori/internal/analyzer"
	"mamori/internal/inventory"
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

type parseFunc func(path string, data []byte) ([]inventory.Package, error)

// fileAnalyzer adapts a parse function and a path test to analyzer.Analyzer.
// It holds no mutable state and is safe for concurrent use.
type fileAnalyzer struct {
	name  string
	match func(path string) bool
	parse parseFunc
}

var _ analyzer.Analyzer = (*fileAnalyzer)(nil)

// NewInstalled returns the analyzer for Composer's installed.json.
func NewInstalled() []analyzer.Analyzer {
	return []analyzer.Analyzer{&fileAnalyzer{name: CatalogerInstalled, match: isInstalledJSON, parse: parseInstalledJSON}}
}

// NewLock returns the analyzer for composer.lock. Lock files inside a
// vendor directory (shipped by dependencies) are ignored.
func NewLock() []analyzer.Analyzer {
	return []analyzer.Analyzer{&fileAnalyzer{name: CatalogerComposerLock, match: isProjectComposerLock, parse: parseComposerLock}}
}

// Name implements analyzer.Analyzer.
func (a *fileAnalyzer) Name() string { return a.name }

// Version implements analyzer.Analyzer.
func (a *fileAnalyzer) Version() int { return analyzerVersion }

// Required implements analyzer.Analyzer. A matching file above the size cap
// is asked for as Metadata only, so that the walk does not materialise it and
// Analyze can report it as too large.
func (a *fileAnalyzer) Required(path string, info fs.FileInfo) analyzer.Need {
	if !a.match(path) {
		return analyzer.Skip
	}
	if info != nil && info.Size() > maxJSONSize {
		return analyzer.Metadata
	}
	return analyzer.Content
}

// Analyze implements analyzer.Analyzer.
func (a *fileAnalyzer) Analyze(ctx context.Context, in analyzer.Input) (*analyzer.Result, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	data, err := readCapped(in, maxJSONSize)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", a.name, in.Path, err)
	}
	pkgs, err := a.parse(in.Path, data)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", a.name, in.Path, err)
	}
	for i := range pkgs {
		pkgs[i].Cataloger = a.name
	}
	if len(pkgs) == 0 {
		return nil, nil
	}
	return &analyzer.Result{Packages: pkgs}, nil
}

// readCapped reads the whole input, refusing more than limit bytes.
func readCapped(in analyzer.Input, limit int64) ([]byte, error) {
	if in.Content == nil {
		if in.Info != nil && in.Info.Size() > limit {
			return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, in.Info.Size(), limit)
		}
		return nil, errors.New("php: no content given")
	}
	if in.Content.Size() > limit {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, in.Content.Size(), limit)
	}
	data, err := io.ReadAll(io.LimitReader(io.NewSectionReader(in.Content, 0, in.Content.Size()), limit+1))
	if err != nil {
		return nil, fmt.Errorf("read: %w", err)
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%w: more than %d bytes", ErrTooLarge, limit)
	}
	return data, nil
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
