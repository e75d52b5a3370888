package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// MitigationStore keeps the isolate/terminate requests the cluster
// components execute: from continuous compliance (the server) and from
// node agents (a runtime rule matched in a pod).
type MitigationStore interface {
	// CreateMitigation queues a request (State pending). A request with an
	// EventID that is already queued for the same cluster and action is
	// not queued again: the stored one is returned with created false.
	CreateMitigation(ctx context.Context, m Mitigation) (out Mitigation, created bool, err error)
	// PendingMitigations lists a cluster's pending requests, oldest first.
	PendingMitigations(ctx context.Context, cluster string, limit int) ([]Mitigation, error)
	// CompleteMitigation records the outcome of a cluster's pending
	// request (State done or failed); a request already completed keeps
	// its outcome. ErrNotFound when the cluster has no such request.
	CompleteMitigation(ctx context.Context, cluster string, id int64, state, errMsg, detail string, at time.Time) (Mitigation, error)
	// ListMitigations lists requests, newest first.
	ListMitigations(ctx context.Context, f MitigationFilter) ([]Mitigation, error)
}

// Mitigation states.
const (
	MitigationPending = "pending"
	MitigationDone    = "done"
	MitigationFailed  = "failed"
)

// Mitigation is one isolate or terminate request.
type Mitigation struct {
	ID                                int64
	Cluster, Action, Namespace, Pod   string
	PodUID, Node, Container           string
	Source, Rule, EventID, Message    string
	RequestedBy, State, Error, Detail string
	CreatedAt, DoneAt                 time.Time
}

// MitigationFilter selects requests.
type MitigationFilter struct {
	Cluster string // "" = every cluster
	State   string // "" = every state
	Limit   int
}

const mitigationCols = `id, cluster, action, namespace, pod, pod_uid, node, container, source, rule, event_id, message,
	requested_by, state, error, detail, created_at, done_at`

func scanMitigation(r rowScanner) (Mitigation, error) {
	var m Mitigation
	var created, done int64
	err := r.Scan(&m.ID, &m.Cluster, &m.Action, &m.Namespace, &m.Pod, &m.PodUID, &m.Node, &m.Container, &m.Source, &m.Rule,
		&m.EventID, &m.Message, &m.RequestedBy, &m.State, &m.Error, &m.Detail, &created, &done)
	m.CreatedAt, m.DoneAt = fromTS(created), fromTS(done)
	return m, err
}

func checkMitigation(m *Mitigation) error {
	c := &checker{}
	c.required("cluster", m.Cluster, maxTypeLen*4)
	c.required("action", m.Action, maxTypeLen)
	c.required("namespace", m.Namespace, maxObjectName)
	c.required("pod", m.Pod, maxObjectName)
	c.required("source", m.Source, maxTypeLen)
	for _, kv := range [][2]string{{"podUID", m.PodUID}, {"node", m.Node}, {"container", m.Container}, {"rule", m.Rule},
		{"eventID", m.EventID}, {"requestedBy", m.RequestedBy}} {
		c.str(kv[0], kv[1])
		if len(kv[1]) > 512 {
			c.fail("%s is longer than 512 bytes", kv[0])
		}
	}
	c.str("message", m.Message)
	if len(m.Message) > 16<<10 {
		c.fail("message is longer than 16 KiB")
	}
	return c.err
}

