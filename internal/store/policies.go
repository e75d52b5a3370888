package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// PolicyStore keeps policies (internal/policy documents) with every version
// of each, and the policy each cluster enforces. The store does not read
// documents: the policy service parses and checks them before they come here.
type PolicyStore interface {
	// PutPolicy stores a document as the next version of the named policy
	// (version 1 of a new one). When the latest version has the same digest
	// nothing is stored: changed is false and the latest version returned.
	PutPolicy(ctx context.Context, p PolicyPut) (v PolicyVersion, changed bool, err error)
	// GetPolicy returns a policy with its latest version (document
	// included) and the clusters that enforce it; ErrNotFound when absent.
	GetPolicy(ctx context.Context, name string) (Policy, error)
	// ListPolicies lists the policies by name, as GetPolicy returns them.
	ListPolicies(ctx context.Context) ([]Policy, error)
	// GetPolicyVersion returns one version, document included.
	GetPolicyVersion(ctx context.Context, name string, version int) (PolicyVersion, error)
	// ListPolicyVersions lists a policy's versions, newest first, without
	// their documents.
	ListPolicyVersions(ctx context.Context, name string) ([]PolicyVersion, error)
	// DeletePolicy deletes a policy and its versions; ErrConflict while a
	// cluster enforces it.
	DeletePolicy(ctx context.Context, name string) error
	// SetClusterPolicy makes a cluster enforce the named policy ("" for
	// none); ErrNotFound for an unknown cluster or policy.
	SetClusterPolicy(ctx context.Context, clusterID int64, policy string) (Cluster, error)
	// ClusterPolicy returns the latest version of the policy the named
	// cluster enforces; ErrNotFound when the cluster or its policy is absent.
	ClusterPolicy(ctx context.Context, cluster string) (PolicyVersion, error)
}

// PolicyPut is one apply of a policy document.
type PolicyPut struct {
	Name     string
	Document string
	// Digest identifies the document's content (the service's SHA-256).
	Digest    string
	CreatedBy string
	At        time.Time
}

// Policy is a stored policy.
type Policy struct {
	ID                   int64
	Name                 string
	CreatedAt, UpdatedAt time.Time
	Latest               PolicyVersion
	// Clusters are the names of the clusters enforcing it, sorted.
	Clusters []string
}

// PolicyVersion is one version of a policy.
type PolicyVersion struct {
	Policy    string
	Version   int
	Digest    string
	Document  string // empty in ListPolicyVersions
	CreatedAt time.Time
	CreatedBy string
}

// maxPolicyDocument bounds a stored document; the policy service refuses
// larger ones first (internal/policy.MaxPolicySize is the same).
const maxPolicyDocument = 1 << 20

func checkPolicyPut(p PolicyPut) error {
	c := &checker{}
	c.required("policy name", p.Name, maxTypeLen*4)
	c.required("policy document", p.Document, maxPolicyDocument)
	c.required("policy digest", p.Digest, maxTypeLen*4)
	c.str("created by", p.CreatedBy)
	if len(p.CreatedBy) > maxTypeLen*4 {
		c.fail("created by is longer than %d bytes", maxTypeLen*4)
	}
	return c.err
}

