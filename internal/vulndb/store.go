package vulndb

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/klauspost/compress/zstd"
	bolt "go.etcd.io/bbolt"
)

// The store is one bbolt file (chosen by measurement against SQLite; see
// bench_test.go and store_sqlite_test.go) with these buckets:
//
//	meta     "metadata" → Metadata as JSON
//	records  ID → zstd(compact JSON of Record)
//	index    ecosystem "\x00" name "\x00" ID → empty
//	ratings  ID → JSON of Rating, for the records that rate their
//	         vulnerability and may lend it (RatingOf) (schema 2)
//	aliases  alias "\x00" ID → empty, for every ID that names the same
//	         vulnerability as such a record (Record.SameVulnerability) (schema 2)
//	kev      CVE ID → JSON of KEVEntry (schema 2)
//	epss     CVE ID → score and percentile, two big-endian uint32 of 1e-5 (schema 2)
//
// ecosystem is the canonical OSV ecosystem with its release scope
// ("Debian:12", "npm"), name the NormalizeName form. A lookup is one cursor
// seek over the index and one get per advisory; the records that alias an
// ID are one cursor seek over aliases.
const (
	// SchemaVersion is bumped whenever the layout or the stored Record form
	// changes; Open refuses a database of another version.
	//
	// 2: the aliases, kev and epss buckets (issue 15).
	SchemaVersion = 2
	// FileName is the database file inside the database directory.
	FileName = "vulndb.bolt"
	// openTimeout bounds the wait for another process's write lock.
	openTimeout = 5 * time.Second
	// batchRecords is how many records one write transaction holds while
	// building: large enough to amortise commits, small enough to bound memory.
	batchRecords = 1000
	// compactTxBytes bounds one transaction of the final compaction copy.
	compactTxBytes = 64 << 20
)

var (
	bucketMeta    = []byte("meta")
	bucketRecords = []byte("records")
	bucketIndex   = []byte("index")
	bucketAliases = []byte("aliases")
	bucketKEV     = []byte("kev")
	bucketEPSS    = []byte("epss")
	bucketRatings = []byte("ratings")
	keyMetadata   = []byte("metadata")
	allBuckets    = [][]byte{bucketMeta, bucketRecords, bucketIndex, bucketAliases, bucketKEV, bucketEPSS, bucketRatings}
)

// Metadata describes a database: how and when it was built, from what.
type Metadata struct {
	SchemaVersion int       `json:"schemaVersion"`
	BuiltAt       time.Time `json:"builtAt"`
	// Records is the number of distinct advisories stored.
	Records int `json:"records"`
	// Ecosystems counts advisories per OSV ecosystem base name ("Debian",
	// "npm"); an advisory affecting two ecosystems counts in both.
	Ecosystems map[string]int `json:"ecosystems"`
	// Skipped counts input files that were not valid OSV records.
	Skipped int      `json:"skipped"`
	Sources []Source `json:"sources"`
	// KEV and EPSS describe the exploit intelligence built in; nil when the
	// database has none.
	KEV  *FeedInfo `json:"kev,omitempty"`
	EPSS *FeedInfo `json:"epss,omitempty"`
}

// Source is one input of a database: a local path or a downloaded zip.
type Source struct {
	// Ecosystem is set for downloaded sources ("Debian", "PyPI").
	Ecosystem string `json:"ecosystem,omitempty"`
	// URL or Path names where the records came from.
	URL  string `json:"url,omitempty"`
	Path string `json:"path,omitempty"`
	// ETag and LastModified are the HTTP validators of a download, sent back
	// on the next update so an unchanged zip is not fetched again.
	ETag         string    `json:"etag,omitempty"`
	LastModified string    `json:"lastModified,omitempty"`
	FetchedAt    time.Time `json:"fetchedAt,omitempty"`
	Records      int       `json:"records"`
}

// builder writes a new database file.
type builder struct {
	db    *bolt.DB
	tx    *bolt.Tx
	n     int
	enc   *zstd.Encoder
	ids   map[string]struct{}
	ecos  map[string]map[string]struct{} // base → IDs, for the counts
	empty []byte
}

