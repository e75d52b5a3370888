-- mamori store schema v10 (SQLite): "in use at run time" (issue 15): the
-- files running containers executed or loaded, as the node agents report
-- them, and what the server needs to map them to an image's packages.
-- Keep in step with ../postgres/00010_runtime_loads.sql. See loads.go.

-- +goose Up
-- A package's executables and shared libraries (model.Package.Files, JSON).
ALTER TABLE packages ADD COLUMN files TEXT NOT NULL DEFAULT '[]';

-- 1 when the row's in_use says loaded (the "in use" filter's index).
ALTER TABLE image_vulnerabilities ADD COLUMN in_use_loaded INTEGER NOT NULL DEFAULT 0;
CREATE INDEX image_vulns_in_use ON image_vulnerabilities (vuln_id) WHERE in_use_loaded = 1;

-- One container a node agent reported loads of. ended_at is set when the
-- agent's list of running containers no longer has it (0 while it runs);
-- reported_at is the agent's latest report that had it. Expired rows
-- (ended, or not reported for a while) are deleted with their loads.
CREATE TABLE load_containers (
    id           INTEGER PRIMARY KEY,
    cluster      TEXT    NOT NULL,
    node         TEXT    NOT NULL,
    container_id TEXT    NOT NULL,
    name         TEXT    NOT NULL DEFAULT '',
    image        TEXT    NOT NULL DEFAULT '',
    image_digest TEXT    NOT NULL,
    first_seen   INTEGER NOT NULL,
    last_load    INTEGER NOT NULL,
    reported_at  INTEGER NOT NULL,
    ended_at     INTEGER NOT NULL DEFAULT 0,
    paths        INTEGER NOT NULL DEFAULT 0,
    capped       INTEGER NOT NULL DEFAULT 0,
    UNIQUE (cluster, node, container_id)
) STRICT;
CREATE INDEX load_containers_by_digest ON load_containers (image_digest);

-- The files one container executed or loaded (path as the container sees
-- it), at most the server's cap per container.
CREATE TABLE container_loads (
    container  INTEGER NOT NULL REFERENCES load_containers (id) ON DELETE CASCADE,
    path       TEXT    NOT NULL,
    first_seen INTEGER NOT NULL,
    last_seen  INTEGER NOT NULL,
    PRIMARY KEY (container, path)
) STRICT;

-- +goose Down
DROP TABLE container_loads;
DROP TABLE load_containers;
DROP INDEX image_vulns_in_use;
ALTER TABLE image_vulnerabilities DROP COLUMN in_use_loaded;
ALTER TABLE packages DROP COLUMN files;