// PutPolicy implements PolicyStore.
func (s *sqlStore) PutPolicy(ctx context.Context, p PolicyPut) (PolicyVersion, bool, error) {
	if err := checkPolicyPut(p); err != nil {
		return PolicyVersion{}, false, err
	}
	if p.At.IsZero() {
		p.At = time.Now()
	}
	var (
		out     PolicyVersion
		changed bool
	)
	err := s.write(ctx, func(t *tx) error {
		changed = false
		var id int64
		var latest int
		err := t.queryRow(ctx, `SELECT id, version FROM policies WHERE name = ?`, p.Name).Scan(&id, &latest)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			if err := t.queryRow(ctx, `INSERT INTO policies (name, created_at, updated_at, version) VALUES (?, ?, ?, 0) RETURNING id`,
				p.Name, ts(p.At), ts(p.At)).Scan(&id); err != nil {
				return err
			}
		case err != nil:
			return err
		default:
			cur, err := scanPolicyVersion(t.queryRow(ctx, `SELECT `+policyVersionCols+` FROM policy_versions v JOIN policies p ON p.id = v.policy_id
				WHERE v.policy_id = ? AND v.version = ?`, id, latest), true)
			if err != nil {
				return err
			}
			if cur.Digest == p.Digest {
				out = cur
				return nil
			}
		}
		next := latest + 1
		// The UPDATE takes the row lock first on PostgreSQL, so two applies of
		// one policy serialize; the primary key refuses a duplicate version.
		if _, err := t.exec(ctx, `UPDATE policies SET version = ?, updated_at = ? WHERE id = ? AND version = ?`, next, ts(p.At), id, latest); err != nil {
			return err
		}
		if _, err := t.exec(ctx, `INSERT INTO policy_versions (policy_id, version, digest, document, created_at, created_by) VALUES (?, ?, ?, ?, ?, ?)`,
			id, next, p.Digest, p.Document, ts(p.At), p.CreatedBy); err != nil {
			return err
		}
		changed = true
		out = PolicyVersion{Policy: p.Name, Version: next, Digest: p.Digest, Document: p.Document, CreatedAt: fromTS(ts(p.At)), CreatedBy: p.CreatedBy}
		return nil
	})
	if isUniqueViolation(err) {
		return PolicyVersion{}, false, fmt.Errorf("store: policy %q: applied concurrently: %w", p.Name, ErrConflict)
	}
	if err != nil {
		return PolicyVersion{}, false, fmt.Errorf("store: put policy %q: %w", p.Name, err)
	}
	return out, changed, nil
}

const policyVersionCols = `p.name, v.version, v.digest, v.document, v.created_at, v.created_by`

func scanPolicyVersion(r rowScanner, withDocument bool) (PolicyVersion, error) {
	var v PolicyVersion
	var at int64
	if err := r.Scan(&v.Policy, &v.Version, &v.Digest, &v.Document, &at, &v.CreatedBy); err != nil {
		return v, err
	}
	v.CreatedAt = fromTS(at)
	if !withDocument {
		v.Document = ""
	}
	return v, nil
}

const policyCols = `p.id, p.name, p.created_at, p.updated_at, ` + policyVersionCols

