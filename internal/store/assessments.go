package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// AssessmentStore keeps the evidence of compliance assessments that no
// other store holds — the postures the agents and cluster components
// report, each node's host vulnerabilities as the server matched them,
// registry probes and image signature verifications — and the assessment
// snapshots (one per standard whenever the outcome changed) that give the
// score over time. Bodies are JSON the caller encodes (the store does not
// interpret them).
type AssessmentStore interface {
	// PutNodePosture stores a node's latest posture (replacing the one
	// before, and its host match).
	PutNodePosture(ctx context.Context, p NodePosture) error
	// NodePostures lists the node postures by cluster and node.
	NodePostures(ctx context.Context) ([]NodePosture, error)
	// PutHostMatch stores the match of a node's host inventory; ErrNotFound
	// when the node has no posture, ErrStale when the posture changed
	// since receivedAt (a newer one came in).
	PutHostMatch(ctx context.Context, cluster, node string, receivedAt time.Time, m HostMatch) error
	// PutClusterPosture stores a cluster's latest posture.
	PutClusterPosture(ctx context.Context, p ClusterPosture) error
	// ClusterPostures lists the cluster postures by cluster.
	ClusterPostures(ctx context.Context) ([]ClusterPosture, error)
	// PutRegistryProbe stores a registry's latest probe; ErrNotFound when
	// the registry does not exist.
	PutRegistryProbe(ctx context.Context, registryID int64, at time.Time, body string) error
	// RegistryProbes returns the latest probe of every probed registry.
	RegistryProbes(ctx context.Context) (map[int64]RegistryProbeRow, error)
	// PutImageSignature stores a verification (replacing the one of the
	// same digest and trust).
	PutImageSignature(ctx context.Context, s ImageSignature) error
	// ImageSignatures lists the latest verification of each digest under
	// trust ("" = under any trust: the newest of each digest).
	ImageSignatures(ctx context.Context, trust string) ([]ImageSignature, error)
	// AddAssessment stores a snapshot and keeps the newest keep of its
	// standard (keep <= 0: all). It returns the snapshot's ID.
	AddAssessment(ctx context.Context, a Assessment, keep int) (int64, error)
	// Assessments lists a standard's snapshots newest first, without
	// their reports, at most limit (clamped like a Page).
	Assessments(ctx context.Context, standard string, limit int) ([]Assessment, error)
	// GetAssessment returns a snapshot with its report; ErrNotFound.
	GetAssessment(ctx context.Context, id int64) (Assessment, error)
	// LatestAssessment returns a standard's newest snapshot with its
	// report; ErrNotFound when there is none.
	LatestAssessment(ctx context.Context, standard string) (Assessment, error)
	// ImageBuildTimes returns the build time (the image configuration's
	// creation time) of every image whose latest scan knew it, by image ID.
	ImageBuildTimes(ctx context.Context) (map[int64]time.Time, error)
	// EvidenceStamp summarises when each part of the evidence of an
	// assessment last changed (the Stamp* names: scans, policies,
	// admission events, postures, probes, signatures, registries): a part
	// that compares equal did not change.
	EvidenceStamp(ctx context.Context) (map[string]int64, error)
}

// NodePosture is a node's latest posture.
type NodePosture struct {
	Cluster, Node string
	CollectedAt   time.Time
	ReceivedAt    time.Time
	Body          string
	HostMatch
}

// HostMatch is the server's match of a node's host inventory: Vulns is
// the JSON of the vulnerabilities ("" = never matched).
type HostMatch struct {
	Vulns     string
	DBBuiltAt time.Time
	MatchedAt time.Time
}

// ClusterPosture is a cluster's latest posture.
type ClusterPosture struct {
	Cluster     string
	CollectedAt time.Time
	ReceivedAt  time.Time
	Body        string
}

// RegistryProbeRow is a registry's latest probe.
type RegistryProbeRow struct {
	RegistryID int64
	ProbedAt   time.Time
	Body       string
}

// ImageSignature is one image's signature verification under a trust
// configuration.
type ImageSignature struct {
	Digest     string
	Trust      string
	Image      string
	Verified   bool
	Signer     string
	Reason     string
	VerifiedAt time.Time
}

