package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"mamori/internal/model"
)

// imageKey identifies a scanned target: its manifest digest when it has one
// (the same image under several names is one image), else its type and name.
func imageKey(t *model.Target) string {
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
func (s *sqlStore) IngestScan(ctx context.Context, res *model.Result) (IngestOutcome, error) {
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

func (s *sqlStore) ingest(ctx context.Context, t *tx, res *model.Result) (IngestOutcome, error) {
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

func (s *sqlStore) replacePackages(ctx context.Context, t *tx, imageID int64, res *model.Result) error {
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
			p.SourceVersion, p.Arch, p.Cataloger, b2i(p.Dev), jsonStrings(p.Licenses), locs, jsonStrings(p.Files)})
	}
	return t.insertBatch(ctx, "packages", []string{"image_id", "seq", "name", "version", "type", "ecosystem", "purl",
		"source_name", "source_version", "arch", "cataloger", "dev", "licenses", "locations", "files"}, rows)
}

func (s *sqlStore) replaceFindings(ctx context.Context, t *tx, imageID int64, fs []model.Finding) (FindingCounts, error) {
	var c FindingCounts
	if _, err := t.exec(ctx, `DELETE FROM findings WHERE image_id = ?`, imageID); err != nil {
		return c, fmt.Errorf("delete findings: %w", err)
	}
	rows := make([][]any, 0, len(fs))
	for i := range fs {
		f := &fs[i]
		switch f.Kind {
		case model.KindSecret:
			c.Secret++
		case model.KindMalware:
			c.Malware++
		case model.KindMisconfig:
			c.Misconfig++
		}
		rows = append(rows, findingRow(imageID, int64(i), f))
	}
	err := t.insertBatch(ctx, "findings", findingColumns, rows)
	return c, err
}

// findingRow is f as a row of findingColumns.
func findingRow(imageID, seq int64, f *model.Finding) []any {
	return []any{imageID, seq, string(f.Kind), f.ID, f.Title, int64(f.Severity), f.Category,
		f.Location.Path, f.Location.LayerDiffID, f.Location.Config, int64(f.Location.StartLine), int64(f.Location.EndLine),
		f.Location.Inner, f.Description, f.Remediation, f.Evidence, jsonStrings(f.References), jsonStrings(f.Controls), f.Engine}
}

// findingColumns are the findings table's columns in the order both
// writers (ingest and ReplaceMatches) give them.
var findingColumns = []string{"image_id", "seq", "kind", "rule_id", "title", "severity", "category",
	"path", "layer", "config", "start_line", "end_line", "inner_path", "description", "remediation", "evidence",
	"refs", "controls", "engine"}

