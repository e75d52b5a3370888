package api

import "time"

// Compliance routes (docs/compliance.md): the standards report, its
// history, an explicit re-assessment, and the postures the cluster
// components and the node agents report.
const (
	// PathComplianceReport serves a compliance report: ?standard=
	// (nist-800-190, the default; cis-docker; cis-kubernetes) and
	// ?format=json|html|pdf. The JSON body is the report of
	// docs/compliance.md (internal/compliance.Report, schemaVersion 1).
	PathComplianceReport = Prefix + "/compliance/report"
	// PathComplianceHistory lists a standard's assessment snapshots
	// (?standard=, ?limit=), newest first: the score over time.
	PathComplianceHistory = Prefix + "/compliance/history"
	// PathComplianceSnapshot serves a stored snapshot's report
	// (?format=json|html|pdf).
	PathComplianceSnapshot = Prefix + "/compliance/snapshots/{id}"
	// PathComplianceAssess re-assesses every standard now.
	PathComplianceAssess = Prefix + "/compliance/assess"
	// PathAgentPosture takes a node agent's posture
	// (internal/compliance/posture.Node, collected by compliance/node).
	PathAgentPosture = Prefix + "/agents/posture"
	// PathClusterPosture takes a cluster component's posture
	// (posture.Cluster, collected by compliance/kube).
	PathClusterPosture = Prefix + "/clusters/posture"
)

// Compliance report query parameters.
const (
	ComplianceParamStandard = "standard"
	ComplianceParamFormat   = "format"
	ComplianceParamLimit    = "limit"
)

// Limits of the posture routes, each with its reason.
const (
	// MaxNodePostureBytes caps a node posture: the host inventory
	// (MaxInventoryBytes) with the node's settings beside it.
	MaxNodePostureBytes = MaxInventoryBytes + 8<<20
	// MaxClusterPostureBytes caps a cluster posture: 10,000 pods of a few
	// KiB each (images and Pod Security findings).
	MaxClusterPostureBytes int64 = 64 << 20
)

// PostureResult answers a node posture: what the server matched of the
// node's host inventory.
type PostureResult struct {
	// Matched is false when the server has no vulnerability database yet
	// (the inventory is matched when it has one).
	Matched             bool `json:"matched"`
	HostPackages        int  `json:"hostPackages"`
	HostVulnerabilities int  `json:"hostVulnerabilities"`
}

// ComplianceSummary counts a standard's (or a group's) controls by
// status; Score is pass / (pass + fail) in percent, -1 when nothing was
// assessed.
type ComplianceSummary struct {
	Group         string  `json:"group,omitempty"`
	Pass          int     `json:"pass"`
	Fail          int     `json:"fail"`
	NotApplicable int     `json:"notApplicable"`
	NotAssessed   int     `json:"notAssessed"`
	Score         float64 `json:"score"`
}

// ComplianceSnapshot is one stored assessment of a standard.
type ComplianceSnapshot struct {
	ID          int64               `json:"id"`
	Standard    string              `json:"standard"`
	GeneratedAt time.Time           `json:"generatedAt"`
	Cause       string              `json:"cause,omitempty"`
	Summary     ComplianceSummary   `json:"summary"`
	Groups      []ComplianceSummary `json:"groups"`
	// Stored is false in an assess answer when the outcome equalled the
	// previous snapshot's (nothing new was stored).
	Stored bool `json:"stored"`
}

// ComplianceHistory answers GET /api/v1/compliance/history.
type ComplianceHistory struct {
	Standard  string               `json:"standard"`
	Snapshots []ComplianceSnapshot `json:"snapshots"`
}

// ComplianceAssessed answers POST /api/v1/compliance/assess: one snapshot
// per standard.
type ComplianceAssessed struct {
	Snapshots []ComplianceSnapshot `json:"snapshots"`
}
