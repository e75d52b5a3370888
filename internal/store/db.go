package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"modernc.org/sqlite"
)

// Engine names.
const (
	EngineSQLite   = "sqlite"
	EnginePostgres = "postgres"
)

// maxTxAttempts bounds the retries of a write transaction that PostgreSQL
// aborted for a deadlock or a serialization failure (both are safe to retry:
// nothing of the aborted attempt was committed).
const maxTxAttempts = 4

// sqlStore implements Store over database/sql for both engines; the few
// differences between them are in dialect.
type sqlStore struct {
	db     *sql.DB
	engine string
	log    *slog.Logger
	// writeMu serializes write transactions on SQLite, which allows one
	// writer at a time anyway: waiting on a Go mutex is fairer and cheaper
	// than SQLite's busy-sleep loop. Unused on PostgreSQL.
	writeMu sync.Mutex
	// failAt, set only by tests, injects a failure at a named step of a
	// write transaction to prove that nothing half-written is committed.
	failAt func(step string) error
	// scanSearch, set only by tests, answers substring searches with the
	// LIKE scan instead of SQLite's trigram index: the reference results.
	scanSearch bool
}

var _ Store = (*sqlStore)(nil)

func (s *sqlStore) Engine() string { return s.engine }

func (s *sqlStore) Close() error { return s.db.Close() }

