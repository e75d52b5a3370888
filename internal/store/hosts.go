package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// HostStore keeps host protection's server side (issue 12): host groups
// with their module settings, the agents' placement in them, one
// application control allow-list per group, what agents report
// (quarantine contents, integrity baseline summaries) and the requests
// the server passes to agents. The store does not read settings, baseline
// bodies or request arguments: the hosts service checks them before they
// come here.
type HostStore interface {
	// CreateHostGroup stores a new group; ErrConflict when its name, or
	// the cluster it takes, is taken.
	CreateHostGroup(ctx context.Context, g HostGroup) (HostGroup, error)
	GetHostGroup(ctx context.Context, id int64) (HostGroup, error)
	GetHostGroupByName(ctx context.Context, name string) (HostGroup, error)
	// ListHostGroups lists the groups by name (the default group first).
	ListHostGroups(ctx context.Context) ([]HostGroup, error)
	// UpdateHostGroup replaces a group's description, cluster and settings
	// (by g.ID); SettingsVersion grows when the settings changed.
	// ErrConflict when the cluster is another group's.
	UpdateHostGroup(ctx context.Context, g HostGroup) (HostGroup, error)
	// DeleteHostGroup deletes a group and its allow-list; agents placed in
	// it go back to their cluster's group or the default. The default
	// group cannot be deleted (ErrConflict).
	DeleteHostGroup(ctx context.Context, id int64) error
	// PlaceAgent puts an agent in a group (0: back to its cluster's group
	// or the default); ErrNotFound for an unknown agent or group.
	PlaceAgent(ctx context.Context, agentID, groupID int64) (AgentHost, error)
	// AgentHost returns the registered agent (cluster, node) and its
	// group; ErrNotFound when it is not registered.
	AgentHost(ctx context.Context, cluster, node string) (AgentHost, error)
	// ListAgentHosts lists every agent with its group, by cluster and node.
	ListAgentHosts(ctx context.Context) ([]AgentHost, error)

	// AllowList returns a group's allow-list revision and entries (by
	// digest, then path, source and package).
	AllowList(ctx context.Context, groupID int64) (int, []AllowEntry, error)
	// ReplaceAllowList makes entries the group's whole list.
	ReplaceAllowList(ctx context.Context, groupID int64, entries []AllowEntry, at time.Time, by string) (AllowListChange, error)
	// AddAllowEntries adds entries (an entry with the same digest, path,
	// source and package is kept as it is). The revision grows when
	// something was added.
	AddAllowEntries(ctx context.Context, groupID int64, entries []AllowEntry, at time.Time, by string) (AllowListChange, error)
	// RemoveAllowEntries removes every entry of a digest.
	RemoveAllowEntries(ctx context.Context, groupID int64, sha256 string, at time.Time, by string) (AllowListChange, error)

	// ReplaceQuarantine makes entries the agent's whole quarantine.
	ReplaceQuarantine(ctx context.Context, agentID int64, entries []QuarantineEntry, at time.Time) error
	// ListQuarantine lists quarantined files, newest first: one agent's, or
	// every agent's when agentID is 0.
	ListQuarantine(ctx context.Context, agentID int64) ([]QuarantineEntry, error)
	// GetQuarantineEntry returns one entry of one agent.
	GetQuarantineEntry(ctx context.Context, agentID int64, entryID string) (QuarantineEntry, error)

	// PutBaseline records an agent's baseline summary (replacing the last).
	PutBaseline(ctx context.Context, agentID int64, at time.Time, body string) error
	// ListBaselines lists every agent's last baseline summary, by cluster
	// and node.
	ListBaselines(ctx context.Context) ([]BaselineSummary, error)

	// CreateHostRequest stores a pending request to an agent.
	CreateHostRequest(ctx context.Context, r HostRequest) (HostRequest, error)
	// ListHostRequests lists an agent's requests: the pending ones oldest
	// first (pending), or all of them newest first, at most limit.
	ListHostRequests(ctx context.Context, agentID int64, pending bool, limit int) ([]HostRequest, error)
	// CompleteHostRequest records an agent's outcome of its pending
	// request (state done or failed); ErrNotFound when the request is not
	// the agent's, ErrConflict when it is no longer pending.
	CompleteHostRequest(ctx context.Context, agentID, id int64, state, result string, at time.Time) (HostRequest, error)
}

// DefaultHostGroup is the name of the group of hosts no other group takes.
const DefaultHostGroup = "default"

// MaxAllowListEntries bounds one group's allow-list.
const MaxAllowListEntries = 1_000_000

