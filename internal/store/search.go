package store

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// Substring search. The search columns (images.search,
// vulnerabilities.search and package_search) hold lower-cased text, and a
// search matches the rows whose column contains the user's text, lower-cased,
// as a plain substring: "%", "_" and "\" are literal. Without an index that
// is a LIKE scan of every row; both engines answer it from trigram indexes:
//
//   - SQLite: the FTS5 tables of migration 00002 (tokenizer trigram,
//     case-sensitive) hold every 3-character sequence of the columns with its
//     position. The text is queried as one FTS5 phrase, which matches exactly
//     the rows that contain it, so no LIKE recheck is needed. Measured at
//     20,000 vulnerabilities (console latency fixture): 5 ms against 90 ms
//     for the LIKE scan for a selective term, 43 ms against 58 ms when half
//     the rows match. LIKE and GLOB against the FTS table were measured too:
//     LIKE ... ESCAPE is not passed to FTS5 (a full scan), and LIKE without
//     ESCAPE (which needs a recheck for "%" and "_") and GLOB both check each
//     candidate against the row's text: 2-3x slower than the phrase.
//   - PostgreSQL: GIN gin_trgm_ops indexes, which PostgreSQL uses for the
//     unchanged LIKE (ensureTrigramIndexes), on images.search and on
//     vuln_search, the copy of vulnerabilities' text that migration 00002
//     keeps (it says why).
//
// A trigram index cannot answer text shorter than 3 characters: those
// searches stay LIKE scans on SQLite; PostgreSQL's planner decides.

// minTrigramRunes is the shortest text a trigram index can answer.
const minTrigramRunes = 3

// searchIndex is how one table's search columns are indexed.
type searchIndex struct {
	// alias is the table's alias in the store's queries.
	alias string
	// cols are the searched columns.
	cols []string
	// fts is the SQLite FTS5 table over cols; its rowid is key's.
	fts, key string
	// pgTable, when set, is the PostgreSQL table that holds a copy of cols
	// with the table's id (pgKey): searches and trigram indexes use it.
	pgTable, pgKey string
}

var (
	vulnSearchIndex = searchIndex{alias: "v", cols: []string{"search", "package_search"},
		fts: "vuln_search", key: "v.rowid", pgTable: "vuln_search", pgKey: "v.id"}
	imageSearchIndex = searchIndex{alias: "i", cols: []string{"search"}, fts: "image_search", key: "i.id"}
)

// searchText normalizes a user's search term as the search columns are
// stored: trimmed, lower-cased, and on one line (newlines separate the
// values of a column, so a term never spans two).
func searchText(term string) string {
	return strings.ReplaceAll(strings.ToLower(strings.TrimSpace(term)), "\n", " ")
}

var likeEscaper = strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)

// likeContains is the LIKE pattern (escape character '\') of the rows that
// contain sub.
func likeContains(sub string) string {
	return "%" + likeEscaper.Replace(sub) + "%"
}

// tokenText is the text that matches one whole newline-delimited value (an
// ID or alias) of a search column, case-insensitively.
func tokenText(term string) string {
	return "\n" + searchText(term) + "\n"
}

// ftsExact reports whether the FTS5 phrase of sub matches exactly the rows
// that contain it: sub is long enough to have a trigram, and is text that a
// search column can hold (validate refuses NUL and invalid UTF-8, which
// SQLite's LIKE and the tokenizer would each read their own way).
func ftsExact(sub string) bool {
	return utf8.RuneCountInString(sub) >= minTrigramRunes && utf8.ValidString(sub) && strings.IndexByte(sub, 0) < 0
}

// useFTS reports whether a search for sub uses SQLite's trigram index.
func (s *sqlStore) useFTS(sub string) bool {
	return s.engine == EngineSQLite && !s.scanSearch && ftsExact(sub)
}