func newBuilder(file string) (*builder, error) {
	db, err := bolt.Open(file, 0o644, &bolt.Options{Timeout: openTimeout, NoSync: true, NoFreelistSync: true})
	if err != nil {
		return nil, fmt.Errorf("vulndb: create %s: %w", file, err)
	}
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedDefault), zstd.WithEncoderConcurrency(1))
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("vulndb: zstd encoder: %w", err)
	}
	b := &builder{db: db, enc: enc, ids: map[string]struct{}{}, ecos: map[string]map[string]struct{}{}, empty: []byte{}}
	if err := b.begin(); err != nil {
		b.abort()
		return nil, err
	}
	return b, nil
}

func (b *builder) begin() error {
	tx, err := b.db.Begin(true)
	if err != nil {
		return fmt.Errorf("vulndb: begin: %w", err)
	}
	for _, name := range allBuckets {
		if _, err := tx.CreateBucketIfNotExists(name); err != nil {
			tx.Rollback()
			return fmt.Errorf("vulndb: bucket %s: %w", name, err)
		}
	}
	b.tx = tx
	return nil
}

// put stores one record and its index entries. A record ID seen before is
// replaced (the same advisory appears in several ecosystems' zips).
func (b *builder) put(r *Record) error {
	js, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("vulndb: encode %s: %w", r.ID, err)
	}
	// bbolt keeps the value slice until the commit: a fresh one per put.
	v := b.enc.EncodeAll(js, make([]byte, 0, len(js)/2))
	if err := b.tx.Bucket(bucketRecords).Put([]byte(r.ID), v); err != nil {
		return fmt.Errorf("vulndb: put %s: %w", r.ID, err)
	}
	_, seenBefore := b.ids[r.ID]
	b.ids[r.ID] = struct{}{}
	idx := b.tx.Bucket(bucketIndex)
	for _, a := range r.Affected {
		eco := CanonicalEcosystem(a.Package.Ecosystem)
		if err := idx.Put(indexKey(eco, NormalizeName(eco, a.Package.Name), r.ID), b.empty); err != nil {
			return fmt.Errorf("vulndb: index %s: %w", r.ID, err)
		}
		base, _ := SplitEcosystem(eco)
		m := b.ecos[base]
		if m == nil {
			m = map[string]struct{}{}
			b.ecos[base] = m
		}
		m[r.ID] = struct{}{}
	}
	// The ratings of the records another record's finding may take a
	// severity from, and the IDs that name their vulnerability.
	if rt, ok := RatingOf(r); ok {
		js, err := json.Marshal(rt)
		if err != nil {
			return fmt.Errorf("vulndb: encode rating %s: %w", r.ID, err)
		}
		if err := b.tx.Bucket(bucketRatings).Put([]byte(r.ID), js); err != nil {
			return fmt.Errorf("vulndb: put rating %s: %w", r.ID, err)
		}
		al := b.tx.Bucket(bucketAliases)
		for _, a := range r.SameVulnerability()[1:] {
			if strings.ContainsRune(a, 0) {
				continue
			}
			if err := al.Put(indexKey2(a, r.ID), b.empty); err != nil {
				return fmt.Errorf("vulndb: alias index %s: %w", r.ID, err)
			}
		}
	} else if seenBefore {
		// A record seen before (the same advisory in two zips) that now
		// rates nothing: its old rating must not stay.
		if err := b.tx.Bucket(bucketRatings).Delete([]byte(r.ID)); err != nil {
			return fmt.Errorf("vulndb: delete rating %s: %w", r.ID, err)
		}
	}
	b.n++
	if b.n%batchRecords == 0 {
		if err := b.tx.Commit(); err != nil {
			return fmt.Errorf("vulndb: commit: %w", err)
		}
		return b.begin()
	}
	return nil
}

