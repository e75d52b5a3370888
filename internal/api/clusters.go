package api

import (
	"encoding/json"
	"time"

	"mamori/internal/model"
)

// The cluster component's data routes (docs/kubernetes.md): the scan
// results of the images its webhook admits (looked up, or scanned inline
// by the component and matched by the server), the cluster's inventory
// (nodes, namespaces, workloads, pods and the image digests that run), and
// the queue of isolate/terminate requests it executes — from continuous
// compliance on the server and from the node agents, which hold no
// permission to change Kubernetes objects.

// Paths of the cluster component's data routes and of the views over them.
const (
	PathClusterImageLookup = Prefix + "/clusters/images/lookup"
	PathClusterScans       = Prefix + "/clusters/scans"
	PathClusterInventory   = Prefix + "/clusters/inventory"
	PathClusterMitigations = Prefix + "/clusters/mitigations"
	PathClusterMitigation  = Prefix + "/clusters/mitigations/{id}"
	PathAgentMitigations   = Prefix + "/agents/mitigations"
	PathMitigations        = Prefix + "/mitigations"
	PathClusterObjects     = Prefix + "/clusters/{id}/inventory"
)

// Limits of the cluster routes, each with its reason.
const (
	// MaxImageLookup is the most references one lookup asks for: a pod
	// has a few containers; a batch of pods a few hundred images.
	MaxImageLookup = 256
	// MaxInventoryObjects is the most objects (upserts + deletions) in one
	// inventory batch: one store transaction, a few MiB.
	MaxInventoryObjects = 500
	// MaxInventoryBatchBytes caps an inventory batch body (compressed and
	// decompressed): 500 pods of 8 KiB each, with room for large ones.
	MaxInventoryBatchBytes int64 = 32 << 20
	// MaxInventoryObjectBytes caps one object's JSON: the API server's
	// own limit on an object (1.5 MiB in etcd) with room.
	MaxInventoryObjectBytes = 3 << 20
	// MaxMitigationsPending is the most pending requests one poll returns.
	MaxMitigationsPending = 100
)

// ImageLookup is the body of POST /api/v1/clusters/images/lookup: image
// references as pods write them (with a tag, a digest or both).
type ImageLookup struct {
	Images []string `json:"images"`
}

// ImageLookupResult answers an image lookup: one entry per reference, in
// the order asked.
type ImageLookupResult struct {
	Images []ImageScanData `json:"images"`
	// DBBuiltAt is the vulnerability database the findings were matched
	// against (zero without one): a decision made on them is stale when it
	// changes.
	DBBuiltAt time.Time `json:"dbBuiltAt,omitzero"`
}

// ImageScanData is what the server knows of one image: its latest scan's
// vulnerabilities and findings (the result without its inventory), or
// Found false when the image was never scanned.
type ImageScanData struct {
	Ref   string `json:"ref"`
	Found bool   `json:"found"`
	// ImageID, Digest and ScanID identify the stored image and scan.
	ImageID   int64     `json:"imageID,omitempty"`
	Digest    string    `json:"digest,omitempty"`
	ScanID    string    `json:"scanID,omitempty"`
	ScannedAt time.Time `json:"scannedAt,omitzero"`
	// Result carries target, creation time, vulnerabilities and findings;
	// its inventory is left out.
	Result *model.Result `json:"result,omitempty"`
}

// ClusterScanOutcome answers POST /api/v1/clusters/scans: the component
// sent an image's inventory and findings (scanned inline by its webhook);
// the server matched it against its vulnerability database, stored it and
// returns what the policy needs.
type ClusterScanOutcome struct {
	Status string        `json:"status"`
	Image  ImageScanData `json:"image"`
}

// InventoryBatch is the body of POST /api/v1/clusters/inventory: objects
// of the calling component's cluster that were added or changed
// (Objects) or deleted (Deleted), in the order the watches saw them.
//
// A full resync is a run of batches of one new Generation, the first with
// Begin and the last with End: at End, every stored object of the cluster
// from an older generation is gone (it was deleted while no watch saw
// it, or before the component restarted). Batches between resyncs carry
// the generation of the last one.
type InventoryBatch struct {
	Generation int64             `json:"generation"`
	Begin      bool              `json:"begin,omitempty"`
	End        bool              `json:"end,omitempty"`
	Objects    []InventoryObject `json:"objects,omitempty"`
	Deleted    []InventoryRef    `json:"deleted,omitempty"`
}

// InventoryRef names one object of the cluster.
type InventoryRef struct {
	Kind      string `json:"kind"`
	Namespace string `json:"namespace,omitempty"`
	Name      string `json:"name"`
	UID       string `json:"uid,omitempty"`
}

