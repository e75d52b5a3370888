-- mamori store schema v4 (SQLite): policies (internal/policy documents),
-- every version of each, and the policy each cluster enforces. See
-- policies.go.

-- +goose Up
CREATE TABLE policies (
    id         INTEGER PRIMARY KEY,
    name       TEXT    NOT NULL UNIQUE,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    -- The latest version.
    version    INTEGER NOT NULL
);

-- One row per version: the document as it was applied (YAML or JSON, its
-- comments kept) and the SHA-256 of its bytes, which decides whether an
-- apply is a new version.
CREATE TABLE policy_versions (
    policy_id  INTEGER NOT NULL REFERENCES policies (id) ON DELETE CASCADE,
    version    INTEGER NOT NULL,
    digest     TEXT    NOT NULL,
    document   TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    created_by TEXT    NOT NULL DEFAULT '',
    PRIMARY KEY (policy_id, version)
);

-- The policy a cluster enforces, by name ('' = none).
ALTER TABLE clusters ADD COLUMN policy TEXT NOT NULL DEFAULT '';
CREATE INDEX clusters_policy ON clusters (policy) WHERE policy <> '';

-- +goose Down
DROP INDEX clusters_policy;
ALTER TABLE clusters DROP COLUMN policy;
DROP TABLE policy_versions;
DROP TABLE policies;
