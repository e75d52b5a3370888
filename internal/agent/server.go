package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"mamori/internal/api"
	"mamori/internal/policy"

	"mamori/internal/api/client"
	"mamori/internal/model"
)

// Delivery: the spool is read from its ack position in batches, sent with
// the typed client (which retries connection errors and 5xx with backoff),
// and acknowledged once the server answered: accepted, duplicate and
// rejected events all leave the spool (a rejected event cannot succeed
// later). On an error the batch stays and is sent again after a backoff:
// at least once; the server keeps each event ID once.

const (
	// deliverBatch: a fifth of the server's batch limit, so one request
	// stays small and a retry resends little.
	deliverBatch      = 200
	deliverBatchBytes = 4 << 20
	// Backoff between failed deliveries (the client retried already).
	deliverRetryMin = time.Second
	deliverRetryMax = 30 * time.Second
	// DefaultHeartbeat is used until the server says otherwise.
	DefaultHeartbeat = 30 * time.Second
)

type deliveryStats struct {
	batches, sent, accepted, duplicates, rejected, failures, undecodable atomic.Uint64
	lastError                                                            atomic.Pointer[string]
	lastSuccess                                                          atomic.Pointer[time.Time]
}

// DeliveryStats are the delivery counters.
type DeliveryStats struct {
	Batches     uint64    `json:"batches"`
	Sent        uint64    `json:"sent"`
	Accepted    uint64    `json:"accepted"`
	Duplicates  uint64    `json:"duplicates"`
	Rejected    uint64    `json:"rejected"`
	Failures    uint64    `json:"failures"`    // batches that failed (sent again later)
	Undecodable uint64    `json:"undecodable"` // spool records that were not events (dropped)
	LastError   string    `json:"lastError,omitempty"`
	LastSuccess time.Time `json:"lastSuccess,omitzero"`
}

func (d *deliveryStats) snapshot() DeliveryStats {
	s := DeliveryStats{Batches: d.batches.Load(), Sent: d.sent.Load(), Accepted: d.accepted.Load(),
		Duplicates: d.duplicates.Load(), Rejected: d.rejected.Load(), Failures: d.failures.Load(),
		Undecodable: d.undecodable.Load()}
	if p := d.lastError.Load(); p != nil {
		s.LastError = *p
	}
	if p := d.lastSuccess.Load(); p != nil {
		s.LastSuccess = *p
	}
	return s
}

// deliverLoop sends the spool to the server until ctx ends.
func (a *Agent) deliverLoop(ctx context.Context) {
	wait := a.retryMin
	size := deliverBatch
	for ctx.Err() == nil {
		empty, err := a.deliverOnce(ctx, size)
		switch {
		case err == nil && empty:
			wait, size = a.retryMin, deliverBatch
			select {
			case <-ctx.Done():
				return
			case <-a.spool.Notify():
			case <-time.After(5 * time.Second): // a segment boundary or a missed signal
			}
		case err == nil:
			wait, size = a.retryMin, deliverBatch
		case errors.Is(err, client.ErrRejected) && !errors.Is(err, client.ErrUnauthorized) && size > 1:
			// The server refuses the request as a whole (too large?):
			// smaller batches isolate the event it cannot take.
			size = max(1, size/4)
		default:
			select {
			case <-ctx.Done():
				return
			case <-time.After(wait):
			}
			wait = min(2*wait, deliverRetryMax)
		}
	}
}

// deliverPending sends what is spooled until it is empty or ctx ends.
func (a *Agent) deliverPending(ctx context.Context) {
	for ctx.Err() == nil {
		empty, err := a.deliverOnce(ctx, deliverBatch)
		if err != nil || empty {
			return
		}
	}
}

