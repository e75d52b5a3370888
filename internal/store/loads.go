package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"mamori/internal/model"
)

// LoadStore keeps the files running containers executed or loaded, as the
// node agents report them (issue 15 "in use at run time", migration 10),
// and writes the in-use marks they give an image's vulnerability rows.
// Containers are keyed by (cluster, node, container ID) and carry their
// image's manifest digest; each keeps at most MaxLoadsPerContainer paths.
type LoadStore interface {
	// RecordLoads stores one agent report: each container's new paths
	// (a known path only moves its last seen), at most MaxLoadsPerContainer
	// per container (the rest counted in Capped). When b.Sync is set,
	// b.Running is every container running on the node now: the node's
	// containers it lacks are ended at now, and the ones it has are marked
	// reported at now. Digests lists the images whose loads changed.
	RecordLoads(ctx context.Context, b LoadBatch, now time.Time) (LoadOutcome, error)
	// ExpireLoads deletes, with their loads, the containers that ended
	// before endedBefore and the ones no report has named since
	// staleBefore; it returns the digests of their images.
	ExpireLoads(ctx context.Context, endedBefore, staleBefore time.Time) ([]string, error)
	// ImageLoads returns the containers of the image with this manifest
	// digest (running, or ended and not yet expired) with their loads.
	ImageLoads(ctx context.Context, digest string) ([]ContainerLoads, error)
	// LoadDigests lists the image digests that have containers.
	LoadDigests(ctx context.Context) ([]string, error)
	// ImageUse reads what marking an image needs: its latest scan (ref),
	// inventory (with the packages' files) and vulnerability rows, in one
	// read transaction; ErrNotFound when no scanned image has the digest.
	ImageUse(ctx context.Context, digest string) (*ImageUseData, error)
	// SetImageUse writes the in-use marks and priorities of an image's
	// rows (by Seq) and refreshes the priority of the vulnerabilities they
	// belong to; ErrStale, changing nothing, when ref.ScanID is no longer
	// the image's latest scan, ErrNotFound when the image is gone.
	SetImageUse(ctx context.Context, ref InventoryRef, rows []RowUse) error
}

// Bounds of the load store.
const (
	// MaxLoadsPerContainer caps the paths kept per container: the sensor
	// reports every file a container opens for reading once, and a
	// container that reads many data files must not grow without bound.
	// Executables and libraries come first in a container's life (its
	// process starts), so the cap rarely hides one.
	MaxLoadsPerContainer = 4096
)

// LoadBatch is one agent report (api.LoadReport, checked by the service).
type LoadBatch struct {
	Cluster    string
	Node       string
	Containers []LoadContainer
	// Sync says Running is the node's complete list of running containers.
	Sync    bool
	Running []string
}

// LoadContainer is one container's new loads.
type LoadContainer struct {
	ID, Name, Image, ImageDigest string
	Loads                        []Load
}

// Load is one file a container executed or loaded, and when.
type Load struct {
	Path string
	Time time.Time
}

// LoadOutcome says what RecordLoads stored.
type LoadOutcome struct {
	// Accepted counts new (container, path) pairs, Duplicates known ones,
	// Capped the paths over a container's cap (dropped).
	Accepted, Duplicates, Capped int
	// Ended counts the containers the running list ended.
	Ended int
	// Digests are the images whose loads changed (new paths, new or ended
	// containers), sorted.
	Digests []string
}

// ContainerLoads is one container of an image with its loads.
type ContainerLoads struct {
	Cluster, Node, ID, Name, Image string
	FirstSeen, LastLoad            time.Time
	ReportedAt, EndedAt            time.Time // EndedAt zero: running
	// Paths counts its stored loads, Capped the ones over the cap.
	Paths, Capped int
	Loads         []Load
}

// ImageUseData is an image's latest inventory and vulnerability rows.
type ImageUseData struct {
	Ref       InventoryRef
	Inventory model.Inventory
	// Vulns are the rows as stored (their InUse and Priority included),
	// Seqs their row numbers (for SetImageUse).
	Vulns []model.Vulnerability
	Seqs  []int64
}

// RowUse is the new in-use mark and priority of one vulnerability row.
type RowUse struct {
	Seq      int64
	ID       string
	InUse    *model.InUse
	Priority *model.Priority
}

// loadChunk bounds the paths of one statement (SQLite's and PostgreSQL's
// parameter limits, with room).
const loadChunk = 500

