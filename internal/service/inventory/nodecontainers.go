package inventory

import (
	"context"
	"fmt"
	"regexp"
	"sync"
	"time"
	"unicode/utf8"

	"mamori/internal/api"
	"mamori/internal/auth"
	"mamori/internal/service"
	"mamori/internal/store"
)

// Node containers: what each node agent reports running on its node (a
// bare host's too), which the runtime vulnerability view counts with the
// cluster components' pods (docs/agent.md, Node inventory).

// NodeStore is what the node container report needs of the store.
type NodeStore interface {
	store.NodeContainerStore
}

// Nodes takes the node agents' container reports.
type Nodes struct {
	st  NodeStore
	now func() time.Time

	mu          sync.Mutex
	lastExpired time.Time
}

// NewNodes returns the service over st.
func NewNodes(st NodeStore, now func() time.Time) *Nodes {
	if now == nil {
		now = time.Now
	}
	return &Nodes{st: st, now: now}
}

// Expiry of node containers: rows no report named for a day are deleted
// (they stopped counting as running after api.NodeContainerTTL), at most
// once an hour, on the way of a report.
const (
	nodeContainerRetention = 24 * time.Hour
	nodeExpiryEvery        = time.Hour
)

var (
	nodeDigestRE      = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)
	nodeContainerIDRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:@+-]{0,253}$`)
	nodeNameRE        = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,252}$`)
	runtimes          = map[string]bool{"containerd": true, "cri": true, "docker": true}
)

func printableText(s string, max int) bool {
	if len(s) > max || !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return false
		}
	}
	return true
}

// Report replaces the calling agent's node's containers with the report's
// (the cluster is the agent token's). Everything is checked before
// anything is stored.
func (n *Nodes) Report(ctx context.Context, r api.NodeContainersReport) (api.NodeContainersResult, error) {
	p, ok := auth.PrincipalFromContext(ctx)
	if !ok || p.Role != auth.RoleAgent {
		return api.NodeContainersResult{}, fmt.Errorf("%w: only an agent token reports its node's containers", auth.ErrForbidden)
	}
	if !nodeNameRE.MatchString(r.Node) {
		return api.NodeContainersResult{}, service.Invalid("node %q: 1 to 253 letters, digits, '.', '_' or '-', starting with a letter or digit", truncate(r.Node))
	}
	if len(r.Containers) > api.MaxNodeContainers {
		return api.NodeContainersResult{}, service.Invalid("%d containers: at most %d", len(r.Containers), api.MaxNodeContainers)
	}
	cs := make([]store.NodeContainer, 0, len(r.Containers))
	seen := map[string]bool{}
	for i, c := range r.Containers {
		switch {
		case !nodeContainerIDRE.MatchString(c.ID):
			return api.NodeContainersResult{}, service.Invalid("container %d: id %q is not a container ID", i, truncate(c.ID))
		case seen[c.ID]:
			return api.NodeContainersResult{}, service.Invalid("container %s: listed twice", c.ID)
		case c.ImageDigest != "" && !nodeDigestRE.MatchString(c.ImageDigest):
			return api.NodeContainersResult{}, service.Invalid("container %s: image digest %q is not sha256:<64 hex>", c.ID, truncate(c.ImageDigest))
		case !runtimes[c.Runtime]:
			return api.NodeContainersResult{}, service.Invalid("container %s: runtime %q: want containerd, cri or docker", c.ID, truncate(c.Runtime))
		case !printableText(c.Name, 512) || !printableText(c.Image, 1024) || !printableText(c.Namespace, 253) || !printableText(c.Pod, 253):
			return api.NodeContainersResult{}, service.Invalid("container %s: name, image, namespace and pod: at most 512, 1024, 253 and 253 printable characters", c.ID)
		}
		seen[c.ID] = true
		cs = append(cs, store.NodeContainer{ID: c.ID, Name: c.Name, Image: c.Image, ImageDigest: c.ImageDigest, Runtime: c.Runtime,
			Namespace: c.Namespace, Pod: c.Pod, Started: c.Started.UTC()})
	}
	now := n.now().UTC()
	out, err := n.st.ReplaceNodeContainers(ctx, p.Cluster, r.Node, cs, now)
	if err != nil {
		return api.NodeContainersResult{}, fmt.Errorf("node containers: %w", err)
	}
	n.mu.Lock()
	expire := now.Sub(n.lastExpired) >= nodeExpiryEvery
	if expire {
		n.lastExpired = now
	}
	n.mu.Unlock()
	if expire {
		if _, err := n.st.ExpireNodeContainers(ctx, now.Add(-nodeContainerRetention)); err != nil {
			return api.NodeContainersResult{}, fmt.Errorf("node containers: %w", err)
		}
	}
	return api.NodeContainersResult{Running: out.Running, Ended: out.Ended}, nil
}
