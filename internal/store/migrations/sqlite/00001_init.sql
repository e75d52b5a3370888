-- mamori store schema v1 (SQLite). Keep in step with ../postgres/00001_init.sql:
-- same tables, columns and indexes; only the types differ.
-- Times are unix microseconds UTC (0 = not set). Booleans are 0/1.
-- JSON columns hold JSON arrays/objects as text.

-- +goose Up
CREATE TABLE images (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    -- image_key identifies the target: "digest:<manifest digest>" or "<type>:<name>".
    image_key       TEXT    NOT NULL UNIQUE,
    name            TEXT    NOT NULL,
    type            TEXT    NOT NULL,
    digest          TEXT    NOT NULL DEFAULT '',
    config_digest   TEXT    NOT NULL DEFAULT '',
    repo_tags       TEXT    NOT NULL DEFAULT '[]',
    platform        TEXT    NOT NULL DEFAULT '',
    os_name         TEXT    NOT NULL DEFAULT '',
    os_json         TEXT    NOT NULL DEFAULT '',
    size            INTEGER NOT NULL DEFAULT 0,
    layers          TEXT    NOT NULL DEFAULT '[]',
    -- search is lower(name, digest, tags) joined by newlines, for substring search.
    search          TEXT    NOT NULL DEFAULT '',
    first_seen      INTEGER NOT NULL,
    latest_scan_id  INTEGER,
    last_scanned_at INTEGER NOT NULL DEFAULT 0,
    packages        INTEGER NOT NULL DEFAULT 0,
    sev_critical    INTEGER NOT NULL DEFAULT 0,
    sev_high        INTEGER NOT NULL DEFAULT 0,
    sev_medium      INTEGER NOT NULL DEFAULT 0,
    sev_low         INTEGER NOT NULL DEFAULT 0,
    sev_negligible  INTEGER NOT NULL DEFAULT 0,
    sev_unknown     INTEGER NOT NULL DEFAULT 0,
    fixable         INTEGER NOT NULL DEFAULT 0,
    secrets         INTEGER NOT NULL DEFAULT 0,
    malware         INTEGER NOT NULL DEFAULT 0,
    misconfigs      INTEGER NOT NULL DEFAULT 0
) STRICT;
CREATE INDEX images_last_scanned ON images (last_scanned_at DESC, id);
CREATE INDEX images_name ON images (name, id);
CREATE INDEX images_risk ON images (sev_critical DESC, sev_high DESC, sev_medium DESC, id);

CREATE TABLE scans (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    image_id        INTEGER NOT NULL REFERENCES images (id) ON DELETE CASCADE,
    scan_id         TEXT    NOT NULL,
    target_name     TEXT    NOT NULL,
    created_at      INTEGER NOT NULL,
    ingested_at     INTEGER NOT NULL,
    tool_name       TEXT    NOT NULL DEFAULT '',
    tool_version    TEXT    NOT NULL DEFAULT '',
    scanners        TEXT    NOT NULL DEFAULT '[]',
    warnings        TEXT    NOT NULL DEFAULT '[]',
    db_json         TEXT    NOT NULL DEFAULT '',
    packages        INTEGER NOT NULL DEFAULT 0,
    vulnerabilities INTEGER NOT NULL DEFAULT 0,
    findings        INTEGER NOT NULL DEFAULT 0,
    UNIQUE (image_id, scan_id)
) STRICT;
CREATE INDEX scans_created ON scans (created_at DESC, id DESC);
CREATE INDEX scans_image_created ON scans (image_id, created_at DESC, id DESC);

-- packages: the latest scan's inventory of each image, in inventory order (seq).
CREATE TABLE packages (
    image_id       INTEGER NOT NULL REFERENCES images (id) ON DELETE CASCADE,
    seq            INTEGER NOT NULL,
    name           TEXT    NOT NULL,
    version        TEXT    NOT NULL,
    type           TEXT    NOT NULL,
    ecosystem      TEXT    NOT NULL DEFAULT '',
    purl           TEXT    NOT NULL DEFAULT '',
    source_name    TEXT    NOT NULL DEFAULT '',
    source_version TEXT    NOT NULL DEFAULT '',
    arch           TEXT    NOT NULL DEFAULT '',
    cataloger      TEXT    NOT NULL DEFAULT '',
    dev            INTEGER NOT NULL DEFAULT 0,
    licenses       TEXT    NOT NULL DEFAULT '[]',
    locations      TEXT    NOT NULL DEFAULT '[]',
    PRIMARY KEY (image_id, seq)
) STRICT;

