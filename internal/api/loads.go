package api

import "time"

// PathAgentLoads takes what a node's containers executed or loaded (POST,
// an agent token): issue 15's "in use at run time".
const PathAgentLoads = Prefix + "/agents/loads"

// Limits of a load report.
const (
	// MaxLoadReportPaths bounds the paths of one report (all containers).
	MaxLoadReportPaths = 10_000
	// MaxLoadReportContainers bounds the containers of one report, and of
	// its running list.
	MaxLoadReportContainers = 10_000
	// MaxLoadPathBytes bounds one path (PATH_MAX).
	MaxLoadPathBytes = 4096
	// MaxLoadReportBytes caps the request body.
	MaxLoadReportBytes = 8 << 20
)

// LoadReport is the body of POST /api/v1/agents/loads: the files the
// node's containers executed or opened for loading since the agent's last
// report (the sensor reports each file once per container), and the
// node's running containers. Host processes are never reported. The
// server keeps the loads per container, maps them to the image's packages
// and marks the image's vulnerabilities in use (docs/prioritisation.md).
type LoadReport struct {
	// Node is the reporting agent's node.
	Node       string          `json:"node"`
	Containers []LoadContainer `json:"containers,omitempty"`
	// Sync says Running lists every container running on the node now:
	// the server ends the node's containers it does not list (their loads
	// expire with them). Without Sync, Running is ignored.
	Sync    bool     `json:"sync,omitempty"`
	Running []string `json:"running,omitempty"`
}

// LoadContainer is one container's new loads.
type LoadContainer struct {
	// ID is the runtime's container ID; ImageDigest the manifest digest of
	// its image (sha256:<64 hex>), the key the server finds the image's
	// scan by.
	ID          string `json:"id"`
	Name        string `json:"name,omitempty"`
	Image       string `json:"image,omitempty"`
	ImageDigest string `json:"imageDigest"`
	Loads       []Load `json:"loads"`
}

// Load is one file a container executed or opened for loading.
type Load struct {
	// Path is the file's path as the container sees it.
	Path string    `json:"path"`
	Time time.Time `json:"time"`
}

// LoadReportResult answers a load report once it is stored.
type LoadReportResult struct {
	// Accepted counts new (container, path) pairs, Duplicates ones the
	// server had, Capped the paths over a container's cap (dropped).
	Accepted   int `json:"accepted"`
	Duplicates int `json:"duplicates"`
	Capped     int `json:"capped"`
	// Ended counts the containers the running list ended.
	Ended int `json:"ended"`
}