// HostGroup is one host group.
type HostGroup struct {
	ID          int64
	Name        string
	Description string
	// Cluster is the cluster whose nodes belong to the group unless
	// placed elsewhere ("" = none).
	Cluster string
	// Settings is the module settings document (JSON).
	Settings          string
	SettingsVersion   int
	AllowListRevision int
	// AllowListEntries counts the list's entries (read only).
	AllowListEntries     int
	CreatedAt, UpdatedAt time.Time
	UpdatedBy            string
}

// Placements of an agent in its group.
const (
	PlacementPlaced  = "placed"
	PlacementCluster = "cluster"
	PlacementDefault = "default"
)

// AgentHost is an agent and the host group it belongs to.
type AgentHost struct {
	Agent Agent
	Group HostGroup
	// Placement says why: PlacementPlaced, PlacementCluster or PlacementDefault.
	Placement string
}

// AllowEntry is one allow-list entry.
type AllowEntry struct {
	SHA256, Path, Kind, Source, Package string
	Added                               time.Time
}

// AllowListChange is the outcome of an allow-list change.
type AllowListChange struct {
	Revision, Added, Removed, Entries int
}

// QuarantineEntry is one quarantined file an agent reported.
type QuarantineEntry struct {
	AgentID          int64
	Cluster, Node    string // of the agent (read only)
	ID               string
	Time, ReportedAt time.Time
	Path, Root       string
	ContainerPID     int
	Size             int64
	SHA256           string
	// Hits is the engines' detections (JSON, api.QuarantineHit list).
	Hits    string
	Removed bool
}

// BaselineSummary is an agent's last integrity baseline summary.
type BaselineSummary struct {
	AgentID       int64
	Cluster, Node string
	ReportedAt    time.Time
	// Body is the summary (JSON, api.BaselineReport).
	Body string
}

// HostRequest is one request to an agent.
type HostRequest struct {
	ID      int64
	AgentID int64
	Kind    string
	// Args is the request's arguments (JSON).
	Args                 string
	State                string
	CreatedAt, UpdatedAt time.Time
	CreatedBy            string
	Result               string
}

// Host request states (as the api's).
const (
	RequestPending = "pending"
	RequestDone    = "done"
	RequestFailed  = "failed"
)

const hostGroupCols = `g.id, g.name, g.description, g.cluster, g.settings, g.settings_version, g.allowlist_revision,
	(SELECT COUNT(*) FROM allowlist_entries e WHERE e.group_id = g.id), g.created_at, g.updated_at, g.updated_by`

func scanHostGroup(r rowScanner) (HostGroup, error) {
	var g HostGroup
	var created, updated int64
	if err := r.Scan(&g.ID, &g.Name, &g.Description, &g.Cluster, &g.Settings, &g.SettingsVersion, &g.AllowListRevision,
		&g.AllowListEntries, &created, &updated, &g.UpdatedBy); err != nil {
		return g, err
	}
	g.CreatedAt, g.UpdatedAt = fromTS(created), fromTS(updated)
	return g, nil
}

// maxSettings bounds a stored settings document; the service refuses
// larger ones first (hostsettings.MaxDocument is the same).
const maxSettings = 1 << 20

func checkHostGroup(g HostGroup) error {
	c := &checker{}
	c.required("host group name", g.Name, maxTypeLen*4)
	c.str("description", g.Description)
	c.str("cluster", g.Cluster)
	c.required("settings", g.Settings, maxSettings)
	c.str("updated by", g.UpdatedBy)
	if len(g.Description) > maxIDLen || len(g.Cluster) > maxTypeLen*4 || len(g.UpdatedBy) > maxTypeLen*4 {
		c.fail("description, cluster or updated by too long")
	}
	return c.err
}

// CreateHostGroup implements HostStore.
func (s *sqlStore) CreateHostGroup(ctx context.Context, g HostGroup) (HostGroup, error) {
	if err := checkHostGroup(g); err != nil {
		return HostGroup{}, err
	}
	if g.CreatedAt.IsZero() {
		g.CreatedAt = time.Now()
	}
	var out HostGroup
	err := s.write(ctx, func(t *tx) error {
		var id int64
		if err := t.queryRow(ctx, `INSERT INTO host_groups (name, description, cluster, settings, created_at, updated_at, updated_by)
			VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id`, g.Name, g.Description, g.Cluster, g.Settings, ts(g.CreatedAt), ts(g.CreatedAt), g.UpdatedBy).Scan(&id); err != nil {
			return err
		}
		var err error
		out, err = scanHostGroup(t.queryRow(ctx, `SELECT `+hostGroupCols+` FROM host_groups g WHERE g.id = ?`, id))
		return err
	})
	if isUniqueViolation(err) {
		return HostGroup{}, fmt.Errorf("store: host group %q (or a group of cluster %q) exists: %w", g.Name, g.Cluster, ErrConflict)
	}
	if err != nil {
		return HostGroup{}, fmt.Errorf("store: create host group %q: %w", g.Name, err)
	}
	return out, nil
}

