package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"mamori/internal/model"
)

const imageCols = `i.id, i.name, i.type, i.digest, i.config_digest, i.repo_tags, i.platform, i.os_name, i.size, i.first_seen,
	i.last_scanned_at, i.latest_scan_id, i.packages, i.sev_critical, i.sev_high, i.sev_medium, i.sev_low, i.sev_negligible,
	i.sev_unknown, i.fixable, i.secrets, i.malware, i.misconfigs`

type rowScanner interface{ Scan(dest ...any) error }

func scanImage(r rowScanner, extra ...any) (ImageSummary, error) {
	var im ImageSummary
	var tags string
	var first, last int64
	var latest sql.NullInt64
	dest := []any{&im.ID, &im.Name, &im.Type, &im.Digest, &im.ConfigDigest, &tags, &im.Platform, &im.OS, &im.Size,
		&first, &last, &latest, &im.PackageCount, &im.Vulnerabilities.Critical, &im.Vulnerabilities.High,
		&im.Vulnerabilities.Medium, &im.Vulnerabilities.Low, &im.Vulnerabilities.Negligible, &im.Vulnerabilities.Unknown,
		&im.Vulnerabilities.Fixable, &im.FindingCounts.Secret, &im.FindingCounts.Malware, &im.FindingCounts.Misconfig}
	if err := r.Scan(append(dest, extra...)...); err != nil {
		return im, err
	}
	im.FirstSeen, im.LastScannedAt, im.LatestScanID = fromTS(first), fromTS(last), latest.Int64
	return im, decodeJSON("repo_tags", tags, &im.RepoTags)
}

// ListImages implements ImageStore.
func (s *sqlStore) ListImages(ctx context.Context, f ImageFilter) (ImagePage, error) {
	page := clampPage(f.Page)
	where := "i.latest_scan_id IS NOT NULL"
	var args []any
	search := strings.TrimSpace(f.Query) != ""
	if search {
		c, a := s.contains(imageSearchIndex, imageSearchIndex.cols, searchText(f.Query), false)
		where += " AND " + c
		args = append(args, a...)
	}
	var order string
	switch f.Sort {
	case ImageSortName:
		order = dir("i.name", false, f.Reverse) + ", " + dir("i.id", false, f.Reverse)
	case ImageSortRisk:
		order = dir("i.sev_critical", true, f.Reverse) + ", " + dir("i.sev_high", true, f.Reverse) + ", " +
			dir("i.sev_medium", true, f.Reverse) + ", " + dir("i.id", false, f.Reverse)
	case ImageSortLastScanned, "":
		order = dir("i.last_scanned_at", true, f.Reverse) + ", " + dir("i.id", false, f.Reverse)
	default:
		return ImagePage{}, fmt.Errorf("%w: unknown image sort %q", ErrInvalid, f.Sort)
	}
	out := ImagePage{Images: []ImageSummary{}}
	err := s.read(ctx, func(t *tx) error {
		if search {
			if err := s.customPlans(ctx, t); err != nil {
				return err
			}
		}
		if err := t.queryRow(ctx, `SELECT COUNT(*) FROM images i WHERE `+where, args...).Scan(&out.Total); err != nil {
			return fmt.Errorf("count images: %w", err)
		}
		rows, err := t.query(ctx, `SELECT `+imageCols+` FROM images i WHERE `+where+` ORDER BY `+order+` LIMIT ? OFFSET ?`,
			append(args, page.Limit, page.Offset)...)
		if err != nil {
			return fmt.Errorf("list images: %w", err)
		}
		defer rows.Close()
		for rows.Next() {
			im, err := scanImage(rows)
			if err != nil {
				return fmt.Errorf("list images: %w", err)
			}
			out.Images = append(out.Images, im)
		}
		return rows.Err()
	})
	if err != nil {
		return ImagePage{}, fmt.Errorf("store: %w", err)
	}
	return out, nil
}

// dir renders "col ASC|DESC": desc is the sort's natural direction, reverse flips it.
func dir(col string, desc, reverse bool) string {
	if desc != reverse {
		return col + " DESC"
	}
	return col + " ASC"
}

