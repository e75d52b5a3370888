-- mamori store schema v9 (SQLite): the evidence of compliance assessments
-- that no other table holds — the postures the agents and the cluster
-- components report, each node's host vulnerabilities as the server
-- matched them, the registry probes, image signature verifications and
-- image build times — and the assessment snapshots (the score over time).
-- Keep in step with ../postgres/00009_compliance_assessments.sql. See
-- assessments.go.

-- +goose Up
-- The latest posture of each node (internal/compliance/posture.Node as
-- JSON) and the server's match of its host inventory.
CREATE TABLE node_postures (
    cluster          TEXT    NOT NULL,
    node             TEXT    NOT NULL,
    collected_at     INTEGER NOT NULL,
    received_at      INTEGER NOT NULL,
    body             TEXT    NOT NULL,
    host_vulns       TEXT    NOT NULL DEFAULT '',
    host_db_built_at INTEGER NOT NULL DEFAULT 0,
    matched_at       INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (cluster, node)
) STRICT;

-- The latest posture of each cluster (posture.Cluster as JSON).
CREATE TABLE cluster_postures (
    cluster      TEXT    NOT NULL PRIMARY KEY,
    collected_at INTEGER NOT NULL,
    received_at  INTEGER NOT NULL,
    body         TEXT    NOT NULL
) STRICT;

-- The latest probe of each registry (compliance.RegistryProbe as JSON).
CREATE TABLE registry_probes (
    registry_id INTEGER NOT NULL PRIMARY KEY REFERENCES registries (id) ON DELETE CASCADE,
    probed_at   INTEGER NOT NULL,
    body        TEXT    NOT NULL
) STRICT;

-- The latest signature verification of each image (by manifest digest)
-- under a trust configuration (trust = a digest of the keys, identities
-- and trust root it was verified against).
CREATE TABLE image_signatures (
    digest      TEXT    NOT NULL,
    trust       TEXT    NOT NULL,
    image       TEXT    NOT NULL,
    verified    INTEGER NOT NULL,
    signer      TEXT    NOT NULL DEFAULT '',
    reason      TEXT    NOT NULL DEFAULT '',
    verified_at INTEGER NOT NULL,
    PRIMARY KEY (digest, trust)
) STRICT;
CREATE INDEX image_signatures_time ON image_signatures (verified_at DESC);

-- The image configuration's creation time of each image's latest scan.
ALTER TABLE images ADD COLUMN built_at INTEGER NOT NULL DEFAULT 0;

-- Assessment snapshots: one per standard each time the outcome changed
-- (or at least daily); report is the whole report as JSON.
CREATE TABLE assessments (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    standard       TEXT    NOT NULL,
    generated_at   INTEGER NOT NULL,
    cause          TEXT    NOT NULL DEFAULT '',
    pass           INTEGER NOT NULL,
    fail           INTEGER NOT NULL,
    not_applicable INTEGER NOT NULL,
    not_assessed   INTEGER NOT NULL,
    group_scores   TEXT    NOT NULL DEFAULT '[]',
    digest         TEXT    NOT NULL DEFAULT '',
    report         TEXT    NOT NULL
) STRICT;
CREATE INDEX assessments_standard ON assessments (standard, generated_at DESC, id DESC);

-- +goose Down
DROP INDEX assessments_standard;
DROP TABLE assessments;
ALTER TABLE images DROP COLUMN built_at;
DROP INDEX image_signatures_time;
DROP TABLE image_signatures;
DROP TABLE registry_probes;
DROP TABLE cluster_postures;
DROP TABLE node_postures;