// walkSortOrder reports whether the page p of a list whose search matches
// total rows is cheaper to find by walking the sort order's index and
// probing the trigram index's matches (contains with probe) than by fetching
// all matches and sorting them. The walk reads about (offset+limit)·n/total
// index entries for a table of n rows, the fetch total rows and a sort.
// Measured at 20,000 vulnerabilities of which 9,300 match: 8 ms against
// 21 ms for the first page; with 100 matches, 4 ms against 2 ms.
func walkSortOrder(total, n int64, p Page) bool {
	return total*total >= int64(p.Offset+p.Limit)*n
}

// ftsPhrase quotes sub as an FTS5 string, a phrase of its trigrams: inside
// one, only '"' is special (doubled), so no user text is query syntax.
func ftsPhrase(sub string) string {
	return `"` + strings.ReplaceAll(sub, `"`, `""`) + `"`
}

// contains returns the condition (with its arguments) that one of cols (of
// ix.cols) contains sub, a normalized search text (searchText or tokenText).
// probe (SQLite) asks for a plan that walks another index, in the query's
// sort order, and probes the rows it meets against the trigram index's
// matches, instead of fetching every match (see walkSortOrder).
func (s *sqlStore) contains(ix searchIndex, cols []string, sub string, probe bool) (string, []any) {
	if s.useFTS(sub) {
		q := ftsPhrase(sub)
		if len(cols) < len(ix.cols) {
			// FTS5 column filter: {col ...} : phrase.
			q = "{" + strings.Join(cols, " ") + "} : " + q
		}
		key := ix.key
		if probe {
			key = "+" + key // a unary "+" keeps SQLite from looking rows up by this term
		}
		return key + " IN (SELECT rowid FROM " + ix.fts + " WHERE " + ix.fts + " MATCH ?)", []any{q}
	}
	// PostgreSQL searches vulnerabilities in their text's copy.
	copied := s.engine == EnginePostgres && ix.pgTable != ""
	alias := ix.alias
	if copied {
		alias = "st"
	}
	p := likeContains(sub)
	conds := make([]string, len(cols))
	args := make([]any, len(cols))
	for i, c := range cols {
		conds[i] = alias + "." + c + ` LIKE ? ESCAPE '\'`
		args[i] = p
	}
	cond := conds[0]
	if len(conds) > 1 {
		cond = "(" + strings.Join(conds, " OR ") + ")"
	}
	if copied {
		return ix.pgKey + " IN (SELECT st.id FROM " + ix.pgTable + " st WHERE " + cond + ")", args
	}
	return cond, args
}

// customPlans makes PostgreSQL plan the rest of t's statements for their
// parameters. The selectivity of a LIKE pattern decides the plan ('%li%'
// matches most rows, '%cve-2024-1234%' a few), and PostgreSQL may switch a
// prepared statement to a generic plan, blind to the pattern, after five
// runs: measured at 20,000 vulnerabilities, a two-letter search took 128 ms
// on the cached generic plan (a trigram index scan in full-scan mode)
// against 13 ms planned for its pattern. Only searches ask for it: planning
// every statement of every connection (plan_cache_mode at connect time)
// cost 60% of ingest throughput, replanning multi-row INSERTs.
func (s *sqlStore) customPlans(ctx context.Context, t *tx) error {
	if s.engine != EnginePostgres {
		return nil
	}
	if _, err := t.exec(ctx, `SET LOCAL plan_cache_mode = force_custom_plan`); err != nil {
		return fmt.Errorf("plan search: %w", err)
	}
	return nil
}

// pgTrigramIndexes are the PostgreSQL indexes behind substring search.
var pgTrigramIndexes = []struct{ name, table, column string }{
	{"vuln_search_search_trgm", "vuln_search", "search"},
	{"vuln_search_package_search_trgm", "vuln_search", "package_search"},
	{"images_search_trgm", "images", "search"},
}

// pgTrigramLockKey is the advisory lock (pg_advisory_xact_lock) that
// serializes ensureTrigramIndexes between server replicas starting at once.
// Any constant unlikely to collide will do: "mamoritg" in ASCII.
const pgTrigramLockKey = 0x6d616d6f72697467