// CreateMitigation implements MitigationStore.
func (s *sqlStore) CreateMitigation(ctx context.Context, m Mitigation) (Mitigation, bool, error) {
	if err := checkMitigation(&m); err != nil {
		return Mitigation{}, false, err
	}
	if m.CreatedAt.IsZero() {
		m.CreatedAt = time.Now()
	}
	var out Mitigation
	created := false
	err := s.write(ctx, func(t *tx) error {
		created = false
		if m.EventID != "" {
			var err error
			out, err = scanMitigation(t.queryRow(ctx, `SELECT `+mitigationCols+` FROM mitigations
				WHERE cluster = ? AND event_id = ? AND action = ?`, m.Cluster, m.EventID, m.Action))
			if err == nil {
				return nil
			}
			if !errors.Is(err, sql.ErrNoRows) {
				return err
			}
		}
		var err error
		out, err = scanMitigation(t.queryRow(ctx, `INSERT INTO mitigations (cluster, action, namespace, pod, pod_uid, node,
			container, source, rule, event_id, message, requested_by, state, created_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING `+mitigationCols,
			m.Cluster, m.Action, m.Namespace, m.Pod, m.PodUID, m.Node, m.Container, m.Source, m.Rule, m.EventID, m.Message,
			m.RequestedBy, MitigationPending, ts(m.CreatedAt)))
		created = err == nil
		return err
	})
	if err != nil {
		return Mitigation{}, false, fmt.Errorf("store: queue %s of pod %s/%s: %w", m.Action, m.Namespace, m.Pod, err)
	}
	return out, created, nil
}

// PendingMitigations implements MitigationStore.
func (s *sqlStore) PendingMitigations(ctx context.Context, cluster string, limit int) ([]Mitigation, error) {
	if limit <= 0 || limit > MaxLimit {
		limit = MaxLimit
	}
	return s.listMitigations(ctx, `SELECT `+mitigationCols+` FROM mitigations WHERE cluster = ? AND state = ? ORDER BY id LIMIT ?`,
		cluster, MitigationPending, limit)
}

func (s *sqlStore) listMitigations(ctx context.Context, q string, args ...any) ([]Mitigation, error) {
	rows, err := s.db.QueryContext(ctx, s.q(q), args...)
	if err != nil {
		return nil, fmt.Errorf("store: list mitigations: %w", err)
	}
	defer rows.Close()
	out := []Mitigation{}
	for rows.Next() {
		m, err := scanMitigation(rows)
		if err != nil {
			return nil, fmt.Errorf("store: list mitigations: %w", err)
		}
		out = append(out, m)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: list mitigations: %w", err)
	}
	return out, nil
}

// CompleteMitigation implements MitigationStore.
func (s *sqlStore) CompleteMitigation(ctx context.Context, cluster string, id int64, state, errMsg, detail string, at time.Time) (Mitigation, error) {
	c := &checker{}
	if state != MitigationDone && state != MitigationFailed {
		c.fail("state %q: want done or failed", state)
	}
	c.str("error", errMsg)
	c.str("detail", detail)
	if len(errMsg) > 4096 || len(detail) > 4096 {
		c.fail("error or detail longer than 4096 bytes")
	}
	if c.err != nil {
		return Mitigation{}, c.err
	}
	if at.IsZero() {
		at = time.Now()
	}
	var out Mitigation
	err := s.write(ctx, func(t *tx) error {
		if _, err := t.exec(ctx, `UPDATE mitigations SET state = ?, error = ?, detail = ?, done_at = ?
			WHERE cluster = ? AND id = ? AND state = ?`, state, errMsg, detail, ts(at), cluster, id, MitigationPending); err != nil {
			return err
		}
		var err error
		out, err = scanMitigation(t.queryRow(ctx, `SELECT `+mitigationCols+` FROM mitigations WHERE cluster = ? AND id = ?`, cluster, id))
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("mitigation %d: %w", id, ErrNotFound)
		}
		return err
	})
	if err != nil {
		return Mitigation{}, fmt.Errorf("store: complete mitigation %d: %w", id, err)
	}
	return out, nil
}

// ListMitigations implements MitigationStore.
func (s *sqlStore) ListMitigations(ctx context.Context, f MitigationFilter) ([]Mitigation, error) {
	limit := f.Limit
	if limit <= 0 {
		limit = DefaultLimit
	}
	if limit > MaxLimit {
		limit = MaxLimit
	}
	q := `SELECT ` + mitigationCols + ` FROM mitigations WHERE 1 = 1`
	var args []any
	if f.Cluster != "" {
		q, args = q+` AND cluster = ?`, append(args, f.Cluster)
	}
	if f.State != "" {
		q, args = q+` AND state = ?`, append(args, f.State)
	}
	return s.listMitigations(ctx, q+` ORDER BY created_at DESC, id DESC LIMIT ?`, append(args, limit)...)
}
