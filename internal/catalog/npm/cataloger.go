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
// Every package gets Type model.TypeNPM, Ecosystem model.EcosystemNPM
// and a purl of the form pkg:npm/%40scope/name@version.
package npm

import (
	"errors"
	"strings"

	"mamori/internal/analyzer"
	"mamori/internal/catalog/filecat"
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
// NewInstalled returns the analyzers for npm packages installed on disk: one
// reading node_modules/<name>/package.json and
// node_modules/@scope/<name>/package.json at any depth.
func NewInstalled() []analyzer.Analyzer {
	return []analyzer.Analyzer{
		filecat.New(CatalogerInstalled, analyzerVersion, isInstalledPackageJSON, parsePackageJSON, maxPackageJSONSize, ErrTooLarge),
	}
}

// NewLock returns the analyzers for npm lock files in a source tree:
// package-lock.json (and npm-shrinkwrap.json, same schema), yarn.lock and
// pnpm-lock.yaml. Lock files inside
// node_modules (shipped by dependencies) are ignored.
func NewLock() []analyzer.Analyzer {
	return []analyzer.Analyzer{
		filecat.New(CatalogerNPMLock, analyzerVersion, baseIs("package-lock.json", "npm-shrinkwrap.json"), parsePackageLock, maxLockSize, ErrTooLarge),
		filecat.New(CatalogerYarnLock, analyzerVersion, baseIs("yarn.lock"), parseYarnLock, maxLockSize, ErrTooLarge),
		filecat.New(CatalogerPNPMLock, analyzerVersion, baseIs("pnpm-lock.yaml"), parsePNPMLock, maxLockSize, ErrTooLarge),
	}
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

// parseFunc is the shape of every parser of this package.
type parseFunc = filecat.ParseFunc
