package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
)

// ClusterStore keeps the machine identities: clusters (one cluster
// component each) and node agents. Their tokens are in TokenStore, bound
// to a cluster by Token.Cluster.
type ClusterStore interface {
	// CreateCluster stores a new cluster; ErrConflict when the name is taken.
	CreateCluster(ctx context.Context, name string, at time.Time) (Cluster, error)
	GetCluster(ctx context.Context, id int64) (Cluster, error)
	GetClusterByName(ctx context.Context, name string) (Cluster, error)
	// ListClusters lists the clusters by name.
	ListClusters(ctx context.Context) ([]Cluster, error)
	// DeleteCluster deletes a cluster, its agents and its inventory, and
	// revokes the tokens bound to it, in one transaction. Its events and
	// mitigations stay (pending ones are failed).
	DeleteCluster(ctx context.Context, id int64, at time.Time) error
	// RecordClusterContact records a registration or heartbeat of the
	// named cluster's component; ErrNotFound when there is no such cluster.
	RecordClusterContact(ctx context.Context, name string, c ClusterContact) (Cluster, error)

	// RegisterAgent creates the agent (a.Cluster, a.Node) or updates what
	// it reported, and records the contact (LastContact = a.LastContact).
	RegisterAgent(ctx context.Context, a Agent) (Agent, error)
	// AgentHeartbeat records a contact of the registered agent (a.Cluster,
	// a.Node) and what it reports: its version and its sensor, each when
	// not empty; ErrNotFound when (cluster, node) is not registered.
	AgentHeartbeat(ctx context.Context, a Agent, at time.Time) (Agent, error)
	GetAgent(ctx context.Context, id int64) (Agent, error)
	// ListAgents lists the agents by cluster and node.
	ListAgents(ctx context.Context) ([]Agent, error)
	DeleteAgent(ctx context.Context, id int64) error
}

// Cluster is one cluster.
type Cluster struct {
	ID        int64
	Name      string
	CreatedAt time.Time
	// RegisteredAt is the component's first registration (zero until
	// then); LastContact its latest registration or heartbeat.
	RegisteredAt, LastContact  time.Time
	Version, KubernetesVersion string
	Nodes                      int
	// Policy names the policy the cluster enforces ("" = none; PolicyStore
	// sets it).
	Policy string
}

// ClusterContact is one registration (Register true) or heartbeat of a
// cluster component, with what it reports (empty values keep the stored ones).
type ClusterContact struct {
	At                         time.Time
	Register                   bool
	Version, KubernetesVersion string
	Nodes                      int
}

// Agent is one node agent.
type Agent struct {
	ID int64
	// Cluster is the cluster of the agent's token ("" for a bare host);
	// Node names the agent within it.
	Cluster, Node                       string
	Hostname, Version, OS, Kernel, Arch string
	// TokenID is the token the agent last registered with.
	TokenID                int64
	FirstSeen, LastContact time.Time
	// Sensor is how the agent's runtime sensor observes the node, as its
	// last registration or heartbeat said (zero: not said).
	Sensor AgentSensor
}

// AgentSensor is the runtime sensor's mode ("ebpf", "fallback"), how its
// programs attach (Hooks, e.g. "tp_btf"), and the event kinds the mode
// cannot report (comma-separated in the store).
type AgentSensor struct {
	Mode, Hooks string
	Missing     []string
}

const clusterCols = `id, name, created_at, registered_at, last_contact, version, kube_version, nodes, policy`

func scanCluster(r rowScanner) (Cluster, error) {
	var c Cluster
	var created, registered, last int64
	if err := r.Scan(&c.ID, &c.Name, &created, &registered, &last, &c.Version, &c.KubernetesVersion, &c.Nodes, &c.Policy); err != nil {
		return c, err
	}
	c.CreatedAt, c.RegisteredAt, c.LastContact = fromTS(created), fromTS(registered), fromTS(last)
	return c, nil
}

func checkClusterName(name string) error {
	c := &checker{}
	c.required("cluster name", name, maxTypeLen*4)
	return c.err
}

