package vulndb

import (
	"archive/zip"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// Caps on what an import reads. They bound memory and disk whatever the
// input, so that a zip bomb or a corrupt dump fails with ErrLimit instead of
// exhausting the machine.
const (
	// MaxRecordBytes bounds one JSON record: the largest osv.dev records
	// (Linux kernel CVEs with hundreds of affected versions) are well under 1 MiB.
	MaxRecordBytes = 4 << 20
	// DefaultMaxEntries bounds the files read in one import: all of osv.dev
	// holds well under a million records.
	DefaultMaxEntries = 2_000_000
	// DefaultMaxTotalBytes bounds the decompressed bytes read in one import:
	// all of osv.dev decompresses to a few GiB.
	DefaultMaxTotalBytes = 16 << 30
	// maxCompressionRatio flags a zip entry whose declared sizes are a bomb:
	// JSON deflates about 5-20x, deflate cannot exceed about 1032x.
	maxCompressionRatio = 1100
)

// limits tracks one import's progress against its caps.
type limits struct {
	// maxRecord is MaxRecordBytes except in fuzzing, where smaller caps
	// keep each run fast.
	maxRecord  int64
	maxEntries int
	maxTotal   int64
	entries    int
	total      int64
}

func (l *limits) entry() error {
	l.entries++
	if l.entries > l.maxEntries {
		return fmt.Errorf("%w: more than %d files", ErrLimit, l.maxEntries)
	}
	return nil
}

func (l *limits) add(n int64) error {
	l.total += n
	if l.total > l.maxTotal {
		return fmt.Errorf("%w: more than %d decompressed bytes", ErrLimit, l.maxTotal)
	}
	return nil
}

// rawRecord is one file read from a source, before parsing.
type rawRecord struct {
	// Source names the zip or directory it came from; Name is the path of the
	// file inside it.
	Source, Name string
	Data         []byte
}

// readPath calls fn for every *.json file under p: p may be a zip of
// records, a single JSON record, or a directory holding JSON records and
// zips (such as a tree of <Ecosystem>/all.zip). Symbolic links to
// directories are not followed. Errors from fn stop the walk.
func readPath(ctx context.Context, p string, lim *limits, fn func(rawRecord) error) error {
	fi, err := os.Stat(p)
	if err != nil {
		return fmt.Errorf("vulndb: read %s: %w", p, err)
	}
	if !fi.IsDir() {
		// A single file is a zip by its magic, whatever its name (downloads
		// are read from temp files).
		if isZip(p) {
			return readZipFile(ctx, p, lim, fn)
		}
		return readJSONFile(p, filepath.Dir(p), lim, fn)
	}
	return filepath.WalkDir(p, func(fp string, d fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("vulndb: walk %s: %w", fp, err)
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if !d.Type().IsRegular() || isFeedFile(d.Name()) {
			return nil
		}
		switch strings.ToLower(filepath.Ext(fp)) {
		case ".zip":
			return readZipFile(ctx, fp, lim, fn)
		case ".json":
			return readJSONFile(fp, p, lim, fn)
		}
		return nil
	})
}

// isZip reports whether the file starts with a zip signature: a local file
// header, or the end-of-central-directory record of an empty zip.
func isZip(p string) bool {
	f, err := os.Open(p)
	if err != nil {
		return false
	}
	defer f.Close()
	var magic [4]byte
	if _, err := io.ReadFull(f, magic[:]); err != nil {
		return false
	}
	return string(magic[:]) == "PK\x03\x04" || string(magic[:]) == "PK\x05\x06"
}

func readJSONFile(fp, root string, lim *limits, fn func(rawRecord) error) error {
	if err := lim.entry(); err != nil {
		return err
	}
	f, err := os.Open(fp)
	if err != nil {
		return fmt.Errorf("vulndb: open %s: %w", fp, err)
	}
	defer f.Close()
	data, err := readCapped(f, lim.recordCap())
	if errors.Is(err, ErrInvalidRecord) {
		// An oversized record is skipped like a garbage one, not fatal.
		return fn(rawRecord{Source: root, Name: fp, Data: nil})
	}
	if err != nil {
		return fmt.Errorf("vulndb: read %s: %w", fp, err)
	}
	if err := lim.add(int64(len(data))); err != nil {
		return err
	}
	rel, _ := filepath.Rel(root, fp)
	return fn(rawRecord{Source: root, Name: filepath.ToSlash(rel), Data: data})
}

func readZipFile(ctx context.Context, fp string, lim *limits, fn func(rawRecord) error) error {
	f, err := os.Open(fp)
	if err != nil {
		return fmt.Errorf("vulndb: open %s: %w", fp, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("vulndb: stat %s: %w", fp, err)
	}
	return readZip(ctx, f, fi.Size(), fp, lim, fn)
}

// readZip calls fn for every *.json entry of a zip, in the zip's order.
// A record entry that is too large or does not decompress is passed on with
// nil Data (counted as skipped); going over the import's caps is an error.
func readZip(ctx context.Context, r io.ReaderAt, size int64, name string, lim *limits, fn func(rawRecord) error) error {
	zr, err := zip.NewReader(r, size)
	if err != nil && !errors.Is(err, zip.ErrInsecurePath) {
		return fmt.Errorf("vulndb: open zip %s: %w", name, err)
	}
	if len(zr.File) > lim.maxEntries-lim.entries {
		return fmt.Errorf("%w: zip %s has %d entries (limit %d)", ErrLimit, name, len(zr.File), lim.maxEntries)
	}
	for _, zf := range zr.File {
		if err := ctx.Err(); err != nil {
			return err
		}
		if zf.FileInfo().IsDir() || !strings.EqualFold(path.Ext(zf.Name), ".json") {
			continue
		}
		if err := lim.entry(); err != nil {
			return err
		}
		if zf.UncompressedSize64 > uint64(lim.recordCap()) ||
			(zf.CompressedSize64 > 0 && zf.UncompressedSize64/zf.CompressedSize64 > maxCompressionRatio) {
			if err := fn(rawRecord{Source: name, Name: zf.Name}); err != nil {
				return err
			}
			continue
		}
		data, err := readZipEntry(zf, lim.recordCap())
		if err != nil {
			// A corrupt entry (bad checksum, truncated stream, lying header)
			// costs that record only.
			if err := fn(rawRecord{Source: name, Name: zf.Name}); err != nil {
				return err
			}
			continue
		}
		if err := lim.add(int64(len(data))); err != nil {
			return fmt.Errorf("zip %s: %w", name, err)
		}
		if err := fn(rawRecord{Source: name, Name: zf.Name, Data: data}); err != nil {
			return err
		}
	}
	return nil
}

func readZipEntry(zf *zip.File, max int64) ([]byte, error) {
	rc, err := zf.Open()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return readCapped(rc, max)
}

func (l *limits) recordCap() int64 {
	if l.maxRecord > 0 {
		return l.maxRecord
	}
	return MaxRecordBytes
}

// readCapped reads at most max bytes; more is ErrInvalidRecord.
func readCapped(r io.Reader, max int64) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(r, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > max {
		return nil, fmt.Errorf("%w: over %d bytes", ErrInvalidRecord, max)
	}
	return data, nil
}