-- vulnerabilities: one row per advisory ID with its latest advisory text and
-- aggregates over all images' latest rows, kept up to date by every write
-- (affected_images, affected_rows, fixable_rows are exact counters).
CREATE TABLE vulnerabilities (
    id              TEXT    NOT NULL PRIMARY KEY,
    aliases         TEXT    NOT NULL DEFAULT '[]',
    -- search is lower(id, aliases) joined by newlines.
    search          TEXT    NOT NULL DEFAULT '',
    severity        INTEGER NOT NULL DEFAULT 0,
    -- cvss_score is the highest CVSS base score, -1 when none.
    cvss_score      REAL    NOT NULL DEFAULT -1,
    cvss            TEXT    NOT NULL DEFAULT '[]',
    summary         TEXT    NOT NULL DEFAULT '',
    details         TEXT    NOT NULL DEFAULT '',
    refs            TEXT    NOT NULL DEFAULT '[]',
    data_sources    TEXT    NOT NULL DEFAULT '[]',
    published       INTEGER NOT NULL DEFAULT 0,
    modified        INTEGER NOT NULL DEFAULT 0,
    affected_images INTEGER NOT NULL DEFAULT 0,
    affected_rows   INTEGER NOT NULL DEFAULT 0,
    fixable_rows    INTEGER NOT NULL DEFAULT 0,
    -- package_* summarize vuln_packages: the first names (JSON), their count,
    -- the first name (sort key) and all lower-cased names joined by newlines (search).
    package_names   TEXT    NOT NULL DEFAULT '[]',
    package_count   INTEGER NOT NULL DEFAULT 0,
    first_package   TEXT    NOT NULL DEFAULT '',
    package_search  TEXT    NOT NULL DEFAULT ''
) STRICT;
CREATE INDEX vulns_by_severity ON vulnerabilities (severity DESC, cvss_score DESC, id) WHERE affected_images > 0;
CREATE INDEX vulns_by_cvss ON vulnerabilities (cvss_score DESC, id) WHERE affected_images > 0;
CREATE INDEX vulns_by_package ON vulnerabilities (first_package, id) WHERE affected_images > 0;
CREATE INDEX vulns_by_images ON vulnerabilities (affected_images DESC, severity DESC, cvss_score DESC, id) WHERE affected_images > 0;

-- vuln_packages: distinct (vulnerability, package name) pairs over all images
-- with the number of rows that carry them.
CREATE TABLE vuln_packages (
    vuln_id  TEXT    NOT NULL REFERENCES vulnerabilities (id),
    pkg_name TEXT    NOT NULL,
    n_rows   INTEGER NOT NULL,
    PRIMARY KEY (vuln_id, pkg_name)
) STRICT;

-- image_vulnerabilities: the latest scan's rows, one per image x vulnerability x package.
CREATE TABLE image_vulnerabilities (
    image_id        INTEGER NOT NULL REFERENCES images (id) ON DELETE CASCADE,
    seq             INTEGER NOT NULL,
    vuln_id         TEXT    NOT NULL REFERENCES vulnerabilities (id),
    pkg_name        TEXT    NOT NULL,
    pkg_version     TEXT    NOT NULL,
    pkg_type        TEXT    NOT NULL DEFAULT '',
    pkg_ecosystem   TEXT    NOT NULL DEFAULT '',
    pkg_purl        TEXT    NOT NULL DEFAULT '',
    pkg_source_name TEXT    NOT NULL DEFAULT '',
    pkg_path        TEXT    NOT NULL DEFAULT '',
    pkg_layer       TEXT    NOT NULL DEFAULT '',
    fixed_version   TEXT    NOT NULL DEFAULT '',
    severity        INTEGER NOT NULL DEFAULT 0,
    data_source     TEXT    NOT NULL DEFAULT '',
    PRIMARY KEY (image_id, seq)
) STRICT;
CREATE INDEX image_vulns_by_vuln ON image_vulnerabilities (vuln_id, image_id);