// CreateCluster implements ClusterStore.
func (s *sqlStore) CreateCluster(ctx context.Context, name string, at time.Time) (Cluster, error) {
	if err := checkClusterName(name); err != nil {
		return Cluster{}, err
	}
	if at.IsZero() {
		at = time.Now()
	}
	var c Cluster
	err := s.write(ctx, func(t *tx) error {
		var err error
		c, err = scanCluster(t.queryRow(ctx, `INSERT INTO clusters (name, created_at) VALUES (?, ?) RETURNING `+clusterCols, name, ts(at)))
		return err
	})
	if isUniqueViolation(err) {
		return Cluster{}, fmt.Errorf("store: cluster %q: %w", name, ErrConflict)
	}
	if err != nil {
		return Cluster{}, fmt.Errorf("store: create cluster %q: %w", name, err)
	}
	return c, nil
}

func (s *sqlStore) getCluster(ctx context.Context, what, where string, arg any) (Cluster, error) {
	c, err := scanCluster(s.db.QueryRowContext(ctx, s.q(`SELECT `+clusterCols+` FROM clusters WHERE `+where), arg))
	if errors.Is(err, sql.ErrNoRows) {
		return Cluster{}, fmt.Errorf("store: cluster %s: %w", what, ErrNotFound)
	}
	if err != nil {
		return Cluster{}, fmt.Errorf("store: get cluster %s: %w", what, err)
	}
	return c, nil
}

// GetCluster implements ClusterStore.
func (s *sqlStore) GetCluster(ctx context.Context, id int64) (Cluster, error) {
	return s.getCluster(ctx, fmt.Sprint(id), "id = ?", id)
}

// GetClusterByName implements ClusterStore.
func (s *sqlStore) GetClusterByName(ctx context.Context, name string) (Cluster, error) {
	return s.getCluster(ctx, fmt.Sprintf("%q", name), "name = ?", name)
}

