package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"mamori/internal/model"
)

const vulnCols = `v.id, v.aliases, v.severity, v.cvss_score, v.summary, v.package_names, v.package_count, v.affected_images,
	v.fixable_rows, v.published, v.modified, v.priority, v.intel`

func scanVulnSummary(r rowScanner, extra ...any) (VulnerabilitySummary, error) {
	var v VulnerabilitySummary
	var aliases, pkgs, in string
	var sev, fixable, pub, mod int64
	var cvss, prio float64
	dest := []any{&v.ID, &aliases, &sev, &cvss, &v.Summary, &pkgs, &v.PackageCount, &v.AffectedImages, &fixable, &pub, &mod,
		&prio, &in}
	if err := r.Scan(append(dest, extra...)...); err != nil {
		return v, err
	}
	v.Severity, v.Fixable, v.Published, v.Modified = model.Severity(sev), fixable > 0, fromTS(pub), fromTS(mod)
	if cvss >= 0 {
		v.CVSS = &cvss
	}
	if prio >= 0 {
		v.Priority = &prio
	}
	var ij intelJSON
	if err := decodeJSON("intel", in, &ij); err != nil {
		return v, err
	}
	v.KEV, v.EPSS = ij.KEV, ij.EPSS
	if err := decodeJSON("aliases", aliases, &v.Aliases); err != nil {
		return v, err
	}
	v.Packages = []string{}
	return v, decodeJSON("package_names", pkgs, &v.Packages)
}

// vulnWhere builds the WHERE clause of ListVulnerabilities (probe: see
// contains).
func (s *sqlStore) vulnWhere(f *VulnerabilityFilter, probe bool) (string, []any, error) {
	conds := []string{"v.affected_images > 0"}
	var args []any
	if q := strings.TrimSpace(f.Query); q != "" {
		c, a := s.contains(vulnSearchIndex, vulnSearchIndex.cols, searchText(q), probe)
		conds, args = append(conds, c), append(args, a...)
	}
	if q := strings.TrimSpace(f.Package); q != "" {
		c, a := s.contains(vulnSearchIndex, []string{"package_search"}, searchText(q), probe)
		conds, args = append(conds, c), append(args, a...)
	}
	if len(f.Severities) > 0 {
		for _, s := range f.Severities {
			if s < model.SeverityUnknown || s > model.SeverityCritical {
				return "", nil, fmt.Errorf("%w: unknown severity %d", ErrInvalid, int(s))
			}
			args = append(args, int64(s))
		}
		conds = append(conds, "v.severity IN ("+placeholders(len(f.Severities))+")")
	}
	if f.CVSSMin != nil || f.CVSSMax != nil {
		conds = append(conds, "v.cvss_score >= 0")
	}
	if f.KnownExploited {
		conds = append(conds, "v.kev_added <> ''")
	}
	if f.EPSSMin != nil {
		if *f.EPSSMin < 0 || *f.EPSSMin > 1 || *f.EPSSMin != *f.EPSSMin {
			return "", nil, fmt.Errorf("%w: EPSS bound %v outside 0..1", ErrInvalid, *f.EPSSMin)
		}
		conds = append(conds, "v.epss >= ?")
		args = append(args, *f.EPSSMin)
	}
	if f.CVSSMin != nil {
		conds = append(conds, "v.cvss_score >= ?")
		args = append(args, *f.CVSSMin)
	}
	if f.CVSSMax != nil {
		conds = append(conds, "v.cvss_score <= ?")
		args = append(args, *f.CVSSMax)
	}
	switch {
	case f.ImageID != 0:
		// Driven by the image's ~100 rows (IN), not by probing each listed
		// vulnerability (EXISTS): measured 0.3 ms against 7-30 ms on SQLite at 100k rows.
		c := "v.id IN (SELECT iv.vuln_id FROM image_vulnerabilities iv WHERE iv.image_id = ?"
		if f.FixableOnly {
			c += " AND iv.fixed_version <> ''"
		}
		conds = append(conds, c+")")
		args = append(args, f.ImageID)
	case f.FixableOnly:
		conds = append(conds, "v.fixable_rows > 0")
	}
	if f.InUse {
		// Driven by the rows marked loaded (a partial index): few.
		c := "v.id IN (SELECT iv.vuln_id FROM image_vulnerabilities iv WHERE iv.in_use_loaded = 1"
		if f.ImageID != 0 {
			c += " AND iv.image_id = ?"
			args = append(args, f.ImageID)
		}
		conds = append(conds, c+")")
	}
	if f.Running {
		// Driven by the running images' rows: a few hundred images at most,
		// from the cluster components' pods and the node agents' containers
		// (reported within NodeContainerTTL: bare hosts too).
		rc, nc := "", ` WHERE nc.image_digest <> '' AND nc.last_seen >= ?`
		cargs := []any{}
		if f.Cluster != "" {
			rc = ` WHERE rc.cluster = ?`
			cargs = append(cargs, f.Cluster)
		}
		cargs = append(cargs, ts(nodeContainerCutoff()))
		if f.Cluster != "" {
			nc += ` AND nc.cluster = ?`
			cargs = append(cargs, f.Cluster)
		}
		conds = append(conds, `v.id IN (SELECT iv.vuln_id FROM image_vulnerabilities iv JOIN images i ON iv.image_id = i.id
			WHERE i.image_key IN (SELECT 'digest:' || rc.image_digest FROM running_containers rc`+rc+`
				UNION SELECT 'digest:' || nc.image_digest FROM node_containers nc`+nc+`))`)
		args = append(args, cargs...)
	}
	return strings.Join(conds, " AND "), args, nil
}