func (s *sqlStore) getHostGroup(ctx context.Context, what, where string, arg any) (HostGroup, error) {
	g, err := scanHostGroup(s.db.QueryRowContext(ctx, s.q(`SELECT `+hostGroupCols+` FROM host_groups g WHERE `+where), arg))
	if errors.Is(err, sql.ErrNoRows) {
		return HostGroup{}, fmt.Errorf("store: host group %s: %w", what, ErrNotFound)
	}
	if err != nil {
		return HostGroup{}, fmt.Errorf("store: get host group %s: %w", what, err)
	}
	return g, nil
}

// GetHostGroup implements HostStore.
func (s *sqlStore) GetHostGroup(ctx context.Context, id int64) (HostGroup, error) {
	return s.getHostGroup(ctx, fmt.Sprint(id), "g.id = ?", id)
}

// GetHostGroupByName implements HostStore.
func (s *sqlStore) GetHostGroupByName(ctx context.Context, name string) (HostGroup, error) {
	return s.getHostGroup(ctx, fmt.Sprintf("%q", name), "g.name = ?", name)
}

// ListHostGroups implements HostStore.
func (s *sqlStore) ListHostGroups(ctx context.Context) ([]HostGroup, error) {
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT `+hostGroupCols+` FROM host_groups g
		ORDER BY CASE WHEN g.name = ? THEN 0 ELSE 1 END, g.name`), DefaultHostGroup)
	if err != nil {
		return nil, fmt.Errorf("store: list host groups: %w", err)
	}
	defer rows.Close()
	out := []HostGroup{}
	for rows.Next() {
		g, err := scanHostGroup(rows)
		if err != nil {
			return nil, fmt.Errorf("store: list host groups: %w", err)
		}
		out = append(out, g)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: list host groups: %w", err)
	}
	return out, nil
}

// UpdateHostGroup implements HostStore.
func (s *sqlStore) UpdateHostGroup(ctx context.Context, g HostGroup) (HostGroup, error) {
	if err := checkHostGroup(g); err != nil {
		return HostGroup{}, err
	}
	if g.UpdatedAt.IsZero() {
		g.UpdatedAt = time.Now()
	}
	var out HostGroup
	err := s.write(ctx, func(t *tx) error {
		var name, settings string
		err := t.queryRow(ctx, `SELECT name, settings FROM host_groups WHERE id = ?`, g.ID).Scan(&name, &settings)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("host group %d: %w", g.ID, ErrNotFound)
		}
		if err != nil {
			return err
		}
		if name == DefaultHostGroup && g.Cluster != "" {
			return fmt.Errorf("the default group takes the hosts no other group takes; it cannot take a cluster: %w", ErrConflict)
		}
		bump := 0
		if settings != g.Settings {
			bump = 1
		}
		if _, err := t.exec(ctx, `UPDATE host_groups SET description = ?, cluster = ?, settings = ?, settings_version = settings_version + ?,
			updated_at = ?, updated_by = ? WHERE id = ?`, g.Description, g.Cluster, g.Settings, bump, ts(g.UpdatedAt), g.UpdatedBy, g.ID); err != nil {
			return err
		}
		out, err = scanHostGroup(t.queryRow(ctx, `SELECT `+hostGroupCols+` FROM host_groups g WHERE g.id = ?`, g.ID))
		return err
	})
	if isUniqueViolation(err) {
		return HostGroup{}, fmt.Errorf("store: cluster %q already has a host group: %w", g.Cluster, ErrConflict)
	}
	if err != nil {
		return HostGroup{}, fmt.Errorf("store: update host group %d: %w", g.ID, err)
	}
	return out, nil
}

// DeleteHostGroup implements HostStore.
func (s *sqlStore) DeleteHostGroup(ctx context.Context, id int64) error {
	err := s.write(ctx, func(t *tx) error {
		var name string
		err := t.queryRow(ctx, `SELECT name FROM host_groups WHERE id = ?`, id).Scan(&name)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("host group %d: %w", id, ErrNotFound)
		}
		if err != nil {
			return err
		}
		if name == DefaultHostGroup {
			return fmt.Errorf("the default group cannot be deleted: %w", ErrConflict)
		}
		if _, err := t.exec(ctx, `UPDATE agents SET host_group = 0 WHERE host_group = ?`, id); err != nil {
			return err
		}
		_, err = t.exec(ctx, `DELETE FROM host_groups WHERE id = ?`, id)
		return err
	})
	if err != nil {
		return fmt.Errorf("store: delete host group: %w", err)
	}
	return nil
}

// resolveHost finds an agent's group: its placement, else its cluster's
// group, else the default.
func resolveHost(ctx context.Context, q func(ctx context.Context, query string, args ...any) *sql.Row, a Agent, placed int64) (AgentHost, error) {
	out := AgentHost{Agent: a}
	try := func(placement, where string, arg any) (bool, error) {
		g, err := scanHostGroup(q(ctx, `SELECT `+hostGroupCols+` FROM host_groups g WHERE `+where, arg))
		if errors.Is(err, sql.ErrNoRows) {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		out.Group, out.Placement = g, placement
		return true, nil
	}
	if placed != 0 {
		if ok, err := try(PlacementPlaced, "g.id = ?", placed); ok || err != nil {
			return out, err
		}
	}
	if a.Cluster != "" {
		if ok, err := try(PlacementCluster, "g.cluster = ?", a.Cluster); ok || err != nil {
			return out, err
		}
	}
	ok, err := try(PlacementDefault, "g.name = ?", DefaultHostGroup)
	if err == nil && !ok {
		err = fmt.Errorf("the default host group is missing: %w", ErrNotFound)
	}
	return out, err
}

func (s *sqlStore) rowFunc(ctx context.Context, query string, args ...any) *sql.Row {
	return s.db.QueryRowContext(ctx, s.q(query), args...)
}

const agentHostCols = agentCols + `, host_group`

func scanAgentHost(r rowScanner) (Agent, int64, error) {
	var a Agent
	var first, last, group int64
	var missing string
	if err := r.Scan(&a.ID, &a.Cluster, &a.Node, &a.Hostname, &a.Version, &a.OS, &a.Kernel, &a.Arch, &a.TokenID, &first, &last,
		&a.Sensor.Mode, &a.Sensor.Hooks, &missing, &group); err != nil {
		return a, 0, err
	}
	a.FirstSeen, a.LastContact = fromTS(first), fromTS(last)
	a.Sensor.Missing = splitList(missing)
	return a, group, nil
}

// PlaceAgent implements HostStore.
func (s *sqlStore) PlaceAgent(ctx context.Context, agentID, groupID int64) (AgentHost, error) {
	var out AgentHost
	err := s.write(ctx, func(t *tx) error {
		if groupID != 0 {
			var one int
			err := t.queryRow(ctx, `SELECT 1 FROM host_groups WHERE id = ?`, groupID).Scan(&one)
			if errors.Is(err, sql.ErrNoRows) {
				return fmt.Errorf("host group %d: %w", groupID, ErrNotFound)
			}
			if err != nil {
				return err
			}
		}
		a, placed, err := scanAgentHost(t.queryRow(ctx, `UPDATE agents SET host_group = ? WHERE id = ? RETURNING `+agentHostCols, groupID, agentID))
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("agent %d: %w", agentID, ErrNotFound)
		}
		if err != nil {
			return err
		}
		out, err = resolveHost(ctx, t.queryRow, a, placed)
		return err
	})
	if err != nil {
		return AgentHost{}, fmt.Errorf("store: place agent: %w", err)
	}
	return out, nil
}

// AgentHost implements HostStore.
func (s *sqlStore) AgentHost(ctx context.Context, cluster, node string) (AgentHost, error) {
	var out AgentHost
	err := s.read(ctx, func(t *tx) error {
		a, placed, err := scanAgentHost(t.queryRow(ctx, `SELECT `+agentHostCols+` FROM agents WHERE cluster = ? AND node = ?`, cluster, node))
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("agent %q: %w", node, ErrNotFound)
		}
		if err != nil {
			return err
		}
		out, err = resolveHost(ctx, t.queryRow, a, placed)
		return err
	})
	if err != nil {
		return AgentHost{}, fmt.Errorf("store: host of agent: %w", err)
	}
	return out, nil
}

// ListAgentHosts implements HostStore.
func (s *sqlStore) ListAgentHosts(ctx context.Context) ([]AgentHost, error) {
	out := []AgentHost{}
	err := s.read(ctx, func(t *tx) error {
		out = out[:0]
		groups := map[int64]HostGroup{}
		byCluster := map[string]HostGroup{}
		var def HostGroup
		rows, err := t.query(ctx, `SELECT `+hostGroupCols+` FROM host_groups g`)
		if err != nil {
			return err
		}
		for rows.Next() {
			g, err := scanHostGroup(rows)
			if err != nil {
				rows.Close()
				return err
			}
			groups[g.ID] = g
			if g.Cluster != "" {
				byCluster[g.Cluster] = g
			}
			if g.Name == DefaultHostGroup {
				def = g
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		arows, err := t.query(ctx, `SELECT `+agentHostCols+` FROM agents ORDER BY cluster, node`)
		if err != nil {
			return err
		}
		defer arows.Close()
		for arows.Next() {
			a, placed, err := scanAgentHost(arows)
			if err != nil {
				return err
			}
			h := AgentHost{Agent: a, Group: def, Placement: PlacementDefault}
			if g, ok := groups[placed]; ok && placed != 0 {
				h.Group, h.Placement = g, PlacementPlaced
			} else if g, ok := byCluster[a.Cluster]; ok && a.Cluster != "" {
				h.Group, h.Placement = g, PlacementCluster
			}
			out = append(out, h)
		}
		return arows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("store: list agent hosts: %w", err)
	}
	return out, nil
}

// ---------------------------------------------------------------------------
// Allow-lists

func checkAllowEntries(es []AllowEntry) error {
	c := &checker{}
	for i, e := range es {
		c.required(fmt.Sprintf("entry %d sha256", i), e.SHA256, 64)
		c.required(fmt.Sprintf("entry %d source", i), e.Source, maxTypeLen)
		c.str("path", e.Path)
		c.str("package", e.Package)
		c.str("kind", e.Kind)
		if len(e.Path) > maxIDLen || len(e.Package) > maxTypeLen*4 || len(e.Kind) > maxTypeLen {
			c.fail("entry %d: path, package or kind too long", i)
		}
		if c.err != nil {
			break
		}
	}
	return c.err
}

// AllowList implements HostStore.
func (s *sqlStore) AllowList(ctx context.Context, groupID int64) (int, []AllowEntry, error) {
	var rev int
	out := []AllowEntry{}
	err := s.read(ctx, func(t *tx) error {
		out = out[:0]
		err := t.queryRow(ctx, `SELECT allowlist_revision FROM host_groups WHERE id = ?`, groupID).Scan(&rev)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("host group %d: %w", groupID, ErrNotFound)
		}
		if err != nil {
			return err
		}
		rows, err := t.query(ctx, `SELECT sha256, path, kind, source, package, added_at FROM allowlist_entries WHERE group_id = ?
			ORDER BY sha256, path, source, package`, groupID)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var e AllowEntry
			var added int64
			if err := rows.Scan(&e.SHA256, &e.Path, &e.Kind, &e.Source, &e.Package, &added); err != nil {
				return err
			}
			e.Added = fromTS(added)
			out = append(out, e)
		}
		return rows.Err()
	})
	if err != nil {
		return 0, nil, fmt.Errorf("store: allow-list: %w", err)
	}
	return rev, out, nil
}

var allowCols = []string{"group_id", "sha256", "path", "source", "package", "kind", "added_at"}

// changeAllowList runs fn in a write transaction on a group's list and
// bumps the revision when fn changed something.
func (s *sqlStore) changeAllowList(ctx context.Context, groupID int64, at time.Time, by string,
	fn func(t *tx, before int) (added, removed int, err error)) (AllowListChange, error) {
	if at.IsZero() {
		at = time.Now()
	}
	var out AllowListChange
	err := s.write(ctx, func(t *tx) error {
		out = AllowListChange{}
		var rev int
		err := t.queryRow(ctx, `SELECT allowlist_revision FROM host_groups WHERE id = ?`, groupID).Scan(&rev)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("host group %d: %w", groupID, ErrNotFound)
		}
		if err != nil {
			return err
		}
		var before int
		if err := t.queryRow(ctx, `SELECT COUNT(*) FROM allowlist_entries WHERE group_id = ?`, groupID).Scan(&before); err != nil {
			return err
		}
		added, removed, err := fn(t, before)
		if err != nil {
			return err
		}
		out.Added, out.Removed = added, removed
		out.Entries = before + added - removed
		if out.Entries > MaxAllowListEntries {
			return fmt.Errorf("%w: the allow-list would have %d entries, at most %d", ErrInvalid, out.Entries, MaxAllowListEntries)
		}
		if added > 0 || removed > 0 {
			rev++
			if _, err := t.exec(ctx, `UPDATE host_groups SET allowlist_revision = ?, updated_at = ?, updated_by = ? WHERE id = ?`,
				rev, ts(at), by, groupID); err != nil {
				return err
			}
		}
		out.Revision = rev
		return nil
	})
	if err != nil {
		return AllowListChange{}, fmt.Errorf("store: allow-list of group %d: %w", groupID, err)
	}
	return out, nil
}

// insertAllow inserts entries, keeping existing ones; it returns how many
// were new.
func (t *tx) insertAllow(ctx context.Context, groupID int64, es []AllowEntry, at time.Time) (int, error) {
	const per = 8000 / 7
	added := 0
	for start := 0; start < len(es); start += per {
		end := min(start+per, len(es))
		rows := make([][]any, 0, end-start)
		for _, e := range es[start:end] {
			a := e.Added
			if a.IsZero() {
				a = at
			}
			rows = append(rows, []any{groupID, e.SHA256, e.Path, e.Source, e.Package, e.Kind, ts(a)})
		}
		err := t.insertRows(ctx, "allowlist_entries", allowCols, rows,
			" ON CONFLICT (group_id, sha256, path, source, package) DO NOTHING RETURNING 1", func(r *sql.Rows) error {
				added++
				var one int
				return r.Scan(&one)
			})
		if err != nil {
			return added, err
		}
	}
	return added, nil
}

// ReplaceAllowList implements HostStore.
func (s *sqlStore) ReplaceAllowList(ctx context.Context, groupID int64, entries []AllowEntry, at time.Time, by string) (AllowListChange, error) {
	if err := checkAllowEntries(entries); err != nil {
		return AllowListChange{}, err
	}
	if len(entries) > MaxAllowListEntries {
		return AllowListChange{}, fmt.Errorf("%w: %d entries, at most %d", ErrInvalid, len(entries), MaxAllowListEntries)
	}
	return s.changeAllowList(ctx, groupID, at, by, func(t *tx, before int) (int, int, error) {
		if _, err := t.exec(ctx, `DELETE FROM allowlist_entries WHERE group_id = ?`, groupID); err != nil {
			return 0, 0, err
		}
		n, err := t.insertAllow(ctx, groupID, entries, at)
		// Reported as: the old list removed, the new one added.
		return n, before, err
	})
}

// AddAllowEntries implements HostStore.
func (s *sqlStore) AddAllowEntries(ctx context.Context, groupID int64, entries []AllowEntry, at time.Time, by string) (AllowListChange, error) {
	if err := checkAllowEntries(entries); err != nil {
		return AllowListChange{}, err
	}
	return s.changeAllowList(ctx, groupID, at, by, func(t *tx, _ int) (int, int, error) {
		n, err := t.insertAllow(ctx, groupID, entries, at)
		return n, 0, err
	})
}

// RemoveAllowEntries implements HostStore.
func (s *sqlStore) RemoveAllowEntries(ctx context.Context, groupID int64, sha256 string, at time.Time, by string) (AllowListChange, error) {
	return s.changeAllowList(ctx, groupID, at, by, func(t *tx, _ int) (int, int, error) {
		res, err := t.exec(ctx, `DELETE FROM allowlist_entries WHERE group_id = ? AND sha256 = ?`, groupID, sha256)
		if err != nil {
			return 0, 0, err
		}
		n, err := res.RowsAffected()
		return 0, int(n), err
	})
}

// ---------------------------------------------------------------------------
// Agents' reports and requests

func checkQuarantine(es []QuarantineEntry) error {
	c := &checker{}
	for i, e := range es {
		c.required(fmt.Sprintf("quarantine entry %d id", i), e.ID, maxTypeLen)
		c.required(fmt.Sprintf("quarantine entry %d path", i), e.Path, maxIDLen)
		c.str("root", e.Root)
		c.str("sha256", e.SHA256)
		c.str("hits", e.Hits)
		if len(e.Root) > maxIDLen || len(e.SHA256) > maxTypeLen*2 || len(e.Hits) > 64<<10 {
			c.fail("quarantine entry %d: root, sha256 or hits too long", i)
		}
		if c.err != nil {
			break
		}
	}
	return c.err
}

// ReplaceQuarantine implements HostStore.
func (s *sqlStore) ReplaceQuarantine(ctx context.Context, agentID int64, entries []QuarantineEntry, at time.Time) error {
	if err := checkQuarantine(entries); err != nil {
		return err
	}
	if at.IsZero() {
		at = time.Now()
	}
	cols := []string{"agent_id", "entry_id", "at", "reported_at", "path", "root", "container_pid", "size", "sha256", "hits", "removed"}
	err := s.write(ctx, func(t *tx) error {
		if _, err := t.exec(ctx, `DELETE FROM host_quarantine WHERE agent_id = ?`, agentID); err != nil {
			return err
		}
		rows := make([][]any, 0, len(entries))
		for _, e := range entries {
			hits := e.Hits
			if hits == "" {
				hits = "[]"
			}
			rows = append(rows, []any{agentID, e.ID, ts(e.Time), ts(at), e.Path, e.Root, e.ContainerPID, e.Size, e.SHA256, hits, b2i(e.Removed)})
		}
		return t.insertBatch(ctx, "host_quarantine", cols, rows)
	})
	if isForeignKeyViolation(err) {
		return fmt.Errorf("store: quarantine of agent %d: %w", agentID, ErrNotFound)
	}
	if isUniqueViolation(err) {
		return fmt.Errorf("store: quarantine of agent %d: %w: an entry ID is listed twice", agentID, ErrInvalid)
	}
	if err != nil {
		return fmt.Errorf("store: quarantine of agent %d: %w", agentID, err)
	}
	return nil
}

const quarantineCols = `q.agent_id, a.cluster, a.node, q.entry_id, q.at, q.reported_at, q.path, q.root, q.container_pid, q.size, q.sha256, q.hits, q.removed`

func scanQuarantine(r rowScanner) (QuarantineEntry, error) {
	var e QuarantineEntry
	var at, rep, removed int64
	if err := r.Scan(&e.AgentID, &e.Cluster, &e.Node, &e.ID, &at, &rep, &e.Path, &e.Root, &e.ContainerPID, &e.Size, &e.SHA256, &e.Hits, &removed); err != nil {
		return e, err
	}
	e.Time, e.ReportedAt, e.Removed = fromTS(at), fromTS(rep), removed != 0
	return e, nil
}

// ListQuarantine implements HostStore.
func (s *sqlStore) ListQuarantine(ctx context.Context, agentID int64) ([]QuarantineEntry, error) {
	where, args := "", []any{}
	if agentID != 0 {
		where, args = "WHERE q.agent_id = ?", []any{agentID}
	}
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT `+quarantineCols+` FROM host_quarantine q JOIN agents a ON a.id = q.agent_id `+where+
		` ORDER BY q.at DESC, q.agent_id, q.entry_id`), args...)
	if err != nil {
		return nil, fmt.Errorf("store: list quarantine: %w", err)
	}
	defer rows.Close()
	out := []QuarantineEntry{}
	for rows.Next() {
		e, err := scanQuarantine(rows)
		if err != nil {
			return nil, fmt.Errorf("store: list quarantine: %w", err)
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: list quarantine: %w", err)
	}
	return out, nil
}

