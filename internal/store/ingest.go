package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"mamori/internal/finding"
	"mamori/internal/match"
	"mamori/internal/scan"
)

// imageKey identifies a scanned target: its manifest digest when it has one
// (the same image under several names is one image), else its type and name.
func imageKey(t *scan.Target) string {
	if t.Digest != "" {
		return "digest:" + t.Digest
	}
	return t.Type + ":" + t.Name
}

// forUpdate locks selected rows until commit on PostgreSQL; SQLite's
// IMMEDIATE transactions already hold the database's one write lock.
func (s *sqlStore) forUpdate() string {
	if s.engine == EnginePostgres {
		return " FOR UPDATE"
	}
	return ""
}

// IngestScan implements ImageStore.
func (s *sqlStore) IngestScan(ctx context.Context, res *scan.Result) (IngestOutcome, error) {
	if err := validateResult(res); err != nil {
		return IngestOutcome{}, err
	}
	var out IngestOutcome
	err := s.write(ctx, func(t *tx) error {
		var err error
		out, err = s.ingest(ctx, t, res)
		return err
	})
	if err != nil {
		return IngestOutcome{}, fmt.Errorf("store: ingest scan %s of %s: %w", res.ScanID, res.Target.Name, err)
	}
	return out, nil
}

func (s *sqlStore) ingest(ctx context.Context, t *tx, res *scan.Result) (IngestOutcome, error) {
	now := time.Now()
	out := IngestOutcome{
		Packages:        len(res.Inventory.Packages),
		Vulnerabilities: len(res.Vulnerabilities),
		Findings:        len(res.Findings),
	}
	key := imageKey(&res.Target)

	// The image row, created on first sight and locked for the rest of the
	// transaction (two ingests of one image must not interleave).
	if _, err := t.exec(ctx, `INSERT INTO images (image_key, name, type, first_seen) VALUES (?, ?, ?, ?)
		ON CONFLICT (image_key) DO NOTHING`, key, res.Target.Name, res.Target.Type, ts(now)); err != nil {
		return out, fmt.Errorf("insert image: %w", err)
	}
	var latest sql.NullInt64
	var lastScanned int64
	if err := t.queryRow(ctx, `SELECT id, latest_scan_id, last_scanned_at FROM images WHERE image_key = ?`+s.forUpdate(), key).
		Scan(&out.ImageID, &latest, &lastScanned); err != nil {
		return out, fmt.Errorf("lock image: %w", err)
	}
	if err := s.step("image"); err != nil {
		return out, err
	}

	// Idempotency: the same scan of the same target is stored once.
	err := t.queryRow(ctx, `SELECT id FROM scans WHERE image_id = ? AND scan_id = ?`, out.ImageID, res.ScanID).Scan(&out.ScanID)
	switch {
	case err == nil:
		out.Status = IngestDuplicate
		return out, nil
	case !errors.Is(err, sql.ErrNoRows):
		return out, fmt.Errorf("find scan: %w", err)
	}

	dbJSON := ""
	if res.DB != nil {
		if dbJSON, err = jsonText(res.DB); err != nil {
			return out, err
		}
	}
	if err := t.queryRow(ctx, `INSERT INTO scans (image_id, scan_id, target_name, created_at, ingested_at, tool_name, tool_version,
		scanners, warnings, db_json, packages, vulnerabilities, findings) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
		out.ImageID, res.ScanID, res.Target.Name, ts(res.CreatedAt), ts(now), res.Tool.Name, res.Tool.Version,
		jsonStrings(res.Scanners), jsonStrings(res.Warnings), dbJSON, out.Packages, out.Vulnerabilities, out.Findings).
		Scan(&out.ScanID); err != nil {
		return out, fmt.Errorf("insert scan: %w", err)
	}
	if err := s.step("scan"); err != nil {
		return out, err
	}

	// An older scan arriving late is history only: the image keeps showing its latest.
	if latest.Valid && ts(res.CreatedAt) < lastScanned {
		out.Status = IngestStale
		return out, nil
	}

	if err := s.replacePackages(ctx, t, out.ImageID, res); err != nil {
		return out, err
	}
	if err := s.step("packages"); err != nil {
		return out, err
	}
	counts, err := s.replaceVulns(ctx, t, out.ImageID, res.Vulnerabilities)
	if err != nil {
		return out, err
	}
	if err := s.step("vulnerabilities"); err != nil {
		return out, err
	}
	fcounts, err := s.replaceFindings(ctx, t, out.ImageID, res.Findings)
	if err != nil {
		return out, err
	}
	if err := s.step("findings"); err != nil {
		return out, err
	}
	if err := s.updateImage(ctx, t, out.ImageID, out.ScanID, res, counts, fcounts); err != nil {
		return out, err
	}
	out.Status = IngestCreated
	return out, s.step("image-update")
}

func (s *sqlStore) replacePackages(ctx context.Context, t *tx, imageID int64, res *scan.Result) error {
	if _, err := t.exec(ctx, `DELETE FROM packages WHERE image_id = ?`, imageID); err != nil {
		return fmt.Errorf("delete packages: %w", err)
	}
	rows := make([][]any, 0, len(res.Inventory.Packages))
	for i := range res.Inventory.Packages {
		p := &res.Inventory.Packages[i]
		locs, err := jsonText(p.Locations)
		if err != nil {
			return err
		}
		rows = append(rows, []any{imageID, int64(i), p.Name, p.Version, p.Type, p.Ecosystem, p.PURL, p.SourceName,
			p.SourceVersion, p.Arch, p.Cataloger, b2i(p.Dev), jsonStrings(p.Licenses), locs})
	}
	return t.insertBatch(ctx, "packages", []string{"image_id", "seq", "name", "version", "type", "ecosystem", "purl",
		"source_name", "source_version", "arch", "cataloger", "dev", "licenses", "locations"}, rows)
}

func (s *sqlStore) replaceFindings(ctx context.Context, t *tx, imageID int64, fs []finding.Finding) (FindingCounts, error) {
	var c FindingCounts
	if _, err := t.exec(ctx, `DELETE FROM findings WHERE image_id = ?`, imageID); err != nil {
		return c, fmt.Errorf("delete findings: %w", err)
	}
	rows := make([][]any, 0, len(fs))
	for i := range fs {
		f := &fs[i]
		switch f.Kind {
		case finding.KindSecret:
			c.Secret++
		case finding.KindMalware:
			c.Malware++
		case finding.KindMisconfig:
			c.Misconfig++
		}
		rows = append(rows, []any{imageID, int64(i), string(f.Kind), f.ID, f.Title, int64(f.Severity), f.Category,
			f.Location.Path, f.Location.LayerDiffID, f.Location.Config, int64(f.Location.StartLine), int64(f.Location.EndLine),
			f.Location.Inner, f.Description, f.Remediation, f.Evidence, jsonStrings(f.References), jsonStrings(f.Controls), f.Engine})
	}
	err := t.insertBatch(ctx, "findings", []string{"image_id", "seq", "kind", "rule_id", "title", "severity", "category",
		"path", "layer", "config", "start_line", "end_line", "inner_path", "description", "remediation", "evidence",
		"refs", "controls", "engine"}, rows)
	return c, err
}

func (s *sqlStore) updateImage(ctx context.Context, t *tx, imageID, scanID int64, res *scan.Result, vc SeverityCounts, fc FindingCounts) error {
	tg := &res.Target
	osName, osJSON := "", ""
	if o := res.Inventory.OS; o != nil {
		osName = o.PrettyName
		if osName == "" {
			osName = strings.TrimSpace(o.ID + " " + o.VersionID)
		}
		var err error
		if osJSON, err = jsonText(o); err != nil {
			return err
		}
	}
	layers, err := jsonText(tg.Layers)
	if err != nil {
		return err
	}
	search := strings.ToLower(strings.Join(append([]string{tg.Name, tg.Digest, tg.ImageID}, tg.RepoTags...), "\n"))
	_, err = t.exec(ctx, `UPDATE images SET name = ?, type = ?, digest = ?, config_digest = ?, repo_tags = ?, platform = ?,
		os_name = ?, os_json = ?, size = ?, layers = ?, search = ?, latest_scan_id = ?, last_scanned_at = ?, packages = ?,
		sev_critical = ?, sev_high = ?, sev_medium = ?, sev_low = ?, sev_negligible = ?, sev_unknown = ?, fixable = ?,
		secrets = ?, malware = ?, misconfigs = ? WHERE id = ?`,
		tg.Name, tg.Type, tg.Digest, tg.ImageID, jsonStrings(tg.RepoTags), tg.Platform, osName, osJSON, tg.Size, layers,
		search, scanID, ts(res.CreatedAt), int64(len(res.Inventory.Packages)),
		vc.Critical, vc.High, vc.Medium, vc.Low, vc.Negligible, vc.Unknown, vc.Fixable,
		fc.Secret, fc.Malware, fc.Misconfig, imageID)
	if err != nil {
		return fmt.Errorf("update image: %w", err)
	}
	return nil
}

// vulnAgg is one vulnerability's contribution from one image.
type vulnAgg struct {
	rows, fixable int64
}

type pairKey struct{ vuln, pkg string }

// replaceVulns replaces an image's vulnerability rows with vulns and keeps
// the aggregates of the vulnerabilities table and vuln_packages exact by
// applying this image's deltas (its old rows out, its new rows in). Rows of
// the vulnerabilities table are touched in ID order and vuln_packages rows in
// (ID, package) order, so concurrent transactions on PostgreSQL lock them in
// one global order and cannot deadlock on them.
func (s *sqlStore) replaceVulns(ctx context.Context, t *tx, imageID int64, vulns []match.Vulnerability) (SeverityCounts, error) {
	var counts SeverityCounts
	oldV := map[string]vulnAgg{}
	oldP := map[pairKey]int64{}
	rows, err := t.query(ctx, `SELECT vuln_id, pkg_name, COUNT(*), SUM(CASE WHEN fixed_version <> '' THEN 1 ELSE 0 END)
		FROM image_vulnerabilities WHERE image_id = ? GROUP BY vuln_id, pkg_name`, imageID)
	if err != nil {
		return counts, fmt.Errorf("read old vulnerability rows: %w", err)
	}
	for rows.Next() {
		var id, pkg string
		var n, fix int64
		if err := rows.Scan(&id, &pkg, &n, &fix); err != nil {
			rows.Close()
			return counts, fmt.Errorf("read old vulnerability rows: %w", err)
		}
		a := oldV[id]
		a.rows += n
		a.fixable += fix
		oldV[id] = a
		oldP[pairKey{id, pkg}] = n
	}
	if err := rows.Err(); err != nil {
		rows.Close()
		return counts, fmt.Errorf("read old vulnerability rows: %w", err)
	}
	rows.Close()

	newV := map[string]vulnAgg{}
	newP := map[pairKey]int64{}
	adv := map[string]*advisory{}
	for i := range vulns {
		v := &vulns[i]
		a := newV[v.ID]
		a.rows++
		if v.FixedVersion != "" {
			a.fixable++
			counts.Fixable++
		}
		newV[v.ID] = a
		newP[pairKey{v.ID, v.Package.Name}]++
		adv[v.ID] = mergeAdvisory(adv[v.ID], v)
		switch v.Severity {
		case finding.SeverityCritical:
			counts.Critical++
		case finding.SeverityHigh:
			counts.High++
		case finding.SeverityMedium:
			counts.Medium++
		case finding.SeverityLow:
			counts.Low++
		case finding.SeverityNegligible:
			counts.Negligible++
		default:
			counts.Unknown++
		}
	}

	if _, err := t.exec(ctx, `DELETE FROM image_vulnerabilities WHERE image_id = ?`, imageID); err != nil {
		return counts, fmt.Errorf("delete vulnerability rows: %w", err)
	}

	ids := make([]string, 0, len(oldV)+len(newV))
	for id := range oldV {
		ids = append(ids, id)
	}
	for id := range newV {
		if _, ok := oldV[id]; !ok {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	for _, id := range ids {
		o, hadOld := oldV[id]
		n, hasNew := newV[id]
		dImages := b2i(hasNew) - b2i(hadOld)
		dRows := n.rows - o.rows
		dFix := n.fixable - o.fixable
		if hasNew {
			if err := s.upsertAdvisory(ctx, t, adv[id], dImages, dRows, dFix); err != nil {
				return counts, err
			}
			continue
		}
		if _, err := t.exec(ctx, `UPDATE vulnerabilities SET affected_images = affected_images + ?,
			affected_rows = affected_rows + ?, fixable_rows = fixable_rows + ? WHERE id = ?`, dImages, dRows, dFix, id); err != nil {
			return counts, fmt.Errorf("update vulnerability %s counts: %w", id, err)
		}
	}

	// Distinct (vulnerability, package name) pairs.
	pairs := make([]pairKey, 0, len(oldP)+len(newP))
	for k := range oldP {
		pairs = append(pairs, k)
	}
	for k := range newP {
		if _, ok := oldP[k]; !ok {
			pairs = append(pairs, k)
		}
	}
	slices.SortFunc(pairs, func(a, b pairKey) int {
		if c := strings.Compare(a.vuln, b.vuln); c != 0 {
			return c
		}
		return strings.Compare(a.pkg, b.pkg)
	})
	changed := map[string]bool{} // vulnerabilities whose package set changed
	for _, k := range pairs {
		d := newP[k] - oldP[k]
		if d == 0 {
			continue
		}
		var total int64
		if err := t.queryRow(ctx, `INSERT INTO vuln_packages (vuln_id, pkg_name, n_rows) VALUES (?, ?, ?)
			ON CONFLICT (vuln_id, pkg_name) DO UPDATE SET n_rows = vuln_packages.n_rows + excluded.n_rows
			RETURNING n_rows`, k.vuln, k.pkg, d).Scan(&total); err != nil {
			return counts, fmt.Errorf("update vulnerability %s package %s: %w", k.vuln, k.pkg, err)
		}
		switch {
		case total <= 0:
			if _, err := t.exec(ctx, `DELETE FROM vuln_packages WHERE vuln_id = ? AND pkg_name = ?`, k.vuln, k.pkg); err != nil {
				return counts, fmt.Errorf("delete vulnerability %s package %s: %w", k.vuln, k.pkg, err)
			}
			changed[k.vuln] = true
		case total == d: // the pair did not exist before
			changed[k.vuln] = true
		}
	}
	changedIDs := make([]string, 0, len(changed))
	for id := range changed {
		changedIDs = append(changedIDs, id)
	}
	slices.Sort(changedIDs)
	for _, id := range changedIDs {
		if err := s.refreshPackageSummary(ctx, t, id); err != nil {
			return counts, err
		}
	}

	// The rows themselves.
	ivRows := make([][]any, 0, len(vulns))
	for i := range vulns {
		v := &vulns[i]
		p := &v.Package
		ivRows = append(ivRows, []any{imageID, int64(i), v.ID, p.Name, p.Version, p.Type, p.Ecosystem, p.PURL, p.SourceName,
			p.Path, p.Layer, v.FixedVersion, int64(v.Severity), v.DataSource})
	}
	err = t.insertBatch(ctx, "image_vulnerabilities", []string{"image_id", "seq", "vuln_id", "pkg_name", "pkg_version",
		"pkg_type", "pkg_ecosystem", "pkg_purl", "pkg_source_name", "pkg_path", "pkg_layer", "fixed_version", "severity",
		"data_source"}, ivRows)
	return counts, err
}

// advisory is the per-ID advisory text of a vulnerability, merged over the
// rows of one scan that carry it.
type advisory struct {
	v           *match.Vulnerability
	severity    finding.Severity
	cvss        float64
	dataSources []string
}

func mergeAdvisory(a *advisory, v *match.Vulnerability) *advisory {
	if a == nil {
		a = &advisory{v: v, severity: v.Severity, cvss: -1}
	}
	if v.Severity > a.severity {
		a.severity = v.Severity
	}
	for _, c := range v.CVSS {
		if c.Score > a.cvss {
			a.cvss = c.Score
		}
	}
	if v.DataSource != "" && !slices.Contains(a.dataSources, v.DataSource) {
		a.dataSources = append(a.dataSources, v.DataSource)
	}
	return a
}

func (s *sqlStore) upsertAdvisory(ctx context.Context, t *tx, a *advisory, dImages, dRows, dFix int64) error {
	v := a.v
	cvss, err := jsonText(v.CVSS)
	if err != nil {
		return err
	}
	slices.Sort(a.dataSources)
	// Newline-delimited on both sides so that tokenPattern can match one whole ID or alias.
	search := "\n" + strings.ToLower(strings.Join(append([]string{v.ID}, v.Aliases...), "\n")) + "\n"
	_, err = t.exec(ctx, `INSERT INTO vulnerabilities (id, aliases, search, severity, cvss_score, cvss, summary, details, refs,
		data_sources, published, modified, affected_images, affected_rows, fixable_rows)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET aliases = excluded.aliases, search = excluded.search, severity = excluded.severity,
		cvss_score = excluded.cvss_score, cvss = excluded.cvss, summary = excluded.summary, details = excluded.details,
		refs = excluded.refs, data_sources = excluded.data_sources, published = excluded.published, modified = excluded.modified,
		affected_images = vulnerabilities.affected_images + excluded.affected_images,
		affected_rows = vulnerabilities.affected_rows + excluded.affected_rows,
		fixable_rows = vulnerabilities.fixable_rows + excluded.fixable_rows`,
		v.ID, jsonStrings(v.Aliases), search, int64(a.severity), a.cvss, cvss, v.Summary, v.Details, jsonStrings(v.References),
		jsonStrings(a.dataSources), ts(v.Published), ts(v.Modified), dImages, dRows, dFix)
	if err != nil {
		return fmt.Errorf("upsert vulnerability %s: %w", v.ID, err)
	}
	return nil
}

// refreshPackageSummary recomputes the package_* columns of one vulnerability from vuln_packages.
func (s *sqlStore) refreshPackageSummary(ctx context.Context, t *tx, id string) error {
	rows, err := t.query(ctx, `SELECT pkg_name FROM vuln_packages WHERE vuln_id = ? ORDER BY pkg_name`, id)
	if err != nil {
		return fmt.Errorf("read packages of %s: %w", id, err)
	}
	var names []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			rows.Close()
			return fmt.Errorf("read packages of %s: %w", id, err)
		}
		names = append(names, n)
	}
	if err := rows.Err(); err != nil {
		rows.Close()
		return fmt.Errorf("read packages of %s: %w", id, err)
	}
	rows.Close()
	first := ""
	if len(names) > 0 {
		first = names[0]
	}
	shown := names[:min(len(names), MaxSummaryPackages)]
	_, err = t.exec(ctx, `UPDATE vulnerabilities SET package_names = ?, package_count = ?, first_package = ?, package_search = ?
		WHERE id = ?`, jsonStrings(shown), int64(len(names)), first, strings.ToLower(strings.Join(names, "\n")), id)
	if err != nil {
		return fmt.Errorf("update packages of %s: %w", id, err)
	}
	return nil
}
