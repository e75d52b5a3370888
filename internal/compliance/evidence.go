package compliance

import (
	"time"

	"mamori/internal/compliance/posture"
	"mamori/internal/model"
)

// Evidence is everything an assessment reads, gathered by the server's
// compliance service from the store and from the postures the cluster
// component and the agents report. A nil or empty field means its source
// has not reported: the controls that depend on it are "not assessed".
type Evidence struct {
	// Images are the stored images with their latest scan; nil when no
	// image was ever scanned.
	Images []ImageEvidence `json:"images,omitempty"`
	// VulnDBBuiltAt is when the server's current vulnerability database
	// was built (zero when the server has none).
	VulnDBBuiltAt time.Time `json:"vulnDBBuiltAt,omitzero"`
	// RematchedDBBuiltAt is the database every stored inventory was last
	// re-matched against (zero before the first re-match): an image's
	// vulnerabilities are current when its scan or the re-match used the
	// current database.
	RematchedDBBuiltAt time.Time `json:"rematchedDBBuiltAt,omitzero"`
	// Registries are the configured registries with their probes.
	Registries []RegistryEvidence `json:"registries,omitempty"`
	// Policies are the policies clusters enforce, one per cluster; nil
	// when no cluster enforces a policy.
	Policies []PolicyEvidence `json:"policies,omitempty"`
	// Clusters are the cluster components' postures; nil when no cluster
	// component has reported.
	Clusters []posture.Cluster `json:"clusters,omitempty"`
	// Nodes are the agents' node postures; nil when no agent has reported.
	Nodes []posture.Node `json:"nodes,omitempty"`
	// HostVulns are the server's matches of each node's host inventory,
	// by node name; nil when no host inventory was matched.
	HostVulns map[string][]model.Vulnerability `json:"hostVulns,omitempty"`
	// RuntimeEvents are the critical runtime events of the assessment
	// window.
	RuntimeEvents []EventEvidence `json:"runtimeEvents,omitempty"`
}

// ImageEvidence is one image and what its latest scan found.
type ImageEvidence struct {
	// Ref is the image's name as stored (registry/repository:tag or
	// @digest); Digest its manifest digest.
	Ref    string `json:"ref"`
	Digest string `json:"digest,omitempty"`
	// Registry is the registry host ("" for a local image).
	Registry string `json:"registry,omitempty"`
	Tag      string `json:"tag,omitempty"`
	// Link is the image's console path.
	Link string `json:"link,omitempty"`
	// BuiltAt is the image configuration's creation time (zero: unknown).
	BuiltAt   time.Time `json:"builtAt,omitzero"`
	ScannedAt time.Time `json:"scannedAt,omitzero"`
	// Scanners that ran in the latest scan ("vuln", "secret", "malware", "misconfig").
	Scanners []string `json:"scanners,omitempty"`
	// DBBuiltAt is the vulnerability DB the latest match used.
	DBBuiltAt time.Time `json:"dbBuiltAt,omitzero"`
	// FromRegistryScan is set for images found by a registry scan.
	FromRegistryScan bool `json:"fromRegistryScan,omitempty"`
	// Vulnerabilities and Findings of the latest scan (or their summary:
	// only ID, severity, fix state and controls are read).
	Vulnerabilities []VulnSummary  `json:"vulnerabilities,omitempty"`
	Findings        []FindingBrief `json:"findings,omitempty"`
	// Signature is the latest signature verification; nil when the image
	// was never verified.
	Signature *SignatureEvidence `json:"signature,omitempty"`
	// Running counts the containers running the image (cluster postures).
	Running int `json:"running,omitempty"`
}

// VulnSummary is what compliance reads of a vulnerability.
type VulnSummary struct {
	ID       string         `json:"id"`
	Package  string         `json:"package"`
	Version  string         `json:"version,omitempty"`
	Severity model.Severity `json:"severity"`
	Fixed    string         `json:"fixed,omitempty"`
}

// FindingBrief is what compliance reads of a finding.
type FindingBrief struct {
	Kind     model.FindingKind `json:"kind"`
	ID       string            `json:"id"`
	Title    string            `json:"title"`
	Severity model.Severity    `json:"severity"`
	Controls []string          `json:"controls,omitempty"`
	// Where is the finding's location, for people (a path, a pod).
	Where string `json:"where,omitempty"`
}

// SignatureEvidence is an image's signature verification result.
type SignatureEvidence struct {
	Verified bool `json:"verified"`
	// Required is set when the policy requires a signature for the image's
	// registry.
	Required bool `json:"required"`
	// Signer names the key or identity that verified ("key:sha256:…",
	// "identity:https://…@issuer").
	Signer     string    `json:"signer,omitempty"`
	Reason     string    `json:"reason,omitempty"`
	VerifiedAt time.Time `json:"verifiedAt,omitzero"`
}

// RegistryEvidence is a configured registry and its probe.
type RegistryEvidence struct {
	Name    string `json:"name"`
	Address string `json:"address"`
	Link    string `json:"link,omitempty"`
	// Private is set when the registry is configured with credentials:
	// its repositories are expected to refuse anonymous pulls.
	Private bool `json:"private"`
	// Probe is the latest probe; nil when the registry was never probed.
	Probe *RegistryProbe `json:"probe,omitempty"`
}

// RegistryProbe is what compliance/registry found about a registry.
type RegistryProbe struct {
	At time.Time `json:"at"`
	// TLS is set when the registry answered over TLS; CertValid when its
	// certificate verified against the roots (and the name matched).
	TLS       bool   `json:"tls"`
	CertValid bool   `json:"certValid"`
	CertError string `json:"certError,omitempty"`
	// CertExpires is the leaf certificate's NotAfter.
	CertExpires time.Time `json:"certExpires,omitzero"`
	// Anonymous is the outcome of an anonymous pull of each probed
	// repository: "refused" (401/403) or "allowed", by repository.
	Anonymous map[string]string `json:"anonymous,omitempty"`
	Error     string            `json:"error,omitempty"`
}

// PolicyEvidence summarises the policy a cluster enforces.
type PolicyEvidence struct {
	// Cluster enforces the policy.
	Cluster string `json:"cluster,omitempty"`
	Name    string `json:"name"`
	Version int    `json:"version,omitempty"`
	Link    string `json:"link,omitempty"`
	// Enforced is set when the policy blocks (admission in block mode).
	Enforced bool `json:"enforced"`
	// SignatureRules are the trusted-image rules: registries that require
	// a signature and who may sign.
	SignatureRules []SignatureRule `json:"signatureRules,omitempty"`
	// VulnGate is set when a rule blocks images by vulnerability severity.
	VulnGate bool `json:"vulnGate"`
}

// SignatureRule is "images from these registries must be signed by one of
// these keys / identities".
type SignatureRule struct {
	// Trust identifies the keys and identities (policy.SignatureRequirement.Trust):
	// verifications are stored under it.
	Trust      string   `json:"trust,omitempty"`
	Registries []string `json:"registries"`
	Keys       []string `json:"keys,omitempty"`
	Identities []string `json:"identities,omitempty"`
	Block      bool     `json:"block"`
}

// EventEvidence is a runtime event the assessment reads.
type EventEvidence struct {
	ID       string         `json:"id"`
	Time     time.Time      `json:"time"`
	Node     string         `json:"node,omitempty"`
	Rule     string         `json:"rule,omitempty"`
	Severity model.Severity `json:"severity"`
	// Action is what was done (log, block, terminate, isolate, ...).
	Action string `json:"action"`
	Link   string `json:"link,omitempty"`
}
