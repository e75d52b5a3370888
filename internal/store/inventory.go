package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// InventoryStore keeps what each cluster component reports of its cluster:
// nodes, namespaces, pod controllers and pods (with the JSON continuous
// compliance evaluates), the containers that run and the image digest of
// each, and the state of the component's full resyncs.
type InventoryStore interface {
	// ApplyInventory applies one batch of a cluster's component in one
	// transaction: upserts, deletions, and at the end of a full resync
	// (b.End) the removal of every object of an older generation.
	ApplyInventory(ctx context.Context, cluster string, b InventoryBatch, at time.Time) (InventoryOutcome, error)
	// ListClusterObjects lists a cluster's objects (without their JSON).
	ListClusterObjects(ctx context.Context, f ObjectFilter) (ObjectPage, error)
	// ClusterObjectCounts counts a cluster's objects by kind.
	ClusterObjectCounts(ctx context.Context, cluster string) (map[string]int, error)
	// EachClusterObject calls fn with every object of a cluster of one
	// kind, with its JSON, in (namespace, name) order.
	EachClusterObject(ctx context.Context, cluster, kind string, fn func(ClusterObject) error) error
	// GetClusterObject returns one object with its JSON; ErrNotFound when absent.
	GetClusterObject(ctx context.Context, cluster, kind, namespace, name string) (ClusterObject, error)
	// InventorySync returns a cluster's resync state (zero when it never reported).
	InventorySync(ctx context.Context, cluster string) (InventorySync, error)
	// RunningImageDigests lists the distinct image digests running in a
	// cluster ("" for every cluster).
	RunningImageDigests(ctx context.Context, cluster string) ([]string, error)
}

// Inventory object kinds.
const (
	KindNode      = "Node"
	KindNamespace = "Namespace"
	KindPod       = "Pod"
)

// InventoryBatch is one batch of a cluster component's inventory.
type InventoryBatch struct {
	Generation int64
	Begin, End bool
	Objects    []ClusterObject
	Deleted    []ObjectRef
}

// ObjectRef names an object of a cluster.
type ObjectRef struct {
	Kind, Namespace, Name, UID string
}

// ClusterObject is one stored object.
type ClusterObject struct {
	Cluster string
	ObjectRef
	ResourceVersion string
	Generation      int64
	// OwnerKind and OwnerName are the top controller ("" for none).
	OwnerKind, OwnerName string
	Node, Phase          string
	Labels               map[string]string
	Containers           []RunningContainer
	// Body is the object's JSON (empty in lists).
	Body      []byte
	UpdatedAt time.Time
}

// RunningContainer is one container of a pod.
type RunningContainer struct {
	Name, Image, ImageDigest, ContainerID string
	// Kind is "init", "ephemeral" or "".
	Kind    string
	Running bool
}

// runningContainerJSON is RunningContainer in the containers column.
type runningContainerJSON struct {
	Name        string `json:"name"`
	Image       string `json:"image"`
	ImageDigest string `json:"imageDigest,omitempty"`
	ContainerID string `json:"containerID,omitempty"`
	Kind        string `json:"kind,omitempty"`
	Running     bool   `json:"running,omitempty"`
}

// InventoryOutcome counts what a batch did.
type InventoryOutcome struct {
	Upserted, Deleted, Removed int
}

// InventorySync is a cluster's resync state.
type InventorySync struct {
	Generation int64
	// BegunAt is the start of the latest resync, SyncedAt the end of the
	// latest complete one, ChangedAt the latest change of any kind (it
	// grows with every change, even within one microsecond).
	BegunAt, SyncedAt, ChangedAt time.Time
}

// ObjectFilter selects a cluster's objects.
type ObjectFilter struct {
	Cluster   string
	Kind      string // "" = every kind
	Namespace string // "" = every namespace
	// Query is a case-insensitive substring of the name.
	Query string
	Page  Page
}

// ObjectPage is one page of objects.
type ObjectPage struct {
	Objects []ClusterObject
	Total   int
}

// Limits of one stored object, each with its reason.
const (
	// maxObjectBody: the API server stores at most 1.5 MiB per object.
	maxObjectBody = 3 << 20
	// maxObjectName: Kubernetes names are at most 253 characters.
	maxObjectName = 253
	// maxContainers: a pod with more containers is not real.
	maxContainers = 1000
)

