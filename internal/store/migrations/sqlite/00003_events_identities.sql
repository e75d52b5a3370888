-- mamori store schema v3 (SQLite): machine identities (clusters, node
-- agents, tokens bound to a cluster) and the one events table of every
-- source (admission, compliance, runtime, host). See events.go and
-- identities.go.

-- +goose Up
-- The cluster a cluster or agent token is bound to ('' for human roles and
-- for agents of bare hosts).
ALTER TABLE tokens ADD COLUMN cluster TEXT NOT NULL DEFAULT '';
CREATE INDEX tokens_cluster ON tokens (cluster) WHERE cluster <> '';

CREATE TABLE clusters (
    id            INTEGER PRIMARY KEY,
    name          TEXT    NOT NULL UNIQUE,
    created_at    INTEGER NOT NULL,
    registered_at INTEGER NOT NULL DEFAULT 0,
    last_contact  INTEGER NOT NULL DEFAULT 0,
    version       TEXT    NOT NULL DEFAULT '',
    kube_version  TEXT    NOT NULL DEFAULT '',
    nodes         INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE agents (
    id           INTEGER PRIMARY KEY,
    cluster      TEXT    NOT NULL DEFAULT '',
    node         TEXT    NOT NULL,
    hostname     TEXT    NOT NULL DEFAULT '',
    version      TEXT    NOT NULL DEFAULT '',
    os           TEXT    NOT NULL DEFAULT '',
    kernel       TEXT    NOT NULL DEFAULT '',
    arch         TEXT    NOT NULL DEFAULT '',
    token_id     INTEGER NOT NULL DEFAULT 0,
    first_seen   INTEGER NOT NULL,
    last_contact INTEGER NOT NULL,
    UNIQUE (cluster, node)
);

-- One row per event. The scope columns are copies of the envelope's fields
-- for filtering; body is the whole envelope (JSON), what the API returns.
-- Lists are newest first: (at DESC, seq DESC), seq breaking ties; every
-- filter column has an index ending in the same order, so a filtered page
-- reads only its rows.
CREATE TABLE events (
    seq            INTEGER PRIMARY KEY,
    event_id       TEXT    NOT NULL UNIQUE,
    at             INTEGER NOT NULL,
    received_at    INTEGER NOT NULL,
    source         TEXT    NOT NULL,
    module         TEXT    NOT NULL DEFAULT '',
    cluster        TEXT    NOT NULL DEFAULT '',
    node           TEXT    NOT NULL DEFAULT '',
    host           TEXT    NOT NULL DEFAULT '',
    namespace      TEXT    NOT NULL DEFAULT '',
    pod            TEXT    NOT NULL DEFAULT '',
    container_id   TEXT    NOT NULL DEFAULT '',
    container_name TEXT    NOT NULL DEFAULT '',
    image          TEXT    NOT NULL DEFAULT '',
    image_digest   TEXT    NOT NULL DEFAULT '',
    rule_id        TEXT    NOT NULL DEFAULT '',
    tactic         TEXT    NOT NULL DEFAULT '',
    technique      TEXT    NOT NULL DEFAULT '',
    severity       INTEGER NOT NULL,
    action         TEXT    NOT NULL,
    reported_by    TEXT    NOT NULL DEFAULT '',
    search         TEXT    NOT NULL DEFAULT '',
    body           TEXT    NOT NULL
);
CREATE INDEX events_time ON events (at DESC, seq DESC);
CREATE INDEX events_source ON events (source, at DESC, seq DESC);
CREATE INDEX events_cluster ON events (cluster, at DESC, seq DESC);
CREATE INDEX events_node ON events (node, at DESC, seq DESC);
CREATE INDEX events_namespace ON events (namespace, at DESC, seq DESC);
CREATE INDEX events_rule ON events (rule_id, at DESC, seq DESC);
CREATE INDEX events_technique ON events (technique, at DESC, seq DESC);
CREATE INDEX events_severity ON events (severity, at DESC, seq DESC);

-- +goose Down
DROP TABLE events;
DROP TABLE agents;
DROP TABLE clusters;
DROP INDEX tokens_cluster;
ALTER TABLE tokens DROP COLUMN cluster;
