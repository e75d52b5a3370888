// Package rust catalogs Rust crates from Cargo.lock files and from the
// dependency list cargo-auditable embeds in binaries (the ".dep-v0" section,
// https://github.com/rust-secure-code/cargo-auditable/blob/master/PARAMETERS.md).
package rust

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strings"

	packageurl "github.com/package-url/packageurl-go"

	"mamori/internal/analyzer"
	"mamori/internal/model"
)

const (
	// Name is the analyzer's name.
	Name = "rust"
	// CatalogerLock and CatalogerAuditable are the Cataloger of packages
	// found in Cargo.lock files and in cargo-auditable binaries.
	CatalogerLock      = "rust-cargo-lock"
	CatalogerAuditable = "rust-cargo-auditable"
	// version is bumped whenever the output for the same input may change.
	version = 1

	lockFileName = "Cargo.lock"
)

// Caps.
const (
	// maxLockBytes bounds a Cargo.lock read into memory. The largest real
	// lock files (big workspaces with ~1500 crates) are under 1 MiB.
	maxLockBytes = 16 << 20
	// minBinarySize is the smallest executable looked at: a Rust binary
	// with an audit section is hundreds of KiB; this skips scripts.
	minBinarySize = 16 << 10
	// maxSectionBytes bounds the compressed .dep-v0 section; real ones are
	// a few KiB (tens of bytes per crate, compressed).
	maxSectionBytes = 8 << 20
	// maxAuditJSONBytes bounds the decompressed audit JSON (a zlib bomb in
	// the section must not inflate without limit).
	maxAuditJSONBytes = 32 << 20
)

// Sentinel errors.
var (
	// ErrTooLarge: a file or section is over its cap.
	ErrTooLarge = errors.New("rust: input over size cap")
	// ErrMalformed: the input does not follow its format.
	ErrMalformed = errors.New("rust: malformed input")
	// errNoAudit: the executable has no .dep-v0 section (the normal case).
	errNoAudit = errors.New("rust: no cargo-auditable section")
)

// Cataloger is the Rust analyzer. Create it with New.
type Cataloger struct{}

var _ analyzer.Analyzer = (*Cataloger)(nil)

// New returns the Rust analyzer: Cargo.lock files and cargo-auditable
// binaries. It is safe for concurrent use.
func New() analyzer.Analyzer { return &Cataloger{} }

// Name implements analyzer.Analyzer.
func (*Cataloger) Name() string { return Name }

// Version implements analyzer.Analyzer.
func (*Cataloger) Version() int { return version }

// Required wants Cargo.lock files and executable regular files (any execute
// bit, or a ".exe" name) of at least minBinarySize bytes.
func (*Cataloger) Required(p string, info fs.FileInfo) analyzer.Need {
	if info != nil && !info.Mode().IsRegular() {
		return analyzer.Skip
	}
	if path.Base(p) == lockFileName {
		return analyzer.Content
	}
	if info == nil || info.Size() < minBinarySize {
		return analyzer.Skip
	}
	if info.Mode().Perm()&0o111 != 0 || hasSuffixFold(p, ".exe") {
		return analyzer.Content
	}
	return analyzer.Skip
}

// Analyze reads a Cargo.lock, or the audit data of an executable. An
// executable without audit data (not Rust, or built without
// cargo-auditable) gives an empty result and no error.
func (*Cataloger) Analyze(ctx context.Context, in analyzer.Input) (*analyzer.Result, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if in.Content == nil {
		return nil, fmt.Errorf("rust %s: no content", in.Path)
	}
	var (
		pkgs []model.Package
		err  error
	)
	if path.Base(in.Path) == lockFileName {
		pkgs, err = parseCargoLockFile(in.Content, in.Path)
	} else {
		pkgs, err = parseAuditableBinary(in.Content, in.Path)
		if errors.Is(err, errNoAudit) {
			return &analyzer.Result{}, nil
		}
	}
	if err != nil {
		return nil, err
	}
	return &analyzer.Result{Packages: pkgs}, nil
}

func newPackage(name, ver, cataloger, loc string) model.Package {
	return model.Package{
		Name:      name,
		Version:   ver,
		Type:      model.TypeCargo,
		Ecosystem: model.EcosystemCratesIO,
		PURL:      packageurl.NewPackageURL(packageurl.TypeCargo, "", name, ver, nil, "").ToString(),
		Cataloger: cataloger,
		Locations: []model.PackageLocation{{Path: loc}},
	}
}

func hasSuffixFold(s, suffix string) bool {
	return len(s) >= len(suffix) && strings.EqualFold(s[len(s)-len(suffix):], suffix)
}