func checkObject(o *ClusterObject) error {
	c := &checker{}
	c.required("kind", o.Kind, maxTypeLen)
	c.required("name", o.Name, maxObjectName)
	for _, kv := range [][2]string{{"namespace", o.Namespace}, {"uid", o.UID}, {"resourceVersion", o.ResourceVersion},
		{"owner kind", o.OwnerKind}, {"owner name", o.OwnerName}, {"node", o.Node}, {"phase", o.Phase}} {
		c.str(kv[0], kv[1])
		if len(kv[1]) > maxObjectName {
			c.fail("%s is longer than %d bytes", kv[0], maxObjectName)
		}
	}
	if len(o.Body) > maxObjectBody {
		c.fail("object %s/%s: %d bytes of JSON exceed %d", o.Namespace, o.Name, len(o.Body), maxObjectBody)
	}
	if len(o.Body) > 0 && !json.Valid(o.Body) {
		c.fail("object %s/%s: its JSON is not valid", o.Namespace, o.Name)
	}
	if len(o.Containers) > maxContainers {
		c.fail("object %s/%s: %d containers", o.Namespace, o.Name, len(o.Containers))
	}
	for k, v := range o.Labels {
		c.str("label", k)
		c.str("label", v)
	}
	for _, rc := range o.Containers {
		for _, s := range []string{rc.Name, rc.Image, rc.ImageDigest, rc.ContainerID, rc.Kind} {
			c.str("container", s)
			if len(s) > 4096 {
				c.fail("container field longer than 4096 bytes")
			}
		}
	}
	return c.err
}