// finish writes the metadata, commits and closes the build file.
func (b *builder) finish(md *Metadata) error {
	md.SchemaVersion = SchemaVersion
	md.Records = len(b.ids)
	md.Ecosystems = make(map[string]int, len(b.ecos))
	for base, ids := range b.ecos {
		md.Ecosystems[base] = len(ids)
	}
	js, err := json.Marshal(md)
	if err != nil {
		b.abort()
		return fmt.Errorf("vulndb: encode metadata: %w", err)
	}
	if err := b.tx.Bucket(bucketMeta).Put(keyMetadata, js); err != nil {
		b.abort()
		return fmt.Errorf("vulndb: put metadata: %w", err)
	}
	err = b.tx.Commit()
	b.tx = nil
	b.enc.Close()
	if cerr := b.db.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("vulndb: commit: %w", err)
	}
	return nil
}

func (b *builder) abort() {
	if b.tx != nil {
		b.tx.Rollback()
		b.tx = nil
	}
	b.enc.Close()
	b.db.Close()
}

// putFeeds stores the KEV and EPSS data and describes them in md.
func (b *builder) putFeeds(fd *feeds, md *Metadata) error {
	if fd == nil {
		return nil
	}
	if fd.kev != nil {
		bk := b.tx.Bucket(bucketKEV)
		for cve, e := range fd.kev.Entries {
			js, err := json.Marshal(e)
			if err != nil {
				return fmt.Errorf("vulndb: encode KEV %s: %w", cve, err)
			}
			if err := bk.Put([]byte(cve), js); err != nil {
				return fmt.Errorf("vulndb: put KEV %s: %w", cve, err)
			}
		}
		fd.kevSrc.Records = len(fd.kev.Entries)
		md.KEV = &FeedInfo{Version: fd.kev.Version, Date: fd.kev.Released, Entries: len(fd.kev.Entries), Source: fd.kevSrc}
		if err := b.commitBatch(); err != nil {
			return err
		}
	}
	if fd.epss != nil {
		for i, row := range fd.epss.Rows {
			if err := b.tx.Bucket(bucketEPSS).Put([]byte(row.CVE), encodeEPSS(row.EPSSScore)); err != nil {
				return fmt.Errorf("vulndb: put EPSS %s: %w", row.CVE, err)
			}
			if (i+1)%(batchRecords*50) == 0 {
				if err := b.commitBatch(); err != nil {
					return err
				}
			}
		}
		fd.epssSrc.Records = len(fd.epss.Rows)
		md.EPSS = &FeedInfo{Version: fd.epss.Model, Date: fd.epss.Date, Entries: len(fd.epss.Rows), Source: fd.epssSrc}
	}
	return nil
}

// commitBatch commits the open write transaction and begins the next.
func (b *builder) commitBatch() error {
	if err := b.tx.Commit(); err != nil {
		b.tx = nil
		return fmt.Errorf("vulndb: commit: %w", err)
	}
	b.tx = nil
	return b.begin()
}

func indexKey2(a, b string) []byte {
	k := make([]byte, 0, len(a)+len(b)+1)
	k = append(k, a...)
	k = append(k, 0)
	return append(k, b...)
}

func indexKey(eco, name, id string) []byte {
	k := make([]byte, 0, len(eco)+len(name)+len(id)+2)
	k = append(k, eco...)
	k = append(k, 0)
	k = append(k, name...)
	k = append(k, 0)
	return append(k, id...)
}

// compactInto copies the build file into a new file with full pages (the
// build file's random-order inserts leave pages half empty) and syncs it.
func compactInto(dst, src string) error {
	sdb, err := bolt.Open(src, 0o644, &bolt.Options{Timeout: openTimeout, ReadOnly: true})
	if err != nil {
		return fmt.Errorf("vulndb: open build file: %w", err)
	}
	defer sdb.Close()
	ddb, err := bolt.Open(dst, 0o644, &bolt.Options{Timeout: openTimeout, NoFreelistSync: true})
	if err != nil {
		return fmt.Errorf("vulndb: create %s: %w", dst, err)
	}
	if err := bolt.Compact(ddb, sdb, compactTxBytes); err != nil {
		ddb.Close()
		return fmt.Errorf("vulndb: compact: %w", err)
	}
	// bbolt grows files in 16 MiB steps; cut the unused tail so the file is
	// as small as its pages.
	var used int64
	if err := ddb.View(func(tx *bolt.Tx) error { used = tx.Size(); return nil }); err != nil {
		ddb.Close()
		return fmt.Errorf("vulndb: size: %w", err)
	}
	if err := ddb.Close(); err != nil {
		return fmt.Errorf("vulndb: close %s: %w", dst, err)
	}
	if err := os.Truncate(dst, used); err != nil {
		return fmt.Errorf("vulndb: truncate %s: %w", dst, err)
	}
	f, err := os.OpenFile(dst, os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("vulndb: sync %s: %w", dst, err)
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return fmt.Errorf("vulndb: sync %s: %w", dst, err)
	}
	return nil
}

