package vulndb

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
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
	// KEV and EPSS describe the exploit intelligence built in, nil when none.
	KEV  *FeedInfo `json:"kev,omitempty"`
	EPSS *FeedInfo `json:"epss,omitempty"`
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
//
// Exploit intelligence comes from WithKEVFile and WithEPSSFile, or, when
// path is a directory and those options are not given, from the files the
// directory convention names (FindFeeds): CISA's
// known_exploited_vulnerabilities.json and FIRST's epss_scores-*.csv[.gz],
// at the top of path or in its kev/ and epss/ folders. A feed that does
// not parse fails the import.
func Import(ctx context.Context, dbDir, path string, opts ...Option) (*Result, error) {
	o, err := makeOptions(opts)
	if err != nil {
		return nil, err
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("vulndb: import %s: %w", path, err)
	}
	kevPath, epssPath := o.kevFile, o.epssFile
	if fi, err := os.Stat(abs); err == nil && fi.IsDir() {
		k, e, err := FindFeeds(abs)
		if err != nil {
			return nil, fmt.Errorf("vulndb: import %s: %w", path, err)
		}
		if kevPath == "" {
			kevPath = k
		}
		if epssPath == "" {
			epssPath = e
		}
	}
	now := o.now().UTC()
	fd, err := loadFeeds(kevPath, feedSource(kevPath, now), epssPath, feedSource(epssPath, now))
	if err != nil {
		return nil, fmt.Errorf("vulndb: import: %w", err)
	}
	src := Source{Path: abs, FetchedAt: now}
	res, err := build(ctx, dbDir, o, []input{{path: abs, src: &src}}, fd)
	if err != nil {
		return nil, fmt.Errorf("vulndb: import %s: %w", path, err)
	}
	return res, nil
}

func feedSource(p string, now time.Time) Source {
	if p == "" {
		return Source{}
	}
	if abs, err := filepath.Abs(p); err == nil {
		p = abs
	}
	return Source{Path: p, FetchedAt: now}
}

// KEV and EPSS file names of the directory convention: the names CISA and
// FIRST publish them under.
const (
	KEVFileName    = "known_exploited_vulnerabilities.json"
	epssFilePrefix = "epss_scores"
)

// isFeedFile reports whether a file name is one of the exploit-intelligence
// files (or the KEV schema published beside the catalogue), which the OSV
// walk must not read as advisories.
func isFeedFile(name string) bool {
	n := strings.ToLower(name)
	return strings.HasPrefix(n, "known_exploited_vulnerabilities") && strings.HasSuffix(n, ".json") ||
		strings.HasPrefix(n, epssFilePrefix) && (strings.HasSuffix(n, ".csv") || strings.HasSuffix(n, ".csv.gz"))
}

// FindFeeds looks for the KEV catalogue and an EPSS file in dir and its
// kev/ and epss/ folders, by the names CISA and FIRST publish them under
// (known_exploited_vulnerabilities.json, epss_scores-YYYY-MM-DD.csv.gz or
// epss_scores-current.csv.gz, also uncompressed). More than one EPSS file
// is an error: which day's scores to use is the user's choice (--epss).
func FindFeeds(dir string) (kev, epss string, err error) {
	for _, d := range []string{dir, filepath.Join(dir, "kev"), filepath.Join(dir, "epss")} {
		ents, rerr := os.ReadDir(d)
		if rerr != nil {
			continue
		}
		for _, e := range ents {
			if !e.Type().IsRegular() {
				continue
			}
			n := e.Name()
			switch {
			case n == KEVFileName:
				if kev != "" {
					return "", "", fmt.Errorf("two KEV catalogues: %s and %s (name one with --kev)", kev, filepath.Join(d, n))
				}
				kev = filepath.Join(d, n)
			case isFeedFile(n) && strings.HasPrefix(strings.ToLower(n), epssFilePrefix):
				if epss != "" {
					return "", "", fmt.Errorf("two EPSS files: %s and %s (name one with --epss)", epss, filepath.Join(d, n))
				}
				epss = filepath.Join(d, n)
			}
		}
	}
	return kev, epss, nil
}

// input is one path to read into a build, and the Source it is recorded as.
type input struct {
	path string
	src  *Source
}

// build reads every input into a new database file and renames it into
// place. before, when set, runs after the new file is complete and before
// the rename (Update uses it to move downloaded zips into its cache).
func build(ctx context.Context, dbDir string, o *options, inputs []input, fd *feeds, before ...func() error) (*Result, error) {
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
	if err := b.putFeeds(fd, md); err != nil {
		b.abort()
		return nil, err
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
	res.KEV, res.EPSS = md.KEV, md.EPSS
	res.Updated = true
	res.Path = dst
	o.log.Info("vulnerability database built", "path", dst, "records", md.Records, "skipped", res.Skipped,
		"kev", feedEntries(md.KEV), "epss", feedEntries(md.EPSS))
	return res, nil
}

func feedEntries(f *FeedInfo) int {
	if f == nil {
		return 0
	}
	return f.Entries
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

// Feeds returns the KEV catalogue version and the EPSS score date the
// database holds ("" when it has none; an EPSS file without a date gives
// "unknown"), for model.DBInfo.
func (md Metadata) Feeds() (kevCatalog, epssDate string) {
	if md.KEV != nil {
		kevCatalog = md.KEV.Version
	}
	if md.EPSS != nil {
		epssDate = md.EPSS.Date
		if epssDate == "" {
			epssDate = "unknown"
		}
	}
	return kevCatalog, epssDate
}
