// Package npm catalogs JavaScript packages of the npm ecosystem.
//
// Two kinds of analyzer are offered, and a scan runs one kind or the other so
// that the same package is never reported twice:
//
//   - NewInstalled: what is really on disk in an image or root file system,
//     read from node_modules/**/package.json.
//   - NewLock: what a source tree declares, read from package-lock.json
//     (lockfileVersion 1, 2 and 3), yarn.lock (classic v1 and berry v2+) and
//     pnpm-lock.yaml (lockfileVersion 5.x, 6.x, 9.x).
//
// Every package gets Type inventory.TypeNPM, Ecosystem inventory.EcosystemNPM
// and a purl of the form pkg:npm/%40scope/name@version.
package npm

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
	CatalogerInstalled = "npm-installed"
	CatalogerNPMLock   = "npm-lock"
	CatalogerYarnLock  = "yarn-lock"
	CatalogerPNPMLock  = "pnpm-lock"
)

// Size caps. Everything an analyzer reads is held in memory at once, so each
// kind of file has a ceiling well above what real projects produce.
const (
	// maxPackageJSONSize: a package.json is normally a few KiB; old npm
	// versions copied the whole README into it, which stays far below this.
	maxPackageJSONSize = 16 << 20
	// maxLockSize: the largest real lock files (monorepos with tens of
	// thousands of packages) are around 30 MiB; 64 MiB leaves head room while
	// bounding the memory a hostile file can make the YAML/JSON decoders use.
	maxLockSize = 64 << 20
)

// ErrTooLarge is returned for a file above the cap of its kind.
var ErrTooLarge = errors.New("npm: file too large")

// analyzerVersion is bumped when the output of any npm analyzer may change.
const analyzerVersion = 1

// parseFunc parses the bytes of one file found at path.
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

// NewInstalled returns the analyzers for npm packages installed on disk: one
// reading node_modules/<name>/package.json and
// node_modules/@scope/<name>/package.json at any depth.
func NewInstalled() []analyzer.Analyzer {
	return []analyzer.Analyzer{
		&fileAnalyzer{name: CatalogerInstalled, match: isInstalledPackageJSON, parse: parsePackageJSON, maxSize: maxPackageJSONSize},
	}
}

// NewLock returns the analyzers for npm lock files in a source tree:
// package-lock.json (and npm-shrinkwrap.json, same schema), yarn.lock and
// pnpm-lock.yaml. Lock files inside
// node_modules (shipped by dependencies) are ignored.
func NewLock() []analyzer.Analyzer {
	return []analyzer.Analyzer{
		&fileAnalyzer{name: CatalogerNPMLock, match: baseIs("package-lock.json", "npm-shrinkwrap.json"), parse: parsePackageLock, maxSize: maxLockSize},
		&fileAnalyzer{name: CatalogerYarnLock, match: baseIs("yarn.lock"), parse: parseYarnLock, maxSize: maxLockSize},
		&fileAnalyzer{name: CatalogerPNPMLock, match: baseIs("pnpm-lock.yaml"), parse: parsePNPMLock, maxSize: maxLockSize},
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
		size := int64(-1)
		if in.Info != nil {
			size = in.Info.Size()
		}
		if size > limit {
			return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, size, limit)
		}
		return nil, errors.New("npm: no content given")
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

// baseIs matches a file by base name, outside node_modules: a lock file
// inside node_modules belongs to a dependency's own development and does not
// describe what the project installs.
func baseIs(bases ...string) func(string) bool {
	return func(path string) bool {
		base := path[strings.LastIndexByte(path, '/')+1:]
		for _, b := range bases {
			if base == b {
				return !inNodeModules(path)
			}
		}
		return false
	}
}

func inNodeModules(path string) bool {
	return strings.HasPrefix(path, "node_modules/") || strings.Contains(path, "/node_modules/")
}

// isInstalledPackageJSON reports whether path is the package.json of a
// package directory directly inside a node_modules directory:
// ".../node_modules/name/package.json" or ".../node_modules/@scope/name/package.json".
// Nested package.json files of a package (lib/package.json with only "type")
// and hidden entries (.bin, .cache) are not.
func isInstalledPackageJSON(path string) bool {
	const suffix = "/package.json"
	if !strings.HasSuffix(path, suffix) {
		return false
	}
	dir := path[:len(path)-len(suffix)]
	i := strings.LastIndex(dir, "node_modules/")
	if i < 0 || (i > 0 && dir[i-1] != '/') {
		return false
	}
	rest := dir[i+len("node_modules/"):]
	if rest == "" || rest[0] == '.' {
		return false
	}
	if rest[0] == '@' {
		scope, name, ok := strings.Cut(rest, "/")
		return ok && len(scope) > 1 && name != "" && name[0] != '.' && !strings.Contains(name, "/")
	}
	return !strings.Contains(rest, "/")
}
