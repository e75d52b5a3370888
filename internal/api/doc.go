// Package api is the wire contract of mamori server's JSON API, version 1
// (served under Prefix, documented in docs/openapi.yaml): the request and
// response types every route reads and writes, the route paths, and the
// limits a client must respect. The typed client is in api/client.
//
// The types here are the wire: their JSON tags are the documented schema
// (a test checks them against docs/openapi.yaml both ways). The server
// converts its store rows to them; components (the scan CLI, the cluster
// component, the node agent) use them through the client. The package
// imports only the model, never the store or the server, so that a
// component links the API without linking the server.
//
// Compatibility: within v1, fields are only added. A change to the meaning
// of a field, or a removal, is a new version (a new Prefix).
package api

// Version is the API version; Prefix the path every API route starts with.
const (
	Version = "v1"
	Prefix  = "/api/" + Version
)

// Route paths (net/http patterns: {id} is a path parameter).
const (
	PathHealth = "/healthz"
	PathWhoami = Prefix + "/whoami"
	PathDB     = Prefix + "/db"

	PathImages               = Prefix + "/images"
	PathImage                = Prefix + "/images/{id}"
	PathImageVulnerabilities = Prefix + "/images/{id}/vulnerabilities"
	PathImageFindings        = Prefix + "/images/{id}/findings"
	PathVulnerabilities      = Prefix + "/vulnerabilities"
	PathVulnerability        = Prefix + "/vulnerabilities/{id}"
	PathScans                = Prefix + "/scans"

	PathRegistries   = Prefix + "/registries"
	PathRegistry     = Prefix + "/registries/{id}"
	PathRegistrySync = Prefix + "/registries/{id}/sync"
	PathRematch      = Prefix + "/rematch"

	PathTokens = Prefix + "/tokens"
	PathToken  = Prefix + "/tokens/{id}"

	PathEvents = Prefix + "/events"
	PathMatch  = Prefix + "/match"

	PathClusters         = Prefix + "/clusters"
	PathCluster          = Prefix + "/clusters/{id}"
	PathClusterRegister  = Prefix + "/clusters/register"
	PathClusterHeartbeat = Prefix + "/clusters/heartbeat"
	PathClusterConfig    = Prefix + "/clusters/config"

	PathAgents         = Prefix + "/agents"
	PathAgent          = Prefix + "/agents/{id}"
	PathAgentRegister  = Prefix + "/agents/register"
	PathAgentHeartbeat = Prefix + "/agents/heartbeat"
	PathAgentConfig    = Prefix + "/agents/config"
)

// Limits of the API, each with its reason. The server refuses what is over
// them; the client splits its batches to stay under them.
const (
	// MaxRequestBytes caps every request body but scan and event uploads:
	// registry, token and registration JSON is a few hundred bytes.
	MaxRequestBytes int64 = 1 << 20
	// MaxScanBytes caps an uploaded scan result (compressed and
	// decompressed). A large image's result is tens of MiB; 256 MiB leaves
	// room and bounds the decoder's memory.
	MaxScanBytes int64 = 256 << 20
	// MaxEventBatch is the most events one POST /api/v1/events carries: a
	// batch is one store transaction, and a node agent flushes every few
	// seconds, far below this.
	MaxEventBatch = 1000
	// MaxEventBytes caps an event batch body (compressed and decompressed):
	// a typical event is under 2 KiB, a batch of MaxEventBatch well under
	// this; a pathological one (long command lines) is split by the client.
	MaxEventBytes int64 = 16 << 20
	// MaxInventoryBytes caps an inventory sent for matching (compressed and
	// decompressed): a large image or node has thousands of packages, a
	// few MiB of JSON.
	MaxInventoryBytes int64 = 64 << 20
	// MaxMatchPackages bounds the packages of one match request.
	MaxMatchPackages = 100_000
	// DefaultLimit and MaxLimit bound list pages.
	DefaultLimit = 50
	MaxLimit     = 1000
)

// Error is every error answer: {"error": "message"} with a 4xx or 5xx status.
type Error struct {
	Error string `json:"error"`
}
