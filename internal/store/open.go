package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver (pure Go)
)

// SQLiteFileName is the database file Open creates inside a data directory.
const SQLiteFileName = "mamori.db"

// Connection settings, with reasons.
const (
	// sqliteBusyTimeout is how long a SQLite connection waits for another
	// process's write lock before failing (writes of this process queue on a
	// mutex first).
	sqliteBusyTimeout = 10 * time.Second
	// sqliteMaxConns bounds open SQLite connections: WAL lets readers run
	// beside the one writer; each connection has its own page cache.
	sqliteMaxConns = 8
	// pgMaxConns bounds PostgreSQL connections from one server process.
	pgMaxConns = 16
)

// Option configures Open.
type Option func(*options) error

type options struct {
	logger *slog.Logger
}

// WithLogger sets the logger for migrations and store events (default slog.Default()).
func WithLogger(l *slog.Logger) Option {
	return func(o *options) error {
		if l == nil {
			return errors.New("store: nil logger")
		}
		o.logger = l
		return nil
	}
}

func makeOptions(opts []Option) (*options, error) {
	o := &options{logger: slog.Default()}
	for _, opt := range opts {
		if err := opt(o); err != nil {
			return nil, err
		}
	}
	return o, nil
}

// Open opens (creating and migrating when needed) the store named by dsn:
//   - "postgres://…" or "postgresql://…": PostgreSQL through pgx (the
//     database must exist; Open creates the tables);
//   - "sqlite://PATH", "sqlite:PATH" or a plain PATH: SQLite. When PATH is an
//     existing directory or ends in "/", the database is PATH/mamori.db; the
//     parent directory is created (mode 0700) when missing.
//
// SQLite runs in WAL mode with synchronous=FULL (an acknowledged write
// survives power loss), foreign keys on and a busy timeout. Open migrates an
// older schema and refuses a database migrated by a newer mamori
// (ErrSchemaTooNew). On PostgreSQL it also creates the trigram indexes of
// substring search when it can (see ensureTrigramIndexes).
func Open(ctx context.Context, dsn string, opts ...Option) (Store, error) {
	o, err := makeOptions(opts)
	if err != nil {
		return nil, err
	}
	var s *sqlStore
	switch {
	case strings.HasPrefix(dsn, "postgres://"), strings.HasPrefix(dsn, "postgresql://"):
		s, err = openPostgres(dsn, o)
	default:
		s, err = openSQLite(dsn, o)
	}
	if err != nil {
		return nil, err
	}
	if err := s.db.PingContext(ctx); err != nil {
		_ = s.db.Close() // the ping error is the one to report
		return nil, fmt.Errorf("store: connect %s: %w", s.engine, err)
	}
	if err := migrate(ctx, s); err != nil {
		_ = s.db.Close() // the migration error is the one to report
		return nil, err
	}
	if err := s.ensureTrigramIndexes(ctx); err != nil {
		_ = s.db.Close() // ctx's error is the one to report
		return nil, err
	}
	return s, nil
}

// sqlitePath resolves the database file of a SQLite DSN.
func sqlitePath(dsn string) (string, error) {
	p := dsn
	switch {
	case strings.HasPrefix(p, "sqlite://"):
		p = strings.TrimPrefix(p, "sqlite://")
	case strings.HasPrefix(p, "sqlite:"):
		p = strings.TrimPrefix(p, "sqlite:")
	}
	if p == "" {
		return "", fmt.Errorf("store: empty SQLite path in DSN %q", dsn)
	}
	if strings.ContainsAny(p, "?#\x00") {
		return "", fmt.Errorf("store: SQLite path %q: '?', '#' and NUL are not allowed", p)
	}
	if strings.HasSuffix(p, "/") {
		return filepath.Join(p, SQLiteFileName), nil
	}
	if fi, err := os.Stat(p); err == nil && fi.IsDir() {
		return filepath.Join(p, SQLiteFileName), nil
	}
	return p, nil
}

func openSQLite(dsn string, o *options) (*sqlStore, error) {
	path, err := sqlitePath(dsn)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("store: create data dir: %w", err)
	}
	q := url.Values{}
	// busy_timeout first (modernc applies it before the other pragmas).
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", sqliteBusyTimeout.Milliseconds()))
	q.Add("_pragma", "journal_mode(WAL)")
	// FULL: in WAL mode NORMAL may lose the last commits on power loss; an
	// acknowledged ingest must survive (issue 5, "kill -9 loses nothing acknowledged").
	q.Add("_pragma", "synchronous(FULL)")
	q.Add("_pragma", "foreign_keys(1)")
	// Write transactions take the write lock at BEGIN, so two writers never
	// deadlock upgrading a read lock; read-only transactions stay deferred.
	q.Set("_txlock", "immediate")
	db, err := sql.Open("sqlite", path+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("store: open sqlite %s: %w", path, err)
	}
	db.SetMaxOpenConns(sqliteMaxConns)
	db.SetMaxIdleConns(sqliteMaxConns)
	return &sqlStore{db: db, engine: EngineSQLite, log: o.logger}, nil
}

func openPostgres(dsn string, o *options) (*sqlStore, error) {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		// pgx's message may echo the DSN with its password: do not wrap it.
		return nil, errors.New("store: invalid PostgreSQL DSN")
	}
	db := stdlib.OpenDB(*cfg)
	db.SetMaxOpenConns(pgMaxConns)
	db.SetMaxIdleConns(pgMaxConns)
	db.SetConnMaxIdleTime(5 * time.Minute)
	return &sqlStore{db: db, engine: EnginePostgres, log: o.logger}, nil
}