// Assessment is one snapshot of a standard's assessment.
type Assessment struct {
	ID          int64
	Standard    string
	GeneratedAt time.Time
	// Cause says what triggered it ("schedule", "scan", "policy" ...).
	Cause                                  string
	Pass, Fail, NotApplicable, NotAssessed int
	// Groups is the JSON of the per-group summaries; Digest identifies
	// the outcome (statuses and evidence), Report the whole report's JSON
	// ("" in lists).
	Groups, Digest, Report string
}

// Limits of the assessment store's text, each with its reason.
const (
	// maxPostureBody caps a stored posture: a node's host inventory of a
	// few thousand packages, or a cluster of 10,000 pods, fits.
	maxPostureBody = 64 << 20
	// maxReportBody caps a stored report (50 evidence objects per control).
	maxReportBody = 16 << 20
)

func (c *checker) body(field, v string, max int) {
	if len(v) > max {
		c.fail("%s is %d bytes, over %d", field, len(v), max)
		return
	}
	c.str(field, v)
}

// PutNodePosture implements AssessmentStore.
func (s *sqlStore) PutNodePosture(ctx context.Context, p NodePosture) error {
	c := &checker{}
	// "" is the cluster of an agent on a bare host.
	if len(p.Cluster) > maxTypeLen*4 {
		c.fail("cluster is longer than %d bytes", maxTypeLen*4)
	}
	c.str("cluster", p.Cluster)
	c.required("node", p.Node, maxObjectName)
	c.required("body", p.Body, maxPostureBody)
	c.body("host vulnerabilities", p.Vulns, maxPostureBody)
	if c.err != nil {
		return c.err
	}
	err := s.write(ctx, func(t *tx) error {
		_, err := t.exec(ctx, `INSERT INTO node_postures (cluster, node, collected_at, received_at, body, host_vulns,
			host_db_built_at, matched_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (cluster, node) DO UPDATE SET collected_at = excluded.collected_at, received_at = excluded.received_at,
				body = excluded.body, host_vulns = excluded.host_vulns, host_db_built_at = excluded.host_db_built_at,
				matched_at = excluded.matched_at`,
			p.Cluster, p.Node, ts(p.CollectedAt), ts(p.ReceivedAt), p.Body, p.Vulns, ts(p.DBBuiltAt), ts(p.MatchedAt))
		return err
	})
	if err != nil {
		return fmt.Errorf("store: node posture %s/%s: %w", p.Cluster, p.Node, err)
	}
	return nil
}