func (s *sqlStore) updateImage(ctx context.Context, t *tx, imageID, scanID int64, res *model.Result, vc SeverityCounts, fc FindingCounts) error {
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
	// The build time (schema v9) only when the scan knew it: an image is
	// keyed by its manifest digest, whose configuration cannot change.
	if !tg.Created.IsZero() {
		if _, err := t.exec(ctx, `UPDATE images SET built_at = ? WHERE id = ?`, ts(tg.Created), imageID); err != nil {
			return fmt.Errorf("update image build time: %w", err)
		}
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
func (s *sqlStore) replaceVulns(ctx context.Context, t *tx, imageID int64, vulns []model.Vulnerability) (SeverityCounts, error) {
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
		case model.SeverityCritical:
			counts.Critical++
		case model.SeverityHigh:
			counts.High++
		case model.SeverityMedium:
			counts.Medium++
		case model.SeverityLow:
			counts.Low++
		case model.SeverityNegligible:
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
	deltas := make([]advisoryDelta, 0, len(ids))
	for _, id := range ids {
		o, hadOld := oldV[id]
		n, hasNew := newV[id]
		deltas = append(deltas, advisoryDelta{id: id, adv: adv[id], images: b2i(hasNew) - b2i(hadOld),
			rows: n.rows - o.rows, fixable: n.fixable - o.fixable})
	}
	if err := s.upsertAdvisories(ctx, t, deltas); err != nil {
		return counts, err
	}

	// Distinct (vulnerability, package name) pairs, in (ID, name) order.
	pairs := make([]pairDelta, 0, len(oldP)+len(newP))
	for k, o := range oldP {
		if d := newP[k] - o; d != 0 {
			pairs = append(pairs, pairDelta{k, d})
		}
	}
	for k, n := range newP {
		if _, ok := oldP[k]; !ok {
			pairs = append(pairs, pairDelta{k, n})
		}
	}
	slices.SortFunc(pairs, func(a, b pairDelta) int {
		if c := strings.Compare(a.vuln, b.vuln); c != 0 {
			return c
		}
		return strings.Compare(a.pkg, b.pkg)
	})
	changed, err := s.applyPairDeltas(ctx, t, pairs)
	if err != nil {
		return counts, err
	}
	if err := s.refreshPackageSummaries(ctx, t, changed); err != nil {
		return counts, err
	}

	// The rows themselves.
	ivRows := make([][]any, 0, len(vulns))
	for i := range vulns {
		v := &vulns[i]
		p := &v.Package
		prio, reason := float64(-1), ""
		if v.Priority != nil {
			prio, reason = v.Priority.Score, v.Priority.Reason
		}
		inUse, loaded := "", int64(0)
		if v.InUse != nil {
			loaded = b2i(v.InUse.Loaded)
			b, err := json.Marshal(v.InUse)
			if err != nil {
				return counts, fmt.Errorf("encode in use of %s: %w", v.ID, err)
			}
			inUse = string(b)
		}
		ivRows = append(ivRows, []any{imageID, int64(i), v.ID, p.Name, p.Version, p.Type, p.Ecosystem, p.PURL, p.SourceName,
			p.Path, p.Layer, v.FixedVersion, int64(v.Severity), v.DataSource, v.SeveritySource, prio, reason, inUse, loaded})
	}
	err = t.insertBatch(ctx, "image_vulnerabilities", []string{"image_id", "seq", "vuln_id", "pkg_name", "pkg_version",
		"pkg_type", "pkg_ecosystem", "pkg_purl", "pkg_source_name", "pkg_path", "pkg_layer", "fixed_version", "severity",
		"data_source", "severity_source", "priority", "priority_reason", "in_use", "in_use_loaded"}, ivRows)
	return counts, err
}

// advisory is the per-ID advisory text of a vulnerability, merged over the
// rows of one scan that carry it.
type advisory struct {
	v           *model.Vulnerability
	severity    model.Severity
	cvss        float64
	dataSources []string
	// priority is the highest priority of the rows, -1 when none has one.
	priority float64
}

func mergeAdvisory(a *advisory, v *model.Vulnerability) *advisory {
	if a == nil {
		a = &advisory{v: v, severity: v.Severity, cvss: -1, priority: -1}
	}
	if v.Severity > a.severity {
		a.severity = v.Severity
	}
	if v.Priority != nil && v.Priority.Score > a.priority {
		a.priority = v.Priority.Score
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

// advisoryDelta is one vulnerability's change from one image: its advisory
// text when the image (still) has it (nil when only its rows went away),
// and the changes of the counters.
type advisoryDelta struct {
	id                    string
	adv                   *advisory
	images, rows, fixable int64
}

type pairDelta struct {
	pairKey
	d int64
}

// upsertBatch bounds the rows of one multi-row upsert (21 parameters each).
const upsertBatch = 400

// upsertAdvisories applies deltas (sorted by ID) in multi-row upserts: new
// IDs are inserted, known ones get the new advisory text (unless adv is nil)
// and their counters moved. One statement per batch, rows in ID order, so
// PostgreSQL locks them in one global order.
func (s *sqlStore) upsertAdvisories(ctx context.Context, t *tx, deltas []advisoryDelta) error {
	cols := []string{"id", "aliases", "search", "severity", "cvss_score", "cvss", "summary", "details", "refs",
		"data_sources", "published", "modified", "kev_added", "kev_ransomware", "epss", "epss_percentile", "priority", "intel",
		"affected_images", "affected_rows", "fixable_rows"}
	// search = '' marks a counters-only row: it keeps the stored advisory text
	// (a real search column is never empty: it holds "\n<id>\n").
	keep := func(col string) string {
		return col + " = CASE WHEN excluded.search = '' THEN vulnerabilities." + col + " ELSE excluded." + col + " END"
	}
	var set []string
	for _, c := range cols[1:18] {
		set = append(set, keep(c))
	}
	for _, c := range cols[18:] {
		set = append(set, c+" = vulnerabilities."+c+" + excluded."+c)
	}
	tail := " ON CONFLICT (id) DO UPDATE SET " + strings.Join(set, ", ")
	for start := 0; start < len(deltas); start += upsertBatch {
		chunk := deltas[start:min(start+upsertBatch, len(deltas))]
		rows := make([][]any, 0, len(chunk))
		for _, d := range chunk {
			if d.adv == nil {
				rows = append(rows, []any{d.id, "[]", "", int64(0), float64(-1), "[]", "", "", "[]", "[]", int64(0), int64(0),
					"", int64(0), float64(-1), float64(-1), float64(-1), "{}",
					d.images, d.rows, d.fixable})
				continue
			}
			v := d.adv.v
			cvss, err := jsonText(v.CVSS)
			if err != nil {
				return err
			}
			slices.Sort(d.adv.dataSources)
			// Newline-delimited on both sides so that tokenText can match one whole ID or alias.
			search := "\n" + strings.ToLower(strings.Join(append([]string{v.ID}, v.Aliases...), "\n")) + "\n"
			in, err := intelColumns(v)
			if err != nil {
				return err
			}
			rows = append(rows, []any{v.ID, jsonStrings(v.Aliases), search, int64(d.adv.severity), d.adv.cvss, cvss, v.Summary,
				v.Details, jsonStrings(v.References), jsonStrings(d.adv.dataSources), ts(v.Published), ts(v.Modified),
				in.kevAdded, in.kevRansomware, in.epss, in.epssPercentile, d.adv.priority, in.json,
				d.images, d.rows, d.fixable})
		}
		if err := t.insertRows(ctx, "vulnerabilities", cols, rows, tail, nil); err != nil {
			return fmt.Errorf("upsert vulnerabilities: %w", err)
		}
	}
	return nil
}

// applyPairDeltas moves the row counts of (vulnerability, package) pairs and
// returns the IDs (sorted) whose package set changed: a pair appeared or went.
func (s *sqlStore) applyPairDeltas(ctx context.Context, t *tx, pairs []pairDelta) ([]string, error) {
	changed := map[string]bool{}
	cols := []string{"vuln_id", "pkg_name", "n_rows"}
	const tail = " ON CONFLICT (vuln_id, pkg_name) DO UPDATE SET n_rows = vuln_packages.n_rows + excluded.n_rows" +
		" RETURNING vuln_id, n_rows"
	for start := 0; start < len(pairs); start += upsertBatch {
		chunk := pairs[start:min(start+upsertBatch, len(pairs))]
		rows := make([][]any, 0, len(chunk))
		deltaOf := map[string][]int64{}
		for _, p := range chunk {
			rows = append(rows, []any{p.vuln, p.pkg, p.d})
			deltaOf[p.vuln] = append(deltaOf[p.vuln], p.d)
		}
		err := t.insertRows(ctx, "vuln_packages", cols, rows, tail, func(r *sql.Rows) error {
			var id string
			var total int64
			if err := r.Scan(&id, &total); err != nil {
				return err
			}
			// total <= 0: the pair is gone; total equal to a delta of this
			// vulnerability: the pair may be new. Either way, refresh (a
			// spurious refresh is only a little work).
			if total <= 0 || slices.Contains(deltaOf[id], total) {
				changed[id] = true
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("update vulnerability packages: %w", err)
		}
	}
	ids := make([]string, 0, len(changed))
	for id := range changed {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for start := 0; start < len(ids); start += upsertBatch {
		chunk := ids[start:min(start+upsertBatch, len(ids))]
		args := make([]any, len(chunk))
		for i, id := range chunk {
			args[i] = id
		}
		if _, err := t.exec(ctx, `DELETE FROM vuln_packages WHERE n_rows <= 0 AND vuln_id IN (`+placeholders(len(chunk))+`)`, args...); err != nil {
			return nil, fmt.Errorf("delete vulnerability packages: %w", err)
		}
	}
	return ids, nil
}

// refreshPackageSummaries recomputes the package_* columns of the given
// vulnerabilities (sorted) from vuln_packages.
func (s *sqlStore) refreshPackageSummaries(ctx context.Context, t *tx, ids []string) error {
	for start := 0; start < len(ids); start += upsertBatch {
		chunk := ids[start:min(start+upsertBatch, len(ids))]
		args := make([]any, len(chunk))
		for i, id := range chunk {
			args[i] = id
		}
		names := map[string][]string{}
		rows, err := t.query(ctx, `SELECT vuln_id, pkg_name FROM vuln_packages WHERE vuln_id IN (`+placeholders(len(chunk))+`)
			ORDER BY vuln_id, pkg_name`, args...)
		if err != nil {
			return fmt.Errorf("read vulnerability packages: %w", err)
		}
		for rows.Next() {
			var id, n string
			if err := rows.Scan(&id, &n); err != nil {
				rows.Close()
				return fmt.Errorf("read vulnerability packages: %w", err)
			}
			names[id] = append(names[id], n)
		}
		if err := rows.Err(); err != nil {
			rows.Close()
			return fmt.Errorf("read vulnerability packages: %w", err)
		}
		rows.Close()
		// One UPDATE ... FROM (VALUES ...) per batch (SQLite >= 3.33 and
		// PostgreSQL; VALUES columns are column1..columnN in both).
		var b strings.Builder
		b.WriteString(`UPDATE vulnerabilities SET package_names = d.column2, package_count = d.column3,
			first_package = d.column4, package_search = d.column5 FROM (VALUES `)
		vals := make([]any, 0, len(chunk)*5)
		for i, id := range chunk {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString("(?, ?, CAST(? AS BIGINT), ?, ?)")
			ns := names[id]
			first := ""
			if len(ns) > 0 {
				first = ns[0]
			}
			vals = append(vals, id, jsonStrings(ns[:min(len(ns), MaxSummaryPackages)]), int64(len(ns)), first,
				strings.ToLower(strings.Join(ns, "\n")))
		}
		b.WriteString(`) AS d WHERE vulnerabilities.id = d.column1`)
		if _, err := t.exec(ctx, b.String(), vals...); err != nil {
			return fmt.Errorf("update vulnerability packages summary: %w", err)
		}
	}
	return nil
}

// intel is the exploit intelligence of a vulnerability as the
// vulnerabilities table keeps it (migration 8).
type intel struct {
	kevAdded       string
	kevRansomware  int64
	epss           float64
	epssPercentile float64
	json           string
}

// intelJSON is the intel column: the KEV and EPSS entries whole.
type intelJSON struct {
	KEV  *model.KEV  `json:"kev,omitempty"`
	EPSS *model.EPSS `json:"epss,omitempty"`
}

func intelColumns(v *model.Vulnerability) (intel, error) {
	in := intel{epss: -1, epssPercentile: -1}
	if v.KEV != nil {
		in.kevAdded = v.KEV.DateAdded
		if v.KEV.Ransomware {
			in.kevRansomware = 1
		}
	}
	if v.EPSS != nil {
		in.epss, in.epssPercentile = v.EPSS.Score, v.EPSS.Percentile
	}
	b, err := json.Marshal(intelJSON{KEV: v.KEV, EPSS: v.EPSS})
	if err != nil {
		return in, fmt.Errorf("encode intel of %s: %w", v.ID, err)
	}
	in.json = string(b)
	return in, nil
}
