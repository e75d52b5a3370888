-- mamori store schema v2 (PostgreSQL): the search text of vulnerabilities in
-- a table of its own, for the trigram indexes of substring search. See
-- ../sqlite/00002_search_index.sql for SQLite's FTS5 counterpart and
-- search.go for how queries use them.
--
-- Why a copy: every ingest (and every rematch) updates the counters of the
-- vulnerabilities it touches, and each update writes a new row version into
-- every index of the table. GIN trigram indexes on vulnerabilities.search
-- and package_search cost 17% of ingest throughput that way and, until
-- autovacuum caught up, made searches 2-5x slower (GIN pending list, dead
-- row versions); measured at 5,000 vulnerabilities, 100 rows per image.
-- vuln_search changes only when the text does. The price is a join: a
-- search that matches a large part of the table needs the planner's
-- statistics on vuln_search (autovacuum's, or those ensureTrigramIndexes
-- gathers when it creates the indexes) to choose a hash join.
--
-- The GIN gin_trgm_ops indexes on vuln_search and images are created at
-- every open by ensureTrigramIndexes (search.go), not here: CREATE EXTENSION
-- pg_trgm may be refused to mamori's role (it needs the CREATE privilege on
-- the database), and a refused extension must neither fail the migration
-- nor stay refused once an administrator installs it. Without the indexes,
-- searches scan vuln_search, which is still much narrower than
-- vulnerabilities.

-- +goose Up
CREATE TABLE vuln_search (
    id             TEXT NOT NULL PRIMARY KEY REFERENCES vulnerabilities (id) ON DELETE CASCADE,
    search         TEXT NOT NULL,
    package_search TEXT NOT NULL
);

-- +goose StatementBegin
CREATE FUNCTION vuln_search_sync() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO vuln_search (id, search, package_search) VALUES (NEW.id, NEW.search, NEW.package_search)
    ON CONFLICT (id) DO UPDATE SET search = excluded.search, package_search = excluded.package_search;
    RETURN NULL;
END
$$;
-- +goose StatementEnd

CREATE TRIGGER vuln_search_insert AFTER INSERT ON vulnerabilities
    FOR EACH ROW EXECUTE FUNCTION vuln_search_sync();
-- Most updates only move counters: copy only a changed text.
CREATE TRIGGER vuln_search_update AFTER UPDATE OF search, package_search ON vulnerabilities
    FOR EACH ROW WHEN (OLD.search IS DISTINCT FROM NEW.search OR OLD.package_search IS DISTINCT FROM NEW.package_search)
    EXECUTE FUNCTION vuln_search_sync();

-- Back-fill: copy the rows written before this migration.
INSERT INTO vuln_search (id, search, package_search) SELECT id, search, package_search FROM vulnerabilities;

-- +goose Down
DROP TRIGGER vuln_search_update ON vulnerabilities;
DROP TRIGGER vuln_search_insert ON vulnerabilities;
DROP FUNCTION vuln_search_sync();
DROP TABLE vuln_search;