// q rewrites a query written with "?" placeholders for the engine
// (PostgreSQL wants $1, $2 ...). Queries never contain a literal "?".
func (s *sqlStore) q(query string) string {
	if s.engine != EnginePostgres {
		return query
	}
	var b strings.Builder
	b.Grow(len(query) + 16)
	n := 0
	for i := 0; i < len(query); i++ {
		if query[i] == '?' {
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteByte(query[i])
	}
	return b.String()
}

// step calls the test failure hook, if any.
func (s *sqlStore) step(name string) error {
	if s.failAt == nil {
		return nil
	}
	if err := s.failAt(name); err != nil {
		return fmt.Errorf("injected failure at %s: %w", name, err)
	}
	return nil
}

// tx wraps a transaction with the engine's placeholder rewriting.
type tx struct {
	s  *sqlStore
	tx *sql.Tx
}

func (t *tx) exec(ctx context.Context, query string, args ...any) (sql.Result, error) {
	return t.tx.ExecContext(ctx, t.s.q(query), args...)
}

func (t *tx) query(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	return t.tx.QueryContext(ctx, t.s.q(query), args...)
}

func (t *tx) queryRow(ctx context.Context, query string, args ...any) *sql.Row {
	return t.tx.QueryRowContext(ctx, t.s.q(query), args...)
}

// write runs fn in one write transaction and commits it. On SQLite the
// transaction begins IMMEDIATE (see Open) under writeMu; on PostgreSQL it is
// READ COMMITTED and retried when the server aborted it for a deadlock or a
// serialization failure. fn must be safe to run again from the start.
func (s *sqlStore) write(ctx context.Context, fn func(t *tx) error) error {
	if s.engine == EngineSQLite {
		s.writeMu.Lock()
		defer s.writeMu.Unlock()
	}
	var err error
	for attempt := 1; attempt <= maxTxAttempts; attempt++ {
		err = s.writeOnce(ctx, fn)
		if err == nil || !retryable(err) || ctx.Err() != nil {
			return err
		}
		s.log.Debug("store: retrying write transaction", "attempt", attempt, "err", err)
		time.Sleep(time.Duration(attempt) * 5 * time.Millisecond)
	}
	return err
}

func (s *sqlStore) writeOnce(ctx context.Context, fn func(t *tx) error) (err error) {
	sqlTx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	t := &tx{s: s, tx: sqlTx}
	defer func() {
		if err != nil {
			if rbErr := sqlTx.Rollback(); rbErr != nil && !errors.Is(rbErr, sql.ErrTxDone) {
				err = errors.Join(err, fmt.Errorf("rollback: %w", rbErr))
			}
		}
	}()
	if err = fn(t); err != nil {
		return err
	}
	if err = s.step("commit"); err != nil {
		return err
	}
	if err = sqlTx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// read runs fn in a read-only transaction (a consistent snapshot on both engines).
func (s *sqlStore) read(ctx context.Context, fn func(t *tx) error) error {
	sqlTx, err := s.db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return fmt.Errorf("begin read: %w", err)
	}
	t := &tx{s: s, tx: sqlTx}
	if err := fn(t); err != nil {
		_ = sqlTx.Rollback() // read-only: nothing to undo; the error that matters is fn's
		return err
	}
	if err := sqlTx.Commit(); err != nil {
		return fmt.Errorf("end read: %w", err)
	}
	return nil
}

// Engine error classification. SQLite result codes are from
// https://www.sqlite.org/rescode.html; PostgreSQL SQLSTATEs from
// https://www.postgresql.org/docs/current/errcodes-appendix.html.
const (
	sqliteBusy             = 5
	sqliteLocked           = 6
	sqliteConstraintFK     = 787
	sqliteConstraintPK     = 1555
	sqliteConstraintUnique = 2067

	pgUniqueViolation      = "23505"
	pgForeignKeyViolation  = "23503"
	pgSerializationFailure = "40001"
	pgDeadlockDetected     = "40P01"
)

func isUniqueViolation(err error) bool {
	var se *sqlite.Error
	if errors.As(err, &se) {
		return se.Code() == sqliteConstraintUnique || se.Code() == sqliteConstraintPK
	}
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == pgUniqueViolation
}

func isForeignKeyViolation(err error) bool {
	var se *sqlite.Error
	if errors.As(err, &se) {
		return se.Code() == sqliteConstraintFK
	}
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == pgForeignKeyViolation
}

func retryable(err error) bool {
	var se *sqlite.Error
	if errors.As(err, &se) {
		c := se.Code() & 0xff // primary result code
		return c == sqliteBusy || c == sqliteLocked
	}
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (pe.Code == pgDeadlockDetected || pe.Code == pgSerializationFailure)
}

// ---------------------------------------------------------------------------
// value helpers

// ts stores a time as unix microseconds UTC; the zero time is 0.
func ts(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMicro()
}

// fromTS reads a time stored by ts.
func fromTS(v int64) time.Time {
	if v == 0 {
		return time.Time{}
	}
	return time.UnixMicro(v).UTC()
}

func b2i(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

// jsonText encodes v for a JSON text column; nil slices become "[]".
func jsonText(v any) (string, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return "", fmt.Errorf("encode json column: %w", err)
	}
	if string(b) == "null" {
		return "[]", nil
	}
	return string(b), nil
}

// jsonStrings encodes a string list for a JSON text column.
func jsonStrings(v []string) string {
	if len(v) == 0 {
		return "[]"
	}
	b, err := json.Marshal(v)
	if err != nil { // cannot happen for []string
		return "[]"
	}
	return string(b)
}

// decodeJSON decodes a JSON text column into dst; an empty column or an
// empty array leaves dst as is (a nil slice stays nil, as it was stored).
func decodeJSON(col, s string, dst any) error {
	if s == "" || s == "[]" {
		return nil
	}
	if err := json.Unmarshal([]byte(s), dst); err != nil {
		return fmt.Errorf("decode column %s: %w", col, err)
	}
	return nil
}

// clampPage applies DefaultLimit and MaxLimit and refuses negative offsets.
func clampPage(p Page) Page {
	if p.Limit <= 0 {
		p.Limit = DefaultLimit
	}
	if p.Limit > MaxLimit {
		p.Limit = MaxLimit
	}
	if p.Offset < 0 {
		p.Offset = 0
	}
	return p
}

// placeholders returns "?, ?, ?" with n marks.
func placeholders(n int) string {
	if n <= 0 {
		return ""
	}
	return strings.Repeat("?, ", n-1) + "?"
}

// insertRows runs one multi-row INSERT of rows into table with tail
// appended (ON CONFLICT ..., RETURNING ...); each returned row is passed to
// scan when it is not nil. The caller keeps rows*cols under the engines'
// parameter limits.
func (t *tx) insertRows(ctx context.Context, table string, cols []string, rows [][]any, tail string, scan func(*sql.Rows) error) error {
	if len(rows) == 0 {
		return nil
	}
	var b strings.Builder
	b.WriteString("INSERT INTO " + table + " (" + strings.Join(cols, ", ") + ") VALUES ")
	tuple := "(" + placeholders(len(cols)) + ")"
	args := make([]any, 0, len(rows)*len(cols))
	for i, r := range rows {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(tuple)
		args = append(args, r...)
	}
	b.WriteString(tail)
	if scan == nil {
		_, err := t.exec(ctx, b.String(), args...)
		return err
	}
	rs, err := t.query(ctx, b.String(), args...)
	if err != nil {
		return err
	}
	defer rs.Close()
	for rs.Next() {
		if err := scan(rs); err != nil {
			return err
		}
	}
	return rs.Err()
}

// insertBatch inserts rows into table in multi-row INSERTs of at most
// batchParams parameters (SQLite's default limit is 32766, PostgreSQL's 65535).
func (t *tx) insertBatch(ctx context.Context, table string, cols []string, rows [][]any) error {
	const batchParams = 8000
	if len(rows) == 0 {
		return nil
	}
	per := batchParams / len(cols)
	if per < 1 {
		per = 1
	}
	tuple := "(" + placeholders(len(cols)) + ")"
	head := "INSERT INTO " + table + " (" + strings.Join(cols, ", ") + ") VALUES "
	for start := 0; start < len(rows); start += per {
		end := min(start+per, len(rows))
		var b strings.Builder
		b.WriteString(head)
		args := make([]any, 0, (end-start)*len(cols))
		for i := start; i < end; i++ {
			if i > start {
				b.WriteString(", ")
			}
			b.WriteString(tuple)
			args = append(args, rows[i]...)
		}
		if _, err := t.exec(ctx, b.String(), args...); err != nil {
			return fmt.Errorf("insert into %s: %w", table, err)
		}
	}
	return nil
}