// NodePostures implements AssessmentStore.
func (s *sqlStore) NodePostures(ctx context.Context) ([]NodePosture, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT cluster, node, collected_at, received_at, body, host_vulns, host_db_built_at, matched_at
		FROM node_postures ORDER BY cluster, node`)
	if err != nil {
		return nil, fmt.Errorf("store: node postures: %w", err)
	}
	defer rows.Close()
	out := []NodePosture{}
	for rows.Next() {
		var p NodePosture
		var col, rec, db, m int64
		if err := rows.Scan(&p.Cluster, &p.Node, &col, &rec, &p.Body, &p.Vulns, &db, &m); err != nil {
			return nil, fmt.Errorf("store: node postures: %w", err)
		}
		p.CollectedAt, p.ReceivedAt, p.DBBuiltAt, p.MatchedAt = fromTS(col), fromTS(rec), fromTS(db), fromTS(m)
		out = append(out, p)
	}
	return out, rows.Err()
}

// PutHostMatch implements AssessmentStore.
func (s *sqlStore) PutHostMatch(ctx context.Context, cluster, node string, receivedAt time.Time, m HostMatch) error {
	c := &checker{}
	c.body("host vulnerabilities", m.Vulns, maxPostureBody)
	if c.err != nil {
		return c.err
	}
	err := s.write(ctx, func(t *tx) error {
		var rec int64
		err := t.queryRow(ctx, `SELECT received_at FROM node_postures WHERE cluster = ? AND node = ?`, cluster, node).Scan(&rec)
		if errors.Is(err, sql.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil {
			return err
		}
		if rec != ts(receivedAt) {
			return ErrStale
		}
		_, err = t.exec(ctx, `UPDATE node_postures SET host_vulns = ?, host_db_built_at = ?, matched_at = ? WHERE cluster = ? AND node = ?`,
			m.Vulns, ts(m.DBBuiltAt), ts(m.MatchedAt), cluster, node)
		return err
	})
	if err != nil {
		return fmt.Errorf("store: host match of %s/%s: %w", cluster, node, err)
	}
	return nil
}

// PutClusterPosture implements AssessmentStore.
func (s *sqlStore) PutClusterPosture(ctx context.Context, p ClusterPosture) error {
	c := &checker{}
	c.required("cluster", p.Cluster, maxTypeLen*4)
	c.required("body", p.Body, maxPostureBody)
	if c.err != nil {
		return c.err
	}
	err := s.write(ctx, func(t *tx) error {
		_, err := t.exec(ctx, `INSERT INTO cluster_postures (cluster, collected_at, received_at, body) VALUES (?, ?, ?, ?)
			ON CONFLICT (cluster) DO UPDATE SET collected_at = excluded.collected_at, received_at = excluded.received_at,
				body = excluded.body`, p.Cluster, ts(p.CollectedAt), ts(p.ReceivedAt), p.Body)
		return err
	})
	if err != nil {
		return fmt.Errorf("store: cluster posture %s: %w", p.Cluster, err)
	}
	return nil
}

// ClusterPostures implements AssessmentStore.
func (s *sqlStore) ClusterPostures(ctx context.Context) ([]ClusterPosture, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT cluster, collected_at, received_at, body FROM cluster_postures ORDER BY cluster`)
	if err != nil {
		return nil, fmt.Errorf("store: cluster postures: %w", err)
	}
	defer rows.Close()
	out := []ClusterPosture{}
	for rows.Next() {
		var p ClusterPosture
		var col, rec int64
		if err := rows.Scan(&p.Cluster, &col, &rec, &p.Body); err != nil {
			return nil, fmt.Errorf("store: cluster postures: %w", err)
		}
		p.CollectedAt, p.ReceivedAt = fromTS(col), fromTS(rec)
		out = append(out, p)
	}
	return out, rows.Err()
}

