package vulndb

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// Result says what an import or update stored.
type Result struct {
	// Records is the number of distinct advisories in the new database.
	Records int `json:"records"`
	// Files is the number of JSON files read; Skipped of them were not valid
	// OSV records (the first few reasons are in SkipReasons).
	Files       int            `json:"files"`
	Skipped     int            `json:"skipped"`
	SkipReasons []string       `json:"skipReasons,omitempty"`
	Ecosystems  map[string]int `json:"ecosystems"`
	// Updated is false when an update found every source unchanged and kept
	// the database as it was.
	Updated bool `json:"updated"`
	// Path is the database file.
	Path string `json:"path"`
}

// maxSkipReasons bounds the reasons kept for skipped records.
const maxSkipReasons = 20

// Import builds a new database in dbDir from the OSV records at path — a
// directory of *.json records and/or zips (such as a tree of
// <Ecosystem>/all.zip), one zip, or one JSON file — and replaces the
// database there. Records that are not valid OSV are skipped and counted.
// The new database is built beside the old one and renamed over it, so a
// failed import leaves the old database as it was.
func Import(ctx context.Context, dbDir, path string, opts ...Option) (*Result, error) {
	o, err := makeOptions(opts)
	if err != nil {
		return nil, err
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("vulndb: import %s: %w", path, err)
	}
	src := Source{Path: abs, FetchedAt: o.now().UTC()}
	res, err := build(ctx, dbDir, o, []input{{path: abs, src: &src}})
	if err != nil {
		return nil, fmt.Errorf("vulndb: import %s: %w", path, err)
	}
	return res, nil
}

// input is one path to read into a build, and the Source it is recorded as.
type input struct {
	path string
	src  *Source
}

// build reads every input into a new database file and renames it into
// place. before, when set, runs after the new file is complete and before
// the rename (Update uses it to move downloaded zips into its cache).
func build(ctx context.Context, dbDir string, o *options, inputs []input, before ...func() error) (*Result, error) {
	if err := os.MkdirAll(dbDir, 0o755); err != nil {
		return nil, fmt.Errorf("create %s: %w", dbDir, err)
	}
	buildFile, err := tempName(dbDir, ".build-*.tmp")
	if err != nil {
		return nil, err
	}
	defer os.Remove(buildFile)
	b, err := newBuilder(buildFile)
	if err != nil {
		return nil, err
	}
	lim := &limits{maxEntries: o.maxEntries, maxTotal: o.maxTotal}
	res := &Result{}
	md := &Metadata{BuiltAt: o.now().UTC()}
	for _, in := range inputs {
		before := b.n
		err := readPath(ctx, in.path, lim, func(raw rawRecord) error {
			res.Files++
			var r *Record
			var perr error
			if raw.Data == nil {
				perr = fmt.Errorf("%w: unreadable, too large or corrupt entry", ErrInvalidRecord)
			} else {
				r, perr = ParseRecord(raw.Data)
			}
			if perr != nil {
				res.Skipped++
				if len(res.SkipReasons) < maxSkipReasons {
					res.SkipReasons = append(res.SkipReasons, raw.Source+": "+raw.Name+": "+perr.Error())
				}
				o.log.Debug("skipping OSV record", "source", raw.Source, "file", raw.Name, "err", perr)
				return nil
			}
			return b.put(r)
		})
		if err != nil {
			b.abort()
			return nil, err
		}
		in.src.Records = b.n - before
		md.Sources = append(md.Sources, *in.src)
	}
	if b.n == 0 {
		b.abort()
		return nil, fmt.Errorf("%w (%d files read, %d skipped)", ErrEmpty, res.Files, res.Skipped)
	}
	md.Skipped = res.Skipped
	if err := b.finish(md); err != nil {
		return nil, err
	}
	final, err := tempName(dbDir, ".vulndb-*.tmp")
	if err != nil {
		return nil, err
	}
	defer os.Remove(final) // no-op after the rename
	if err := compactInto(final, buildFile); err != nil {
		return nil, err
	}
	for _, f := range before {
		if err := f(); err != nil {
			return nil, err
		}
	}
	dst := filepath.Join(dbDir, FileName)
	if err := os.Rename(final, dst); err != nil {
		return nil, fmt.Errorf("replace %s: %w", dst, err)
	}
	syncDir(dbDir)
	res.Records = md.Records
	res.Ecosystems = md.Ecosystems
	res.Updated = true
	res.Path = dst
	o.log.Info("vulnerability database built", "path", dst, "records", md.Records, "skipped", res.Skipped)
	return res, nil
}

// tempName reserves a fresh file name in dir (the file is created empty
// and removed, so bbolt can create it).
func tempName(dir, pattern string) (string, error) {
	f, err := os.CreateTemp(dir, pattern)
	if err != nil {
		return "", fmt.Errorf("temp file in %s: %w", dir, err)
	}
	name := f.Name()
	f.Close()
	if err := os.Remove(name); err != nil && !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("temp file %s: %w", name, err)
	}
	return name, nil
}

// syncDir makes a rename durable; failure only weakens durability, so it is logged nowhere.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync() // best effort: not all filesystems support directory fsync
		d.Close()
	}
}

// Info returns the metadata of the database in dbDir without keeping it open.
func Info(dbDir string) (*Metadata, error) {
	db, err := Open(context.Background(), dbDir)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	md := db.Metadata()
	return &md, nil
}
