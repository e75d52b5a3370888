// Package rpm catalogs RPM packages from the rpm database in its three
// formats: Berkeley DB (Packages; RHEL/CentOS <= 8, Amazon Linux 2), NDB
// (Packages.db; SUSE) and SQLite (rpmdb.sqlite; Fedora 33+, RHEL 9,
// CBL-Mariner), under var/lib/rpm or usr/lib/sysimage/rpm.
//
// The readers are written here rather than taken from
// github.com/knqyf263/go-rpmdb: at v0.1.1 that library reads the database
// in a goroutine that can panic on a crafted file (unchecked slice bounds in
// the Berkeley DB reader), loop forever (an overflow page of the wrong type
// is retried without advancing), allocate whatever an NDB blob header claims
// (up to 4 GiB), leak its goroutine when the caller stops at the first error,
// and print to stdout. None of that is acceptable for hostile images; the
// formats are small and documented, and every read here is bounded.
package rpm

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/package-url/packageurl-go"

	"mamori/internal/analyzer"
	"mamori/internal/catalog/rpm/rpmdb"
	"mamori/internal/model"
)

// Name is the analyzer name, also recorded as Package.Cataloger.
const Name = "rpm"

// DefaultMaxDBSize caps the database file. Fedora's full workstation
// database is about 150 MiB in SQLite; container images are well under
// 100 MiB. The cap bounds what a hostile file can cost, in memory for
// Berkeley DB and NDB and on disk for SQLite.
const DefaultMaxDBSize = 512 << 20

// Sentinel errors; Analyze wraps them with the path.
var (
	// ErrTooLarge: the database is larger than the configured cap.
	ErrTooLarge = errors.New("rpm: database too large")
	// ErrUnknownFormat: the file is none of Berkeley DB hash, NDB, SQLite.
	ErrUnknownFormat = rpmdb.ErrUnknownFormat
	// ErrCorrupt: the file has a known format but is damaged or crafted.
	ErrCorrupt = rpmdb.ErrCorrupt
)

// dbPaths are the database files read. var/lib/rpm is a symlink to
// ../../usr/lib/sysimage/rpm on Fedora 36+ and RHEL 10; images may carry
// either.
var dbPaths = map[string]bool{
	"var/lib/rpm/Packages":              true,
	"var/lib/rpm/Packages.db":           true,
	"var/lib/rpm/rpmdb.sqlite":          true,
	"usr/lib/sysimage/rpm/Packages":     true,
	"usr/lib/sysimage/rpm/Packages.db":  true,
	"usr/lib/sysimage/rpm/rpmdb.sqlite": true,
}

// Option configures a Cataloger.
type Option func(*options) error

type options struct {
	tempDir   string
	maxDBSize int64
}

// WithTempDir sets the directory under which SQLite databases are copied
// to be opened (default os.TempDir()). It must be an absolute path.
func WithTempDir(dir string) Option {
	return func(o *options) error {
		if !filepath.IsAbs(dir) {
			return fmt.Errorf("rpm: temp dir %q is not absolute", dir)
		}
		o.tempDir = dir
		return nil
	}
}

// WithMaxDBSize sets the largest database read (default DefaultMaxDBSize).
func WithMaxDBSize(n int64) Option {
	return func(o *options) error {
		if n <= 0 {
			return fmt.Errorf("rpm: max database size %d", n)
		}
		o.maxDBSize = n
		return nil
	}
}

func makeOptions(opts []Option) (options, error) {
	o := options{maxDBSize: DefaultMaxDBSize}
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return options{}, err
		}
	}
	return o, nil
}

// Cataloger is the rpm analyzer. It is safe for concurrent use: each call
// works on its own temp directory.
type Cataloger struct {
	opts options
}

var _ analyzer.Analyzer = (*Cataloger)(nil)

