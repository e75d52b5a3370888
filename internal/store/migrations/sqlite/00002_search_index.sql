-- mamori store schema v2 (SQLite): trigram full-text indexes behind substring
-- search (ListVulnerabilities and ListImages "q", the alias lookup of
-- GetVulnerability). See search.go for how queries use them.
--
-- FTS5's trigram tokenizer (SQLite >= 3.34) indexes every 3-character
-- sequence with its position, so a phrase query of the search text finds
-- exactly the rows whose column contains it. case_sensitive 1: the search
-- columns are lower-cased by mamori already, and SQLite's own Unicode case
-- folding differs from Go's; an unfolded index matches exactly what the
-- LIKE scan over the same columns matches.
--
-- Both tables are external-content tables: the text stays in its table
-- (stored once) and triggers keep the index in step with every write.
-- vulnerabilities has no INTEGER PRIMARY KEY, so its index is keyed by the
-- implicit rowid, which upserts keep and VACUUM keeps too (checked by
-- TestSearchIndexSurvivesVacuum).
--
-- The PostgreSQL counterpart (pg_trgm GIN indexes) is created at open time,
-- outside the migration: see ../postgres/00002_search_index.sql.

-- +goose Up
CREATE VIRTUAL TABLE vuln_search USING fts5 (
    search, package_search,
    content = 'vulnerabilities', content_rowid = 'rowid',
    tokenize = 'trigram case_sensitive 1'
);

-- +goose StatementBegin
CREATE TRIGGER vuln_search_insert AFTER INSERT ON vulnerabilities BEGIN
    INSERT INTO vuln_search (rowid, search, package_search) VALUES (new.rowid, new.search, new.package_search);
END;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE TRIGGER vuln_search_delete AFTER DELETE ON vulnerabilities BEGIN
    INSERT INTO vuln_search (vuln_search, rowid, search, package_search)
        VALUES ('delete', old.rowid, old.search, old.package_search);
END;
-- +goose StatementEnd

-- Every ingest upserts the vulnerabilities it touches, mostly to move
-- counters: re-index only when the text changed.
-- +goose StatementBegin
CREATE TRIGGER vuln_search_update AFTER UPDATE OF search, package_search ON vulnerabilities
WHEN old.search IS NOT new.search OR old.package_search IS NOT new.package_search BEGIN
    INSERT INTO vuln_search (vuln_search, rowid, search, package_search)
        VALUES ('delete', old.rowid, old.search, old.package_search);
    INSERT INTO vuln_search (rowid, search, package_search) VALUES (new.rowid, new.search, new.package_search);
END;
-- +goose StatementEnd

CREATE VIRTUAL TABLE image_search USING fts5 (
    search,
    content = 'images', content_rowid = 'id',
    tokenize = 'trigram case_sensitive 1'
);

-- +goose StatementBegin
CREATE TRIGGER image_search_insert AFTER INSERT ON images BEGIN
    INSERT INTO image_search (rowid, search) VALUES (new.id, new.search);
END;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE TRIGGER image_search_delete AFTER DELETE ON images BEGIN
    INSERT INTO image_search (image_search, rowid, search) VALUES ('delete', old.id, old.search);
END;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE TRIGGER image_search_update AFTER UPDATE OF search ON images
WHEN old.search IS NOT new.search BEGIN
    INSERT INTO image_search (image_search, rowid, search) VALUES ('delete', old.id, old.search);
    INSERT INTO image_search (rowid, search) VALUES (new.id, new.search);
END;
-- +goose StatementEnd

-- Back-fill: index the rows written before this migration.
INSERT INTO vuln_search (vuln_search) VALUES ('rebuild');
INSERT INTO image_search (image_search) VALUES ('rebuild');

-- +goose Down
DROP TRIGGER image_search_update;
DROP TRIGGER image_search_delete;
DROP TRIGGER image_search_insert;
DROP TABLE image_search;
DROP TRIGGER vuln_search_update;
DROP TRIGGER vuln_search_delete;
DROP TRIGGER vuln_search_insert;
DROP TABLE vuln_search;
