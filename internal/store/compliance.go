package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// ComplianceStore keeps the state of continuous compliance per cluster:
// the violations in force (so that each is reported once, when it
// appears) and the latest evaluation.
type ComplianceStore interface {
	// RecordCompliance stores the outcome of one evaluation of a cluster
	// in one transaction: violations not stored before are added (and
	// returned: the caller reports them), those stored before keep their
	// first detection and event, those no longer found are dropped; the
	// run is recorded.
	RecordCompliance(ctx context.Context, run ComplianceRun, found []ComplianceViolation) (added []ComplianceViolation, err error)
	// ComplianceViolations lists a cluster's violations in force.
	ComplianceViolations(ctx context.Context, cluster string) ([]ComplianceViolation, error)
	// ComplianceRun returns a cluster's latest evaluation (zero when none).
	ComplianceRun(ctx context.Context, cluster string) (ComplianceRun, error)
}

// ComplianceViolation is one compliance rule violated by one pod.
type ComplianceViolation struct {
	Cluster, PodUID, Rule string
	Namespace, Pod        string
	Action                string
	// EventID is the event that reported it.
	EventID             string
	FirstSeen, LastSeen time.Time
}

// ComplianceRun is one evaluation of a cluster.
type ComplianceRun struct {
	Cluster       string
	Policy        string
	PolicyVersion int
	// DBBuiltAt is the matched vulnerability database's built-at.
	DBBuiltAt string
	// InventoryAt is the inventory's change time the run saw.
	InventoryAt      time.Time
	EvaluatedAt      time.Time
	Pods, Violations int
	Error            string
}

// RecordCompliance implements ComplianceStore.
func (s *sqlStore) RecordCompliance(ctx context.Context, run ComplianceRun, found []ComplianceViolation) ([]ComplianceViolation, error) {
	c := &checker{}
	c.required("cluster", run.Cluster, maxTypeLen*4)
	c.str("policy", run.Policy)
	c.str("error", run.Error)
	for _, v := range found {
		c.required("pod UID", v.PodUID, maxObjectName)
		c.required("rule", v.Rule, maxObjectName)
		c.str("namespace", v.Namespace)
		c.str("pod", v.Pod)
		c.str("event", v.EventID)
	}
	if c.err != nil {
		return nil, c.err
	}
	if run.EvaluatedAt.IsZero() {
		run.EvaluatedAt = time.Now()
	}
	now := ts(run.EvaluatedAt)
	var added []ComplianceViolation
	err := s.write(ctx, func(t *tx) error {
		added = nil
		type key struct{ uid, rule string }
		stored := map[key]bool{}
		rows, err := t.query(ctx, `SELECT pod_uid, rule FROM compliance_violations WHERE cluster = ?`, run.Cluster)
		if err != nil {
			return err
		}
		for rows.Next() {
			var k key
			if err := rows.Scan(&k.uid, &k.rule); err != nil {
				rows.Close()
				return err
			}
			stored[k] = true
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		seen := map[key]bool{}
		for _, v := range found {
			k := key{v.PodUID, v.Rule}
			if seen[k] {
				continue
			}
			seen[k] = true
			if stored[k] {
				if _, err := t.exec(ctx, `UPDATE compliance_violations SET last_seen = ?, namespace = ?, pod = ?, action = ?
					WHERE cluster = ? AND pod_uid = ? AND rule = ?`, now, v.Namespace, v.Pod, v.Action, run.Cluster, v.PodUID, v.Rule); err != nil {
					return err
				}
				continue
			}
			if _, err := t.exec(ctx, `INSERT INTO compliance_violations (cluster, pod_uid, rule, namespace, pod, action, event_id,
				first_seen, last_seen) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
				run.Cluster, v.PodUID, v.Rule, v.Namespace, v.Pod, v.Action, v.EventID, now, now); err != nil {
				return err
			}
			v.Cluster, v.FirstSeen, v.LastSeen = run.Cluster, run.EvaluatedAt, run.EvaluatedAt
			added = append(added, v)
		}
		for k := range stored {
			if seen[k] {
				continue
			}
			if _, err := t.exec(ctx, `DELETE FROM compliance_violations WHERE cluster = ? AND pod_uid = ? AND rule = ?`,
				run.Cluster, k.uid, k.rule); err != nil {
				return err
			}
		}
		_, err = t.exec(ctx, `INSERT INTO compliance_runs (cluster, policy, policy_version, db_built_at, inventory_at,
			evaluated_at, pods, violations, error) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (cluster) DO UPDATE SET policy = excluded.policy, policy_version = excluded.policy_version,
				db_built_at = excluded.db_built_at, inventory_at = excluded.inventory_at, evaluated_at = excluded.evaluated_at,
				pods = excluded.pods, violations = excluded.violations, error = excluded.error`,
			run.Cluster, run.Policy, run.PolicyVersion, run.DBBuiltAt, ts(run.InventoryAt), now, run.Pods, len(seen), run.Error)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("store: record compliance of cluster %q: %w", run.Cluster, err)
	}
	return added, nil
}

// ComplianceViolations implements ComplianceStore.
func (s *sqlStore) ComplianceViolations(ctx context.Context, cluster string) ([]ComplianceViolation, error) {
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT cluster, pod_uid, rule, namespace, pod, action, event_id, first_seen, last_seen
		FROM compliance_violations WHERE cluster = ? ORDER BY namespace, pod, rule`), cluster)
	if err != nil {
		return nil, fmt.Errorf("store: compliance violations: %w", err)
	}
	defer rows.Close()
	out := []ComplianceViolation{}
	for rows.Next() {
		var v ComplianceViolation
		var first, last int64
		if err := rows.Scan(&v.Cluster, &v.PodUID, &v.Rule, &v.Namespace, &v.Pod, &v.Action, &v.EventID, &first, &last); err != nil {
			return nil, fmt.Errorf("store: compliance violations: %w", err)
		}
		v.FirstSeen, v.LastSeen = fromTS(first), fromTS(last)
		out = append(out, v)
	}
	return out, rows.Err()
}

// ComplianceRun implements ComplianceStore.
func (s *sqlStore) ComplianceRun(ctx context.Context, cluster string) (ComplianceRun, error) {
	r := ComplianceRun{Cluster: cluster}
	var inv, eval int64
	err := s.db.QueryRowContext(ctx, s.q(`SELECT policy, policy_version, db_built_at, inventory_at, evaluated_at, pods, violations, error
		FROM compliance_runs WHERE cluster = ?`), cluster).Scan(&r.Policy, &r.PolicyVersion, &r.DBBuiltAt, &inv, &eval, &r.Pods, &r.Violations, &r.Error)
	if errors.Is(err, sql.ErrNoRows) {
		return ComplianceRun{Cluster: cluster}, nil
	}
	if err != nil {
		return ComplianceRun{}, fmt.Errorf("store: compliance run of cluster %q: %w", cluster, err)
	}
	r.InventoryAt, r.EvaluatedAt = fromTS(inv), fromTS(eval)
	return r, nil
}
