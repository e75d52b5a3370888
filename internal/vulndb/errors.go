package vulndb

import "errors"

var (
	// ErrInvalidRecord is returned (wrapped) for a record that is not OSV
	// JSON or lacks what matching needs. Imports skip such records and count them.
	ErrInvalidRecord = errors.New("vulndb: invalid OSV record")
	// ErrNoDB means the database directory holds no database yet.
	ErrNoDB = errors.New("vulndb: no vulnerability database (run `mamori db update` to download one, or `mamori db import PATH` to load OSV JSON from a directory or zip)")
	// ErrSchema means the database was written by another schema version and
	// must be rebuilt.
	ErrSchema = errors.New("vulndb: database schema version mismatch (run `mamori db update` or `mamori db import PATH` to rebuild it)")
	// ErrLimit means an input went over one of the import caps (record size,
	// entry count, total decompressed size, download size): a zip bomb or a
	// corrupt file.
	ErrLimit = errors.New("vulndb: input over limit")
	// ErrEmpty means an import or update found no valid record at all; the
	// existing database is left as it was.
	ErrEmpty = errors.New("vulndb: no valid OSV record found")
)