// vulnOrder builds the ORDER BY clause of ListVulnerabilities; every order
// ends on the ID so that pages never overlap.
func vulnOrder(f *VulnerabilityFilter) (string, error) {
	r := f.Reverse
	switch f.Sort {
	case VulnSortSeverity, "":
		return dir("v.severity", true, r) + ", " + dir("v.cvss_score", true, r) + ", " + dir("v.id", false, r), nil
	case VulnSortID:
		return dir("v.id", false, r), nil
	case VulnSortPackage:
		return dir("v.first_package", false, r) + ", " + dir("v.id", false, r), nil
	case VulnSortImages:
		return dir("v.affected_images", true, r) + ", " + dir("v.severity", true, r) + ", " +
			dir("v.cvss_score", true, r) + ", " + dir("v.id", false, r), nil
	case VulnSortCVSS:
		return dir("v.cvss_score", true, r) + ", " + dir("v.id", false, r), nil
	case VulnSortPriority:
		return dir("v.priority", true, r) + ", " + dir("v.severity", true, r) + ", " + dir("v.cvss_score", true, r) + ", " +
			dir("v.id", false, r), nil
	}
	return "", fmt.Errorf("%w: unknown vulnerability sort %q", ErrInvalid, f.Sort)
}

// ListVulnerabilities implements VulnerabilityStore.
func (s *sqlStore) ListVulnerabilities(ctx context.Context, f VulnerabilityFilter) (VulnerabilityPage, error) {
	page := clampPage(f.Page)
	where, args, err := s.vulnWhere(&f, false)
	if err != nil {
		return VulnerabilityPage{}, err
	}
	fts := s.useFTS(searchText(f.Query)) || s.useFTS(searchText(f.Package))
	order, err := vulnOrder(&f)
	if err != nil {
		return VulnerabilityPage{}, err
	}
	out := VulnerabilityPage{Vulnerabilities: []VulnerabilitySummary{}}
	search := strings.TrimSpace(f.Query) != "" || strings.TrimSpace(f.Package) != ""
	err = s.read(ctx, func(t *tx) error {
		if search {
			if err := s.customPlans(ctx, t); err != nil {
				return err
			}
		}
		if err := t.queryRow(ctx, `SELECT COUNT(*) FROM vulnerabilities v WHERE `+where, args...).Scan(&out.Total); err != nil {
			return fmt.Errorf("count vulnerabilities: %w", err)
		}
		if out.Total <= page.Offset {
			return nil
		}
		pageWhere, pageArgs := where, args
		if fts {
			// The table's size, near enough (rows are never deleted).
			var n int64
			if err := t.queryRow(ctx, `SELECT COALESCE(MAX(rowid), 0) FROM vulnerabilities`).Scan(&n); err != nil {
				return fmt.Errorf("size vulnerabilities: %w", err)
			}
			if walkSortOrder(int64(out.Total), n, page) {
				var err error
				if pageWhere, pageArgs, err = s.vulnWhere(&f, true); err != nil {
					return err
				}
			}
		}
		rows, err := t.query(ctx, `SELECT `+vulnCols+` FROM vulnerabilities v WHERE `+pageWhere+` ORDER BY `+order+` LIMIT ? OFFSET ?`,
			append(pageArgs, page.Limit, page.Offset)...)
		if err != nil {
			return fmt.Errorf("list vulnerabilities: %w", err)
		}
		defer rows.Close()
		for rows.Next() {
			v, err := scanVulnSummary(rows)
			if err != nil {
				return fmt.Errorf("list vulnerabilities: %w", err)
			}
			out.Vulnerabilities = append(out.Vulnerabilities, v)
		}
		return rows.Err()
	})
	if err != nil {
		return VulnerabilityPage{}, fmt.Errorf("store: %w", err)
	}
	return out, nil
}