// ensureTrigramIndexes creates, on PostgreSQL, the pg_trgm extension and the
// GIN trigram indexes of pgTrigramIndexes when missing. It runs at every
// open rather than in a migration: CREATE EXTENSION may be refused to
// mamori's role, which must not fail the migration (search works without
// the indexes, only slower), and the indexes should appear at the next open
// once an administrator has run CREATE EXTENSION pg_trgm. Failures are
// logged as warnings; only a cancelled ctx is returned.
func (s *sqlStore) ensureTrigramIndexes(ctx context.Context) error {
	if s.engine != EnginePostgres {
		return nil
	}
	err := s.createTrigramIndexes(ctx)
	if err == nil || ctx.Err() != nil {
		return ctx.Err()
	}
	s.log.Warn("store: substring search is not indexed: searches scan every row (ask an administrator to run "+
		"CREATE EXTENSION pg_trgm in this database, or grant mamori's role CREATE on it, then restart)",
		"engine", s.engine, "err", err)
	return nil
}

func (s *sqlStore) createTrigramIndexes(ctx context.Context) error {
	names := make([]string, len(pgTrigramIndexes))
	for i, ix := range pgTrigramIndexes {
		names[i] = ix.name
	}
	present := func(q interface {
		QueryRowContext(context.Context, string, ...any) *sql.Row
	}) (bool, error) {
		var n int
		err := q.QueryRowContext(ctx, `SELECT COUNT(*) FROM pg_indexes WHERE schemaname = current_schema()
			AND indexname = ANY($1)`, names).Scan(&n)
		return n == len(names), err
	}
	// The common case, every open after the first: one catalog read.
	if ok, err := present(s.db); err != nil || ok {
		return err
	}
	start := time.Now()
	sqlTx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer func() { _ = sqlTx.Rollback() }() // after Commit, a no-op; on failure, nothing to keep
	if _, err := sqlTx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(pgTrigramLockKey)); err != nil {
		return fmt.Errorf("lock: %w", err)
	}
	if ok, err := present(sqlTx); err != nil || ok { // another replica made them meanwhile
		return err
	}
	if _, err := sqlTx.ExecContext(ctx, `CREATE EXTENSION IF NOT EXISTS pg_trgm`); err != nil {
		return fmt.Errorf("create extension pg_trgm: %w", err)
	}
	// The operator class in the extension's schema, which need not be on
	// the search path.
	var schema string
	if err := sqlTx.QueryRowContext(ctx, `SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
		WHERE e.extname = 'pg_trgm'`).Scan(&schema); err != nil {
		return fmt.Errorf("find pg_trgm: %w", err)
	}
	opclass := quoteIdent(schema) + ".gin_trgm_ops"
	for _, ix := range pgTrigramIndexes {
		if _, err := sqlTx.ExecContext(ctx, `CREATE INDEX IF NOT EXISTS `+ix.name+` ON `+ix.table+
			` USING gin (`+ix.column+` `+opclass+`)`); err != nil {
			return fmt.Errorf("create index %s: %w", ix.name, err)
		}
	}
	// After an upgrade vuln_search holds the back-filled rows but no
	// statistics yet, without which a search that matches much of it is
	// planned as a nested loop (78 ms against 13 ms at 20,000
	// vulnerabilities): gather them now rather than at autovacuum's next
	// round. Not for an empty table: statistics saying "empty" make the
	// planner scan, not index, as the table fills (ingest twice as slow
	// after 1,000 images, until autovacuum caught up).
	var rows bool
	if err := sqlTx.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM vuln_search)`).Scan(&rows); err != nil {
		return fmt.Errorf("read vuln_search: %w", err)
	}
	if rows {
		if _, err := sqlTx.ExecContext(ctx, `ANALYZE vuln_search`); err != nil {
			return fmt.Errorf("analyze vuln_search: %w", err)
		}
	}
	if err := sqlTx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	s.log.Info("store: created trigram indexes for substring search", "engine", s.engine, "duration", time.Since(start))
	return nil
}

// quoteIdent quotes a PostgreSQL identifier.
func quoteIdent(id string) string {
	return `"` + strings.ReplaceAll(id, `"`, `""`) + `"`
}