// ApplyInventory implements InventoryStore.
func (s *sqlStore) ApplyInventory(ctx context.Context, cluster string, b InventoryBatch, at time.Time) (InventoryOutcome, error) {
	var out InventoryOutcome
	ck := &checker{}
	ck.required("cluster", cluster, maxTypeLen*4)
	if ck.err != nil {
		return out, ck.err
	}
	for i := range b.Objects {
		if err := checkObject(&b.Objects[i]); err != nil {
			return out, err
		}
	}
	for _, d := range b.Deleted {
		if err := checkObject(&ClusterObject{ObjectRef: d}); err != nil {
			return out, err
		}
	}
	if at.IsZero() {
		at = time.Now()
	}
	now := ts(at)
	err := s.write(ctx, func(t *tx) error {
		out = InventoryOutcome{}
		if b.Begin {
			if _, err := t.exec(ctx, `INSERT INTO inventory_syncs (cluster, generation, begun_at) VALUES (?, ?, ?)
				ON CONFLICT (cluster) DO UPDATE SET generation = excluded.generation, begun_at = excluded.begun_at`,
				cluster, b.Generation, now); err != nil {
				return fmt.Errorf("begin resync: %w", err)
			}
		}
		for i := range b.Objects {
			o := &b.Objects[i]
			labels, err := json.Marshal(nonNilMap(o.Labels))
			if err != nil {
				return err
			}
			cs := make([]runningContainerJSON, 0, len(o.Containers))
			for _, c := range o.Containers {
				cs = append(cs, runningContainerJSON(c))
			}
			containers, err := json.Marshal(cs)
			if err != nil {
				return err
			}
			if _, err := t.exec(ctx, `INSERT INTO cluster_objects (cluster, kind, namespace, name, uid, resource_version, gen,
				owner_kind, owner_name, node, phase, labels, containers, body, updated_at)
				VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
				ON CONFLICT (cluster, kind, namespace, name) DO UPDATE SET uid = excluded.uid,
					resource_version = excluded.resource_version, gen = excluded.gen, owner_kind = excluded.owner_kind,
					owner_name = excluded.owner_name, node = excluded.node, phase = excluded.phase, labels = excluded.labels,
					containers = excluded.containers, body = excluded.body, updated_at = excluded.updated_at`,
				cluster, o.Kind, o.Namespace, o.Name, o.UID, o.ResourceVersion, b.Generation, o.OwnerKind, o.OwnerName,
				o.Node, o.Phase, string(labels), string(containers), string(o.Body), now); err != nil {
				return fmt.Errorf("upsert %s %s/%s: %w", o.Kind, o.Namespace, o.Name, err)
			}
			if o.Kind == KindPod {
				if err := t.replaceRunning(ctx, cluster, o, now); err != nil {
					return err
				}
			}
			out.Upserted++
		}
		for _, d := range b.Deleted {
			res, err := t.exec(ctx, `DELETE FROM cluster_objects WHERE cluster = ? AND kind = ? AND namespace = ? AND name = ?
				AND (? = '' OR uid = ?)`, cluster, d.Kind, d.Namespace, d.Name, d.UID, d.UID)
			if err != nil {
				return fmt.Errorf("delete %s %s/%s: %w", d.Kind, d.Namespace, d.Name, err)
			}
			n, _ := res.RowsAffected()
			if n > 0 && d.Kind == KindPod {
				if _, err := t.exec(ctx, `DELETE FROM running_containers WHERE cluster = ? AND namespace = ? AND pod = ?`,
					cluster, d.Namespace, d.Name); err != nil {
					return err
				}
			}
			out.Deleted += int(n)
		}
		if b.End {
			res, err := t.exec(ctx, `DELETE FROM cluster_objects WHERE cluster = ? AND gen < ?`, cluster, b.Generation)
			if err != nil {
				return fmt.Errorf("end resync: %w", err)
			}
			n, _ := res.RowsAffected()
			out.Removed = int(n)
			// Containers of pods no longer stored (a pod row replaced under
			// another generation keeps its own rows).
			if _, err := t.exec(ctx, `DELETE FROM running_containers WHERE cluster = ? AND NOT EXISTS (SELECT 1 FROM cluster_objects o
				WHERE o.cluster = running_containers.cluster AND o.kind = 'Pod' AND o.namespace = running_containers.namespace
				AND o.name = running_containers.pod)`, cluster); err != nil {
				return fmt.Errorf("end resync: %w", err)
			}
			// Everything still running was seen now.
			if _, err := t.exec(ctx, `UPDATE running_containers SET last_seen = ? WHERE cluster = ?`, now, cluster); err != nil {
				return fmt.Errorf("end resync: %w", err)
			}
			if _, err := t.exec(ctx, `INSERT INTO inventory_syncs (cluster, generation, synced_at) VALUES (?, ?, ?)
				ON CONFLICT (cluster) DO UPDATE SET generation = excluded.generation, synced_at = excluded.synced_at`,
				cluster, b.Generation, now); err != nil {
				return fmt.Errorf("end resync: %w", err)
			}
		}
		if out.Upserted+out.Deleted+out.Removed > 0 {
			// changed_at only grows (by at least 1 µs a change), so that a
			// reader comparing it with what it saw never misses a change.
			if _, err := t.exec(ctx, `INSERT INTO inventory_syncs (cluster, changed_at) VALUES (?, ?)
				ON CONFLICT (cluster) DO UPDATE SET changed_at = CASE WHEN excluded.changed_at > inventory_syncs.changed_at
					THEN excluded.changed_at ELSE inventory_syncs.changed_at + 1 END`, cluster, now); err != nil {
				return fmt.Errorf("record change: %w", err)
			}
		}
		return nil
	})
	if err != nil {
		return InventoryOutcome{}, fmt.Errorf("store: inventory of cluster %q: %w", cluster, err)
	}
	return out, nil
}

