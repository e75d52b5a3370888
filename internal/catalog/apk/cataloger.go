// Package apk catalogs Alpine (and Wolfi, Chainguard) packages from apk's
// installed database, lib/apk/db/installed.
package apk

import (
	"context"
	"errors"
	"fmt"
	"io/fs"

	"mamori/internal/analyzer"
)

// Name is the analyzer name, also recorded as Package.Cataloger.
const Name = "apk"

// InstalledPath is the database read.
const InstalledPath = "lib/apk/db/installed"

const (
	// maxInstalledSize caps the database. It lists every installed file, so
	// it grows faster than dpkg's status: a large Alpine image (1,500
	// packages) has about 20 MiB. 128 MiB leaves room and bounds the time a
	// hostile file can cost.
	maxInstalledSize = 128 << 20
	// maxLineSize caps how much of one line is kept; the fields read here
	// are short, longer lines are truncated and cannot change them.
	maxLineSize = 64 << 10
)

// Sentinel errors; Analyze wraps them with the path.
var (
	// ErrTooLarge: the database is larger than maxInstalledSize.
	ErrTooLarge = errors.New("apk: installed database too large")
	// ErrMalformed: no package record, and lines that are not "X:value".
	ErrMalformed = errors.New("apk: malformed installed database")
)

// Cataloger is the apk analyzer. It holds no state and is safe for
// concurrent use.
type Cataloger struct{}

var _ analyzer.Analyzer = (*Cataloger)(nil)

// New returns the apk cataloger.
func New() *Cataloger { return &Cataloger{} }

// Name implements analyzer.Analyzer.
func (*Cataloger) Name() string { return Name }

// Version implements analyzer.Analyzer.
func (*Cataloger) Version() int { return 2 } // 2: owned files (F:, R:, Z:)

// Required wants lib/apk/db/installed.
func (*Cataloger) Required(p string, _ fs.FileInfo) analyzer.Need {
	if p == InstalledPath {
		return analyzer.Content
	}
	return analyzer.Skip
}

// Analyze parses the installed database and returns its packages.
func (*Cataloger) Analyze(ctx context.Context, in analyzer.Input) (*analyzer.Result, error) {
	if in.Content == nil {
		return nil, fmt.Errorf("parse apk installed %s: no content", in.Path)
	}
	if size := in.Content.Size(); size > maxInstalledSize {
		return nil, fmt.Errorf("parse apk installed %s: %w (%d bytes, cap %d)", in.Path, ErrTooLarge, size, maxInstalledSize)
	}
	pkgs, owned, skipped, err := ParseInstalledFiles(ctx, in.Content, in.Path)
	if err != nil {
		return nil, fmt.Errorf("parse apk installed %s: %w", in.Path, err)
	}
	res := &analyzer.Result{Packages: pkgs, Owned: owned}
	if w := skipped.Warning(); w != "" {
		res.Warnings = []string{w}
	}
	return res, nil
}
