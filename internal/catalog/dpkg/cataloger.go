// Package dpkg catalogs Debian packages from the dpkg database:
// var/lib/dpkg/status, and the one-file-per-package var/lib/dpkg/status.d/
// that distroless images use instead.
package dpkg

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strings"

	"mamori/internal/analyzer"
)

// Name is the analyzer name, also recorded as Package.Cataloger.
const Name = "dpkg"

// Paths read.
const (
	StatusPath    = "var/lib/dpkg/status"
	StatusDirPath = "var/lib/dpkg/status.d"
)

const (
	// maxStatusSize caps one status file. The status file of a large desktop
	// install (4,000 packages) is about 5 MiB; 64 MiB is ten times any real
	// image and keeps a hostile file from costing unbounded time.
	maxStatusSize = 64 << 20
	// maxLineSize caps how much of one line is kept. Longer lines (only ever
	// seen in Description or Conffiles continuations) are truncated, which
	// cannot change the fields read here; memory stays bounded.
	maxLineSize = 64 << 10
)

// Sentinel errors; Analyze wraps them with the path.
var (
	// ErrTooLarge: the file is larger than maxStatusSize.
	ErrTooLarge = errors.New("dpkg: status file too large")
	// ErrMalformed: the file holds no package paragraph but has lines that
	// are not RFC 822 style fields.
	ErrMalformed = errors.New("dpkg: malformed status file")
)

// Cataloger is the dpkg analyzer. It holds no state and is safe for
// concurrent use.
type Cataloger struct{}

var _ analyzer.Analyzer = (*Cataloger)(nil)

// New returns the dpkg cataloger.
func New() *Cataloger { return &Cataloger{} }

// Name implements analyzer.Analyzer.
func (*Cataloger) Name() string { return Name }

// Version implements analyzer.Analyzer. 2: md5sums files give owned files.
func (*Cataloger) Version() int { return 2 }

// Required wants var/lib/dpkg/status, the files directly in
// var/lib/dpkg/status.d/, and every package's md5sums (info/*.md5sums,
// status.d/*.md5sums): the files each package installed, with digests.
func (*Cataloger) Required(p string, _ fs.FileInfo) analyzer.Need {
	if isStatusFile(p) || isMD5sumsFile(p) {
		return analyzer.Content
	}
	return analyzer.Skip
}

func isStatusFile(p string) bool {
	if p == StatusPath {
		return true
	}
	dir, base := path.Split(p)
	return dir == StatusDirPath+"/" && base != "" && !strings.HasSuffix(base, ".md5sums") && base[0] != '.'
}

// Analyze parses one status file and returns its installed packages.
func (*Cataloger) Analyze(ctx context.Context, in analyzer.Input) (*analyzer.Result, error) {
	if in.Content == nil {
		return nil, fmt.Errorf("parse dpkg status %s: no content", in.Path)
	}
	if isMD5sumsFile(in.Path) {
		if size := in.Content.Size(); size > maxMD5sumsSize {
			return nil, fmt.Errorf("parse dpkg md5sums %s: %w (%d bytes, cap %d)", in.Path, ErrTooLarge, size, maxMD5sumsSize)
		}
		owned, skipped, err := ParseMD5sums(ctx, in.Content, in.Path)
		if err != nil {
			return nil, fmt.Errorf("parse dpkg md5sums %s: %w", in.Path, err)
		}
		res := &analyzer.Result{Owned: owned}
		if skipped > 0 {
			res.Warnings = []string{fmt.Sprintf("skipped %d malformed lines", skipped)}
		}
		return res, nil
	}
	if size := in.Content.Size(); size > maxStatusSize {
		return nil, fmt.Errorf("parse dpkg status %s: %w (%d bytes, cap %d)", in.Path, ErrTooLarge, size, maxStatusSize)
	}
	pkgs, skipped, err := ParseStatus(ctx, in.Content, in.Path, in.Path != StatusPath)
	if err != nil {
		return nil, fmt.Errorf("parse dpkg status %s: %w", in.Path, err)
	}
	res := &analyzer.Result{Packages: pkgs}
	if w := skipped.Warning(); w != "" {
		res.Warnings = []string{w}
	}
	return res, nil
}
