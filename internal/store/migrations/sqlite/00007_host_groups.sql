-- mamori store schema v7 (SQLite): host protection (issue 12): host groups
-- and their module settings, agents' placement in them, application
-- control allow-lists per group, what agents report (quarantine contents,
-- integrity baseline summaries) and the requests the server passes to
-- agents. See hosts.go.

-- +goose Up
CREATE TABLE host_groups (
    id                 INTEGER PRIMARY KEY,
    name               TEXT    NOT NULL UNIQUE,
    description        TEXT    NOT NULL DEFAULT '',
    -- The cluster whose nodes belong here unless placed elsewhere ('' = none).
    cluster            TEXT    NOT NULL DEFAULT '',
    -- The module settings (JSON, api.HostSettings, checked by the service).
    settings           TEXT    NOT NULL DEFAULT '{}',
    settings_version   INTEGER NOT NULL DEFAULT 1,
    allowlist_revision INTEGER NOT NULL DEFAULT 0,
    created_at         INTEGER NOT NULL,
    updated_at         INTEGER NOT NULL,
    updated_by         TEXT    NOT NULL DEFAULT ''
);
CREATE UNIQUE INDEX host_groups_cluster ON host_groups (cluster) WHERE cluster <> '';
-- The group of hosts no other group takes; it cannot be deleted.
INSERT INTO host_groups (name, description, created_at, updated_at)
    VALUES ('default', 'Hosts that no other group takes', 0, 0);

-- An agent's explicit placement (0 = its cluster's group, else the default).
ALTER TABLE agents ADD COLUMN host_group INTEGER NOT NULL DEFAULT 0;

CREATE TABLE allowlist_entries (
    group_id  INTEGER NOT NULL REFERENCES host_groups (id) ON DELETE CASCADE,
    sha256    TEXT    NOT NULL,
    path      TEXT    NOT NULL DEFAULT '',
    source    TEXT    NOT NULL,
    package   TEXT    NOT NULL DEFAULT '',
    kind      TEXT    NOT NULL DEFAULT '',
    added_at  INTEGER NOT NULL,
    PRIMARY KEY (group_id, sha256, path, source, package)
);

CREATE TABLE host_quarantine (
    agent_id      INTEGER NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
    entry_id      TEXT    NOT NULL,
    at            INTEGER NOT NULL,
    reported_at   INTEGER NOT NULL,
    path          TEXT    NOT NULL,
    root          TEXT    NOT NULL DEFAULT '',
    container_pid INTEGER NOT NULL DEFAULT 0,
    size          INTEGER NOT NULL DEFAULT 0,
    sha256        TEXT    NOT NULL DEFAULT '',
    hits          TEXT    NOT NULL DEFAULT '[]',
    removed       INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (agent_id, entry_id)
);
CREATE INDEX host_quarantine_at ON host_quarantine (at DESC);

CREATE TABLE host_baselines (
    agent_id    INTEGER PRIMARY KEY REFERENCES agents (id) ON DELETE CASCADE,
    reported_at INTEGER NOT NULL,
    -- The summary (JSON, api.BaselineReport).
    body        TEXT    NOT NULL
);

CREATE TABLE host_requests (
    id         INTEGER PRIMARY KEY,
    agent_id   INTEGER NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
    kind       TEXT    NOT NULL,
    -- The request's arguments (JSON).
    args       TEXT    NOT NULL DEFAULT '{}',
    state      TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    created_by TEXT    NOT NULL DEFAULT '',
    updated_at INTEGER NOT NULL,
    result     TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX host_requests_agent ON host_requests (agent_id, state, id);

-- +goose Down
DROP TABLE host_requests;
DROP TABLE host_baselines;
DROP TABLE host_quarantine;
DROP TABLE allowlist_entries;
ALTER TABLE agents DROP COLUMN host_group;
DROP TABLE host_groups;