func (s *sqlStore) queryPolicies(ctx context.Context, where string, args ...any) ([]Policy, error) {
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT `+policyCols+` FROM policies p
		JOIN policy_versions v ON v.policy_id = p.id AND v.version = p.version `+where+` ORDER BY p.name`), args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []Policy{}
	for rows.Next() {
		var p Policy
		var created, updated, at int64
		v := &p.Latest
		if err := rows.Scan(&p.ID, &p.Name, &created, &updated, &v.Policy, &v.Version, &v.Digest, &v.Document, &at, &v.CreatedBy); err != nil {
			return nil, err
		}
		p.CreatedAt, p.UpdatedAt, v.CreatedAt = fromTS(created), fromTS(updated), fromTS(at)
		p.Clusters = []string{}
		out = append(out, p)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return out, nil
	}
	// The clusters of every policy listed, in one query.
	byName := make(map[string]*Policy, len(out))
	for i := range out {
		byName[out[i].Name] = &out[i]
	}
	crow, err := s.db.QueryContext(ctx, `SELECT name, policy FROM clusters WHERE policy <> '' ORDER BY name`)
	if err != nil {
		return nil, err
	}
	defer crow.Close()
	for crow.Next() {
		var cluster, policy string
		if err := crow.Scan(&cluster, &policy); err != nil {
			return nil, err
		}
		if p := byName[policy]; p != nil {
			p.Clusters = append(p.Clusters, cluster)
		}
	}
	return out, crow.Err()
}

// GetPolicy implements PolicyStore.
func (s *sqlStore) GetPolicy(ctx context.Context, name string) (Policy, error) {
	ps, err := s.queryPolicies(ctx, `WHERE p.name = ?`, name)
	if err != nil {
		return Policy{}, fmt.Errorf("store: get policy %q: %w", name, err)
	}
	if len(ps) == 0 {
		return Policy{}, fmt.Errorf("store: policy %q: %w", name, ErrNotFound)
	}
	return ps[0], nil
}

// ListPolicies implements PolicyStore.
func (s *sqlStore) ListPolicies(ctx context.Context) ([]Policy, error) {
	ps, err := s.queryPolicies(ctx, "")
	if err != nil {
		return nil, fmt.Errorf("store: list policies: %w", err)
	}
	return ps, nil
}

// GetPolicyVersion implements PolicyStore.
func (s *sqlStore) GetPolicyVersion(ctx context.Context, name string, version int) (PolicyVersion, error) {
	v, err := scanPolicyVersion(s.db.QueryRowContext(ctx, s.q(`SELECT `+policyVersionCols+` FROM policy_versions v
		JOIN policies p ON p.id = v.policy_id WHERE p.name = ? AND v.version = ?`), name, version), true)
	if errors.Is(err, sql.ErrNoRows) {
		return PolicyVersion{}, fmt.Errorf("store: policy %q version %d: %w", name, version, ErrNotFound)
	}
	if err != nil {
		return PolicyVersion{}, fmt.Errorf("store: get policy %q version %d: %w", name, version, err)
	}
	return v, nil
}

// ListPolicyVersions implements PolicyStore.
func (s *sqlStore) ListPolicyVersions(ctx context.Context, name string) ([]PolicyVersion, error) {
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT p.name, v.version, v.digest, '', v.created_at, v.created_by FROM policy_versions v
		JOIN policies p ON p.id = v.policy_id WHERE p.name = ? ORDER BY v.version DESC`), name)
	if err != nil {
		return nil, fmt.Errorf("store: list policy %q versions: %w", name, err)
	}
	defer rows.Close()
	out := []PolicyVersion{}
	for rows.Next() {
		v, err := scanPolicyVersion(rows, false)
		if err != nil {
			return nil, fmt.Errorf("store: list policy %q versions: %w", name, err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: list policy %q versions: %w", name, err)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("store: policy %q: %w", name, ErrNotFound)
	}
	return out, nil
}

// DeletePolicy implements PolicyStore.
func (s *sqlStore) DeletePolicy(ctx context.Context, name string) error {
	err := s.write(ctx, func(t *tx) error {
		var users int
		if err := t.queryRow(ctx, `SELECT COUNT(*) FROM clusters WHERE policy = ?`, name).Scan(&users); err != nil {
			return err
		}
		if users > 0 {
			return fmt.Errorf("policy %q is enforced by %d cluster(s): assign them another policy first: %w", name, users, ErrConflict)
		}
		res, err := t.exec(ctx, `DELETE FROM policies WHERE name = ?`, name)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return fmt.Errorf("policy %q: %w", name, ErrNotFound)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: delete policy: %w", err)
	}
	return nil
}

// SetClusterPolicy implements PolicyStore.
func (s *sqlStore) SetClusterPolicy(ctx context.Context, clusterID int64, policy string) (Cluster, error) {
	var out Cluster
	err := s.write(ctx, func(t *tx) error {
		if policy != "" {
			var id int64
			err := t.queryRow(ctx, `SELECT id FROM policies WHERE name = ?`, policy).Scan(&id)
			if errors.Is(err, sql.ErrNoRows) {
				return fmt.Errorf("policy %q: %w", policy, ErrNotFound)
			}
			if err != nil {
				return err
			}
		}
		var err error
		out, err = scanCluster(t.queryRow(ctx, `UPDATE clusters SET policy = ? WHERE id = ? RETURNING `+clusterCols, policy, clusterID))
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("cluster %d: %w", clusterID, ErrNotFound)
		}
		return err
	})
	if err != nil {
		return Cluster{}, fmt.Errorf("store: set cluster policy: %w", err)
	}
	return out, nil
}

// ClusterPolicy implements PolicyStore.
func (s *sqlStore) ClusterPolicy(ctx context.Context, cluster string) (PolicyVersion, error) {
	v, err := scanPolicyVersion(s.db.QueryRowContext(ctx, s.q(`SELECT `+policyVersionCols+` FROM clusters c
		JOIN policies p ON p.name = c.policy JOIN policy_versions v ON v.policy_id = p.id AND v.version = p.version
		WHERE c.name = ?`), cluster), true)
	if errors.Is(err, sql.ErrNoRows) {
		return PolicyVersion{}, fmt.Errorf("store: policy of cluster %q: %w", cluster, ErrNotFound)
	}
	if err != nil {
		return PolicyVersion{}, fmt.Errorf("store: policy of cluster %q: %w", cluster, err)
	}
	return v, nil
}