// DB is an open, read-only vulnerability database. It is safe for
// concurrent use.
type DB struct {
	db  *bolt.DB
	dec *zstd.Decoder
	md  Metadata
}

// Open opens the database in dir read-only. It returns ErrNoDB when there
// is none and ErrSchema when it was written by another schema version.
func Open(ctx context.Context, dir string) (*DB, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	file := filepath.Join(dir, FileName)
	if _, err := os.Stat(file); errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s does not exist", ErrNoDB, file)
	}
	bdb, err := bolt.Open(file, 0o444, &bolt.Options{Timeout: openTimeout, ReadOnly: true})
	if err != nil {
		return nil, fmt.Errorf("vulndb: open %s: %w", file, err)
	}
	md, err := readMetadata(bdb)
	if err != nil {
		bdb.Close()
		return nil, fmt.Errorf("vulndb: %s: %w", file, err)
	}
	dec, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(0), zstd.WithDecoderMaxMemory(MaxRecordBytes*2))
	if err != nil {
		bdb.Close()
		return nil, fmt.Errorf("vulndb: zstd decoder: %w", err)
	}
	return &DB{db: bdb, dec: dec, md: *md}, nil
}

func readMetadata(bdb *bolt.DB) (*Metadata, error) {
	var md Metadata
	err := bdb.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketMeta)
		if b == nil {
			return fmt.Errorf("%w: no metadata", ErrSchema)
		}
		v := b.Get(keyMetadata)
		if v == nil {
			return fmt.Errorf("%w: no metadata", ErrSchema)
		}
		if err := json.Unmarshal(v, &md); err != nil {
			return fmt.Errorf("%w: metadata: %v", ErrSchema, err)
		}
		if md.SchemaVersion != SchemaVersion {
			return fmt.Errorf("%w: database has schema %d, this mamori reads %d", ErrSchema, md.SchemaVersion, SchemaVersion)
		}
		for _, name := range allBuckets {
			if tx.Bucket(name) == nil {
				return fmt.Errorf("%w: bucket %s missing", ErrSchema, name)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &md, nil
}

// Metadata returns the database's metadata.
func (d *DB) Metadata() Metadata { return d.md }

// Close releases the database file.
func (d *DB) Close() error {
	d.dec.Close()
	return d.db.Close()
}

// Lookup returns the advisories that name package name in ecosystem
// (an OSV ecosystem with its release scope when the source uses one:
// "Debian:12", "Alpine:v3.18", "npm"), sorted by ID. Each Record is a fresh
// copy the caller may keep; its Affected entries include those for other
// packages and ecosystems.
func (d *DB) Lookup(ecosystem, name string) ([]*Record, error) {
	eco := CanonicalEcosystem(ecosystem)
	prefix := indexKey(eco, NormalizeName(eco, name), "")
	var out []*Record
	err := d.db.View(func(tx *bolt.Tx) error {
		recs := tx.Bucket(bucketRecords)
		c := tx.Bucket(bucketIndex).Cursor()
		for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
			id := k[len(prefix):]
			v := recs.Get(id)
			if v == nil {
				return fmt.Errorf("vulndb: index names %s but the record is missing", id)
			}
			r, err := d.decode(id, v)
			if err != nil {
				return err
			}
			out = append(out, r)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// Get returns one advisory by ID, or nil when the database has none.
func (d *DB) Get(id string) (*Record, error) {
	var out *Record
	err := d.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketRecords).Get([]byte(id))
		if v == nil {
			return nil
		}
		r, err := d.decode([]byte(id), v)
		out = r
		return err
	})
	return out, err
}

// Ratings returns the ratings of the records whose ID is one of ids and
// of the records the alias index says are about one of ids, except the
// record except; each once, sorted by ID. Records that do not rate their
// vulnerability or may not lend it (RatingOf) have none.
func (d *DB) Ratings(except string, ids []string) ([]Rating, error) {
	seen := map[string]bool{except: true}
	var out []Rating
	err := d.db.View(func(tx *bolt.Tx) error {
		rb := tx.Bucket(bucketRatings)
		c := tx.Bucket(bucketAliases).Cursor()
		get := func(id []byte) error {
			if seen[string(id)] {
				return nil
			}
			seen[string(id)] = true
			v := rb.Get(id)
			if v == nil {
				return nil
			}
			var rt Rating
			if err := json.Unmarshal(v, &rt); err != nil {
				return fmt.Errorf("vulndb: decode rating %s: %w", id, err)
			}
			out = append(out, rt)
			return nil
		}
		for _, id := range ids {
			if id == "" {
				continue
			}
			if err := get([]byte(id)); err != nil {
				return err
			}
			prefix := indexKey2(id, "")
			for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
				if err := get(k[len(prefix):]); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

func (d *DB) decode(id, v []byte) (*Record, error) {
	js, err := d.dec.DecodeAll(v, nil)
	if err != nil {
		return nil, fmt.Errorf("vulndb: decode %s: %w", id, err)
	}
	var r Record
	if err := json.Unmarshal(js, &r); err != nil {
		return nil, fmt.Errorf("vulndb: decode %s: %w", id, err)
	}
	return &r, nil
}

// KEV returns the Known Exploited Vulnerabilities entry of a CVE.
func (d *DB) KEV(cve string) (KEVEntry, bool, error) {
	var e KEVEntry
	found := false
	err := d.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketKEV).Get([]byte(cve))
		if v == nil {
			return nil
		}
		found = true
		if err := json.Unmarshal(v, &e); err != nil {
			return fmt.Errorf("vulndb: decode KEV %s: %w", cve, err)
		}
		return nil
	})
	return e, found, err
}

// EPSS returns the EPSS score of a CVE.
func (d *DB) EPSS(cve string) (EPSSScore, bool, error) {
	var s EPSSScore
	found := false
	err := d.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketEPSS).Get([]byte(cve))
		if v == nil {
			return nil
		}
		var ok bool
		if s, ok = decodeEPSS(v); !ok {
			return fmt.Errorf("vulndb: EPSS %s: %d bytes stored, want 8", cve, len(v))
		}
		found = true
		return nil
	})
	return s, found, err
}

