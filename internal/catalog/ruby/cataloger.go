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
// Every package gets Type inventory.TypeGem, Ecosystem
// inventory.EcosystemRubyGems and a purl pkg:gem/name@version (with a
// platform qualifier for installed platform gems).
package ruby

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

type parseFunc func(path string, data []byte) ([]inventory.Package, error)

// fileAnalyzer adapts a parse function and a path test to analyzer.Analyzer.
// It holds no mutable state and is safe for concurrent use.
type fileAnalyzer struct {
	name    string
	match   func(path string) bool
	parse   parseFunc
	maxSize int64
}

var _ analyzer.Analyzer = (*fileAnalyzer)(nil)

// NewInstalled returns the analyzer for installed gems.
func NewInstalled() []analyzer.Analyzer {
	return []analyzer.Analyzer{
		&fileAnalyzer{name: CatalogerInstalled, match: isInstalledGemspec, parse: parseGemspec, maxSize: maxGemspecSize},
	}
}

// NewLock returns the analyzer for Gemfile.lock. Lock files inside installed
// gems (gems/<name>/Gemfile.lock, shipped by some gems) are ignored.
func NewLock() []analyzer.Analyzer {
	return []analyzer.Analyzer{
		&fileAnalyzer{name: CatalogerGemfileLock, match: isProjectGemfileLock, parse: parseGemfileLock, maxSize: maxLockSize},
	}
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
	if info != nil && info.Size() > a.maxSize {
		return analyzer.Metadata
	}
	return analyzer.Content
}

// Analyze implements analyzer.Analyzer.
func (a *fileAnalyzer) Analyze(ctx context.Context, in analyzer.Input) (*analyzer.Result, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	data, err := readCapped(in, a.maxSize)
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
		return nil, errors.New("ruby: no content given")
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