// deliverOnce sends one batch; empty says there was nothing to send.
func (a *Agent) deliverOnce(ctx context.Context, size int) (empty bool, err error) {
	b, err := a.spool.Read(size, deliverBatchBytes)
	if err != nil {
		return false, err
	}
	if len(b.Records) == 0 {
		return true, a.spool.Ack(b) // moves past empty closed segments
	}
	events := make([]model.Event, 0, len(b.Records))
	for _, r := range b.Records {
		var e model.Event
		if err := json.Unmarshal(r, &e); err != nil {
			a.delivery.undecodable.Add(1)
			continue
		}
		events = append(events, e)
	}
	if len(events) > 0 {
		a.delivery.batches.Add(1)
		res, err := a.server.IngestEvents(ctx, events)
		if err != nil {
			a.delivery.failures.Add(1)
			msg := err.Error()
			a.delivery.lastError.Store(&msg)
			if errors.Is(err, client.ErrRejected) && !errors.Is(err, client.ErrUnauthorized) && len(events) == 1 {
				// One event the server refuses as a request: it can never
				// be delivered; drop it (counted) rather than block the spool.
				a.delivery.rejected.Add(1)
				a.log.Error("server refuses an event: dropped", "id", events[0].ID, "error", err)
				return false, a.spool.Ack(b)
			}
			a.log.Warn("event delivery failed: kept in the spool", "events", len(events), "error", err)
			return false, err
		}
		a.delivery.sent.Add(uint64(len(events)))
		a.delivery.accepted.Add(uint64(res.Accepted))
		a.delivery.duplicates.Add(uint64(res.Duplicates))
		a.delivery.rejected.Add(uint64(len(res.Rejected)))
		for _, r := range res.Rejected {
			a.log.Warn("server rejected an event", "id", r.ID, "error", r.Error)
		}
		now := time.Now()
		a.delivery.lastSuccess.Store(&now)
	}
	return false, a.spool.Ack(b)
}

// ServerState is the agent's standing with the server.
type ServerState struct {
	Registered    bool      `json:"registered"`
	AgentID       int64     `json:"agentId,omitempty"`
	Cluster       string    `json:"cluster,omitempty"`
	LastHeartbeat time.Time `json:"lastHeartbeat,omitzero"`
	LastError     string    `json:"lastError,omitempty"`
	Heartbeat     string    `json:"heartbeatInterval"`
	// Policy is the policy whose runtime section the agent runs ("" for
	// the default ruleset), as the server assigned it.
	Policy string `json:"policy,omitempty"`
	// Inventory says how the node's containers reach the server (PUT
	// /api/v1/agents/containers): "sent", "failed: ...", or why not.
	Inventory           string    `json:"inventory"`
	InventoryContainers int       `json:"inventoryContainers,omitempty"`
	InventoryVersion    uint64    `json:"inventoryVersion,omitempty"`
	InventorySent       time.Time `json:"inventorySent,omitzero"`
}

func (a *Agent) setState(f func(*ServerState)) {
	a.srvMu.Lock()
	f(&a.srvState)
	a.srvMu.Unlock()
}

// serverLoop registers (retrying until it succeeds), then sends heartbeats
// at the server's interval, re-registering when the server forgot the
// agent, and reports the node inventory when it changes.
func (a *Agent) serverLoop(ctx context.Context) {
	interval := DefaultHeartbeat
	a.setState(func(s *ServerState) { s.Heartbeat = interval.String() })
	inv, invOK := a.server.(InventoryReporter)
	if !invOK {
		a.setState(func(s *ServerState) { s.Inventory = "not sent: the server client has no node containers call" })
	}
	invOK = invOK && a.runtime != nil && a.runtime.res != nil
	var invChanged <-chan struct{}
	var invVersion uint64
	var invSent time.Time
	sendInventory := func() {
		cur, ch := a.runtime.Inventory()
		invChanged = ch
		// At each change, and every NodeContainerRefresh even without one
		// (the server stops counting a node's containers as running when
		// it has not heard of them for NodeContainerTTL).
		if cur.Version == invVersion && invVersion != 0 && time.Since(invSent) < api.NodeContainerRefresh {
			return
		}
		rep := NodeContainersOf(a.cfg.Node, cur)
		if _, err := inv.ReportContainers(ctx, rep); err != nil {
			msg := "failed: " + err.Error()
			a.setState(func(s *ServerState) { s.Inventory = msg })
			a.log.Warn("node containers report failed", "error", err)
			return
		}
		invVersion, invSent = cur.Version, time.Now()
		a.setState(func(s *ServerState) {
			s.Inventory, s.InventoryVersion, s.InventorySent, s.InventoryContainers = "sent", cur.Version, invSent, len(rep.Containers)
		})
	}
	wait := time.Second
	registered := false
	var loaded policyVersion
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		heartbeat := false
		select {
		case <-ctx.Done():
			return
		case <-invChanged:
			// Let a burst of changes settle into one report.
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Second):
			}
		case <-timer.C:
			heartbeat = true
		}
		if !registered {
			if !heartbeat {
				continue
			}
			ag, err := a.server.RegisterAgent(ctx, a.hostReport())
			if err != nil {
				msg := err.Error()
				a.setState(func(s *ServerState) { s.LastError = msg })
				a.log.Warn("registration failed; retrying", "error", err, "in", wait)
				timer.Reset(wait)
				wait = min(2*wait, deliverRetryMax)
				continue
			}
			registered, wait = true, time.Second
			now := time.Now()
			a.setState(func(s *ServerState) {
				s.Registered, s.AgentID, s.Cluster, s.LastError, s.LastHeartbeat = true, ag.ID, ag.Cluster, "", now
			})
			a.log.Info("registered with the server", "agent", ag.ID, "cluster", ag.Cluster, "node", ag.Node)
			interval = a.syncConfig(ctx, interval, &loaded)
			if invOK {
				sendInventory()
			}
			timer.Reset(interval)
			continue
		}
		if heartbeat {
			if _, err := a.server.AgentHeartbeat(ctx, a.hostReport()); err != nil {
				msg := err.Error()
				a.setState(func(s *ServerState) { s.LastError = msg })
				if errors.Is(err, client.ErrNotFound) {
					registered = false // the server forgot the agent: register again
					timer.Reset(0)
					continue
				}
				a.log.Warn("heartbeat failed", "error", err)
			} else {
				now := time.Now()
				a.setState(func(s *ServerState) { s.LastHeartbeat, s.LastError = now, "" })
				interval = a.syncConfig(ctx, interval, &loaded)
			}
			timer.Reset(interval)
		}
		if invOK {
			sendInventory()
		}
	}
}