// New returns an rpm cataloger.
func New(opts ...Option) (*Cataloger, error) {
	o, err := makeOptions(opts)
	if err != nil {
		return nil, err
	}
	return &Cataloger{opts: o}, nil
}

// Default returns an rpm cataloger with the default options.
func Default() *Cataloger {
	return &Cataloger{opts: options{maxDBSize: DefaultMaxDBSize}}
}

// Name implements analyzer.Analyzer.
func (*Cataloger) Name() string { return Name }

// Version implements analyzer.Analyzer.
func (*Cataloger) Version() int { return 2 } // 2: owned files with digests

// Required wants the database files listed in dbPaths.
func (*Cataloger) Required(p string, _ fs.FileInfo) analyzer.Need {
	if dbPaths[p] {
		return analyzer.Content
	}
	return analyzer.Skip
}

// Analyze reads one database, whatever its name says, by its magic number,
// and returns the installed packages except gpg-pubkey pseudo-packages.
func (c *Cataloger) Analyze(ctx context.Context, in analyzer.Input) (*analyzer.Result, error) {
	if in.Content == nil {
		return nil, fmt.Errorf("parse rpm database %s: no content", in.Path)
	}
	db, err := c.ParseDB(ctx, in.Content, in.Content.Size(), in.Path)
	if err != nil {
		return nil, fmt.Errorf("parse rpm database %s: %w", in.Path, err)
	}
	res := &analyzer.Result{Packages: db.Packages, Owned: db.Owned}
	if db.Corrupt > 0 {
		res.Warnings = []string{fmt.Sprintf("skipped %d corrupt package headers (last: %v)", db.Corrupt, db.LastErr)}
	}
	return res, nil
}

// DB is what ParseDB reads of an rpm database.
type DB struct {
	Packages []model.Package
	// Owned are the packages' regular files with the digests rpm recorded.
	Owned []analyzer.OwnedFile
	// Corrupt counts headers that could not be read; LastErr says why.
	Corrupt int
	LastErr error
}

// Parse reads an rpm database of size bytes through r, in any of the three
// formats, and returns its packages with Locations set to path.
func (c *Cataloger) Parse(ctx context.Context, r io.ReaderAt, size int64, path string) ([]model.Package, error) {
	db, err := c.ParseDB(ctx, r, size, path)
	if err != nil {
		return nil, err
	}
	return db.Packages, nil
}

// ParseDB is Parse that also returns the packages' files and what was
// skipped.
func (c *Cataloger) ParseDB(ctx context.Context, r io.ReaderAt, size int64, path string) (*DB, error) {
	if size > c.opts.maxDBSize {
		return nil, fmt.Errorf("%w (%d bytes, cap %d)", ErrTooLarge, size, c.opts.maxDBSize)
	}
	blobs, err := readBlobs(ctx, r, size, c.tempDir())
	if err != nil {
		return nil, err
	}
	var (
		pkgs    []model.Package
		owned   []analyzer.OwnedFile
		corrupt int
		lastErr error
	)
	for _, b := range blobs {
		if len(b) < 8+rpmdb.HeaderEntrySize {
			continue // not a header: Berkeley DB's record 0 holds a 4-byte counter
		}
		h, err := rpmdb.ParseHeader(b)
		if err != nil {
			corrupt++
			lastErr = err
			continue
		}
		if h.Name == "" || h.Version == "" || h.Name == "gpg-pubkey" {
			continue
		}
		pkgs = append(pkgs, newPackage(h, path))
		for _, f := range h.Files {
			p, err := analyzer.CleanTarPath(f.Path)
			if err != nil || p == "" {
				continue
			}
			owned = append(owned, analyzer.OwnedFile{Path: p, Package: h.Name, Arch: h.Arch, Type: model.TypeRPM,
				Algo: f.Algo, Digest: f.Digest})
		}
	}
	if len(pkgs) == 0 && corrupt > 0 {
		return nil, fmt.Errorf("no readable header (%d corrupt): %w", corrupt, lastErr)
	}
	return &DB{Packages: pkgs, Owned: owned, Corrupt: corrupt, LastErr: lastErr}, nil
}