// replaceRunning replaces a pod's running_containers rows: one per
// container with a known image digest, keeping first_seen of those that
// stay.
func (t *tx) replaceRunning(ctx context.Context, cluster string, o *ClusterObject, now int64) error {
	kind, name := o.OwnerKind, o.OwnerName
	if kind == "" {
		kind, name = KindPod, o.Name
	}
	keep := make([]any, 0, len(o.Containers))
	for _, c := range o.Containers {
		if c.ImageDigest == "" {
			continue
		}
		if _, err := t.exec(ctx, `INSERT INTO running_containers (cluster, namespace, pod, container, pod_uid, node,
			workload_kind, workload_name, image, image_digest, first_seen, last_seen) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (cluster, namespace, pod, container) DO UPDATE SET
				first_seen = CASE WHEN running_containers.image_digest = excluded.image_digest AND running_containers.pod_uid = excluded.pod_uid
					THEN running_containers.first_seen ELSE excluded.first_seen END,
				pod_uid = excluded.pod_uid, node = excluded.node, workload_kind = excluded.workload_kind,
				workload_name = excluded.workload_name, image = excluded.image, image_digest = excluded.image_digest,
				last_seen = excluded.last_seen`,
			cluster, o.Namespace, o.Name, c.Name, o.UID, o.Node, kind, name, c.Image, c.ImageDigest, now, now); err != nil {
			return fmt.Errorf("running container %s/%s/%s: %w", o.Namespace, o.Name, c.Name, err)
		}
		keep = append(keep, c.Name)
	}
	q := `DELETE FROM running_containers WHERE cluster = ? AND namespace = ? AND pod = ?`
	args := []any{cluster, o.Namespace, o.Name}
	if len(keep) > 0 {
		q += ` AND container NOT IN (` + placeholders(len(keep)) + `)`
		args = append(args, keep...)
	}
	if _, err := t.exec(ctx, q, args...); err != nil {
		return fmt.Errorf("running containers of %s/%s: %w", o.Namespace, o.Name, err)
	}
	return nil
}

func nonNilMap(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}

const objectCols = `cluster, kind, namespace, name, uid, resource_version, gen, owner_kind, owner_name, node, phase, labels, containers, updated_at`

func scanObject(r rowScanner, extra ...any) (ClusterObject, error) {
	var o ClusterObject
	var labels, containers string
	var updated int64
	dest := []any{&o.Cluster, &o.Kind, &o.Namespace, &o.Name, &o.UID, &o.ResourceVersion, &o.Generation, &o.OwnerKind,
		&o.OwnerName, &o.Node, &o.Phase, &labels, &containers, &updated}
	if err := r.Scan(append(dest, extra...)...); err != nil {
		return o, err
	}
	o.UpdatedAt = fromTS(updated)
	if err := decodeJSON("labels", labels, &o.Labels); err != nil {
		return o, err
	}
	var cs []runningContainerJSON
	if err := decodeJSON("containers", containers, &cs); err != nil {
		return o, err
	}
	for _, c := range cs {
		o.Containers = append(o.Containers, RunningContainer(c))
	}
	return o, nil
}

// ListClusterObjects implements InventoryStore.
func (s *sqlStore) ListClusterObjects(ctx context.Context, f ObjectFilter) (ObjectPage, error) {
	page := clampPage(f.Page)
	conds := []string{"cluster = ?"}
	args := []any{f.Cluster}
	if f.Kind != "" {
		conds, args = append(conds, "kind = ?"), append(args, f.Kind)
	}
	if f.Namespace != "" {
		conds, args = append(conds, "namespace = ?"), append(args, f.Namespace)
	}
	if q := strings.TrimSpace(f.Query); q != "" {
		conds, args = append(conds, "LOWER(name) LIKE ? ESCAPE '\\'"), append(args, "%"+likeEscape(strings.ToLower(q))+"%")
	}
	where := strings.Join(conds, " AND ")
	out := ObjectPage{Objects: []ClusterObject{}}
	err := s.read(ctx, func(t *tx) error {
		if err := t.queryRow(ctx, `SELECT COUNT(*) FROM cluster_objects WHERE `+where, args...).Scan(&out.Total); err != nil {
			return err
		}
		rows, err := t.query(ctx, `SELECT `+objectCols+` FROM cluster_objects WHERE `+where+
			` ORDER BY kind, namespace, name LIMIT ? OFFSET ?`, append(args, page.Limit, page.Offset)...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			o, err := scanObject(rows)
			if err != nil {
				return err
			}
			out.Objects = append(out.Objects, o)
		}
		return rows.Err()
	})
	if err != nil {
		return ObjectPage{}, fmt.Errorf("store: list objects of cluster %q: %w", f.Cluster, err)
	}
	return out, nil
}

// likeEscape escapes LIKE's wildcards.
func likeEscape(s string) string {
	return strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(s)
}

