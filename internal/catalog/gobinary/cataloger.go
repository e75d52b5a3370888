// Package gobinary catalogs the modules compiled into Go executables, read
// from the build information the Go linker embeds (debug/buildinfo): the main
// module, every dependency module (after replace directives) and the Go
// toolchain as the pseudo-module "stdlib".
package gobinary

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strings"

	"mamori/internal/analyzer"
)

const (
	// Name is the analyzer's name and the Cataloger of its packages.
	Name = "gobinary"
	// version is bumped whenever the output for the same input may change.
	version = 1

	// minBinarySize is the smallest file looked at. The smallest Go
	// executable the toolchain produces (stripped, no dependencies) is over
	// 500 KiB; 16 KiB stays far below that while skipping the shell scripts
	// and tiny tools that make up most executable files in an image.
	minBinarySize = 16 << 10

	// DevelVersion is the version the Go toolchain records for a module built
	// from a work tree without version information (go build in a checkout
	// without a tag, go run). It is kept as is: it is not a release.
	DevelVersion = "(devel)"

	// StdlibName is the package that stands for the Go standard library and
	// runtime linked into the binary; the Go vulnerability database files
	// standard-library advisories under this module path.
	StdlibName = "stdlib"
)

// Sentinel errors.
var (
	// ErrNotExecutable: the file does not start with an ELF, PE or Mach-O magic number.
	ErrNotExecutable = errors.New("gobinary: not an ELF, PE or Mach-O executable")
	// ErrNoBuildInfo: the file is an executable but not a Go one (or its
	// build information was removed or is unreadable).
	ErrNoBuildInfo = errors.New("gobinary: no Go build information")
)

// Cataloger is the Go binary analyzer. The zero value is not usable; call New.
type Cataloger struct{}

var _ analyzer.Analyzer = (*Cataloger)(nil)

// New returns the Go binary analyzer. It is safe for concurrent use.
func New() analyzer.Analyzer { return &Cataloger{} }

// Name implements analyzer.Analyzer.
func (*Cataloger) Name() string { return Name }

// Version implements analyzer.Analyzer.
func (*Cataloger) Version() int { return version }

// Required wants the content of executable regular files (any execute bit
// set) of at least minBinarySize bytes, and of ".exe" files, because Windows
// layers do not record execute bits.
func (*Cataloger) Required(path string, info fs.FileInfo) analyzer.Need {
	if info == nil || !info.Mode().IsRegular() || info.Size() < minBinarySize {
		return analyzer.Skip
	}
	if info.Mode().Perm()&0o111 != 0 || hasSuffixFold(path, ".exe") {
		return analyzer.Content
	}
	return analyzer.Skip
}

// Analyze reads the Go build information of one executable. A file that is
// not an executable, or an executable that is not a Go program, yields an
// empty result and no error: most executables in an image are not Go.
// A Go executable whose build information cannot be decoded yields an error.
func (*Cataloger) Analyze(ctx context.Context, in analyzer.Input) (*analyzer.Result, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if in.Content == nil {
		return nil, fmt.Errorf("gobinary %s: no content", in.Path)
	}
	pkgs, err := parseBinary(in.Content, in.Path)
	switch {
	case errors.Is(err, ErrNotExecutable), errors.Is(err, ErrNoBuildInfo):
		return &analyzer.Result{}, nil
	case err != nil:
		return nil, err
	}
	return &analyzer.Result{Packages: pkgs}, nil
}

// hasExecutableMagic reports whether b starts like an ELF, PE (MZ) or
// Mach-O (thin or universal) file: the formats debug/buildinfo reads.
func hasExecutableMagic(b []byte) bool {
	if len(b) < 4 {
		return false
	}
	switch {
	case string(b[:4]) == "\x7fELF":
		return true
	case string(b[:2]) == "MZ":
		return true
	}
	switch string(b[:4]) {
	case "\xfe\xed\xfa\xce", "\xce\xfa\xed\xfe", // Mach-O 32-bit, big and little endian
		"\xfe\xed\xfa\xcf", "\xcf\xfa\xed\xfe", // Mach-O 64-bit
		"\xca\xfe\xba\xbe": // Mach-O universal (also a Java class file; buildinfo tells them apart)
		return true
	}
	return false
}

func hasSuffixFold(s, suffix string) bool {
	return len(s) >= len(suffix) && strings.EqualFold(s[len(s)-len(suffix):], suffix)
}

// readMagic reads the first bytes of r for hasExecutableMagic.
func readMagic(r io.ReaderAt) ([]byte, error) {
	var b [4]byte
	n, err := r.ReadAt(b[:], 0)
	if n == len(b) {
		return b[:], nil
	}
	if err == nil || errors.Is(err, io.EOF) {
		return b[:n], nil
	}
	return nil, err
}