// RecordLoads implements LoadStore.
func (s *sqlStore) RecordLoads(ctx context.Context, b LoadBatch, now time.Time) (LoadOutcome, error) {
	if b.Node == "" {
		return LoadOutcome{}, fmt.Errorf("store: record loads: no node: %w", ErrInvalid)
	}
	for i := range b.Containers {
		c := &b.Containers[i]
		if c.ID == "" || c.ImageDigest == "" {
			return LoadOutcome{}, fmt.Errorf("store: record loads: container %d without ID or image digest: %w", i, ErrInvalid)
		}
		for _, l := range c.Loads {
			if !loadPathOK(l.Path) {
				return LoadOutcome{}, fmt.Errorf("store: record loads: container %s: bad path: %w", c.ID, ErrInvalid)
			}
		}
	}
	var out LoadOutcome
	err := s.write(ctx, func(t *tx) error {
		out = LoadOutcome{}
		digests := map[string]bool{}
		for i := range b.Containers {
			c := &b.Containers[i]
			if err := s.recordContainer(ctx, t, b.Cluster, b.Node, c, now, &out, digests); err != nil {
				return fmt.Errorf("container %s: %w", c.ID, err)
			}
		}
		if b.Sync {
			if err := s.syncRunning(ctx, t, b, now, &out, digests); err != nil {
				return err
			}
		}
		for d := range digests {
			out.Digests = append(out.Digests, d)
		}
		slices.Sort(out.Digests)
		return nil
	})
	if err != nil {
		return LoadOutcome{}, fmt.Errorf("store: record loads of node %s: %w", b.Node, err)
	}
	return out, nil
}

