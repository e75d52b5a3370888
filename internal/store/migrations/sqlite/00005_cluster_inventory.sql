-- mamori store schema v5 (SQLite): what the cluster components report
-- (inventory), the isolate/terminate requests they execute, and the state
-- of continuous compliance. Keep in step with ../postgres/00005_cluster_inventory.sql.
-- See inventory.go, mitigations.go and compliance.go.

-- +goose Up
-- One row per node, namespace, pod controller or pod of a cluster, as its
-- component last reported it. gen is the full resync that last wrote it:
-- the end of a resync drops the rows of older ones.
CREATE TABLE cluster_objects (
    cluster          TEXT    NOT NULL,
    kind             TEXT    NOT NULL,
    namespace        TEXT    NOT NULL DEFAULT '',
    name             TEXT    NOT NULL,
    uid              TEXT    NOT NULL DEFAULT '',
    resource_version TEXT    NOT NULL DEFAULT '',
    gen              INTEGER NOT NULL,
    owner_kind       TEXT    NOT NULL DEFAULT '',
    owner_name       TEXT    NOT NULL DEFAULT '',
    node             TEXT    NOT NULL DEFAULT '',
    phase            TEXT    NOT NULL DEFAULT '',
    labels           TEXT    NOT NULL DEFAULT '{}',
    containers       TEXT    NOT NULL DEFAULT '[]',
    body             TEXT    NOT NULL DEFAULT '',
    updated_at       INTEGER NOT NULL,
    PRIMARY KEY (cluster, kind, namespace, name)
);
CREATE INDEX cluster_objects_gen ON cluster_objects (cluster, gen);

-- The containers of the pods that run, one row each, with the manifest
-- digest of the image that runs: the runtime vulnerability view joins it
-- with images (image_key = 'digest:' || image_digest).
CREATE TABLE running_containers (
    cluster       TEXT    NOT NULL,
    namespace     TEXT    NOT NULL,
    pod           TEXT    NOT NULL,
    container     TEXT    NOT NULL,
    pod_uid       TEXT    NOT NULL DEFAULT '',
    node          TEXT    NOT NULL DEFAULT '',
    workload_kind TEXT    NOT NULL,
    workload_name TEXT    NOT NULL,
    image         TEXT    NOT NULL,
    image_digest  TEXT    NOT NULL,
    first_seen    INTEGER NOT NULL,
    last_seen     INTEGER NOT NULL,
    PRIMARY KEY (cluster, namespace, pod, container)
);
CREATE INDEX running_containers_digest ON running_containers (image_digest);

-- The inventory's resyncs per cluster; changed_at moves with every change.
CREATE TABLE inventory_syncs (
    cluster    TEXT    NOT NULL PRIMARY KEY,
    generation INTEGER NOT NULL DEFAULT 0,
    begun_at   INTEGER NOT NULL DEFAULT 0,
    synced_at  INTEGER NOT NULL DEFAULT 0,
    changed_at INTEGER NOT NULL DEFAULT 0
);

-- Isolate/terminate requests for the cluster components to execute.
CREATE TABLE mitigations (
    id           INTEGER PRIMARY KEY,
    cluster      TEXT    NOT NULL,
    action       TEXT    NOT NULL,
    namespace    TEXT    NOT NULL,
    pod          TEXT    NOT NULL,
    pod_uid      TEXT    NOT NULL DEFAULT '',
    node         TEXT    NOT NULL DEFAULT '',
    container    TEXT    NOT NULL DEFAULT '',
    source       TEXT    NOT NULL,
    rule         TEXT    NOT NULL DEFAULT '',
    event_id     TEXT    NOT NULL DEFAULT '',
    message      TEXT    NOT NULL DEFAULT '',
    requested_by TEXT    NOT NULL DEFAULT '',
    state        TEXT    NOT NULL,
    error        TEXT    NOT NULL DEFAULT '',
    detail       TEXT    NOT NULL DEFAULT '',
    created_at   INTEGER NOT NULL,
    done_at      INTEGER NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX mitigations_event ON mitigations (cluster, event_id, action) WHERE event_id <> '';
CREATE INDEX mitigations_state ON mitigations (cluster, state, id);
CREATE INDEX mitigations_created ON mitigations (created_at DESC, id DESC);

-- Continuous compliance: the violations in force (one per pod and rule,
-- reported once when they appear) and each cluster's last evaluation.
CREATE TABLE compliance_violations (
    cluster    TEXT    NOT NULL,
    pod_uid    TEXT    NOT NULL,
    rule       TEXT    NOT NULL,
    namespace  TEXT    NOT NULL,
    pod        TEXT    NOT NULL,
    action     TEXT    NOT NULL,
    event_id   TEXT    NOT NULL DEFAULT '',
    first_seen INTEGER NOT NULL,
    last_seen  INTEGER NOT NULL,
    PRIMARY KEY (cluster, pod_uid, rule)
);

CREATE TABLE compliance_runs (
    cluster        TEXT    NOT NULL PRIMARY KEY,
    policy         TEXT    NOT NULL DEFAULT '',
    policy_version INTEGER NOT NULL DEFAULT 0,
    db_built_at    TEXT    NOT NULL DEFAULT '',
    inventory_at   INTEGER NOT NULL DEFAULT 0,
    evaluated_at   INTEGER NOT NULL DEFAULT 0,
    pods           INTEGER NOT NULL DEFAULT 0,
    violations     INTEGER NOT NULL DEFAULT 0,
    error          TEXT    NOT NULL DEFAULT ''
);

-- workloads (schema v1's extension point) is replaced by running_containers.
DROP TABLE workloads;

-- +goose Down
CREATE TABLE workloads (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    cluster    TEXT    NOT NULL,
    namespace  TEXT    NOT NULL,
    kind       TEXT    NOT NULL,
    name       TEXT    NOT NULL,
    container  TEXT    NOT NULL,
    image_id   INTEGER NOT NULL REFERENCES images (id) ON DELETE CASCADE,
    first_seen INTEGER NOT NULL,
    last_seen  INTEGER NOT NULL,
    UNIQUE (cluster, namespace, kind, name, container)
) STRICT;
CREATE INDEX workloads_image ON workloads (image_id);
DROP TABLE compliance_runs;
DROP TABLE compliance_violations;
DROP TABLE mitigations;
DROP TABLE inventory_syncs;
DROP TABLE running_containers;
DROP TABLE cluster_objects;