func (c *Cataloger) tempDir() string {
	if c.opts.tempDir != "" {
		return c.opts.tempDir
	}
	return os.TempDir()
}

var sqliteMagic = []byte("SQLite format 3\x00")

// readBlobs sniffs the format and returns the header blobs.
func readBlobs(ctx context.Context, r io.ReaderAt, size int64, tempDir string) ([][]byte, error) {
	var head [16]byte
	if size < int64(len(head)) {
		return nil, fmt.Errorf("%w: %d bytes", ErrUnknownFormat, size)
	}
	if _, err := r.ReadAt(head[:], 0); err != nil {
		return nil, fmt.Errorf("read rpm database: %w", err)
	}
	switch {
	case string(head[:]) == string(sqliteMagic):
		return readSQLite(ctx, r, size, tempDir)
	case rpmdb.IsNDB(head[:]):
		return rpmdb.ReadNDB(ctx, r, size)
	case rpmdb.IsBDBHash(head[:]):
		return rpmdb.ReadBDB(ctx, r, size)
	}
	return nil, ErrUnknownFormat
}

// newPackage builds the inventory package of a header. Version is
// "epoch:version-release" with the epoch only when set and not 0; the purl
// carries the epoch as a qualifier (purl-spec rpm type).
func newPackage(h *rpmdb.Header, path string) model.Package {
	vr := h.Version
	if h.Release != "" {
		vr += "-" + h.Release
	}
	epoch := ""
	if h.HasEpoch && h.Epoch != 0 {
		epoch = strconv.FormatInt(int64(h.Epoch), 10)
	}
	p := model.Package{
		Name:      h.Name,
		Version:   vr,
		Type:      model.TypeRPM,
		Arch:      h.Arch,
		Cataloger: Name,
		Locations: []model.PackageLocation{{Path: path}},
	}
	if epoch != "" {
		p.Version = epoch + ":" + vr
	}
	if h.License != "" {
		p.Licenses = []string{h.License}
	}
	if name, ver, rel, ok := ParseSourceRPM(h.SourceRPM); ok {
		// The source package has the binary's epoch: it is set once per spec
		// file for all subpackages.
		sv := ver + "-" + rel
		if epoch != "" {
			sv = epoch + ":" + sv
		}
		if name != p.Name || sv != p.Version {
			p.SourceName, p.SourceVersion = name, sv
		}
	}
	q := map[string]string{}
	if h.Arch != "" {
		q["arch"] = h.Arch
	}
	if epoch != "" {
		q["epoch"] = epoch
	}
	p.PURL = packageurl.NewPackageURL(packageurl.TypeRPM, "", h.Name, vr, packageurl.QualifiersFromMap(q), "").ToString()
	return p
}

// ParseSourceRPM splits a SOURCERPM value, "openssl-3.0.7-27.el9.src.rpm",
// into name "openssl", version "3.0.7" and release "27.el9". Name may hold
// dashes ("python3-pip-21.3.1-1.el9.src.rpm"), version and release may not,
// so the split is from the right. ".nosrc.rpm" is accepted too.
func ParseSourceRPM(s string) (name, version, release string, ok bool) {
	base, found := strings.CutSuffix(s, ".src.rpm")
	if !found {
		if base, found = strings.CutSuffix(s, ".nosrc.rpm"); !found {
			return "", "", "", false
		}
	}
	i := strings.LastIndexByte(base, '-')
	if i <= 0 {
		return "", "", "", false
	}
	base, release = base[:i], base[i+1:]
	j := strings.LastIndexByte(base, '-')
	if j <= 0 {
		return "", "", "", false
	}
	name, version = base[:j], base[j+1:]
	if version == "" || release == "" {
		return "", "", "", false
	}
	return name, version, release, true
}
