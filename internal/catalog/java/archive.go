package java

import (
	"archive/zip"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"

	"mamori/internal/model"
)

// walker walks one top-level archive and its nested archives. It is used by
// one goroutine for one Analyze call; the caps it enforces are totals over
// the whole walk.
type walker struct {
	ctx      context.Context
	lim      limits
	inflated int64 // bytes decompressed so far
	entries  int   // central-directory entries seen so far
	pkgs     []model.Package
	seen     map[string]bool
	warns    []error
	dropped  int // warnings beyond maxWarnings
}

func newWalker(ctx context.Context, lim limits) *walker {
	return &walker{ctx: ctx, lim: lim, seen: make(map[string]bool)}
}

func (w *walker) warn(err error) {
	if len(w.warns) >= maxWarnings {
		w.dropped++
		return
	}
	w.warns = append(w.warns, err)
}

// warnings returns the warnings of the walk as one error, or nil.
func (w *walker) warnings() error {
	if len(w.warns) == 0 {
		return nil
	}
	errs := w.warns
	if w.dropped > 0 {
		errs = append(errs[:len(errs):len(errs)], fmt.Errorf("java: %d more warnings not shown", w.dropped))
	}
	return errors.Join(errs...)
}

// archive catalogs the zip archive in r (size bytes) located at loc, at
// nesting depth depth (0 for the file itself). An error means the archive
// itself could not be read; problems with its members become warnings.
func (w *walker) archive(r io.ReaderAt, size int64, loc string, depth int) error {
	if err := w.ctx.Err(); err != nil {
		return err
	}
	// Refuse, before archive/zip allocates one File per entry, a central
	// directory that could hold more entries than are left.
	left := w.lim.entries - w.entries
	bound, err := entryBound(r, size)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrNotZip, err)
	}
	if bound > uint64(left) {
		return fmt.Errorf("%w: central directory could hold %d entries, %d left of %d", ErrTooManyEntries, bound, left, w.lim.entries)
	}
	zr, err := zip.NewReader(r, size)
	// archive/zip reports names with ".." or absolute paths as
	// ErrInsecurePath beside a usable reader; names are only used in
	// locations here, never to write files, so such archives are read.
	if err != nil && !(errors.Is(err, zip.ErrInsecurePath) && zr != nil) {
		return fmt.Errorf("%w: %w", ErrNotZip, err)
	}
	w.entries += len(zr.File)
	if w.entries > w.lim.entries {
		return fmt.Errorf("%w: %d entries (cap %d)", ErrTooManyEntries, w.entries, w.lim.entries)
	}

	var manifest *zip.File
	var poms, nested []*zip.File
	for _, f := range zr.File {
		name := f.Name
		switch {
		case strings.HasSuffix(name, "/"):
			// directory
		case strings.EqualFold(name, "META-INF/MANIFEST.MF"):
			if manifest == nil {
				manifest = f
			}
		case strings.HasPrefix(name, "META-INF/maven/") && strings.HasSuffix(name, "/pom.properties"):
			poms = append(poms, f)
		case isArchiveName(name):
			nested = append(nested, f)
		}
	}

	var id identity
	id.fileName = path.Base(loc[strings.LastIndex(loc, NestedSeparator)+1:])
	if manifest != nil {
		b, err := w.readMeta(manifest, loc)
		if err != nil {
			w.warn(err)
		} else {
			id.manifest = parseManifest(b)
		}
	}
	for _, f := range poms {
		b, err := w.readMeta(f, loc)
		if err != nil {
			w.warn(err)
			continue
		}
		if p, ok := parsePomProperties(b); ok {
			id.poms = append(id.poms, p)
		}
	}
	for _, c := range id.coordinates() {
		w.add(c, loc)
	}

	for _, f := range nested {
		if err := w.ctx.Err(); err != nil {
			return err
		}
		inner := loc + NestedSeparator + f.Name
		if depth+1 > w.lim.depth {
			w.warn(fmt.Errorf("%w: %s is at depth %d (cap %d); not opened", ErrTooDeep, inner, depth+1, w.lim.depth))
			continue
		}
		if err := w.nested(r, size, f, inner, depth+1); err != nil {
			if w.ctx.Err() != nil {
				return w.ctx.Err()
			}
			w.warn(fmt.Errorf("%s: %w", inner, err))
		}
	}
	return nil
}

