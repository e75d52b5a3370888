package store

import (
	"context"
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestOpenSQLiteDSNForms(t *testing.T) {
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "existing"), 0o700); err != nil {
		t.Fatal(err)
	}
	cases := []struct{ dsn, file string }{
		{filepath.Join(dir, "existing"), filepath.Join(dir, "existing", SQLiteFileName)},
		{filepath.Join(dir, "new") + "/", filepath.Join(dir, "new", SQLiteFileName)},
		{"sqlite://" + filepath.Join(dir, "a.db"), filepath.Join(dir, "a.db")},
		{"sqlite:" + filepath.Join(dir, "sub", "b.db"), filepath.Join(dir, "sub", "b.db")},
	}
	ctx := context.Background()
	for _, c := range cases {
		st, err := Open(ctx, c.dsn, WithLogger(slog.New(slog.DiscardHandler)))
		if err != nil {
			t.Fatalf("%s: %v", c.dsn, err)
		}
		if _, err := os.Stat(c.file); err != nil {
			t.Errorf("%s: database not at %s: %v", c.dsn, c.file, err)
		}
		s := st.(*sqlStore)
		// The durability and integrity settings hold on every pooled connection.
		for i := 0; i < 3; i++ {
			conn, err := s.db.Conn(ctx)
			if err != nil {
				t.Fatal(err)
			}
			var mode string
			var sync, fk int
			if err := conn.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
				t.Fatal(err)
			}
			if err := conn.QueryRowContext(ctx, "PRAGMA synchronous").Scan(&sync); err != nil {
				t.Fatal(err)
			}
			if err := conn.QueryRowContext(ctx, "PRAGMA foreign_keys").Scan(&fk); err != nil {
				t.Fatal(err)
			}
			if mode != "wal" || sync != 2 || fk != 1 {
				t.Errorf("%s: journal_mode=%s synchronous=%d foreign_keys=%d, want wal/2 (FULL)/1", c.dsn, mode, sync, fk)
			}
			defer conn.Close()
		}
		if st.Engine() != EngineSQLite {
			t.Errorf("engine = %s", st.Engine())
		}
		if err := st.Close(); err != nil {
			t.Error(err)
		}
	}
	for _, bad := range []string{"", "sqlite://", "a?b.db"} {
		if _, err := Open(ctx, bad); err == nil {
			t.Errorf("Open(%q) succeeded", bad)
		}
	}
	if _, err := Open(ctx, "postgres://u:secretpw@%zz/db"); err == nil || strings.Contains(err.Error(), "secretpw") {
		t.Errorf("bad postgres DSN err = %v (must not echo the password)", err)
	}
}

func TestMigrationSetsMatch(t *testing.T) {
	names := func(dir string) []string {
		entries, err := fs.ReadDir(migrationsFS, dir)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, e := range entries {
			out = append(out, e.Name())
		}
		return out
	}
	sq, pg := names("migrations/sqlite"), names("migrations/postgres")
	if !reflect.DeepEqual(sq, pg) || len(sq) == 0 {
		t.Errorf("migration sets differ: sqlite %v, postgres %v", sq, pg)
	}
	if LatestSchemaVersion() < 1 {
		t.Errorf("LatestSchemaVersion = %d", LatestSchemaVersion())
	}
}

// TestSchemaVersion: a fresh database is migrated to the binary's version;
// reopening is a no-op; a database from a newer binary is refused.
func TestSchemaVersion(t *testing.T) {
	engines(t, func(t *testing.T, s *sqlStore) {
		ctx := context.Background()
		v, err := s.SchemaVersion(ctx)
		if err != nil || v != LatestSchemaVersion() {
			t.Fatalf("version = %d, %v; want %d", v, err, LatestSchemaVersion())
		}
		// Reopen the same database: nothing to migrate, data kept.
		if err := s.SetMeta(ctx, "k", "v"); err != nil {
			t.Fatal(err)
		}
		if err := migrate(ctx, s); err != nil {
			t.Fatalf("re-migrate: %v", err)
		}
		if got, _ := s.GetMeta(ctx, "k"); got != "v" {
			t.Errorf("data lost on re-migrate")
		}
		// Pretend a newer mamori migrated it.
		newer := LatestSchemaVersion() + 1
		if _, err := s.db.ExecContext(ctx, s.q(`INSERT INTO `+migrationTable+` (version_id, is_applied) VALUES (?, ?)`), newer, true); err != nil {
			t.Fatal(err)
		}
		err = migrate(ctx, s)
		if !errors.Is(err, ErrSchemaTooNew) || !strings.Contains(err.Error(), "upgrade mamori") {
			t.Fatalf("newer schema err = %v", err)
		}
	})
}

func TestOpenRefusesNewerSchemaFile(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "m.db")
	st, err := Open(ctx, path, WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	s := st.(*sqlStore)
	if _, err := s.db.ExecContext(ctx, `INSERT INTO `+migrationTable+` (version_id, is_applied) VALUES (?, 1)`, LatestSchemaVersion()+5); err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(ctx, path); !errors.Is(err, ErrSchemaTooNew) {
		t.Fatalf("Open newer = %v, want ErrSchemaTooNew", err)
	}
}
