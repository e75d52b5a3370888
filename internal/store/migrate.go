package store

import (
	"context"
	"embed"
	"fmt"
	"io/fs"

	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
)

// migrationsFS holds one migration set per dialect. Both sets have the same
// versions and the same tables; a new migration is added to both.
//
//go:embed migrations/sqlite/*.sql migrations/postgres/*.sql
var migrationsFS embed.FS

// migrationTable is goose's version table.
const migrationTable = "goose_db_version"

func (s *sqlStore) provider() (*goose.Provider, error) {
	dir := "migrations/" + s.engine
	sub, err := fs.Sub(migrationsFS, dir)
	if err != nil {
		return nil, fmt.Errorf("store: migrations %s: %w", dir, err)
	}
	dialect := goose.DialectSQLite3
	popts := []goose.ProviderOption{
		goose.WithDisableGlobalRegistry(true),
		goose.WithTableName(migrationTable),
	}
	if s.engine == EnginePostgres {
		dialect = goose.DialectPostgres
		// Several server replicas may start at once: one migrates, the others wait.
		locker, err := lock.NewPostgresSessionLocker()
		if err != nil {
			return nil, fmt.Errorf("store: migration lock: %w", err)
		}
		popts = append(popts, goose.WithSessionLocker(locker))
	}
	p, err := goose.NewProvider(dialect, s.db, sub, popts...)
	if err != nil {
		return nil, fmt.Errorf("store: migrations: %w", err)
	}
	return p, nil
}

// LatestSchemaVersion is the schema version this binary migrates to.
func LatestSchemaVersion() int64 {
	// Both dialects have the same versions (checked by a test); read sqlite's.
	entries, err := fs.ReadDir(migrationsFS, "migrations/sqlite")
	if err != nil {
		return 0
	}
	var v int64
	for _, e := range entries {
		n, err := goose.NumericComponent(e.Name())
		if err == nil && n > v {
			v = n
		}
	}
	return v
}

// migrate checks the schema version and applies pending migrations.
func migrate(ctx context.Context, s *sqlStore) error {
	p, err := s.provider()
	if err != nil {
		return err
	}
	current, err := p.GetDBVersion(ctx)
	if err != nil {
		return fmt.Errorf("store: read schema version: %w", err)
	}
	latest := LatestSchemaVersion()
	if current > latest {
		return fmt.Errorf("%w: database is at schema version %d, this binary knows up to %d; upgrade mamori (or restore a backup)",
			ErrSchemaTooNew, current, latest)
	}
	res, err := p.Up(ctx)
	if err != nil {
		return fmt.Errorf("store: migrate %s schema from version %d: %w", s.engine, current, err)
	}
	for _, r := range res {
		s.log.Info("store: applied migration", "engine", s.engine, "version", r.Source.Version, "duration", r.Duration)
	}
	return nil
}

// SchemaVersion returns the schema version the database is at.
func (s *sqlStore) SchemaVersion(ctx context.Context) (int64, error) {
	p, err := s.provider()
	if err != nil {
		return 0, err
	}
	v, err := p.GetDBVersion(ctx)
	if err != nil {
		return 0, fmt.Errorf("store: read schema version: %w", err)
	}
	return v, nil
}