// nested opens the archive member f of the archive in parent and walks it.
func (w *walker) nested(parent io.ReaderAt, parentSize int64, f *zip.File, loc string, depth int) error {
	if f.Method == zip.Store && f.CompressedSize64 == f.UncompressedSize64 {
		// Stored members (Spring Boot keeps BOOT-INF/lib jars stored so the
		// JVM can map them) are read in place: no copy, no decompression.
		off, err := f.DataOffset()
		if err != nil {
			return fmt.Errorf("%w: %w", ErrNotZip, err)
		}
		n := f.CompressedSize64
		if off < 0 || n > uint64(parentSize) || off > parentSize-int64(n) {
			return fmt.Errorf("%w: stored member outside its archive", ErrNotZip)
		}
		return w.archive(io.NewSectionReader(parent, off, int64(n)), int64(n), loc, depth)
	}
	if f.UncompressedSize64 > uint64(w.lim.entryBytes) {
		return fmt.Errorf("%w: %d bytes (cap %d); not opened", ErrEntryTooLarge, f.UncompressedSize64, w.lim.entryBytes)
	}
	if f.UncompressedSize64 > spillThreshold {
		// Big nested archives go to a temp file, not the heap: several
		// 60 MiB members of a hostile jar would otherwise cost hundreds of
		// MiB while the walk recurses.
		tmp, n, err := w.readToFile(f, w.lim.entryBytes)
		if err != nil {
			return err
		}
		defer func() {
			_ = tmp.Close() // read-only use; the remove below is what matters
			_ = os.Remove(tmp.Name())
		}()
		return w.archive(tmp, n, loc, depth)
	}
	b, err := w.read(f, w.lim.entryBytes)
	if err != nil {
		return err
	}
	return w.archive(bytes.NewReader(b), int64(len(b)), loc, depth)
}

// spillThreshold: nested members declaring more than this are decompressed
// to a temp file rather than memory.
const spillThreshold = 4 << 20

// readToFile is read for big members: the same limits, into a temp file.
func (w *walker) readToFile(f *zip.File, limit int64) (*os.File, int64, error) {
	left := w.lim.totalBytes - w.inflated
	if left <= 0 {
		return nil, 0, fmt.Errorf("%w: %d bytes decompressed (cap %d)", ErrBudget, w.inflated, w.lim.totalBytes)
	}
	capErr := ErrEntryTooLarge
	if left < limit {
		limit, capErr = left, ErrBudget
	}
	if f.UncompressedSize64 > uint64(limit) {
		return nil, 0, fmt.Errorf("%w: member declares %d bytes (limit %d)", capErr, f.UncompressedSize64, limit)
	}
	rc, err := f.Open()
	if err != nil {
		return nil, 0, fmt.Errorf("open member: %w", err)
	}
	defer rc.Close() // read-only; a close error carries nothing
	tmp, err := os.CreateTemp("", "mamori-jar-*")
	if err != nil {
		return nil, 0, fmt.Errorf("spill member: %w", err)
	}
	n, err := io.Copy(tmp, &ctxReader{ctx: w.ctx, r: io.LimitReader(rc, limit+1)})
	w.inflated += n
	if err == nil && n > limit {
		err = fmt.Errorf("%w: member inflates past %d bytes", capErr, limit)
	} else if err != nil {
		err = fmt.Errorf("read member: %w", err)
	}
	if err != nil {
		_ = tmp.Close()
		_ = os.Remove(tmp.Name())
		return nil, 0, err
	}
	return tmp, n, nil
}

// readMeta reads a small metadata member (manifest, pom.properties).
func (w *walker) readMeta(f *zip.File, loc string) ([]byte, error) {
	b, err := w.read(f, w.lim.metaBytes)
	if err != nil {
		return nil, fmt.Errorf("%s%s%s: %w", loc, NestedSeparator, f.Name, err)
	}
	return b, nil
}

// read decompresses member f into memory, at most limit bytes and no more
// than what is left of the walk's budget. It trusts neither the declared
// size (a member may claim little and inflate to gigabytes: archive/zip
// stops at the declared size with zip.ErrFormat, and the limit stops the
// rest) nor the compression ratio.
func (w *walker) read(f *zip.File, limit int64) ([]byte, error) {
	left := w.lim.totalBytes - w.inflated
	if left <= 0 {
		return nil, fmt.Errorf("%w: %d bytes decompressed (cap %d)", ErrBudget, w.inflated, w.lim.totalBytes)
	}
	capErr := ErrEntryTooLarge
	if left < limit {
		limit, capErr = left, ErrBudget
	}
	if f.UncompressedSize64 > uint64(limit) {
		return nil, fmt.Errorf("%w: member declares %d bytes (limit %d)", capErr, f.UncompressedSize64, limit)
	}
	rc, err := f.Open()
	if err != nil {
		return nil, fmt.Errorf("open member: %w", err)
	}
	defer rc.Close() // read-only; a close error carries nothing
	buf := bytes.NewBuffer(make([]byte, 0, min(int64(f.UncompressedSize64), limit, 1<<20)+1))
	n, err := io.Copy(buf, &ctxReader{ctx: w.ctx, r: io.LimitReader(rc, limit+1)})
	w.inflated += n
	if err != nil {
		return nil, fmt.Errorf("read member: %w", err)
	}
	if n > limit {
		return nil, fmt.Errorf("%w: member inflates past %d bytes", capErr, limit)
	}
	return buf.Bytes(), nil
}

// add records a package once per name, version and location.
func (w *walker) add(c coordinates, loc string) {
	p := c.pkg(loc)
	k := p.Key()
	if w.seen[k] {
		return
	}
	w.seen[k] = true
	w.pkgs = append(w.pkgs, p)
}

// ctxReader stops a long decompression when the context is done.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c *ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
