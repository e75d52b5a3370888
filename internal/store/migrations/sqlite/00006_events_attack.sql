-- mamori store schema v6 (SQLite): the index of the ATT&CK matrix
-- (CountEventsByTechnique). Keep in step with ../postgres/00006_events_attack.sql.
-- See events.go.

-- +goose Up
-- Only events with a technique, in (tactic, technique) order so that the
-- counts group while the index is read (no sort), covering the time and
-- the filters the matrix offers (cluster, namespace, node, source,
-- severity) so that no table row is read.
CREATE INDEX events_attack ON events (tactic, technique, at, cluster, namespace, node, source, severity)
    WHERE technique > '';

-- +goose Down
DROP INDEX events_attack;
