// Package osrelease detects the operating system of an image or file tree
// from its release files (os-release, lsb-release, alpine-release, the Red
// Hat family's *-release files and debian_version), chooses the best answer
// (Resolve), and scopes OS packages to it (Apply, OSVEcosystem).
package osrelease

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"

	"mamori/internal/analyzer"
	"mamori/internal/model"
)

// Sentinel errors. Analyze wraps them with the path.
var (
	// ErrTooLarge: the release file is larger than maxReleaseFileSize.
	ErrTooLarge = errors.New("osrelease: release file too large")
	// ErrMalformed: the file does not have the expected syntax.
	ErrMalformed = errors.New("osrelease: malformed release file")
	// ErrNoID: an os-release or lsb-release file without an ID.
	ErrNoID = errors.New("osrelease: no distribution ID")
	// ErrUnknownDistro: a Red Hat style release line naming a distribution
	// this package does not know.
	ErrUnknownDistro = errors.New("osrelease: unknown distribution")
)

// maxReleaseFileSize caps what is read of one release file. Real ones are
// under 1 KiB; 64 KiB leaves room for comments while keeping a hostile file
// from costing memory.
const maxReleaseFileSize = 64 << 10

// Paths the analyzer reads, in Resolve's order of precedence (best first).
const (
	PathOSRelease        = "etc/os-release"
	PathUsrLibOSRelease  = "usr/lib/os-release"
	PathLSBRelease       = "etc/lsb-release"
	PathAlpineRelease    = "etc/alpine-release"
	PathRockyRelease     = "etc/rocky-release"
	PathAlmaLinuxRelease = "etc/almalinux-release"
	PathCentOSRelease    = "etc/centos-release"
	PathRedHatRelease    = "etc/redhat-release"
	PathSystemRelease    = "etc/system-release"
	PathDebianVersion    = "etc/debian_version"
)

// precedence lists the paths from best to worst source of truth.
var precedence = [...]string{
	PathOSRelease, PathUsrLibOSRelease, PathLSBRelease, PathAlpineRelease,
	PathRockyRelease, PathAlmaLinuxRelease, PathCentOSRelease,
	PathRedHatRelease, PathSystemRelease, PathDebianVersion,
}

// parserFor returns the parser of a wanted path, nil for other paths.
func parserFor(path string) func(io.Reader) (*model.OS, error) {
	switch path {
	case PathOSRelease, PathUsrLibOSRelease:
		return ParseOSRelease
	case PathLSBRelease:
		return ParseLSBRelease
	case PathAlpineRelease:
		return ParseAlpineRelease
	case PathRockyRelease, PathAlmaLinuxRelease, PathCentOSRelease, PathRedHatRelease, PathSystemRelease:
		return ParseRedHatRelease
	case PathDebianVersion:
		return ParseDebianVersion
	}
	return nil
}

// Analyzer reads release files. It holds no state and is safe for
// concurrent use.
type Analyzer struct{}

var _ analyzer.Analyzer = (*Analyzer)(nil)

// New returns the OS detection analyzer.
func New() *Analyzer { return &Analyzer{} }

// Name implements analyzer.Analyzer.
func (*Analyzer) Name() string { return "os-release" }

// Version implements analyzer.Analyzer.
func (*Analyzer) Version() int { return 1 }

// Required wants the content of the release files listed in precedence.
func (*Analyzer) Required(path string, _ fs.FileInfo) analyzer.Need {
	if parserFor(path) != nil {
		return analyzer.Content
	}
	return analyzer.Skip
}

// Analyze parses one release file and returns Result.OS. The caller keeps
// the per-path results and chooses among them with Resolve.
func (*Analyzer) Analyze(_ context.Context, in analyzer.Input) (*analyzer.Result, error) {
	parse := parserFor(in.Path)
	if parse == nil {
		return nil, fmt.Errorf("osrelease %s: not a release file", in.Path)
	}
	if in.Content == nil {
		return nil, fmt.Errorf("osrelease %s: no content", in.Path)
	}
	if in.Content.Size() > maxReleaseFileSize {
		return nil, fmt.Errorf("osrelease %s: %w (%d bytes, cap %d)", in.Path, ErrTooLarge, in.Content.Size(), maxReleaseFileSize)
	}
	os, err := parse(in.Content)
	if err != nil {
		return nil, fmt.Errorf("osrelease %s: %w", in.Path, err)
	}
	return &analyzer.Result{OS: os}, nil
}
