package api

import "time"

// Policies (docs/policies.md): documents applied with POST /api/v1/policies
// (a new version when the content changed), read, listed with their
// versions, deleted, and assigned to clusters (one policy per cluster). The
// cluster component and the node agents fetch their cluster's policy.

// Policy paths.
const (
	PathPolicies            = Prefix + "/policies"
	PathPolicy              = Prefix + "/policies/{name}"
	PathPolicyVersions      = Prefix + "/policies/{name}/versions"
	PathPolicyVersion       = Prefix + "/policies/{name}/versions/{version}"
	PathClusterPolicyAssign = Prefix + "/clusters/{id}/policy"
	PathClusterPolicy       = Prefix + "/clusters/policy"
	PathAgentPolicy         = Prefix + "/agents/policy"
	// MaxPolicyBytes caps a policy apply body: the document (at most 1 MiB,
	// internal/policy.MaxPolicySize) escaped in JSON.
	MaxPolicyBytes int64 = 8 << 20
)

// PolicyApply is the body of POST /api/v1/policies: a policy document
// (YAML or JSON) and, for error messages, the name of its file.
type PolicyApply struct {
	File     string `json:"file,omitempty"`
	Document string `json:"document"`
}

// PolicyApplied answers POST /api/v1/policies: the policy at the version
// now in force. Created: the policy is new; Changed: a new version was
// stored (false when the document equals the latest version).
type PolicyApplied struct {
	Policy  Policy `json:"policy"`
	Created bool   `json:"created"`
	Changed bool   `json:"changed"`
}

// Policy is one version of a policy, with what its document says.
type Policy struct {
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
	// Version is the version shown; LatestVersion the policy's newest.
	Version       int       `json:"version"`
	LatestVersion int       `json:"latestVersion"`
	Digest        string    `json:"digest"`
	CreatedAt     time.Time `json:"createdAt"`
	UpdatedAt     time.Time `json:"updatedAt"`
	// VersionCreatedAt and CreatedBy are the shown version's.
	VersionCreatedAt time.Time `json:"versionCreatedAt"`
	CreatedBy        string    `json:"createdBy,omitempty"`
	// UnknownImages is scan, allow or block; OnScanFailure (scan only)
	// allow or block.
	UnknownImages string            `json:"unknownImages"`
	OnScanFailure string            `json:"onScanFailure,omitempty"`
	Rules         []PolicyRule      `json:"rules"`
	Exceptions    []PolicyException `json:"exceptions"`
	Runtime       []PolicyRuleset   `json:"runtime"`
	// Clusters enforce the policy's latest version.
	Clusters []string `json:"clusters"`
	// Document is the version's document as applied.
	Document string `json:"document"`
	// ParseError is set when a stored document no longer parses (written
	// by another mamori version); the lists are then empty.
	ParseError string `json:"parseError,omitempty"`
	// Warnings are about the document (a criterion that cannot match yet).
	Warnings []string `json:"warnings,omitempty"`
}

// PolicyRule is one admission or compliance rule.
type PolicyRule struct {
	// Section is admission or compliance.
	Section string `json:"section"`
	Name    string `json:"name"`
	Action  string `json:"action"`
	// Criterion is the check ("podSecurity (baseline)", "vulnerabilities", "cel" ...).
	Criterion   string `json:"criterion"`
	Description string `json:"description,omitempty"`
	// Scope is where the rule applies ("" = everywhere).
	Scope string `json:"scope,omitempty"`
}

// PolicyException is one exception of a policy.
type PolicyException struct {
	Name    string `json:"name"`
	Reason  string `json:"reason"`
	Expires string `json:"expires,omitempty"`
	Expired bool   `json:"expired"`
	Scope   string `json:"scope"`
}

// PolicyRuleset is one runtime ruleset reference.
type PolicyRuleset struct {
	Ruleset string            `json:"ruleset"`
	Action  string            `json:"action,omitempty"`
	Scope   string            `json:"scope,omitempty"`
	Rules   map[string]string `json:"rules,omitempty"`
}

// PolicySummary is one policy in GET /api/v1/policies.
type PolicySummary struct {
	Name        string    `json:"name"`
	Description string    `json:"description,omitempty"`
	Version     int       `json:"version"`
	UpdatedAt   time.Time `json:"updatedAt"`
	Rules       int       `json:"rules"`
	Exceptions  int       `json:"exceptions"`
	// ExpiredExceptions counts the exceptions past their expiry.
	ExpiredExceptions int      `json:"expiredExceptions"`
	Clusters          []string `json:"clusters"`
	ParseError        string   `json:"parseError,omitempty"`
}

// PolicyList answers GET /api/v1/policies.
type PolicyList struct {
	Policies []PolicySummary `json:"policies"`
}

// PolicyVersion is one version in GET /api/v1/policies/{name}/versions.
type PolicyVersion struct {
	Version   int       `json:"version"`
	Digest    string    `json:"digest"`
	CreatedAt time.Time `json:"createdAt"`
	CreatedBy string    `json:"createdBy,omitempty"`
}

// PolicyVersionList answers GET /api/v1/policies/{name}/versions, newest first.
type PolicyVersionList struct {
	Policy   string          `json:"policy"`
	Versions []PolicyVersion `json:"versions"`
}

// ClusterPolicyRequest is the body of PUT /api/v1/clusters/{id}/policy:
// the policy the cluster enforces ("" for none).
type ClusterPolicyRequest struct {
	Policy string `json:"policy"`
}

// ComponentPolicy answers GET /api/v1/clusters/policy and
// /api/v1/agents/policy: the latest version of the policy the caller's
// cluster enforces, to load with internal/policy.Parse and Compile.
type ComponentPolicy struct {
	Name     string `json:"name"`
	Version  int    `json:"version"`
	Digest   string `json:"digest"`
	Document string `json:"document"`
}