// PolicySource is the server call that gives the agent the policy its
// cluster (or host group) enforces: its runtime section selects the
// rulesets, its exceptions waive matches. *client.Client implements it.
type PolicySource interface {
	AgentPolicy(ctx context.Context) (api.ComponentPolicy, error)
}

var _ PolicySource = (*client.Client)(nil)

type policyVersion struct {
	name    string
	version int
	set     bool
}

// syncConfig fetches the agent's configuration (heartbeat interval, the
// assigned policy's name and version) and, when the policy changed, loads
// it into the runtime module. It returns the heartbeat interval.
func (a *Agent) syncConfig(ctx context.Context, interval time.Duration, loaded *policyVersion) time.Duration {
	cfg, err := a.server.AgentConfig(ctx)
	if err != nil {
		a.log.Warn("agent configuration not fetched", "error", err)
		return interval
	}
	if d, err := time.ParseDuration(cfg.HeartbeatInterval); err == nil && d >= time.Second {
		interval = d
		a.setState(func(s *ServerState) { s.Heartbeat = d.String() })
	}
	src, ok := a.server.(PolicySource)
	if a.runtime == nil || !ok {
		return interval
	}
	want := policyVersion{name: cfg.Policy, version: cfg.PolicyVersion, set: true}
	if want == *loaded {
		return interval
	}
	var rc *RuleConfig // nil: the cluster enforces no policy
	if cfg.Policy != "" {
		cp, err := src.AgentPolicy(ctx)
		switch {
		case errors.Is(err, client.ErrNotFound):
			want.name = ""
		case err != nil:
			a.log.Warn("policy not fetched; the rules in force stay", "policy", cfg.Policy, "error", err)
			return interval
		default:
			prc, err := policyRules(cp)
			if err != nil {
				// Logged once per version; the previous rules stay in force.
				a.log.Error("the server's policy cannot be run; the rules in force stay", "policy", cp.Name,
					"version", cp.Version, "error", err)
				*loaded = want
				return interval
			}
			rc = &prc
		}
	}
	a.setClusterRules(rc, fmt.Sprintf("%s v%d", want.name, want.version))
	*loaded = want
	return interval
}

// policyRules reads a policy document the server sent into the runtime
// module's rule configuration.
func policyRules(cp api.ComponentPolicy) (RuleConfig, error) {
	p, err := policy.Parse(cp.Name, []byte(cp.Document))
	if err != nil {
		return RuleConfig{}, err
	}
	ev, err := policy.Compile(p)
	if err != nil {
		return RuleConfig{}, fmt.Errorf("policy %s: %w", cp.Name, err)
	}
	refs := ev.Runtime()
	if refs == nil {
		refs = []policy.RulesetRef{}
	}
	return RuleConfig{Refs: refs, Policy: ev, PolicyVersion: cp.Version,
		Origin: fmt.Sprintf("policy %s v%d (from the server)", cp.Name, cp.Version)}, nil
}