func (s *sqlStore) recordContainer(ctx context.Context, t *tx, cluster, node string, c *LoadContainer, now time.Time,
	out *LoadOutcome, digests map[string]bool) error {
	var id, paths int64
	var digest string
	var ended int64
	err := t.queryRow(ctx, `SELECT id, paths, image_digest, ended_at FROM load_containers WHERE cluster = ? AND node = ? AND container_id = ?`+
		s.forUpdate(), cluster, node, c.ID).Scan(&id, &paths, &digest, &ended)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		if err := t.queryRow(ctx, `INSERT INTO load_containers (cluster, node, container_id, name, image, image_digest,
			first_seen, last_load, reported_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
			cluster, node, c.ID, c.Name, c.Image, c.ImageDigest, ts(now), int64(0), ts(now)).Scan(&id); err != nil {
			return fmt.Errorf("insert: %w", err)
		}
		digest = c.ImageDigest
		digests[digest] = true
	case err != nil:
		return fmt.Errorf("read: %w", err)
	case digest != c.ImageDigest:
		// A container's image does not change: a report that says so is
		// about another container that reuses the ID (Docker never does,
		// but trust no one): start over.
		if _, err := t.exec(ctx, `DELETE FROM container_loads WHERE container = ?`, id); err != nil {
			return fmt.Errorf("reset: %w", err)
		}
		if _, err := t.exec(ctx, `UPDATE load_containers SET image_digest = ?, image = ?, name = ?, first_seen = ?, paths = 0,
			capped = 0, ended_at = 0 WHERE id = ?`, c.ImageDigest, c.Image, c.Name, ts(now), id); err != nil {
			return fmt.Errorf("reset: %w", err)
		}
		digests[digest], digests[c.ImageDigest] = true, true
		digest, paths = c.ImageDigest, 0
	case ended != 0:
		// Reported again after a running list lacked it (restarted, or the
		// list raced its start): running again.
		digests[digest] = true
	}

	// The paths of the batch, de-duplicated (latest time kept).
	latest := map[string]time.Time{}
	var order []string
	for _, l := range c.Loads {
		prev, ok := latest[l.Path]
		if !ok {
			order = append(order, l.Path)
		}
		if !ok || l.Time.After(prev) {
			latest[l.Path] = l.Time
		}
	}
	var lastLoad time.Time
	var added, capped int64
	for start := 0; start < len(order); start += loadChunk {
		chunk := order[start:min(start+loadChunk, len(order))]
		args := []any{id}
		for _, p := range chunk {
			args = append(args, p)
		}
		known := map[string]bool{}
		rows, err := t.query(ctx, `SELECT path FROM container_loads WHERE container = ? AND path IN (`+placeholders(len(chunk))+`)`, args...)
		if err != nil {
			return fmt.Errorf("read loads: %w", err)
		}
		for rows.Next() {
			var p string
			if err := rows.Scan(&p); err != nil {
				rows.Close()
				return fmt.Errorf("read loads: %w", err)
			}
			known[p] = true
		}
		if err := rows.Err(); err != nil {
			rows.Close()
			return fmt.Errorf("read loads: %w", err)
		}
		rows.Close()
		var ins [][]any
		for _, p := range chunk {
			at := latest[p]
			if at.After(lastLoad) {
				lastLoad = at
			}
			if known[p] {
				out.Duplicates++
				if _, err := t.exec(ctx, `UPDATE container_loads SET last_seen = ? WHERE container = ? AND path = ? AND last_seen < ?`,
					ts(at), id, p, ts(at)); err != nil {
					return fmt.Errorf("update load: %w", err)
				}
				continue
			}
			if paths+added >= MaxLoadsPerContainer {
				capped++
				continue
			}
			ins = append(ins, []any{id, p, ts(at), ts(at)})
			added++
		}
		if err := t.insertBatch(ctx, "container_loads", []string{"container", "path", "first_seen", "last_seen"}, ins); err != nil {
			return fmt.Errorf("insert loads: %w", err)
		}
	}
	out.Accepted += int(added)
	out.Capped += int(capped)
	if added > 0 {
		digests[digest] = true
	}
	if _, err := t.exec(ctx, `UPDATE load_containers SET paths = paths + ?, capped = capped + ?, reported_at = ?, ended_at = 0,
		last_load = CASE WHEN last_load < ? THEN ? ELSE last_load END, name = CASE WHEN ? <> '' THEN ? ELSE name END,
		image = CASE WHEN ? <> '' THEN ? ELSE image END WHERE id = ?`,
		added, capped, ts(now), ts(lastLoad), ts(lastLoad), c.Name, c.Name, c.Image, c.Image, id); err != nil {
		return fmt.Errorf("update: %w", err)
	}
	return nil
}

// syncRunning applies a node's complete list of running containers.
func (s *sqlStore) syncRunning(ctx context.Context, t *tx, b LoadBatch, now time.Time, out *LoadOutcome, digests map[string]bool) error {
	running := map[string]bool{}
	for _, id := range b.Running {
		running[id] = true
	}
	rows, err := t.query(ctx, `SELECT id, container_id, image_digest, ended_at FROM load_containers WHERE cluster = ? AND node = ?`,
		b.Cluster, b.Node)
	if err != nil {
		return fmt.Errorf("read containers: %w", err)
	}
	var end, seen []int64
	for rows.Next() {
		var id, ended int64
		var cid, digest string
		if err := rows.Scan(&id, &cid, &digest, &ended); err != nil {
			rows.Close()
			return fmt.Errorf("read containers: %w", err)
		}
		switch {
		case running[cid]:
			seen = append(seen, id)
			if ended != 0 {
				digests[digest] = true
			}
		case ended == 0:
			end = append(end, id)
			digests[digest] = true
		}
	}
	if err := rows.Err(); err != nil {
		rows.Close()
		return fmt.Errorf("read containers: %w", err)
	}
	rows.Close()
	for _, set := range []struct {
		ids []int64
		sql string
	}{
		{end, `UPDATE load_containers SET ended_at = ? WHERE id IN (`},
		{seen, `UPDATE load_containers SET reported_at = ?, ended_at = 0 WHERE id IN (`},
	} {
		for start := 0; start < len(set.ids); start += loadChunk {
			chunk := set.ids[start:min(start+loadChunk, len(set.ids))]
			args := []any{ts(now)}
			for _, id := range chunk {
				args = append(args, id)
			}
			if _, err := t.exec(ctx, set.sql+placeholders(len(chunk))+`)`, args...); err != nil {
				return fmt.Errorf("update containers: %w", err)
			}
		}
	}
	out.Ended = len(end)
	return nil
}

// ExpireLoads implements LoadStore.
func (s *sqlStore) ExpireLoads(ctx context.Context, endedBefore, staleBefore time.Time) ([]string, error) {
	var digests []string
	err := s.write(ctx, func(t *tx) error {
		digests = nil
		const cond = `(ended_at <> 0 AND ended_at < ?) OR reported_at < ?`
		var err error
		digests, err = readStrings(ctx, t, `SELECT DISTINCT image_digest FROM load_containers WHERE `+cond+` ORDER BY image_digest`,
			ts(endedBefore), ts(staleBefore))
		if err != nil || len(digests) == 0 {
			return err
		}
		// container_loads rows go with them (ON DELETE CASCADE).
		if _, err := t.exec(ctx, `DELETE FROM load_containers WHERE `+cond, ts(endedBefore), ts(staleBefore)); err != nil {
			return fmt.Errorf("delete: %w", err)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: expire loads: %w", err)
	}
	return digests, nil
}

// ImageLoads implements LoadStore.
func (s *sqlStore) ImageLoads(ctx context.Context, digest string) ([]ContainerLoads, error) {
	var out []ContainerLoads
	err := s.read(ctx, func(t *tx) error {
		out = nil
		rows, err := t.query(ctx, `SELECT id, cluster, node, container_id, name, image, first_seen, last_load, reported_at, ended_at,
			paths, capped FROM load_containers WHERE image_digest = ? ORDER BY cluster, node, container_id`, digest)
		if err != nil {
			return fmt.Errorf("read containers: %w", err)
		}
		var ids []int64
		for rows.Next() {
			var c ContainerLoads
			var id, first, last, rep, ended int64
			if err := rows.Scan(&id, &c.Cluster, &c.Node, &c.ID, &c.Name, &c.Image, &first, &last, &rep, &ended, &c.Paths, &c.Capped); err != nil {
				rows.Close()
				return fmt.Errorf("read containers: %w", err)
			}
			c.FirstSeen, c.LastLoad, c.ReportedAt, c.EndedAt = fromTS(first), fromTS(last), fromTS(rep), fromTS(ended)
			out = append(out, c)
			ids = append(ids, id)
		}
		if err := rows.Err(); err != nil {
			rows.Close()
			return fmt.Errorf("read containers: %w", err)
		}
		rows.Close()
		for i, id := range ids {
			lr, err := t.query(ctx, `SELECT path, last_seen FROM container_loads WHERE container = ? ORDER BY path`, id)
			if err != nil {
				return fmt.Errorf("read loads: %w", err)
			}
			for lr.Next() {
				var l Load
				var at int64
				if err := lr.Scan(&l.Path, &at); err != nil {
					lr.Close()
					return fmt.Errorf("read loads: %w", err)
				}
				l.Time = fromTS(at)
				out[i].Loads = append(out[i].Loads, l)
			}
			if err := lr.Err(); err != nil {
				lr.Close()
				return fmt.Errorf("read loads: %w", err)
			}
			lr.Close()
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: loads of image %s: %w", digest, err)
	}
	return out, nil
}

// LoadDigests implements LoadStore.
func (s *sqlStore) LoadDigests(ctx context.Context) ([]string, error) {
	var out []string
	err := s.read(ctx, func(t *tx) error {
		var err error
		out, err = readStrings(ctx, t, `SELECT DISTINCT image_digest FROM load_containers ORDER BY image_digest`)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("store: load digests: %w", err)
	}
	return out, nil
}

// ImageUse implements LoadStore.
func (s *sqlStore) ImageUse(ctx context.Context, digest string) (*ImageUseData, error) {
	d := &ImageUseData{}
	err := s.read(ctx, func(t *tx) error {
		var latest sql.NullInt64
		var osJSON string
		err := t.queryRow(ctx, `SELECT id, latest_scan_id, os_json FROM images WHERE image_key = ?`, "digest:"+digest).
			Scan(&d.Ref.ImageID, &latest, &osJSON)
		if errors.Is(err, sql.ErrNoRows) || err == nil && !latest.Valid {
			return fmt.Errorf("image %s: %w", digest, ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("image %s: %w", digest, err)
		}
		d.Ref.ScanID, d.Ref.Digest = latest.Int64, digest
		if osJSON != "" {
			d.Inventory.OS = &model.OS{}
			if err := decodeJSON("os_json", osJSON, d.Inventory.OS); err != nil {
				return err
			}
		}
		if d.Inventory.Packages, err = readPackages(ctx, t, d.Ref.ImageID); err != nil {
			return err
		}
		rows, err := t.query(ctx, `SELECT iv.seq, iv.vuln_id, iv.pkg_name, iv.pkg_version, iv.pkg_type, iv.pkg_ecosystem, iv.pkg_purl,
			iv.pkg_source_name, iv.pkg_path, iv.pkg_layer, iv.fixed_version, iv.severity, iv.data_source, iv.severity_source,
			iv.priority, iv.priority_reason, iv.in_use, v.cvss, v.intel
			FROM image_vulnerabilities iv JOIN vulnerabilities v ON v.id = iv.vuln_id WHERE iv.image_id = ? ORDER BY iv.seq`, d.Ref.ImageID)
		if err != nil {
			return fmt.Errorf("read vulnerability rows: %w", err)
		}
		defer rows.Close()
		for rows.Next() {
			var v model.Vulnerability
			p := &v.Package
			var seq, sev int64
			var prio float64
			var reason, inUse, cvss, in string
			if err := rows.Scan(&seq, &v.ID, &p.Name, &p.Version, &p.Type, &p.Ecosystem, &p.PURL, &p.SourceName, &p.Path, &p.Layer,
				&v.FixedVersion, &sev, &v.DataSource, &v.SeveritySource, &prio, &reason, &inUse, &cvss, &in); err != nil {
				return fmt.Errorf("read vulnerability rows: %w", err)
			}
			v.Severity = model.Severity(sev)
			if v.Priority, v.InUse, err = rowPriority(prio, reason, inUse); err != nil {
				return err
			}
			if err := decodeJSON("cvss", cvss, &v.CVSS); err != nil {
				return err
			}
			var ij intelJSON
			if err := decodeJSON("intel", in, &ij); err != nil {
				return err
			}
			v.KEV, v.EPSS = ij.KEV, ij.EPSS
			d.Vulns = append(d.Vulns, v)
			d.Seqs = append(d.Seqs, seq)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("store: image use %s: %w", digest, err)
	}
	return d, nil
}

// SetImageUse implements LoadStore.
func (s *sqlStore) SetImageUse(ctx context.Context, ref InventoryRef, rows []RowUse) error {
	for i := range rows {
		if u := rows[i].InUse; u != nil && len(u.Containers) > model.MaxInUseContainers {
			return fmt.Errorf("store: image use: row %d names %d containers, at most %d: %w", rows[i].Seq, len(u.Containers),
				model.MaxInUseContainers, ErrInvalid)
		}
	}
	err := s.write(ctx, func(t *tx) error {
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
		ids := map[string]bool{}
		for i := range rows {
			r := &rows[i]
			inUse, loaded := "", int64(0)
			if r.InUse != nil {
				b, err := jsonText(r.InUse)
				if err != nil {
					return err
				}
				inUse, loaded = b, b2i(r.InUse.Loaded)
			}
			prio, reason := float64(-1), ""
			if r.Priority != nil {
				prio, reason = r.Priority.Score, r.Priority.Reason
			}
			if _, err := t.exec(ctx, `UPDATE image_vulnerabilities SET in_use = ?, in_use_loaded = ?, priority = ?, priority_reason = ?
				WHERE image_id = ? AND seq = ?`, inUse, loaded, prio, reason, ref.ImageID, r.Seq); err != nil {
				return fmt.Errorf("update row %d: %w", r.Seq, err)
			}
			ids[r.ID] = true
		}
		// A vulnerability's priority is the highest of its rows.
		list := make([]string, 0, len(ids))
		for id := range ids {
			list = append(list, id)
		}
		slices.Sort(list) // one lock order (PostgreSQL)
		for start := 0; start < len(list); start += loadChunk {
			chunk := list[start:min(start+loadChunk, len(list))]
			args := make([]any, len(chunk))
			for i, id := range chunk {
				args[i] = id
			}
			if _, err := t.exec(ctx, `UPDATE vulnerabilities SET priority = COALESCE((SELECT MAX(iv.priority) FROM image_vulnerabilities iv
				WHERE iv.vuln_id = vulnerabilities.id), -1) WHERE id IN (`+placeholders(len(chunk))+`)`, args...); err != nil {
				return fmt.Errorf("update priorities: %w", err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: set image use: %w", err)
	}
	return nil
}

// loadPathOK reports whether a path can be stored (the service checks
// more; the store refuses what would corrupt it).
func loadPathOK(p string) bool {
	return p != "" && len(p) <= 4096 && !strings.ContainsRune(p, 0)
}
