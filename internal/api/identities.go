package api

import (
	"time"

	"mamori/internal/model"
)

// Machine identities: a cluster component (one per Kubernetes cluster) and
// node agents authenticate with tokens of the roles "cluster" and "agent",
// bound to a cluster. An admin creates a cluster (POST /api/v1/clusters),
// which returns its first cluster token once; agent tokens are created with
// POST /api/v1/tokens (role agent, optional cluster). Components register
// at start and send heartbeats; the server records their last contact.

// ClusterRequest creates a cluster (POST /api/v1/clusters).
type ClusterRequest struct {
	Name string `json:"name"`
}

// Cluster is a registered (or only created) cluster.
type Cluster struct {
	ID        int64     `json:"id"`
	Name      string    `json:"name"`
	CreatedAt time.Time `json:"createdAt"`
	// RegisteredAt is the component's first registration (zero until then),
	// LastContact its latest registration or heartbeat.
	RegisteredAt time.Time `json:"registeredAt,omitzero"`
	LastContact  time.Time `json:"lastContact,omitzero"`
	// What the component reported.
	Version           string `json:"version,omitempty"`
	KubernetesVersion string `json:"kubernetesVersion,omitempty"`
	Nodes             int    `json:"nodes"`
	// Policy is the policy the cluster enforces ("" = none).
	Policy string `json:"policy,omitempty"`
}

// ClusterCreated answers POST /api/v1/clusters: the cluster and, this once,
// the secret of its cluster token.
type ClusterCreated struct {
	Cluster Cluster `json:"cluster"`
	TokenID int64   `json:"tokenID"`
	Token   string  `json:"token"`
}

// ClusterList answers GET /api/v1/clusters.
type ClusterList struct {
	Clusters []Cluster `json:"clusters"`
}

// ClusterReport is the body of POST /api/v1/clusters/register and
// /heartbeat: what the cluster component knows of itself. The cluster is
// the token's.
type ClusterReport struct {
	Version           string `json:"version,omitempty"`
	KubernetesVersion string `json:"kubernetesVersion,omitempty"`
	Nodes             int    `json:"nodes,omitempty"`
}

// AgentReport is the body of POST /api/v1/agents/register and /heartbeat.
// Node identifies the agent within its token's cluster (the Kubernetes
// node name, or the host name of a bare host).
type AgentReport struct {
	Node     string `json:"node"`
	Hostname string `json:"hostname,omitempty"`
	Version  string `json:"version,omitempty"`
	OS       string `json:"os,omitempty"`
	Kernel   string `json:"kernel,omitempty"`
	Arch     string `json:"arch,omitempty"`
	// Sensor is how the agent's runtime sensor observes the node; absent
	// (an agent without the runtime module) keeps what was said before.
	Sensor *AgentSensor `json:"sensor,omitempty"`
}

// AgentSensor is the runtime sensor of a node agent (docs/agent.md,
// Sensor mode).
type AgentSensor struct {
	// Mode is "ebpf" (the CO-RE programs) or "fallback" (CN_PROC and
	// fanotify: process and file events only).
	Mode string `json:"mode"`
	// Hooks says how the programs attach ("tp_btf", "raw_tp", or for the
	// fallback "cn_proc+fanotify"); "" when the sensor does not say.
	Hooks string `json:"hooks,omitempty"`
	// Missing are the event kinds the mode cannot report: the rules over
	// them do not fire on this node.
	Missing []string `json:"missing,omitempty"`
}

// Agent is a registered node agent.
type Agent struct {
	ID int64 `json:"id"`
	// Cluster is the cluster of the agent's token ("" for a bare host).
	Cluster  string `json:"cluster,omitempty"`
	Node     string `json:"node"`
	Hostname string `json:"hostname,omitempty"`
	Version  string `json:"version,omitempty"`
	OS       string `json:"os,omitempty"`
	Kernel   string `json:"kernel,omitempty"`
	Arch     string `json:"arch,omitempty"`
	// Sensor is the runtime sensor as the agent last reported it.
	Sensor      *AgentSensor `json:"sensor,omitempty"`
	FirstSeen   time.Time    `json:"firstSeen"`
	LastContact time.Time    `json:"lastContact"`
}

// AgentList answers GET /api/v1/agents.
type AgentList struct {
	Agents []Agent `json:"agents"`
}

// ComponentConfig answers GET /api/v1/agents/config and
// /api/v1/clusters/config: what the server asks of a component. Later
// issues add the policies and rulesets it enforces.
type ComponentConfig struct {
	// HeartbeatInterval is how often to send a heartbeat (Go duration).
	HeartbeatInterval string `json:"heartbeatInterval"`
	// MaxEventBatch and MaxEventBytes are the server's event ingest limits.
	MaxEventBatch int   `json:"maxEventBatch"`
	MaxEventBytes int64 `json:"maxEventBytes"`
	// EventRetention is how long the server keeps events (Go duration,
	// "" = no age limit).
	EventRetention string `json:"eventRetention,omitempty"`
	// Policy and PolicyVersion name the policy the component's cluster
	// enforces (absent when none): fetch it (GET .../policy) when the
	// version differs from the one loaded.
	Policy        string `json:"policy,omitempty"`
	PolicyVersion int    `json:"policyVersion,omitempty"`
}

// MatchRequest is the body of POST /api/v1/match: an inventory a component
// took (a node's own packages, an image scanned inline at admission).
// Components take inventory; the server, which holds the vulnerability
// database, matches it.
type MatchRequest struct {
	Inventory model.Inventory `json:"inventory"`
}

// MatchResult answers POST /api/v1/match: the vulnerabilities and the
// malicious-package findings of the inventory, worst first, and the
// database matched against. Nothing is stored.
type MatchResult struct {
	Vulnerabilities []model.Vulnerability `json:"vulnerabilities"`
	Findings        []model.Finding       `json:"findings"`
	DB              *model.DBInfo         `json:"db,omitempty"`
}

// SensorOf is the AgentSensor of a stored mode, hooks and missing kinds;
// nil when the agent never said (no mode).
func SensorOf(mode, hooks string, missing []string) *AgentSensor {
	if mode == "" {
		return nil
	}
	return &AgentSensor{Mode: mode, Hooks: hooks, Missing: missing}
}
