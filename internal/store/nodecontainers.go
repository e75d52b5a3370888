package store

import (
	"context"
	"fmt"
	"time"
)

// NodeContainerStore keeps the containers running on each node as its
// node agent reports them (issue 11 item 7, migration 12): the runtime
// vulnerability view joins them with the scanned images by manifest
// digest, so that it covers hosts without Kubernetes. Containers are keyed
// by (cluster of the agent's token, node, container ID); each report is
// the node's whole list.
type NodeContainerStore interface {
	// ReplaceNodeContainers makes cs the running containers of (cluster,
	// node) at now: new ones are added (first seen now), known ones moved
	// to last seen now, the node's others deleted (counted in Ended).
	ReplaceNodeContainers(ctx context.Context, cluster, node string, cs []NodeContainer, now time.Time) (NodeContainersOutcome, error)
	// ListNodeContainers lists the containers seen since seenSince
	// (zero: all), by cluster, node, name and ID; digest "" for every image.
	ListNodeContainers(ctx context.Context, digest string, seenSince time.Time) ([]NodeContainer, error)
	// ExpireNodeContainers deletes the containers not seen since before.
	ExpireNodeContainers(ctx context.Context, before time.Time) (int, error)
}

// NodeContainer is one container a node agent reported running.
type NodeContainer struct {
	Cluster, Node, ID, Name, Image, ImageDigest, Runtime, Namespace, Pod string
	Started                                                              time.Time
	FirstSeen, LastSeen                                                  time.Time
	// ImageID is the scanned image of ImageDigest (0 when none: read only
	// by the vulnerability detail, which lists scanned images' containers).
	ImageID int64
}

// NodeContainersOutcome says what a report changed.
type NodeContainersOutcome struct {
	Running, Added, Ended int
}

func checkNodeContainer(c NodeContainer) error {
	k := &checker{}
	k.required("container id", c.ID, maxTypeLen*4)
	for _, kv := range [][2]string{{"name", c.Name}, {"image", c.Image}, {"image digest", c.ImageDigest}, {"runtime", c.Runtime},
		{"namespace", c.Namespace}, {"pod", c.Pod}} {
		k.str(kv[0], kv[1])
	}
	return k.err
}

// ReplaceNodeContainers implements NodeContainerStore.
func (s *sqlStore) ReplaceNodeContainers(ctx context.Context, cluster, node string, cs []NodeContainer, now time.Time) (NodeContainersOutcome, error) {
	if node == "" {
		return NodeContainersOutcome{}, fmt.Errorf("%w: node containers without a node", ErrInvalid)
	}
	for _, c := range cs {
		if err := checkNodeContainer(c); err != nil {
			return NodeContainersOutcome{}, err
		}
	}
	var out NodeContainersOutcome
	err := s.write(ctx, func(t *tx) error {
		out = NodeContainersOutcome{Running: len(cs)}
		known := map[string]bool{}
		rows, err := t.query(ctx, `SELECT container_id FROM node_containers WHERE cluster = ? AND node = ?`, cluster, node)
		if err != nil {
			return err
		}
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return err
			}
			known[id] = true
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		keep := map[string]bool{}
		for _, c := range cs {
			keep[c.ID] = true
			if !known[c.ID] {
				out.Added++
			}
			if _, err := t.exec(ctx, `INSERT INTO node_containers (cluster, node, container_id, name, image, image_digest, runtime,
					namespace, pod, started, first_seen, last_seen) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
				ON CONFLICT (cluster, node, container_id) DO UPDATE SET name = excluded.name, image = excluded.image,
					image_digest = excluded.image_digest, runtime = excluded.runtime, namespace = excluded.namespace,
					pod = excluded.pod, started = excluded.started, last_seen = excluded.last_seen`,
				cluster, node, c.ID, c.Name, c.Image, c.ImageDigest, c.Runtime, c.Namespace, c.Pod, ts(c.Started), ts(now), ts(now)); err != nil {
				return err
			}
		}
		for id := range known {
			if keep[id] {
				continue
			}
			if _, err := t.exec(ctx, `DELETE FROM node_containers WHERE cluster = ? AND node = ? AND container_id = ?`, cluster, node, id); err != nil {
				return err
			}
			out.Ended++
		}
		return nil
	})
	if err != nil {
		return NodeContainersOutcome{}, fmt.Errorf("store: node containers of %q: %w", node, err)
	}
	return out, nil
}

