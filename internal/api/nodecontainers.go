package api

import "time"

// Node containers (issue 11 item 7): each node agent reports the
// containers running on its node (PUT /api/v1/agents/containers, role
// agent, the whole list each time: the server ends the node's containers
// the list lacks), so that the runtime vulnerability view covers hosts
// without Kubernetes. The server keeps them per (cluster of the token,
// node, container ID) with first and last seen; a container not reported
// again within NodeContainerTTL no longer counts as running.
const PathAgentContainers = Prefix + "/agents/containers"

// Limits of a node container report, each with its reason.
const (
	// MaxNodeContainers bounds one node's containers (kubelet's default
	// limit is 110 pods; a busy plain host runs hundreds of containers).
	MaxNodeContainers = 4096
	// MaxNodeContainersBytes caps the request body (about 400 bytes a
	// container).
	MaxNodeContainersBytes = 4 << 20
	// NodeContainerTTL: a container the node's agent has not reported for
	// this long is not running as far as the server knows (the agent
	// reports at every change and at least every NodeContainerRefresh).
	NodeContainerTTL = 15 * time.Minute
	// NodeContainerRefresh is how often an agent reports its node's
	// containers when nothing changed.
	NodeContainerRefresh = 5 * time.Minute
)

// NodeContainersReport is the body of PUT /api/v1/agents/containers: every
// container running on the calling agent's node now.
type NodeContainersReport struct {
	// Node names the agent within its token's cluster (as in registration).
	Node       string          `json:"node"`
	Containers []NodeContainer `json:"containers"`
}

// NodeContainer is one running container as the node's container runtime
// lists it.
type NodeContainer struct {
	ID   string `json:"id"`
	Name string `json:"name,omitempty"`
	// Image is the reference it was started from; ImageDigest the
	// manifest digest (sha256:...), which the server joins with its scans.
	Image       string `json:"image,omitempty"`
	ImageDigest string `json:"imageDigest,omitempty"`
	// Runtime is containerd, cri or docker; Namespace the containerd
	// namespace (or the pod's namespace for cri); Pod the pod's name.
	Runtime   string    `json:"runtime"`
	Namespace string    `json:"namespace,omitempty"`
	Pod       string    `json:"pod,omitempty"`
	Started   time.Time `json:"started,omitzero"`
}

// NodeContainersResult answers a node container report.
type NodeContainersResult struct {
	// Running is the node's containers now; Ended the ones the report ended.
	Running int `json:"running"`
	Ended   int `json:"ended"`
}

// HostContainer is one container a node agent reports running an image
// (the vulnerability detail's hostContainers).
type HostContainer struct {
	// Cluster is the agent's token's cluster ("" for a bare host).
	Cluster     string    `json:"cluster,omitempty"`
	Node        string    `json:"node"`
	ID          string    `json:"id"`
	Name        string    `json:"name,omitempty"`
	Image       string    `json:"image,omitempty"`
	ImageDigest string    `json:"imageDigest"`
	Runtime     string    `json:"runtime"`
	Namespace   string    `json:"namespace,omitempty"`
	Pod         string    `json:"pod,omitempty"`
	ImageID     int64     `json:"imageID"`
	FirstSeen   time.Time `json:"firstSeen"`
	LastSeen    time.Time `json:"lastSeen"`
}