// InventoryObject is one node, namespace, workload (pod controller) or pod.
type InventoryObject struct {
	InventoryRef
	ResourceVersion string            `json:"resourceVersion,omitempty"`
	Labels          map[string]string `json:"labels,omitempty"`
	// Owner is a pod's or controller's top controller (a pod of a
	// ReplicaSet of a Deployment names the Deployment); nil for none.
	Owner *model.WorkloadRef `json:"owner,omitempty"`
	// Node and Phase are a pod's.
	Node  string `json:"node,omitempty"`
	Phase string `json:"phase,omitempty"`
	// Containers are a pod's containers (init and ephemeral included),
	// with the image digest each runs, from the container statuses.
	Containers []InventoryContainer `json:"containers,omitempty"`
	// Object is the object's JSON (managed fields and a node's image list
	// left out): continuous compliance evaluates pods from it.
	Object json.RawMessage `json:"object,omitempty"`
}

// InventoryContainer is one container of a pod.
type InventoryContainer struct {
	Name string `json:"name"`
	// Image is the reference the pod spec writes; ImageDigest the manifest
	// digest that runs (sha256:…, from the status's imageID), "" until the
	// container started.
	Image       string `json:"image"`
	ImageDigest string `json:"imageDigest,omitempty"`
	ContainerID string `json:"containerID,omitempty"`
	// Kind is "init", "ephemeral" or "" (a regular container).
	Kind    string `json:"kind,omitempty"`
	Running bool   `json:"running"`
}

// InventoryResult answers an inventory batch.
type InventoryResult struct {
	// Upserted and Deleted count what the batch changed; Removed the
	// objects of older generations dropped at the end of a full resync.
	Upserted int `json:"upserted"`
	Deleted  int `json:"deleted"`
	Removed  int `json:"removed"`
}

// ClusterObjects answers GET /api/v1/clusters/{id}/inventory: a page of
// the cluster's objects (without their JSON) and the counts by kind.
type ClusterObjects struct {
	Cluster string            `json:"cluster"`
	Counts  map[string]int    `json:"counts"`
	Objects []InventoryObject `json:"objects"`
	Total   int               `json:"total"`
	// SyncedAt is the end of the component's latest full resync.
	SyncedAt time.Time `json:"syncedAt,omitzero"`
}

// Mitigation sources and states.
const (
	MitigationPending = "pending"
	MitigationDone    = "done"
	MitigationFailed  = "failed"
)

// MitigationRequest is the body of POST /api/v1/agents/mitigations: a node
// agent asks for a pod on its node to be isolated or terminated (a runtime
// rule matched in one of its containers). The cluster component executes
// it. The cluster is the agent's token's; the pod must be on Node.
type MitigationRequest struct {
	// EventID is the agent's event the action is for; the server keeps
	// one request per event ID and action (a retried request is the same).
	EventID   string       `json:"eventId"`
	Action    model.Action `json:"action"`
	Node      string       `json:"node"`
	Namespace string       `json:"namespace"`
	Pod       string       `json:"pod"`
	// Container is the container's ID (as the runtime names it).
	Container string `json:"container,omitempty"`
	Rule      string `json:"rule,omitempty"`
}

// Mitigation is one isolate or terminate request and what became of it.
type Mitigation struct {
	ID        int64        `json:"id"`
	Cluster   string       `json:"cluster"`
	Action    model.Action `json:"action"`
	Namespace string       `json:"namespace"`
	Pod       string       `json:"pod"`
	// PodUID, when known, is the pod the request is for: a pod of the same
	// name made later is not acted on.
	PodUID    string `json:"podUID,omitempty"`
	Node      string `json:"node,omitempty"`
	Container string `json:"container,omitempty"`
	// Source is compliance (the server's continuous compliance) or
	// runtime (a node agent).
	Source  model.EventSource `json:"source"`
	Rule    string            `json:"rule,omitempty"`
	EventID string            `json:"eventId,omitempty"`
	Message string            `json:"message,omitempty"`
	// RequestedBy is the requesting token's name ("server" for compliance).
	RequestedBy string    `json:"requestedBy"`
	State       string    `json:"state"`
	Error       string    `json:"error,omitempty"`
	Detail      string    `json:"detail,omitempty"`
	CreatedAt   time.Time `json:"createdAt"`
	DoneAt      time.Time `json:"doneAt,omitzero"`
}

// MitigationList answers GET /api/v1/mitigations and the cluster
// component's poll (GET /api/v1/clusters/mitigations: its pending ones).
type MitigationList struct {
	Mitigations []Mitigation `json:"mitigations"`
}

// MitigationOutcome is the body of POST /api/v1/clusters/mitigations/{id}:
// what the cluster component did. Done false with Error: it failed.
type MitigationOutcome struct {
	Done   bool   `json:"done"`
	Error  string `json:"error,omitempty"`
	Detail string `json:"detail,omitempty"`
}