// GetImage implements ImageStore.
func (s *sqlStore) GetImage(ctx context.Context, id int64) (*ImageDetail, error) {
	var d ImageDetail
	err := s.read(ctx, func(t *tx) error {
		var osJSON, layers, scanners, warnings, dbJSON string
		im, err := scanImage(t.queryRow(ctx, `SELECT `+imageCols+`, i.os_json, i.layers, s.scan_id, s.tool_name, s.tool_version,
			s.scanners, s.warnings, s.db_json FROM images i JOIN scans s ON s.id = i.latest_scan_id WHERE i.id = ?`, id),
			&osJSON, &layers, &d.ScanID, &d.Tool.Name, &d.Tool.Version, &scanners, &warnings, &dbJSON)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("image %d: %w", id, ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("get image %d: %w", id, err)
		}
		d.ImageSummary = im
		if osJSON != "" {
			d.OSInfo = &model.OS{}
			if err := decodeJSON("os_json", osJSON, d.OSInfo); err != nil {
				return err
			}
		}
		if dbJSON != "" {
			d.DB = &model.DBInfo{}
			if err := decodeJSON("db_json", dbJSON, d.DB); err != nil {
				return err
			}
		}
		for _, c := range []struct {
			name, v string
			dst     any
		}{{"layers", layers, &d.Layers}, {"scanners", scanners, &d.Scanners}, {"warnings", warnings, &d.Warnings}} {
			if err := decodeJSON(c.name, c.v, c.dst); err != nil {
				return err
			}
		}
		if d.Packages, err = readPackages(ctx, t, id); err != nil {
			return err
		}
		d.Findings, err = readFindings(ctx, t, id, "")
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	return &d, nil
}

func readPackages(ctx context.Context, t *tx, imageID int64) ([]model.Package, error) {
	rows, err := t.query(ctx, `SELECT name, version, type, ecosystem, purl, source_name, source_version, arch, cataloger, dev,
		licenses, locations, files FROM packages WHERE image_id = ? ORDER BY seq`, imageID)
	if err != nil {
		return nil, fmt.Errorf("read packages of image %d: %w", imageID, err)
	}
	defer rows.Close()
	pkgs := []model.Package{}
	for rows.Next() {
		var p model.Package
		var lic, locs, files string
		if err := rows.Scan(&p.Name, &p.Version, &p.Type, &p.Ecosystem, &p.PURL, &p.SourceName, &p.SourceVersion, &p.Arch,
			&p.Cataloger, &p.Dev, &lic, &locs, &files); err != nil {
			return nil, fmt.Errorf("read packages of image %d: %w", imageID, err)
		}
		if err := decodeJSON("licenses", lic, &p.Licenses); err != nil {
			return nil, err
		}
		if err := decodeJSON("locations", locs, &p.Locations); err != nil {
			return nil, err
		}
		if err := decodeJSON("files", files, &p.Files); err != nil {
			return nil, err
		}
		pkgs = append(pkgs, p)
	}
	return pkgs, rows.Err()
}

func readFindings(ctx context.Context, t *tx, imageID int64, kind model.FindingKind) ([]model.Finding, error) {
	q := `SELECT kind, rule_id, title, severity, category, path, layer, config, start_line, end_line, inner_path, description,
		remediation, evidence, refs, controls, engine FROM findings WHERE image_id = ?`
	args := []any{imageID}
	if kind != "" {
		q += ` AND kind = ?`
		args = append(args, string(kind))
	}
	rows, err := t.query(ctx, q+` ORDER BY severity DESC, seq`, args...)
	if err != nil {
		return nil, fmt.Errorf("read findings of image %d: %w", imageID, err)
	}
	defer rows.Close()
	out := []model.Finding{}
	for rows.Next() {
		var f model.Finding
		var k, refs, controls string
		var sev, start, end int64
		if err := rows.Scan(&k, &f.ID, &f.Title, &sev, &f.Category, &f.Location.Path, &f.Location.LayerDiffID,
			&f.Location.Config, &start, &end, &f.Location.Inner, &f.Description, &f.Remediation, &f.Evidence, &refs,
			&controls, &f.Engine); err != nil {
			return nil, fmt.Errorf("read findings of image %d: %w", imageID, err)
		}
		f.Kind, f.Severity, f.Location.StartLine, f.Location.EndLine = model.FindingKind(k), model.Severity(sev), int(start), int(end)
		if err := decodeJSON("refs", refs, &f.References); err != nil {
			return nil, err
		}
		if err := decodeJSON("controls", controls, &f.Controls); err != nil {
			return nil, err
		}
		out = append(out, f)
	}
	return out, rows.Err()
}

// imageExists returns ErrNotFound when the image does not exist.
func imageExists(ctx context.Context, t *tx, id int64) error {
	var one int
	err := t.queryRow(ctx, `SELECT 1 FROM images WHERE id = ?`, id).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("image %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("find image %d: %w", id, err)
	}
	return nil
}

// ListFindings implements ImageStore.
func (s *sqlStore) ListFindings(ctx context.Context, imageID int64, kind model.FindingKind) ([]model.Finding, error) {
	var out []model.Finding
	err := s.read(ctx, func(t *tx) error {
		if err := imageExists(ctx, t, imageID); err != nil {
			return err
		}
		var err error
		out, err = readFindings(ctx, t, imageID, kind)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	return out, nil
}

// ListImageVulnerabilities implements ImageStore.
func (s *sqlStore) ListImageVulnerabilities(ctx context.Context, imageID int64) ([]model.Vulnerability, error) {
	out := []model.Vulnerability{}
	err := s.read(ctx, func(t *tx) error {
		if err := imageExists(ctx, t, imageID); err != nil {
			return err
		}
		rows, err := t.query(ctx, `SELECT iv.vuln_id, iv.pkg_name, iv.pkg_version, iv.pkg_type, iv.pkg_ecosystem, iv.pkg_purl,
			iv.pkg_source_name, iv.pkg_path, iv.pkg_layer, iv.fixed_version, iv.severity, iv.data_source,
			v.aliases, v.cvss, v.summary, v.details, v.refs, v.published, v.modified,
			iv.severity_source, iv.priority, iv.priority_reason, iv.in_use, v.intel
			FROM image_vulnerabilities iv JOIN vulnerabilities v ON v.id = iv.vuln_id
			WHERE iv.image_id = ? ORDER BY iv.priority DESC, iv.severity DESC, v.cvss_score DESC, iv.vuln_id, iv.pkg_name, iv.seq`, imageID)
		if err != nil {
			return fmt.Errorf("list vulnerabilities of image %d: %w", imageID, err)
		}
		defer rows.Close()
		for rows.Next() {
			var v model.Vulnerability
			p := &v.Package
			var sev, pub, mod int64
			var aliases, cvss, refs, reason, inUse, in string
			var prio float64
			if err := rows.Scan(&v.ID, &p.Name, &p.Version, &p.Type, &p.Ecosystem, &p.PURL, &p.SourceName, &p.Path, &p.Layer,
				&v.FixedVersion, &sev, &v.DataSource, &aliases, &cvss, &v.Summary, &v.Details, &refs, &pub, &mod,
				&v.SeveritySource, &prio, &reason, &inUse, &in); err != nil {
				return fmt.Errorf("list vulnerabilities of image %d: %w", imageID, err)
			}
			v.Severity, v.Published, v.Modified = model.Severity(sev), fromTS(pub), fromTS(mod)
			if v.Priority, v.InUse, err = rowPriority(prio, reason, inUse); err != nil {
				return err
			}
			var ij intelJSON
			if err := decodeJSON("intel", in, &ij); err != nil {
				return err
			}
			v.KEV, v.EPSS = ij.KEV, ij.EPSS
			for _, c := range []struct {
				name, v string
				dst     any
			}{{"aliases", aliases, &v.Aliases}, {"cvss", cvss, &v.CVSS}, {"refs", refs, &v.References}} {
				if err := decodeJSON(c.name, c.v, c.dst); err != nil {
					return err
				}
			}
			out = append(out, v)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	return out, nil
}

// ListScans implements ImageStore.
func (s *sqlStore) ListScans(ctx context.Context, f ScanFilter) (ScanPage, error) {
	page := clampPage(f.Page)
	where, args := "1 = 1", []any{}
	if f.ImageID != 0 {
		where, args = "s.image_id = ?", append(args, f.ImageID)
	}
	out := ScanPage{Scans: []ScanRecord{}}
	err := s.read(ctx, func(t *tx) error {
		if err := t.queryRow(ctx, `SELECT COUNT(*) FROM scans s WHERE `+where, args...).Scan(&out.Total); err != nil {
			return fmt.Errorf("count scans: %w", err)
		}
		rows, err := t.query(ctx, `SELECT s.id, s.image_id, s.scan_id, s.target_name, s.created_at, s.ingested_at, s.tool_name,
			s.tool_version, s.scanners, s.warnings, s.db_json, s.packages, s.vulnerabilities, s.findings,
			CASE WHEN i.latest_scan_id = s.id THEN 1 ELSE 0 END
			FROM scans s JOIN images i ON i.id = s.image_id WHERE `+where+`
			ORDER BY s.created_at DESC, s.id DESC LIMIT ? OFFSET ?`, append(args, page.Limit, page.Offset)...)
		if err != nil {
			return fmt.Errorf("list scans: %w", err)
		}
		defer rows.Close()
		for rows.Next() {
			var r ScanRecord
			var created, ingested int64
			var scanners, warnings, dbJSON string
			if err := rows.Scan(&r.ID, &r.ImageID, &r.ScanID, &r.TargetName, &created, &ingested, &r.Tool.Name, &r.Tool.Version,
				&scanners, &warnings, &dbJSON, &r.Packages, &r.Vulnerabilities, &r.Findings, &r.Latest); err != nil {
				return fmt.Errorf("list scans: %w", err)
			}
			r.CreatedAt, r.IngestedAt = fromTS(created), fromTS(ingested)
			if err := decodeJSON("scanners", scanners, &r.Scanners); err != nil {
				return err
			}
			if err := decodeJSON("warnings", warnings, &r.Warnings); err != nil {
				return err
			}
			if dbJSON != "" {
				r.DB = &model.DBInfo{}
				if err := decodeJSON("db_json", dbJSON, r.DB); err != nil {
					return err
				}
			}
			out.Scans = append(out.Scans, r)
		}
		return rows.Err()
	})
	if err != nil {
		return ScanPage{}, fmt.Errorf("store: %w", err)
	}
	return out, nil
}

// DeleteImage implements ImageStore.
func (s *sqlStore) DeleteImage(ctx context.Context, id int64) error {
	err := s.write(ctx, func(t *tx) error {
		var one int
		err := t.queryRow(ctx, `SELECT 1 FROM images WHERE id = ?`+s.forUpdate(), id).Scan(&one)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("image %d: %w", id, ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("lock image %d: %w", id, err)
		}
		// Take the image's rows out of the aggregates, then let the cascade delete the rest.
		if _, err := s.replaceVulns(ctx, t, id, nil); err != nil {
			return err
		}
		if _, err := t.exec(ctx, `DELETE FROM images WHERE id = ?`, id); err != nil {
			return fmt.Errorf("delete image %d: %w", id, err)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: %w", err)
	}
	return nil
}

// inventoryBatch is how many image IDs ListInventories reads per query.
const inventoryBatch = 100

// ListInventories implements ImageStore.
func (s *sqlStore) ListInventories(ctx context.Context, fn func(ref InventoryRef, inv *model.Inventory) error) error {
	var after int64
	for {
		var ids []int64
		err := s.read(ctx, func(t *tx) error {
			rows, err := t.query(ctx, `SELECT id FROM images WHERE id > ? AND latest_scan_id IS NOT NULL ORDER BY id LIMIT ?`,
				after, inventoryBatch)
			if err != nil {
				return fmt.Errorf("list images: %w", err)
			}
			defer rows.Close()
			for rows.Next() {
				var id int64
				if err := rows.Scan(&id); err != nil {
					return fmt.Errorf("list images: %w", err)
				}
				ids = append(ids, id)
			}
			return rows.Err()
		})
		if err != nil {
			return fmt.Errorf("store: list inventories: %w", err)
		}
		if len(ids) == 0 {
			return nil
		}
		for _, id := range ids {
			if err := ctx.Err(); err != nil {
				return err
			}
			ref := InventoryRef{ImageID: id}
			inv := &model.Inventory{}
			err := s.read(ctx, func(t *tx) error {
				var latest sql.NullInt64
				var osJSON, key string
				err := t.queryRow(ctx, `SELECT latest_scan_id, os_json, image_key FROM images WHERE id = ?`, id).Scan(&latest, &osJSON, &key)
				if err != nil {
					return err // sql.ErrNoRows: deleted meanwhile
				}
				ref.ScanID = latest.Int64
				if d, ok := strings.CutPrefix(key, "digest:"); ok {
					ref.Digest = d
				}
				if osJSON != "" {
					inv.OS = &model.OS{}
					if err := decodeJSON("os_json", osJSON, inv.OS); err != nil {
						return err
					}
				}
				inv.Packages, err = readPackages(ctx, t, id)
				return err
			})
			if errors.Is(err, sql.ErrNoRows) {
				continue
			}
			if err != nil {
				return fmt.Errorf("store: read inventory of image %d: %w", id, err)
			}
			if err := fn(ref, inv); err != nil {
				return err
			}
		}
		after = ids[len(ids)-1]
	}
}

// ReplaceVulnerabilities implements ImageStore.
func (s *sqlStore) ReplaceVulnerabilities(ctx context.Context, ref InventoryRef, vulns []model.Vulnerability) error {
	if err := s.replaceMatches(ctx, ref, vulns, nil, false); err != nil {
		return fmt.Errorf("store: replace vulnerabilities: %w", err)
	}
	return nil
}

// ReplaceMatches is ReplaceVulnerabilities that also replaces the image's
// malicious-package findings made by matching (Kind malware, Engine
// model.EngineOSV: OSV MAL-* records) with malware, in the same transaction,
// leaving every other finding (clamd's, YARA's, the hash lists') as the
// scan stored it, and updating the image's malware count.
func (s *sqlStore) ReplaceMatches(ctx context.Context, ref InventoryRef, vulns []model.Vulnerability, malware []model.Finding) error {
	for i := range malware {
		if malware[i].Kind != model.KindMalware || malware[i].Engine != model.EngineOSV {
			return fmt.Errorf("store: replace matches: finding %d is %s/%s, want %s/%s: %w",
				i, malware[i].Kind, malware[i].Engine, model.KindMalware, model.EngineOSV, ErrInvalid)
		}
	}
	if err := s.replaceMatches(ctx, ref, vulns, malware, true); err != nil {
		return fmt.Errorf("store: replace matches: %w", err)
	}
	return nil
}

func (s *sqlStore) replaceMatches(ctx context.Context, ref InventoryRef, vulns []model.Vulnerability, malware []model.Finding, withMalware bool) error {
	if err := validateMatches(vulns, malware); err != nil {
		return err
	}
	return s.write(ctx, func(t *tx) error {
		var latest sql.NullInt64
		err := t.queryRow(ctx, `SELECT latest_scan_id FROM images WHERE id = ?`+s.forUpdate(), ref.ImageID).Scan(&latest)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("image %d: %w", ref.ImageID, ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("lock image %d: %w", ref.ImageID, err)
		}
		if latest.Int64 != ref.ScanID {
			return fmt.Errorf("image %d scan %d (latest is %d): %w", ref.ImageID, ref.ScanID, latest.Int64, ErrStale)
		}
		c, err := s.replaceVulns(ctx, t, ref.ImageID, vulns)
		if err != nil {
			return err
		}
		if err := s.step("vulnerabilities"); err != nil {
			return err
		}
		if withMalware {
			if err := s.replaceMatchFindings(ctx, t, ref.ImageID, malware); err != nil {
				return err
			}
		}
		_, err = t.exec(ctx, `UPDATE images SET sev_critical = ?, sev_high = ?, sev_medium = ?, sev_low = ?, sev_negligible = ?,
			sev_unknown = ?, fixable = ?, malware = (SELECT COUNT(*) FROM findings f WHERE f.image_id = images.id AND f.kind = ?)
			WHERE id = ?`, c.Critical, c.High, c.Medium, c.Low, c.Negligible, c.Unknown, c.Fixable, string(model.KindMalware), ref.ImageID)
		if err != nil {
			return fmt.Errorf("update image %d counts: %w", ref.ImageID, err)
		}
		return nil
	})
}

// replaceMatchFindings swaps the image's matcher-made malware findings for
// fs, numbered after the findings that stay.
func (s *sqlStore) replaceMatchFindings(ctx context.Context, t *tx, imageID int64, fs []model.Finding) error {
	if _, err := t.exec(ctx, `DELETE FROM findings WHERE image_id = ? AND kind = ? AND engine = ?`,
		imageID, string(model.KindMalware), model.EngineOSV); err != nil {
		return fmt.Errorf("delete matched findings: %w", err)
	}
	var next sql.NullInt64
	if err := t.queryRow(ctx, `SELECT MAX(seq) FROM findings WHERE image_id = ?`, imageID).Scan(&next); err != nil {
		return fmt.Errorf("findings seq: %w", err)
	}
	base := int64(0)
	if next.Valid {
		base = next.Int64 + 1
	}
	rows := make([][]any, 0, len(fs))
	for i := range fs {
		rows = append(rows, findingRow(imageID, base+int64(i), &fs[i]))
	}
	return t.insertBatch(ctx, "findings", findingColumns, rows)
}
