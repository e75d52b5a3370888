-- mamori store schema v8 (postgres): vulnerability prioritisation (issue 15).
-- Keep in step with ../sqlite/00008_prioritisation.sql. See ingest.go and vulns.go.

-- +goose Up
-- Per vulnerability ID, from its latest write like the advisory text:
-- CISA KEV (kev_added '' = not listed), FIRST EPSS (-1 = no score), the
-- highest priority of the rows of that write (-1 = none), and the KEV/EPSS
-- details as JSON ({"kev": model.KEV, "epss": model.EPSS}).
ALTER TABLE vulnerabilities ADD COLUMN kev_added TEXT NOT NULL DEFAULT '';
ALTER TABLE vulnerabilities ADD COLUMN kev_ransomware BIGINT NOT NULL DEFAULT 0;
ALTER TABLE vulnerabilities ADD COLUMN epss DOUBLE PRECISION NOT NULL DEFAULT -1;
ALTER TABLE vulnerabilities ADD COLUMN epss_percentile DOUBLE PRECISION NOT NULL DEFAULT -1;
ALTER TABLE vulnerabilities ADD COLUMN priority DOUBLE PRECISION NOT NULL DEFAULT -1;
ALTER TABLE vulnerabilities ADD COLUMN intel TEXT NOT NULL DEFAULT '{}';
CREATE INDEX vulns_by_priority ON vulnerabilities (priority DESC, severity DESC, cvss_score DESC, id) WHERE affected_images > 0;
CREATE INDEX vulns_known_exploited ON vulnerabilities (kev_added) WHERE affected_images > 0 AND kev_added <> '';

-- Per image row: where the severity came from, the priority and its
-- reason, and the run-time use as JSON (model.InUse; '' = no agent data).
ALTER TABLE image_vulnerabilities ADD COLUMN severity_source TEXT NOT NULL DEFAULT '';
ALTER TABLE image_vulnerabilities ADD COLUMN priority DOUBLE PRECISION NOT NULL DEFAULT -1;
ALTER TABLE image_vulnerabilities ADD COLUMN priority_reason TEXT NOT NULL DEFAULT '';
ALTER TABLE image_vulnerabilities ADD COLUMN in_use TEXT NOT NULL DEFAULT '';

-- +goose Down
DROP INDEX vulns_known_exploited;
DROP INDEX vulns_by_priority;
ALTER TABLE image_vulnerabilities DROP COLUMN in_use;
ALTER TABLE image_vulnerabilities DROP COLUMN priority_reason;
ALTER TABLE image_vulnerabilities DROP COLUMN priority;
ALTER TABLE image_vulnerabilities DROP COLUMN severity_source;
ALTER TABLE vulnerabilities DROP COLUMN intel;
ALTER TABLE vulnerabilities DROP COLUMN priority;
ALTER TABLE vulnerabilities DROP COLUMN epss_percentile;
ALTER TABLE vulnerabilities DROP COLUMN epss;
ALTER TABLE vulnerabilities DROP COLUMN kev_ransomware;
ALTER TABLE vulnerabilities DROP COLUMN kev_added;
