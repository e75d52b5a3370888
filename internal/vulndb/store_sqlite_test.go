package vulndb

// This file keeps the SQLite (modernc.org/sqlite) variant of the store that
// the bbolt store was measured against (BenchmarkStore*), so the choice can
// be re-measured. It is test-only: the product ships the bbolt store.

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"path/filepath"

	"github.com/klauspost/compress/zstd"
	_ "modernc.org/sqlite"
)

type sqliteStore struct {
	db   *sql.DB
	dec  *zstd.Decoder
	look *sql.Stmt
}

// buildSQLite imports path into a SQLite file the way build does for bbolt:
// same parsing, same zstd-compressed compact JSON, same key scheme.
func buildSQLite(ctx context.Context, file, path string) (int, error) {
	db, err := sql.Open("sqlite", file+"?_pragma=journal_mode(OFF)&_pragma=synchronous(OFF)")
	if err != nil {
		return 0, err
	}
	defer db.Close()
	for _, q := range []string{
		`CREATE TABLE records (id TEXT PRIMARY KEY, data BLOB NOT NULL) WITHOUT ROWID`,
		`CREATE TABLE idx (eco TEXT NOT NULL, name TEXT NOT NULL, id TEXT NOT NULL, PRIMARY KEY (eco, name, id)) WITHOUT ROWID`,
	} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			return 0, err
		}
	}
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1))
	if err != nil {
		return 0, err
	}
	defer enc.Close()
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return 0, err
	}
	putRec, _ := tx.PrepareContext(ctx, `INSERT OR REPLACE INTO records (id, data) VALUES (?, ?)`)
	putIdx, _ := tx.PrepareContext(ctx, `INSERT OR IGNORE INTO idx (eco, name, id) VALUES (?, ?, ?)`)
	n := 0
	lim := &limits{maxEntries: DefaultMaxEntries, maxTotal: DefaultMaxTotalBytes}
	err = readPath(ctx, path, lim, func(raw rawRecord) error {
		r, perr := ParseRecord(raw.Data)
		if perr != nil {
			return nil
		}
		js, err := json.Marshal(r)
		if err != nil {
			return err
		}
		if _, err := putRec.ExecContext(ctx, r.ID, enc.EncodeAll(js, nil)); err != nil {
			return err
		}
		for _, a := range r.Affected {
			eco := CanonicalEcosystem(a.Package.Ecosystem)
			if _, err := putIdx.ExecContext(ctx, eco, NormalizeName(eco, a.Package.Name), r.ID); err != nil {
				return err
			}
		}
		n++
		return nil
	})
	if err != nil {
		tx.Rollback()
		return 0, err
	}
	if err := tx.Commit(); err != nil {
		return 0, err
	}
	_, err = db.ExecContext(ctx, `VACUUM`)
	return n, err
}

func openSQLite(file string) (*sqliteStore, error) {
	db, err := sql.Open("sqlite", "file:"+filepath.ToSlash(file)+"?mode=ro")
	if err != nil {
		return nil, err
	}
	look, err := db.Prepare(`SELECT r.id, r.data FROM idx i JOIN records r ON r.id = i.id WHERE i.eco = ? AND i.name = ? ORDER BY i.id`)
	if err != nil {
		return nil, err
	}
	dec, err := zstd.NewReader(nil)
	if err != nil {
		return nil, err
	}
	return &sqliteStore{db: db, dec: dec, look: look}, nil
}

func (s *sqliteStore) lookup(eco, name string) ([]*Record, error) {
	eco = CanonicalEcosystem(eco)
	rows, err := s.look.Query(eco, NormalizeName(eco, name))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*Record
	for rows.Next() {
		var id string
		var data []byte
		if err := rows.Scan(&id, &data); err != nil {
			return nil, err
		}
		js, err := s.dec.DecodeAll(data, nil)
		if err != nil {
			return nil, fmt.Errorf("decode %s: %w", id, err)
		}
		var r Record
		if err := json.Unmarshal(js, &r); err != nil {
			return nil, err
		}
		out = append(out, &r)
	}
	return out, rows.Err()
}

func (s *sqliteStore) close() { s.dec.Close(); s.db.Close() }