// GetVulnerability implements VulnerabilityStore.
func (s *sqlStore) GetVulnerability(ctx context.Context, id string, affected Page) (*VulnerabilityDetail, error) {
	page := clampPage(affected)
	var d VulnerabilityDetail
	err := s.read(ctx, func(t *tx) error {
		var refs, cvss string
		const q = `SELECT ` + vulnCols + `, v.details, v.refs, v.cvss FROM vulnerabilities v WHERE `
		sum, err := scanVulnSummary(t.queryRow(ctx, q+`v.id = ?`, id), &d.Details, &refs, &cvss)
		if errors.Is(err, sql.ErrNoRows) {
			// Not an ID: try it as an alias (CVE-… for a DEBIAN-CVE-… record), preferring affecting records.
			if err := s.customPlans(ctx, t); err != nil {
				return err
			}
			c, args := s.contains(vulnSearchIndex, []string{"search"}, tokenText(id), false)
			sum, err = scanVulnSummary(t.queryRow(ctx, q+c+` ORDER BY v.affected_images DESC, v.id LIMIT 1`, args...),
				&d.Details, &refs, &cvss)
		}
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("vulnerability %s: %w", id, ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("get vulnerability %s: %w", id, err)
		}
		d.VulnerabilitySummary = sum
		if err := decodeJSON("refs", refs, &d.References); err != nil {
			return err
		}
		if err := decodeJSON("cvss", cvss, &d.CVSSVectors); err != nil {
			return err
		}
		if err := t.queryRow(ctx, `SELECT COUNT(*) FROM image_vulnerabilities WHERE vuln_id = ?`, sum.ID).Scan(&d.AffectedTotal); err != nil {
			return fmt.Errorf("count affected: %w", err)
		}
		if d.DataSources, err = readStrings(ctx, t, `SELECT DISTINCT data_source FROM image_vulnerabilities
			WHERE vuln_id = ? AND data_source <> '' ORDER BY data_source`, sum.ID); err != nil {
			return err
		}
		rows, err := t.query(ctx, `SELECT iv.image_id, i.name, i.digest, i.last_scanned_at, iv.pkg_name, iv.pkg_version,
			iv.pkg_type, iv.pkg_ecosystem, iv.pkg_purl, iv.pkg_source_name, iv.pkg_path, iv.pkg_layer, iv.fixed_version,
			iv.severity, iv.data_source, iv.severity_source, iv.priority, iv.priority_reason, iv.in_use
			FROM image_vulnerabilities iv JOIN images i ON i.id = iv.image_id WHERE iv.vuln_id = ?
			ORDER BY i.name, iv.image_id, iv.pkg_name, iv.seq LIMIT ? OFFSET ?`, sum.ID, page.Limit, page.Offset)
		if err != nil {
			return fmt.Errorf("list affected: %w", err)
		}
		defer rows.Close()
		d.Affected = []AffectedPackage{}
		for rows.Next() {
			var a AffectedPackage
			p := &a.Package
			var last, sev int64
			var prio float64
			var reason, inUse string
			if err := rows.Scan(&a.ImageID, &a.ImageName, &a.ImageDigest, &last, &p.Name, &p.Version, &p.Type, &p.Ecosystem,
				&p.PURL, &p.SourceName, &p.Path, &p.Layer, &a.FixedVersion, &sev, &a.DataSource, &a.SeveritySource,
				&prio, &reason, &inUse); err != nil {
				return fmt.Errorf("list affected: %w", err)
			}
			a.LastScannedAt, a.Severity = fromTS(last), model.Severity(sev)
			if a.Priority, a.InUse, err = rowPriority(prio, reason, inUse); err != nil {
				return err
			}
			d.Affected = append(d.Affected, a)
		}
		if err := rows.Err(); err != nil {
			return fmt.Errorf("list affected: %w", err)
		}
		if d.Workloads, err = readWorkloads(ctx, t, sum.ID); err != nil {
			return err
		}
		d.HostContainers, err = readHostContainers(ctx, t, sum.ID)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	return &d, nil
}

// maxWorkloads caps the workloads listed on a vulnerability's detail.
const maxWorkloads = 1000

func readWorkloads(ctx context.Context, t *tx, vulnID string) ([]AffectedWorkload, error) {
	rows, err := t.query(ctx, `SELECT rc.cluster, rc.namespace, rc.workload_kind, rc.workload_name, rc.container, i.id, MAX(rc.last_seen)
		FROM running_containers rc JOIN images i ON i.image_key = 'digest:' || rc.image_digest
		WHERE i.id IN (SELECT iv.image_id FROM image_vulnerabilities iv WHERE iv.vuln_id = ?)
		GROUP BY rc.cluster, rc.namespace, rc.workload_kind, rc.workload_name, rc.container, i.id
		ORDER BY rc.cluster, rc.namespace, rc.workload_kind, rc.workload_name, rc.container LIMIT ?`, vulnID, maxWorkloads)
	if err != nil {
		return nil, fmt.Errorf("list workloads: %w", err)
	}
	defer rows.Close()
	out := []AffectedWorkload{}
	for rows.Next() {
		var w AffectedWorkload
		var last int64
		if err := rows.Scan(&w.Cluster, &w.Namespace, &w.Kind, &w.Name, &w.Container, &w.ImageID, &last); err != nil {
			return nil, fmt.Errorf("list workloads: %w", err)
		}
		w.LastDetected = fromTS(last)
		out = append(out, w)
	}
	return out, rows.Err()
}

func readStrings(ctx context.Context, t *tx, query string, args ...any) ([]string, error) {
	rows, err := t.query(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("query: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var v string
		if err := rows.Scan(&v); err != nil {
			return nil, fmt.Errorf("query: %w", err)
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// rowPriority decodes an image row's priority columns: -1 is none, ” no
// run-time data.
func rowPriority(score float64, reason, inUse string) (*model.Priority, *model.InUse, error) {
	var p *model.Priority
	if score >= 0 {
		p = &model.Priority{Score: score, Reason: reason}
	}
	if inUse == "" {
		return p, nil, nil
	}
	var u model.InUse
	if err := decodeJSON("in_use", inUse, &u); err != nil {
		return p, nil, err
	}
	return p, &u, nil
}