// PutRegistryProbe implements AssessmentStore.
func (s *sqlStore) PutRegistryProbe(ctx context.Context, registryID int64, at time.Time, body string) error {
	c := &checker{}
	c.required("body", body, maxReportBody)
	if c.err != nil {
		return c.err
	}
	err := s.write(ctx, func(t *tx) error {
		_, err := t.exec(ctx, `INSERT INTO registry_probes (registry_id, probed_at, body) VALUES (?, ?, ?)
			ON CONFLICT (registry_id) DO UPDATE SET probed_at = excluded.probed_at, body = excluded.body`, registryID, ts(at), body)
		if isForeignKeyViolation(err) {
			return ErrNotFound
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("store: probe of registry %d: %w", registryID, err)
	}
	return nil
}

// RegistryProbes implements AssessmentStore.
func (s *sqlStore) RegistryProbes(ctx context.Context) (map[int64]RegistryProbeRow, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT registry_id, probed_at, body FROM registry_probes`)
	if err != nil {
		return nil, fmt.Errorf("store: registry probes: %w", err)
	}
	defer rows.Close()
	out := map[int64]RegistryProbeRow{}
	for rows.Next() {
		var p RegistryProbeRow
		var at int64
		if err := rows.Scan(&p.RegistryID, &at, &p.Body); err != nil {
			return nil, fmt.Errorf("store: registry probes: %w", err)
		}
		p.ProbedAt = fromTS(at)
		out[p.RegistryID] = p
	}
	return out, rows.Err()
}

// PutImageSignature implements AssessmentStore.
func (s *sqlStore) PutImageSignature(ctx context.Context, v ImageSignature) error {
	c := &checker{}
	c.required("digest", v.Digest, maxTypeLen*4)
	c.required("trust", v.Trust, maxTypeLen*4)
	c.str("image", v.Image)
	c.str("signer", v.Signer)
	c.body("reason", v.Reason, 64<<10)
	if c.err != nil {
		return c.err
	}
	err := s.write(ctx, func(t *tx) error {
		_, err := t.exec(ctx, `INSERT INTO image_signatures (digest, trust, image, verified, signer, reason, verified_at)
			VALUES (?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (digest, trust) DO UPDATE SET image = excluded.image, verified = excluded.verified,
				signer = excluded.signer, reason = excluded.reason, verified_at = excluded.verified_at`,
			v.Digest, v.Trust, v.Image, b2i(v.Verified), v.Signer, v.Reason, ts(v.VerifiedAt))
		return err
	})
	if err != nil {
		return fmt.Errorf("store: signature of %s: %w", v.Digest, err)
	}
	return nil
}

// ImageSignatures implements AssessmentStore.
func (s *sqlStore) ImageSignatures(ctx context.Context, trust string) ([]ImageSignature, error) {
	q := `SELECT digest, trust, image, verified, signer, reason, verified_at FROM image_signatures`
	var args []any
	if trust != "" {
		q += ` WHERE trust = ?`
		args = append(args, trust)
	}
	rows, err := s.db.QueryContext(ctx, s.q(q+` ORDER BY digest, verified_at DESC`), args...)
	if err != nil {
		return nil, fmt.Errorf("store: image signatures: %w", err)
	}
	defer rows.Close()
	out := []ImageSignature{}
	for rows.Next() {
		var v ImageSignature
		var ok, at int64
		if err := rows.Scan(&v.Digest, &v.Trust, &v.Image, &ok, &v.Signer, &v.Reason, &at); err != nil {
			return nil, fmt.Errorf("store: image signatures: %w", err)
		}
		v.Verified, v.VerifiedAt = ok != 0, fromTS(at)
		if n := len(out); n > 0 && out[n-1].Digest == v.Digest {
			continue // an older verification of the same digest
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// AddAssessment implements AssessmentStore.
func (s *sqlStore) AddAssessment(ctx context.Context, a Assessment, keep int) (int64, error) {
	c := &checker{}
	c.required("standard", a.Standard, maxTypeLen)
	c.str("cause", a.Cause)
	c.body("groups", a.Groups, 1<<20)
	c.str("digest", a.Digest)
	c.required("report", a.Report, maxReportBody)
	if a.GeneratedAt.IsZero() {
		c.fail("no generation time")
	}
	if c.err != nil {
		return 0, c.err
	}
	var id int64
	err := s.write(ctx, func(t *tx) error {
		err := t.queryRow(ctx, `INSERT INTO assessments (standard, generated_at, cause, pass, fail, not_applicable, not_assessed,
			group_scores, digest, report) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
			a.Standard, ts(a.GeneratedAt), a.Cause, a.Pass, a.Fail, a.NotApplicable, a.NotAssessed, a.Groups, a.Digest, a.Report).Scan(&id)
		if err != nil || keep <= 0 {
			return err
		}
		// Drop the snapshots of the standard past the newest keep.
		_, err = t.exec(ctx, `DELETE FROM assessments WHERE standard = ? AND id < (
			SELECT MIN(id) FROM (SELECT id FROM assessments WHERE standard = ? ORDER BY id DESC LIMIT ?) AS newest)`,
			a.Standard, a.Standard, keep)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("store: add assessment: %w", err)
	}
	return id, nil
}

const assessmentCols = `id, standard, generated_at, cause, pass, fail, not_applicable, not_assessed, group_scores, digest`

func scanAssessment(r rowScanner, extra ...any) (Assessment, error) {
	var a Assessment
	var at int64
	err := r.Scan(append([]any{&a.ID, &a.Standard, &at, &a.Cause, &a.Pass, &a.Fail, &a.NotApplicable, &a.NotAssessed,
		&a.Groups, &a.Digest}, extra...)...)
	a.GeneratedAt = fromTS(at)
	return a, err
}

// Assessments implements AssessmentStore.
func (s *sqlStore) Assessments(ctx context.Context, standard string, limit int) ([]Assessment, error) {
	p := clampPage(Page{Limit: limit})
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT `+assessmentCols+` FROM assessments WHERE standard = ?
		ORDER BY generated_at DESC, id DESC LIMIT ?`), standard, p.Limit)
	if err != nil {
		return nil, fmt.Errorf("store: assessments: %w", err)
	}
	defer rows.Close()
	out := []Assessment{}
	for rows.Next() {
		a, err := scanAssessment(rows)
		if err != nil {
			return nil, fmt.Errorf("store: assessments: %w", err)
		}
		out = append(out, a)
	}
	return out, rows.Err()
}

func (s *sqlStore) oneAssessment(ctx context.Context, where string, arg any) (Assessment, error) {
	var report string
	a, err := scanAssessment(s.db.QueryRowContext(ctx, s.q(`SELECT `+assessmentCols+`, report FROM assessments WHERE `+where+`
		ORDER BY generated_at DESC, id DESC LIMIT 1`), arg), &report)
	a.Report = report
	if errors.Is(err, sql.ErrNoRows) {
		return Assessment{}, fmt.Errorf("store: assessment: %w", ErrNotFound)
	}
	if err != nil {
		return Assessment{}, fmt.Errorf("store: assessment: %w", err)
	}
	return a, nil
}

// GetAssessment implements AssessmentStore.
func (s *sqlStore) GetAssessment(ctx context.Context, id int64) (Assessment, error) {
	return s.oneAssessment(ctx, "id = ?", id)
}

// LatestAssessment implements AssessmentStore.
func (s *sqlStore) LatestAssessment(ctx context.Context, standard string) (Assessment, error) {
	return s.oneAssessment(ctx, "standard = ?", standard)
}

// EvidenceStamp implements AssessmentStore.
func (s *sqlStore) EvidenceStamp(ctx context.Context) (map[string]int64, error) {
	names := []string{StampScans, StampImages, StampPolicies, StampPolicyCount, StampAssignments, StampAdmission,
		StampNodePostures, StampHostMatches, StampClusterPostures, StampProbes, StampSignatures, StampRegistries}
	v := make([]int64, len(names))
	dest := make([]any, len(v))
	for i := range v {
		dest[i] = &v[i]
	}
	err := s.db.QueryRowContext(ctx, `SELECT
		(SELECT COALESCE(MAX(id), 0) FROM scans),
		(SELECT COUNT(*) FROM images),
		(SELECT COALESCE(MAX(updated_at), 0) FROM policies),
		(SELECT COUNT(*) FROM policies),
		(SELECT COUNT(*) FROM clusters WHERE policy <> ''),
		(SELECT COALESCE(MAX(seq), 0) FROM events WHERE source = 'admission'),
		(SELECT COALESCE(MAX(received_at), 0) FROM node_postures),
		(SELECT COALESCE(MAX(matched_at), 0) FROM node_postures),
		(SELECT COALESCE(MAX(received_at), 0) FROM cluster_postures),
		(SELECT COALESCE(MAX(probed_at), 0) FROM registry_probes),
		(SELECT COALESCE(MAX(verified_at), 0) FROM image_signatures),
		(SELECT COALESCE(MAX(updated_at), 0) + COUNT(*) FROM registries)`).Scan(dest...)
	if err != nil {
		return nil, fmt.Errorf("store: evidence stamp: %w", err)
	}
	out := make(map[string]int64, len(names))
	for i, n := range names {
		out[n] = v[i]
	}
	return out, nil
}

// Parts of an evidence stamp: each moves when its evidence changes.
const (
	StampScans           = "scans"
	StampImages          = "images"
	StampPolicies        = "policies"
	StampPolicyCount     = "policyCount"
	StampAssignments     = "policyAssignments"
	StampAdmission       = "admission"
	StampNodePostures    = "nodePostures"
	StampHostMatches     = "hostMatches"
	StampClusterPostures = "clusterPostures"
	StampProbes          = "registryProbes"
	StampSignatures      = "signatures"
	StampRegistries      = "registries"
)

// ImageBuildTimes implements AssessmentStore.
func (s *sqlStore) ImageBuildTimes(ctx context.Context) (map[int64]time.Time, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id, built_at FROM images WHERE built_at <> 0`)
	if err != nil {
		return nil, fmt.Errorf("store: image build times: %w", err)
	}
	defer rows.Close()
	out := map[int64]time.Time{}
	for rows.Next() {
		var id, at int64
		if err := rows.Scan(&id, &at); err != nil {
			return nil, fmt.Errorf("store: image build times: %w", err)
		}
		out[id] = fromTS(at)
	}
	return out, rows.Err()
}