-- findings: the latest scan's secret, malware and misconfiguration findings.
CREATE TABLE findings (
    image_id    INTEGER NOT NULL REFERENCES images (id) ON DELETE CASCADE,
    seq         INTEGER NOT NULL,
    kind        TEXT    NOT NULL,
    rule_id     TEXT    NOT NULL,
    title       TEXT    NOT NULL DEFAULT '',
    severity    INTEGER NOT NULL DEFAULT 0,
    category    TEXT    NOT NULL DEFAULT '',
    path        TEXT    NOT NULL DEFAULT '',
    layer       TEXT    NOT NULL DEFAULT '',
    config      TEXT    NOT NULL DEFAULT '',
    start_line  INTEGER NOT NULL DEFAULT 0,
    end_line    INTEGER NOT NULL DEFAULT 0,
    inner_path  TEXT    NOT NULL DEFAULT '',
    description TEXT    NOT NULL DEFAULT '',
    remediation TEXT    NOT NULL DEFAULT '',
    evidence    TEXT    NOT NULL DEFAULT '',
    refs        TEXT    NOT NULL DEFAULT '[]',
    controls    TEXT    NOT NULL DEFAULT '[]',
    engine      TEXT    NOT NULL DEFAULT '',
    PRIMARY KEY (image_id, seq)
) STRICT;

-- workloads: running workloads per image. Extension point for cluster
-- reporting (a later issue); nothing writes it yet.
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

CREATE TABLE registries (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    name             TEXT    NOT NULL UNIQUE,
    url              TEXT    NOT NULL,
    username         TEXT    NOT NULL DEFAULT '',
    secret           BLOB,
    repo_filter      TEXT    NOT NULL DEFAULT '',
    tag_filter       TEXT    NOT NULL DEFAULT '',
    schedule_ns      INTEGER NOT NULL DEFAULT 0,
    insecure         INTEGER NOT NULL DEFAULT 0,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL,
    last_sync_at     INTEGER NOT NULL DEFAULT 0,
    last_sync_status TEXT    NOT NULL DEFAULT '',
    last_sync_error  TEXT    NOT NULL DEFAULT ''
) STRICT;

CREATE TABLE tokens (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    name         TEXT    NOT NULL,
    role         TEXT    NOT NULL,
    hash         BLOB    NOT NULL UNIQUE,
    prefix       TEXT    NOT NULL DEFAULT '',
    created_at   INTEGER NOT NULL,
    last_used_at INTEGER NOT NULL DEFAULT 0,
    expires_at   INTEGER NOT NULL DEFAULT 0,
    revoked_at   INTEGER NOT NULL DEFAULT 0
) STRICT;

CREATE TABLE sessions (
    id_hash     BLOB    NOT NULL PRIMARY KEY,
    token_id    INTEGER NOT NULL REFERENCES tokens (id) ON DELETE CASCADE,
    role        TEXT    NOT NULL,
    csrf_secret BLOB    NOT NULL,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL
) STRICT;
CREATE INDEX sessions_expires ON sessions (expires_at);
CREATE INDEX sessions_token ON sessions (token_id);

CREATE TABLE meta (
    key   TEXT NOT NULL PRIMARY KEY,
    value TEXT NOT NULL
) STRICT;

-- +goose Down
DROP TABLE meta;
DROP TABLE sessions;
DROP TABLE tokens;
DROP TABLE registries;
DROP TABLE workloads;
DROP TABLE findings;
DROP TABLE image_vulnerabilities;
DROP TABLE vuln_packages;
DROP TABLE vulnerabilities;
DROP TABLE packages;
DROP TABLE scans;
DROP TABLE images;