// CVEIntel is the exploit intelligence of one CVE; nil fields are unknown.
type CVEIntel struct {
	CVE  string
	KEV  *KEVEntry
	EPSS *EPSSScore
}

// Exploits returns the KEV entries and EPSS scores of cves, in one read
// transaction; CVEs the database knows nothing about are left out.
func (d *DB) Exploits(cves []string) ([]CVEIntel, error) {
	var out []CVEIntel
	err := d.db.View(func(tx *bolt.Tx) error {
		kb, eb := tx.Bucket(bucketKEV), tx.Bucket(bucketEPSS)
		for _, cve := range cves {
			in := CVEIntel{CVE: cve}
			if v := kb.Get([]byte(cve)); v != nil {
				var e KEVEntry
				if err := json.Unmarshal(v, &e); err != nil {
					return fmt.Errorf("vulndb: decode KEV %s: %w", cve, err)
				}
				in.KEV = &e
			}
			if v := eb.Get([]byte(cve)); v != nil {
				s, ok := decodeEPSS(v)
				if !ok {
					return fmt.Errorf("vulndb: EPSS %s: %d bytes stored, want 8", cve, len(v))
				}
				in.EPSS = &s
			}
			if in.KEV != nil || in.EPSS != nil {
				out = append(out, in)
			}
		}
		return nil
	})
	return out, err
}
