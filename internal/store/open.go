package store

import (
	"context"
	"errors"
	"log/slog"
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

// Open opens (creating and migrating when needed) the store named by dsn:
//   - "postgres://…" or "postgresql://…": PostgreSQL through pgx;
//   - "sqlite://PATH", "sqlite:PATH" or a plain PATH: SQLite. When PATH is an
//     existing directory or ends in "/", the database is PATH/mamori.db.
//
// Open refuses a database migrated by a newer mamori (ErrSchemaTooNew).
func Open(ctx context.Context, dsn string, opts ...Option) (Store, error) {
	return nil, errors.New("store: Open: not implemented yet (interface committed first)")
}