// ClusterObjectCounts implements InventoryStore.
func (s *sqlStore) ClusterObjectCounts(ctx context.Context, cluster string) (map[string]int, error) {
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT kind, COUNT(*) FROM cluster_objects WHERE cluster = ? GROUP BY kind`), cluster)
	if err != nil {
		return nil, fmt.Errorf("store: count objects of cluster %q: %w", cluster, err)
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var k string
		var n int
		if err := rows.Scan(&k, &n); err != nil {
			return nil, fmt.Errorf("store: count objects: %w", err)
		}
		out[k] = n
	}
	return out, rows.Err()
}

// EachClusterObject implements InventoryStore.
func (s *sqlStore) EachClusterObject(ctx context.Context, cluster, kind string, fn func(ClusterObject) error) error {
	// Read in pages by key so that no transaction is held while fn runs.
	const pageSize = 500
	ns, name := "", ""
	first := true
	for {
		var objs []ClusterObject
		err := s.read(ctx, func(t *tx) error {
			q := `SELECT ` + objectCols + `, body FROM cluster_objects WHERE cluster = ? AND kind = ?`
			args := []any{cluster, kind}
			if !first {
				q += ` AND (namespace > ? OR (namespace = ? AND name > ?))`
				args = append(args, ns, ns, name)
			}
			rows, err := t.query(ctx, q+` ORDER BY namespace, name LIMIT ?`, append(args, pageSize)...)
			if err != nil {
				return err
			}
			defer rows.Close()
			for rows.Next() {
				var body string
				o, err := scanObject(rows, &body)
				if err != nil {
					return err
				}
				o.Body = []byte(body)
				objs = append(objs, o)
			}
			return rows.Err()
		})
		if err != nil {
			return fmt.Errorf("store: objects of cluster %q: %w", cluster, err)
		}
		for _, o := range objs {
			if err := fn(o); err != nil {
				return err
			}
		}
		if len(objs) < pageSize {
			return nil
		}
		first = false
		ns, name = objs[len(objs)-1].Namespace, objs[len(objs)-1].Name
	}
}

// GetClusterObject implements InventoryStore.
func (s *sqlStore) GetClusterObject(ctx context.Context, cluster, kind, namespace, name string) (ClusterObject, error) {
	var body string
	o, err := scanObject(s.db.QueryRowContext(ctx, s.q(`SELECT `+objectCols+`, body FROM cluster_objects
		WHERE cluster = ? AND kind = ? AND namespace = ? AND name = ?`), cluster, kind, namespace, name), &body)
	if errors.Is(err, sql.ErrNoRows) {
		return ClusterObject{}, fmt.Errorf("store: %s %s/%s of cluster %q: %w", kind, namespace, name, cluster, ErrNotFound)
	}
	if err != nil {
		return ClusterObject{}, fmt.Errorf("store: get %s %s/%s: %w", kind, namespace, name, err)
	}
	o.Body = []byte(body)
	return o, nil
}

// InventorySync implements InventoryStore.
func (s *sqlStore) InventorySync(ctx context.Context, cluster string) (InventorySync, error) {
	var out InventorySync
	var begun, synced, changed int64
	err := s.db.QueryRowContext(ctx, s.q(`SELECT generation, begun_at, synced_at, changed_at FROM inventory_syncs WHERE cluster = ?`),
		cluster).Scan(&out.Generation, &begun, &synced, &changed)
	if errors.Is(err, sql.ErrNoRows) {
		return InventorySync{}, nil
	}
	if err != nil {
		return InventorySync{}, fmt.Errorf("store: inventory sync of cluster %q: %w", cluster, err)
	}
	out.BegunAt, out.SyncedAt, out.ChangedAt = fromTS(begun), fromTS(synced), fromTS(changed)
	return out, nil
}

// RunningImageDigests implements InventoryStore.
func (s *sqlStore) RunningImageDigests(ctx context.Context, cluster string) ([]string, error) {
	q, args := `SELECT DISTINCT image_digest FROM running_containers ORDER BY image_digest`, []any(nil)
	if cluster != "" {
		q, args = `SELECT DISTINCT image_digest FROM running_containers WHERE cluster = ? ORDER BY image_digest`, []any{cluster}
	}
	var out []string
	err := s.read(ctx, func(t *tx) error {
		var err error
		out, err = readStrings(ctx, t, q, args...)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("store: running images: %w", err)
	}
	return out, nil
}