// ListClusters implements ClusterStore.
func (s *sqlStore) ListClusters(ctx context.Context) ([]Cluster, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+clusterCols+` FROM clusters ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("store: list clusters: %w", err)
	}
	defer rows.Close()
	out := []Cluster{}
	for rows.Next() {
		c, err := scanCluster(rows)
		if err != nil {
			return nil, fmt.Errorf("store: list clusters: %w", err)
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: list clusters: %w", err)
	}
	return out, nil
}

// DeleteCluster implements ClusterStore.
func (s *sqlStore) DeleteCluster(ctx context.Context, id int64, at time.Time) error {
	if at.IsZero() {
		at = time.Now()
	}
	err := s.write(ctx, func(t *tx) error {
		var name string
		if err := t.queryRow(ctx, `SELECT name FROM clusters WHERE id = ?`, id).Scan(&name); errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("cluster %d: %w", id, ErrNotFound)
		} else if err != nil {
			return err
		}
		if _, err := t.exec(ctx, `DELETE FROM sessions WHERE token_id IN (SELECT id FROM tokens WHERE cluster = ?)`, name); err != nil {
			return err
		}
		if _, err := t.exec(ctx, `UPDATE tokens SET revoked_at = ? WHERE cluster = ? AND revoked_at = 0`, ts(at), name); err != nil {
			return err
		}
		if _, err := t.exec(ctx, `DELETE FROM agents WHERE cluster = ?`, name); err != nil {
			return err
		}
		// What its component reported goes with it; its mitigations stay
		// as a record (pending ones can never run: they are failed).
		for _, table := range []string{"running_containers", "node_containers", "cluster_objects", "inventory_syncs", "compliance_violations", "compliance_runs"} {
			if _, err := t.exec(ctx, `DELETE FROM `+table+` WHERE cluster = ?`, name); err != nil {
				return err
			}
		}
		if _, err := t.exec(ctx, `UPDATE mitigations SET state = ?, error = 'the cluster was deleted', done_at = ?
			WHERE cluster = ? AND state = ?`, MitigationFailed, ts(at), name, MitigationPending); err != nil {
			return err
		}
		_, err := t.exec(ctx, `DELETE FROM clusters WHERE id = ?`, id)
		return err
	})
	if err != nil {
		return fmt.Errorf("store: delete cluster %d: %w", id, err)
	}
	return nil
}

// RecordClusterContact implements ClusterStore.
func (s *sqlStore) RecordClusterContact(ctx context.Context, name string, c ClusterContact) (Cluster, error) {
	ck := &checker{}
	ck.str("version", c.Version)
	ck.str("kubernetesVersion", c.KubernetesVersion)
	if len(c.Version) > maxTypeLen*4 || len(c.KubernetesVersion) > maxTypeLen*4 || c.Nodes < 0 {
		ck.fail("version, kubernetesVersion or nodes out of range")
	}
	if ck.err != nil {
		return Cluster{}, ck.err
	}
	if c.At.IsZero() {
		c.At = time.Now()
	}
	var out Cluster
	err := s.write(ctx, func(t *tx) error {
		reg := int64(0)
		if c.Register {
			reg = ts(c.At)
		}
		var err error
		out, err = scanCluster(t.queryRow(ctx, `UPDATE clusters SET last_contact = ?,
			registered_at = CASE WHEN registered_at = 0 THEN ? ELSE registered_at END,
			version = CASE WHEN ? <> '' THEN ? ELSE version END,
			kube_version = CASE WHEN ? <> '' THEN ? ELSE kube_version END,
			nodes = CASE WHEN ? > 0 THEN ? ELSE nodes END
			WHERE name = ? RETURNING `+clusterCols,
			ts(c.At), reg, c.Version, c.Version, c.KubernetesVersion, c.KubernetesVersion, c.Nodes, c.Nodes, name))
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("cluster %q: %w", name, ErrNotFound)
		}
		return err
	})
	if err != nil {
		return Cluster{}, fmt.Errorf("store: record cluster contact: %w", err)
	}
	return out, nil
}

const agentCols = `id, cluster, node, hostname, version, os, kernel, arch, token_id, first_seen, last_contact, sensor_mode, sensor_hooks, sensor_missing`

func scanAgent(r rowScanner) (Agent, error) {
	var a Agent
	var first, last int64
	var missing string
	if err := r.Scan(&a.ID, &a.Cluster, &a.Node, &a.Hostname, &a.Version, &a.OS, &a.Kernel, &a.Arch, &a.TokenID, &first, &last,
		&a.Sensor.Mode, &a.Sensor.Hooks, &missing); err != nil {
		return a, err
	}
	a.FirstSeen, a.LastContact = fromTS(first), fromTS(last)
	a.Sensor.Missing = splitList(missing)
	return a, nil
}

// splitList reads a comma-separated column ("" is none).
func splitList(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}

func checkAgent(a Agent) error {
	c := &checker{}
	c.required("node", a.Node, maxTypeLen*4)
	for _, kv := range [][2]string{{"cluster", a.Cluster}, {"hostname", a.Hostname}, {"version", a.Version},
		{"os", a.OS}, {"kernel", a.Kernel}, {"arch", a.Arch}, {"sensor mode", a.Sensor.Mode}, {"sensor hooks", a.Sensor.Hooks},
		{"sensor missing kinds", strings.Join(a.Sensor.Missing, ",")}} {
		c.str(kv[0], kv[1])
		if len(kv[1]) > maxTypeLen*4 {
			c.fail("%s is longer than %d bytes", kv[0], maxTypeLen*4)
		}
	}
	return c.err
}

// RegisterAgent implements ClusterStore.
func (s *sqlStore) RegisterAgent(ctx context.Context, a Agent) (Agent, error) {
	if err := checkAgent(a); err != nil {
		return Agent{}, err
	}
	if a.LastContact.IsZero() {
		a.LastContact = time.Now()
	}
	var out Agent
	err := s.write(ctx, func(t *tx) error {
		var err error
		out, err = scanAgent(t.queryRow(ctx, `INSERT INTO agents (cluster, node, hostname, version, os, kernel, arch, token_id, first_seen, last_contact,
				sensor_mode, sensor_hooks, sensor_missing)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (cluster, node) DO UPDATE SET hostname = excluded.hostname, version = excluded.version,
				os = excluded.os, kernel = excluded.kernel, arch = excluded.arch, token_id = excluded.token_id,
				last_contact = excluded.last_contact, sensor_mode = excluded.sensor_mode, sensor_hooks = excluded.sensor_hooks,
				sensor_missing = excluded.sensor_missing
			RETURNING `+agentCols,
			a.Cluster, a.Node, a.Hostname, a.Version, a.OS, a.Kernel, a.Arch, a.TokenID, ts(a.LastContact), ts(a.LastContact),
			a.Sensor.Mode, a.Sensor.Hooks, strings.Join(a.Sensor.Missing, ",")))
		return err
	})
	if err != nil {
		return Agent{}, fmt.Errorf("store: register agent %q: %w", a.Node, err)
	}
	return out, nil
}

// AgentHeartbeat implements ClusterStore.
func (s *sqlStore) AgentHeartbeat(ctx context.Context, a Agent, at time.Time) (Agent, error) {
	if err := checkAgent(a); err != nil {
		return Agent{}, err
	}
	cluster, node, version := a.Cluster, a.Node, a.Version
	if at.IsZero() {
		at = time.Now()
	}
	var out Agent
	err := s.write(ctx, func(t *tx) error {
		var err error
		// The sensor is replaced only when the heartbeat says it: an agent
		// without the runtime module (or an older one) keeps what it
		// registered with.
		mode, hooks, missing := a.Sensor.Mode, a.Sensor.Hooks, strings.Join(a.Sensor.Missing, ",")
		out, err = scanAgent(t.queryRow(ctx, `UPDATE agents SET last_contact = ?,
			version = CASE WHEN ? <> '' THEN ? ELSE version END,
			sensor_hooks = CASE WHEN ? <> '' THEN ? ELSE sensor_hooks END,
			sensor_missing = CASE WHEN ? <> '' THEN ? ELSE sensor_missing END,
			sensor_mode = CASE WHEN ? <> '' THEN ? ELSE sensor_mode END
			WHERE cluster = ? AND node = ? RETURNING `+agentCols, ts(at), version, version, mode, hooks, mode, missing, mode, mode,
			cluster, node))
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("agent %q: %w", node, ErrNotFound)
		}
		return err
	})
	if err != nil {
		return Agent{}, fmt.Errorf("store: agent heartbeat: %w", err)
	}
	return out, nil
}

// GetAgent implements ClusterStore.
func (s *sqlStore) GetAgent(ctx context.Context, id int64) (Agent, error) {
	a, err := scanAgent(s.db.QueryRowContext(ctx, s.q(`SELECT `+agentCols+` FROM agents WHERE id = ?`), id))
	if errors.Is(err, sql.ErrNoRows) {
		return Agent{}, fmt.Errorf("store: agent %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return Agent{}, fmt.Errorf("store: get agent %d: %w", id, err)
	}
	return a, nil
}

// ListAgents implements ClusterStore.
func (s *sqlStore) ListAgents(ctx context.Context) ([]Agent, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+agentCols+` FROM agents ORDER BY cluster, node`)
	if err != nil {
		return nil, fmt.Errorf("store: list agents: %w", err)
	}
	defer rows.Close()
	out := []Agent{}
	for rows.Next() {
		a, err := scanAgent(rows)
		if err != nil {
			return nil, fmt.Errorf("store: list agents: %w", err)
		}
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: list agents: %w", err)
	}
	return out, nil
}

// DeleteAgent implements ClusterStore: the containers the agent reported
// go with it.
func (s *sqlStore) DeleteAgent(ctx context.Context, id int64) error {
	if _, err := s.db.ExecContext(ctx, s.q(`DELETE FROM node_containers WHERE (cluster, node) IN (SELECT cluster, node FROM agents WHERE id = ?)`), id); err != nil {
		return fmt.Errorf("store: delete agent %d: %w", id, err)
	}
	return s.execOne(ctx, fmt.Sprintf("agent %d", id), `DELETE FROM agents WHERE id = ?`, id)
}