// GetQuarantineEntry implements HostStore.
func (s *sqlStore) GetQuarantineEntry(ctx context.Context, agentID int64, entryID string) (QuarantineEntry, error) {
	e, err := scanQuarantine(s.rowFunc(ctx, `SELECT `+quarantineCols+` FROM host_quarantine q JOIN agents a ON a.id = q.agent_id
		WHERE q.agent_id = ? AND q.entry_id = ?`, agentID, entryID))
	if errors.Is(err, sql.ErrNoRows) {
		return QuarantineEntry{}, fmt.Errorf("store: quarantine entry %q of agent %d: %w", entryID, agentID, ErrNotFound)
	}
	if err != nil {
		return QuarantineEntry{}, fmt.Errorf("store: quarantine entry: %w", err)
	}
	return e, nil
}

// maxBaselineBody bounds a baseline summary (a few KiB in practice).
const maxBaselineBody = 1 << 20

// PutBaseline implements HostStore.
func (s *sqlStore) PutBaseline(ctx context.Context, agentID int64, at time.Time, body string) error {
	c := &checker{}
	c.required("baseline", body, maxBaselineBody)
	if c.err != nil {
		return c.err
	}
	if at.IsZero() {
		at = time.Now()
	}
	err := s.write(ctx, func(t *tx) error {
		_, err := t.exec(ctx, `INSERT INTO host_baselines (agent_id, reported_at, body) VALUES (?, ?, ?)
			ON CONFLICT (agent_id) DO UPDATE SET reported_at = excluded.reported_at, body = excluded.body`, agentID, ts(at), body)
		return err
	})
	if isForeignKeyViolation(err) {
		return fmt.Errorf("store: baseline of agent %d: %w", agentID, ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("store: baseline of agent %d: %w", agentID, err)
	}
	return nil
}

// ListBaselines implements HostStore.
func (s *sqlStore) ListBaselines(ctx context.Context) ([]BaselineSummary, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT b.agent_id, a.cluster, a.node, b.reported_at, b.body FROM host_baselines b
		JOIN agents a ON a.id = b.agent_id ORDER BY a.cluster, a.node`)
	if err != nil {
		return nil, fmt.Errorf("store: list baselines: %w", err)
	}
	defer rows.Close()
	out := []BaselineSummary{}
	for rows.Next() {
		var b BaselineSummary
		var at int64
		if err := rows.Scan(&b.AgentID, &b.Cluster, &b.Node, &at, &b.Body); err != nil {
			return nil, fmt.Errorf("store: list baselines: %w", err)
		}
		b.ReportedAt = fromTS(at)
		out = append(out, b)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: list baselines: %w", err)
	}
	return out, nil
}

const hostRequestCols = `id, agent_id, kind, args, state, created_at, created_by, updated_at, result`

func scanHostRequest(r rowScanner) (HostRequest, error) {
	var h HostRequest
	var created, updated int64
	if err := r.Scan(&h.ID, &h.AgentID, &h.Kind, &h.Args, &h.State, &created, &h.CreatedBy, &updated, &h.Result); err != nil {
		return h, err
	}
	h.CreatedAt, h.UpdatedAt = fromTS(created), fromTS(updated)
	return h, nil
}

// maxRequestText bounds a request's arguments and its result.
const maxRequestText = 64 << 10

// CreateHostRequest implements HostStore.
func (s *sqlStore) CreateHostRequest(ctx context.Context, r HostRequest) (HostRequest, error) {
	c := &checker{}
	c.required("kind", r.Kind, maxTypeLen)
	c.required("args", r.Args, maxRequestText)
	c.str("created by", r.CreatedBy)
	if len(r.CreatedBy) > maxTypeLen*4 {
		c.fail("created by too long")
	}
	if c.err != nil {
		return HostRequest{}, c.err
	}
	if r.CreatedAt.IsZero() {
		r.CreatedAt = time.Now()
	}
	var out HostRequest
	err := s.write(ctx, func(t *tx) error {
		var err error
		out, err = scanHostRequest(t.queryRow(ctx, `INSERT INTO host_requests (agent_id, kind, args, state, created_at, created_by, updated_at)
			VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING `+hostRequestCols, r.AgentID, r.Kind, r.Args, RequestPending, ts(r.CreatedAt), r.CreatedBy, ts(r.CreatedAt)))
		return err
	})
	if isForeignKeyViolation(err) {
		return HostRequest{}, fmt.Errorf("store: request to agent %d: %w", r.AgentID, ErrNotFound)
	}
	if err != nil {
		return HostRequest{}, fmt.Errorf("store: request to agent %d: %w", r.AgentID, err)
	}
	return out, nil
}

// ListHostRequests implements HostStore.
func (s *sqlStore) ListHostRequests(ctx context.Context, agentID int64, pending bool, limit int) ([]HostRequest, error) {
	if limit <= 0 || limit > MaxLimit {
		limit = MaxLimit
	}
	query := `SELECT ` + hostRequestCols + ` FROM host_requests WHERE agent_id = ? ORDER BY id DESC LIMIT ?`
	args := []any{agentID, limit}
	if pending {
		query = `SELECT ` + hostRequestCols + ` FROM host_requests WHERE agent_id = ? AND state = ? ORDER BY id LIMIT ?`
		args = []any{agentID, RequestPending, limit}
	}
	rows, err := s.db.QueryContext(ctx, s.q(query), args...)
	if err != nil {
		return nil, fmt.Errorf("store: list requests: %w", err)
	}
	defer rows.Close()
	out := []HostRequest{}
	for rows.Next() {
		h, err := scanHostRequest(rows)
		if err != nil {
			return nil, fmt.Errorf("store: list requests: %w", err)
		}
		out = append(out, h)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: list requests: %w", err)
	}
	return out, nil
}

// CompleteHostRequest implements HostStore.
func (s *sqlStore) CompleteHostRequest(ctx context.Context, agentID, id int64, state, result string, at time.Time) (HostRequest, error) {
	c := &checker{}
	if state != RequestDone && state != RequestFailed {
		c.fail("state %q is not done or failed", state)
	}
	c.str("result", result)
	if len(result) > maxRequestText {
		c.fail("result longer than %d bytes", maxRequestText)
	}
	if c.err != nil {
		return HostRequest{}, c.err
	}
	if at.IsZero() {
		at = time.Now()
	}
	var out HostRequest
	err := s.write(ctx, func(t *tx) error {
		cur, err := scanHostRequest(t.queryRow(ctx, `SELECT `+hostRequestCols+` FROM host_requests WHERE id = ? AND agent_id = ?`, id, agentID))
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("request %d: %w", id, ErrNotFound)
		}
		if err != nil {
			return err
		}
		if cur.State != RequestPending {
			return fmt.Errorf("request %d is %s already: %w", id, cur.State, ErrConflict)
		}
		out, err = scanHostRequest(t.queryRow(ctx, `UPDATE host_requests SET state = ?, result = ?, updated_at = ? WHERE id = ? RETURNING `+hostRequestCols,
			state, result, ts(at), id))
		return err
	})
	if err != nil {
		return HostRequest{}, fmt.Errorf("store: complete request: %w", err)
	}
	return out, nil
}
