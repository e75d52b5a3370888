package assessments

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"mamori/internal/auth"
	"mamori/internal/compliance/posture"
	"mamori/internal/model"
	"mamori/internal/service"
	"mamori/internal/store"
)

// machine returns the caller when it has role want.
func machine(ctx context.Context, want auth.Role) (*auth.Principal, error) {
	p, ok := auth.PrincipalFromContext(ctx)
	if !ok || p.Role != want {
		return nil, fmt.Errorf("%w: only a %s token may report this posture", auth.ErrForbidden, want)
	}
	return p, nil
}

// PostureOutcome says what became of a reported posture.
type PostureOutcome struct {
	// HostPackages is the number of host packages matched (node postures
	// with an inventory); HostVulnerabilities what the match found.
	HostPackages        int
	HostVulnerabilities int
	// Matched is false when the inventory could not be matched (no
	// vulnerability database on the server): it is matched later.
	Matched bool
}

// RecordNodePosture stores the posture a node agent reports (its cluster
// is its token's) and matches the node's host inventory against the
// vulnerability database, storing the result for §4.4.1 and §4.5.3.
func (s *Service) RecordNodePosture(ctx context.Context, n *posture.Node) (PostureOutcome, error) {
	p, err := machine(ctx, auth.RoleAgent)
	if err != nil {
		return PostureOutcome{}, err
	}
	if n == nil {
		return PostureOutcome{}, service.Invalid("no posture")
	}
	n.Cluster = p.Cluster
	if err := n.Validate(); err != nil {
		return PostureOutcome{}, service.Invalid("%v", err)
	}
	now := s.now().UTC()
	if n.CollectedAt.IsZero() || n.CollectedAt.After(now.Add(model.MaxClockSkew)) {
		return PostureOutcome{}, service.Invalid("collectedAt %s: missing or in the future", n.CollectedAt.Format("2006-01-02T15:04:05Z07:00"))
	}
	b, err := json.Marshal(n)
	if err != nil {
		return PostureOutcome{}, fmt.Errorf("node posture: %w", err)
	}
	row := store.NodePosture{Cluster: n.Cluster, Node: n.Node, CollectedAt: n.CollectedAt, ReceivedAt: now, Body: string(b)}
	if err := s.st.PutNodePosture(ctx, row); err != nil {
		return PostureOutcome{}, fmt.Errorf("node posture: %w", err)
	}
	out := PostureOutcome{}
	if n.Inventory != nil {
		out.HostPackages = len(n.Inventory.Packages)
		vs, err := s.matchHost(ctx, n.Cluster, n.Node, now, n.Inventory)
		switch {
		case errors.Is(err, errNoMatcher):
		case err != nil:
			// The posture is stored; the match is retried at the next
			// assessment.
			s.log.Warn("host inventory match", "cluster", n.Cluster, "node", n.Node, "err", err)
		default:
			out.Matched, out.HostVulnerabilities = true, len(vs)
		}
	}
	s.log.Debug("node posture", "cluster", n.Cluster, "node", n.Node, "packages", out.HostPackages, "hostVulns", out.HostVulnerabilities)
	s.Kick("node posture")
	return out, nil
}

// RecordClusterPosture stores the posture a cluster component reports
// (its cluster is its token's).
func (s *Service) RecordClusterPosture(ctx context.Context, c *posture.Cluster) error {
	p, err := machine(ctx, auth.RoleCluster)
	if err != nil {
		return err
	}
	if c == nil {
		return service.Invalid("no posture")
	}
	c.Cluster = p.Cluster
	if err := c.Validate(); err != nil {
		return service.Invalid("%v", err)
	}
	now := s.now().UTC()
	if c.CollectedAt.IsZero() || c.CollectedAt.After(now.Add(model.MaxClockSkew)) {
		return service.Invalid("collectedAt %s: missing or in the future", c.CollectedAt.Format("2006-01-02T15:04:05Z07:00"))
	}
	b, err := json.Marshal(c)
	if err != nil {
		return fmt.Errorf("cluster posture: %w", err)
	}
	if err := s.st.PutClusterPosture(ctx, store.ClusterPosture{Cluster: c.Cluster, CollectedAt: c.CollectedAt, ReceivedAt: now, Body: string(b)}); err != nil {
		return fmt.Errorf("cluster posture: %w", err)
	}
	s.Kick("cluster posture")
	return nil
}