const nodeContainerCols = `nc.cluster, nc.node, nc.container_id, nc.name, nc.image, nc.image_digest, nc.runtime, nc.namespace, nc.pod,
	nc.started, nc.first_seen, nc.last_seen`

func scanNodeContainer(r rowScanner, extra ...any) (NodeContainer, error) {
	var c NodeContainer
	var started, first, last int64
	dst := append([]any{&c.Cluster, &c.Node, &c.ID, &c.Name, &c.Image, &c.ImageDigest, &c.Runtime, &c.Namespace, &c.Pod,
		&started, &first, &last}, extra...)
	if err := r.Scan(dst...); err != nil {
		return c, err
	}
	c.Started, c.FirstSeen, c.LastSeen = fromTS(started), fromTS(first), fromTS(last)
	return c, nil
}

// ListNodeContainers implements NodeContainerStore.
func (s *sqlStore) ListNodeContainers(ctx context.Context, digest string, seenSince time.Time) ([]NodeContainer, error) {
	q := `SELECT ` + nodeContainerCols + ` FROM node_containers nc WHERE nc.last_seen >= ?`
	args := []any{ts(seenSince)}
	if digest != "" {
		q += ` AND nc.image_digest = ?`
		args = append(args, digest)
	}
	rows, err := s.db.QueryContext(ctx, s.q(q+` ORDER BY nc.cluster, nc.node, nc.name, nc.container_id`), args...)
	if err != nil {
		return nil, fmt.Errorf("store: list node containers: %w", err)
	}
	defer rows.Close()
	out := []NodeContainer{}
	for rows.Next() {
		c, err := scanNodeContainer(rows)
		if err != nil {
			return nil, fmt.Errorf("store: list node containers: %w", err)
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: list node containers: %w", err)
	}
	return out, nil
}

// ExpireNodeContainers implements NodeContainerStore.
func (s *sqlStore) ExpireNodeContainers(ctx context.Context, before time.Time) (int, error) {
	var n int64
	err := s.write(ctx, func(t *tx) error {
		r, err := t.exec(ctx, `DELETE FROM node_containers WHERE last_seen < ?`, ts(before))
		if err != nil {
			return err
		}
		n, err = r.RowsAffected()
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("store: expire node containers: %w", err)
	}
	return int(n), nil
}

// maxHostContainers caps the containers listed on a vulnerability's detail.
const maxHostContainers = 1000

// nodeContainerCutoff is the oldest last-seen a container counts as running
// with (api.NodeContainerTTL, repeated here: the store does not import api).
func nodeContainerCutoff() time.Time { return time.Now().Add(-NodeContainerTTL) }

// NodeContainerTTL: a container its agent has not reported for this long
// does not count as running (the agent reports every 5 minutes at least).
const NodeContainerTTL = 15 * time.Minute

func readHostContainers(ctx context.Context, t *tx, vulnID string) ([]NodeContainer, error) {
	rows, err := t.query(ctx, `SELECT `+nodeContainerCols+`, i.id
		FROM node_containers nc JOIN images i ON i.image_key = 'digest:' || nc.image_digest
		WHERE nc.image_digest <> '' AND nc.last_seen >= ? AND i.id IN (SELECT iv.image_id FROM image_vulnerabilities iv WHERE iv.vuln_id = ?)
		ORDER BY nc.cluster, nc.node, nc.name, nc.container_id LIMIT ?`, ts(nodeContainerCutoff()), vulnID, maxHostContainers)
	if err != nil {
		return nil, fmt.Errorf("list host containers: %w", err)
	}
	defer rows.Close()
	out := []NodeContainer{}
	for rows.Next() {
		var id int64
		c, err := scanNodeContainer(rows, &id)
		if err != nil {
			return nil, fmt.Errorf("list host containers: %w", err)
		}
		c.ImageID = id
		out = append(out, c)
	}
	return out, rows.Err()
}
