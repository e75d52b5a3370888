package rpm

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"modernc.org/sqlite"

	"mamori/internal/catalog/rpm/rpmdb"
)

// sqliteLimitLength is SQLITE_LIMIT_LENGTH (https://www.sqlite.org/c3ref/c_limit_attached.html).
const sqliteLimitLength = 0

// readSQLite returns the header blobs of an rpmdb.sqlite (rpm >= 4.16,
// Fedora 33+, RHEL 9, CBL-Mariner): table Packages(hnum, blob). SQLite
// opens files by name, so the content is copied to a private directory
// under tempDir (at most maxSize bytes) that is always removed.
//
// The database is opened read-only and immutable (no -wal/-shm files, no
// locks), and the connection is restricted as for untrusted schemas: an
// authorizer allows only SELECT and reads plus the length() function, so a
// crafted "Packages" view with a recursive query or an expensive function
// is refused instead of run, and SQLITE_LIMIT_LENGTH refuses any value larger
// than an rpm header may be.
func readSQLite(ctx context.Context, r io.ReaderAt, size int64, tempDir string) (_ [][]byte, err error) {
	dir, err := os.MkdirTemp(tempDir, "mamori-rpmdb-")
	if err != nil {
		return nil, fmt.Errorf("rpm sqlite temp dir: %w", err)
	}
	defer func() {
		if rmErr := os.RemoveAll(dir); rmErr != nil && err == nil {
			err = fmt.Errorf("remove rpm sqlite temp dir: %w", rmErr)
		}
	}()
	path := filepath.Join(dir, "rpmdb.sqlite")
	if err := copyToFile(path, io.NewSectionReader(r, 0, size)); err != nil {
		return nil, err
	}

	dsn := "file:" + (&url.URL{Path: path}).EscapedPath() +
		"?mode=ro&immutable=1&_pragma=query_only(1)&_pragma=trusted_schema(0)"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("open rpm sqlite: %w", err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	conn, err := db.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("%w: open rpm sqlite: %w", ErrCorrupt, err)
	}
	defer conn.Close()
	if _, err := sqlite.Limit(conn, sqliteLimitLength, rpmdb.MaxHeaderSize); err != nil {
		return nil, fmt.Errorf("limit rpm sqlite: %w", err)
	}
	if err := conn.Raw(func(dc any) error {
		a, ok := dc.(sqlite.AuthorizerRegisterer)
		if !ok {
			return errors.New("sqlite driver has no authorizer")
		}
		return a.RegisterAuthorizer(readOnlyAuthorizer)
	}); err != nil {
		return nil, fmt.Errorf("restrict rpm sqlite: %w", err)
	}

	var kind, ddl string
	err = conn.QueryRowContext(ctx, "SELECT type, sql FROM sqlite_master WHERE name = 'Packages'").Scan(&kind, &ddl)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return nil, fmt.Errorf("%w: sqlite database without a Packages table", ErrCorrupt)
	case err != nil:
		return nil, fmt.Errorf("%w: read rpm sqlite schema: %w", ErrCorrupt, err)
	case kind != "table" || !strings.HasPrefix(strings.ToUpper(strings.TrimSpace(ddl)), "CREATE TABLE"):
		return nil, fmt.Errorf("%w: Packages is a %s, not a table", ErrCorrupt, kind)
	}

	rows, err := conn.QueryContext(ctx, "SELECT blob FROM Packages")
	if err != nil {
		return nil, fmt.Errorf("%w: query rpm sqlite: %w", ErrCorrupt, err)
	}
	defer rows.Close()
	var (
		blobs [][]byte
		total int64
	)
	for rows.Next() {
		var b []byte
		if err := rows.Scan(&b); err != nil {
			return nil, fmt.Errorf("%w: read rpm sqlite row: %w", ErrCorrupt, err)
		}
		if total += int64(len(b)); total > size {
			return nil, fmt.Errorf("%w: sqlite blobs larger than the file", ErrCorrupt)
		}
		blobs = append(blobs, b)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("%w: read rpm sqlite rows: %w", ErrCorrupt, err)
	}
	return blobs, nil
}

// readOnlyAuthorizer allows plain reads and nothing else.
func readOnlyAuthorizer(action sqlite.AuthorizerActionCode, _, arg2, _, _ string) sqlite.AuthorizerReturnCode {
	switch action {
	case sqlite.AuthSelect, sqlite.AuthRead:
		return sqlite.AuthorizerOK
	case sqlite.AuthFunction:
		if arg2 == "length" {
			return sqlite.AuthorizerOK
		}
	}
	return sqlite.AuthorizerDeny
}

// copyToFile writes r to a new file at path (mode 0600).
func copyToFile(path string, r io.Reader) (err error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("rpm sqlite temp file: %w", err)
	}
	defer func() {
		if cErr := f.Close(); cErr != nil && err == nil {
			err = fmt.Errorf("rpm sqlite temp file: %w", cErr)
		}
	}()
	if _, err := io.Copy(f, r); err != nil {
		return fmt.Errorf("rpm sqlite temp file: %w", err)
	}
	return nil
}
