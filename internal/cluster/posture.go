package cluster

import (
	"context"
	"time"

	"mamori/internal/compliance/kube"
)

// DefaultPostureInterval is how often the cluster's compliance posture is
// collected and sent: the RBAC, NetworkPolicy and pod lists are a few list
// calls; five minutes keeps the Compliance page minutes behind the cluster.
const DefaultPostureInterval = 5 * time.Minute

// postures collects the cluster's compliance posture (compliance/kube:
// broad bindings, anonymous access, NetworkPolicy coverage, sensitivity
// mixing, running pods with their images and Pod Security findings) and
// sends it to the server, every PostureInterval until ctx ends. It only
// lists; the component's own namespace counts as a system one.
func (c *Component) postures(ctx context.Context) {
	every := c.o.PostureInterval
	if every == 0 {
		every = DefaultPostureInterval
	}
	if every < 0 {
		return
	}
	sys := append([]string{c.o.Namespace}, kube.DefaultSystemNamespaces...)
	for {
		p, err := kube.Collect(ctx, c.kube, kube.Options{Cluster: c.cluster, Anonymous: c.rest, SystemNamespaces: sys}, time.Now())
		switch {
		case err != nil:
			if ctx.Err() == nil {
				c.log.Warn("compliance posture", "err", err)
			}
		default:
			for _, w := range p.Warnings {
				c.log.Debug("compliance posture", "warning", w)
			}
			if err := c.srv.ReportClusterPosture(ctx, p); err != nil && ctx.Err() == nil {
				c.log.Warn("send compliance posture", "err", err)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(every):
		}
	}
}
