package api

import (
	"time"

	"mamori/internal/model"
)

// Health answers GET /healthz.
type Health struct {
	Status  string `json:"status"`
	Version string `json:"version"`
}

// Whoami answers GET /api/v1/whoami: the authenticated caller.
type Whoami struct {
	TokenID int64  `json:"tokenID"`
	Name    string `json:"name"`
	Role    string `json:"role"`
	Via     string `json:"via"`
	// Cluster is the cluster a cluster or agent token is bound to ("" otherwise).
	Cluster string `json:"cluster,omitempty"`
}

// ---------------------------------------------------------------------------
// Images and scans

// SeverityCounts counts vulnerability rows (vulnerability × package) by severity.
type SeverityCounts struct {
	Critical   int `json:"critical"`
	High       int `json:"high"`
	Medium     int `json:"medium"`
	Low        int `json:"low"`
	Negligible int `json:"negligible"`
	Unknown    int `json:"unknown"`
	// Fixable counts the rows with a known fixed version.
	Fixable int `json:"fixable"`
}

// FindingCounts counts an image's latest findings by kind.
type FindingCounts struct {
	Secret    int `json:"secret"`
	Malware   int `json:"malware"`
	Misconfig int `json:"misconfig"`
}

// ImageSummary is one image as listed.
type ImageSummary struct {
	ID   int64  `json:"id"`
	Name string `json:"name"`
	// Type is the target type (image, rootfs, fs, config).
	Type            string         `json:"type"`
	Digest          string         `json:"digest,omitempty"`
	ConfigDigest    string         `json:"configDigest,omitempty"`
	RepoTags        []string       `json:"repoTags,omitempty"`
	Platform        string         `json:"platform,omitempty"`
	OS              string         `json:"os,omitempty"`
	Size            int64          `json:"size,omitempty"`
	FirstSeen       time.Time      `json:"firstSeen"`
	LastScannedAt   time.Time      `json:"lastScannedAt"`
	LatestScanID    int64          `json:"latestScanID"`
	PackageCount    int            `json:"packageCount"`
	Vulnerabilities SeverityCounts `json:"vulnerabilities"`
	FindingCounts   FindingCounts  `json:"findingCounts"`
}

// ImagePage answers GET /api/v1/images.
type ImagePage struct {
	Images []ImageSummary `json:"images"`
	Total  int            `json:"total"`
}

// ImageDetail answers GET /api/v1/images/{id}: the image with its latest
// scan's inventory and findings.
type ImageDetail struct {
	ImageSummary
	Layers   []model.Layer   `json:"layers,omitempty"`
	OSInfo   *model.OS       `json:"osInfo,omitempty"`
	Tool     model.Tool      `json:"tool"`
	ScanID   string          `json:"scanID"`
	Scanners []string        `json:"scanners,omitempty"`
	Warnings []string        `json:"warnings,omitempty"`
	DB       *model.DBInfo   `json:"db,omitempty"`
	Packages []model.Package `json:"packages"`
	Findings []model.Finding `json:"findings"`
}

// ImageVulnerabilities answers GET /api/v1/images/{id}/vulnerabilities.
type ImageVulnerabilities struct {
	Vulnerabilities []model.Vulnerability `json:"vulnerabilities"`
	Total           int                   `json:"total"`
}

// ImageFindings answers GET /api/v1/images/{id}/findings.
type ImageFindings struct {
	Findings []model.Finding `json:"findings"`
	Total    int             `json:"total"`
}

// ScanRecord is one ingested scan.
type ScanRecord struct {
	ID              int64         `json:"id"`
	ImageID         int64         `json:"imageID"`
	ScanID          string        `json:"scanID"`
	TargetName      string        `json:"targetName"`
	CreatedAt       time.Time     `json:"createdAt"`
	IngestedAt      time.Time     `json:"ingestedAt"`
	Tool            model.Tool    `json:"tool"`
	Scanners        []string      `json:"scanners,omitempty"`
	Warnings        []string      `json:"warnings,omitempty"`
	DB              *model.DBInfo `json:"db,omitempty"`
	Packages        int           `json:"packages"`
	Vulnerabilities int           `json:"vulnerabilities"`
	Findings        int           `json:"findings"`
	Latest          bool          `json:"latest"`
}

// ScanPage answers GET /api/v1/scans.
type ScanPage struct {
	Scans []ScanRecord `json:"scans"`
	Total int          `json:"total"`
}

// Ingest statuses of a scan upload.
const (
	IngestCreated   = "created"
	IngestDuplicate = "duplicate"
	IngestStale     = "stale"
)

// IngestOutcome answers POST /api/v1/scans (201 created or stale, 200 duplicate).
type IngestOutcome struct {
	// Status is IngestCreated, IngestStale (recorded; a newer scan of the
	// image is shown) or IngestDuplicate (already stored; nothing changed).
	Status  string `json:"status"`
	ImageID int64  `json:"imageID"`
	ScanID  int64  `json:"scanID"`
	// Counts of what the scan carried.
	Packages        int `json:"packages"`
	Vulnerabilities int `json:"vulnerabilities"`
	Findings        int `json:"findings"`
	// Duplicate is true when this (target, scanID) was already stored.
	Duplicate bool `json:"duplicate"`
}

// ---------------------------------------------------------------------------
// Vulnerabilities

// VulnerabilitySummary is one vulnerability as listed, aggregated over all
// images' latest scans.
type VulnerabilitySummary struct {
	ID             string         `json:"id"`
	Aliases        []string       `json:"aliases,omitempty"`
	Severity       model.Severity `json:"severity"`
	CVSS           *float64       `json:"cvss,omitempty"`
	Summary        string         `json:"summary,omitempty"`
	Packages       []string       `json:"packages"`
	PackageCount   int            `json:"packageCount"`
	AffectedImages int            `json:"affectedImages"`
	Fixable        bool           `json:"fixable"`
	Published      time.Time      `json:"published,omitempty"`
	Modified       time.Time      `json:"modified,omitempty"`
	// KEV (CISA Known Exploited Vulnerabilities) and EPSS are absent when
	// unknown; Priority is the highest priority (0-100) of its rows.
	KEV      *model.KEV  `json:"kev,omitempty"`
	EPSS     *model.EPSS `json:"epss,omitempty"`
	Priority *float64    `json:"priority,omitempty"`
}

// VulnerabilityPage answers GET /api/v1/vulnerabilities.
type VulnerabilityPage struct {
	Vulnerabilities []VulnerabilitySummary `json:"vulnerabilities"`
	Total           int                    `json:"total"`
}

// VulnerabilityDetail answers GET /api/v1/vulnerabilities/{id}.
type VulnerabilityDetail struct {
	VulnerabilitySummary
	Details       string             `json:"details,omitempty"`
	References    []string           `json:"references,omitempty"`
	CVSSVectors   []model.CVSS       `json:"cvssVectors,omitempty"`
	DataSources   []string           `json:"dataSources,omitempty"`
	Affected      []AffectedPackage  `json:"affected"`
	AffectedTotal int                `json:"affectedTotal"`
	Workloads     []AffectedWorkload `json:"workloads"`
	// HostContainers are the running containers of an affected image as
	// the node agents report them (hosts without Kubernetes included).
	HostContainers []HostContainer `json:"hostContainers"`
}

// AffectedPackage is one affected package in one image.
type AffectedPackage struct {
	ImageID       int64            `json:"imageID"`
	ImageName     string           `json:"imageName"`
	ImageDigest   string           `json:"imageDigest,omitempty"`
	Package       model.PackageRef `json:"package"`
	FixedVersion  string           `json:"fixedVersion,omitempty"`
	Severity      model.Severity   `json:"severity"`
	DataSource    string           `json:"dataSource,omitempty"`
	LastScannedAt time.Time        `json:"lastScannedAt"`
	// SeveritySource names the record the severity was taken from when not
	// the vulnerability's own; Priority and InUse are the row's.
	SeveritySource string          `json:"severitySource,omitempty"`
	Priority       *model.Priority `json:"priority,omitempty"`
	InUse          *model.InUse    `json:"inUse,omitempty"`
}

// AffectedWorkload is one workload running an affected image.
type AffectedWorkload struct {
	Cluster      string    `json:"cluster"`
	Namespace    string    `json:"namespace"`
	Kind         string    `json:"kind"`
	Name         string    `json:"name"`
	Container    string    `json:"container"`
	ImageID      int64     `json:"imageID"`
	LastDetected time.Time `json:"lastDetected"`
}

// ---------------------------------------------------------------------------
// Registries

// TagFilter selects tags: those matching one of Include (globs; none = all)
// and Regex (RE2), then the Latest highest in version order.
type TagFilter struct {
	Include []string `json:"include,omitempty"`
	Regex   string   `json:"regex,omitempty"`
	Latest  int      `json:"latest,omitempty"`
}

// RegistryRequest creates (POST /api/v1/registries) or replaces (PUT
// /api/v1/registries/{id}) a registry's configuration.
type RegistryRequest struct {
	Name     string `json:"name"`
	URL      string `json:"url"`
	Username string `json:"username,omitempty"`
	// Password: absent (nil) keeps the stored one on update, "" clears it.
	// It is encrypted at rest and never returned.
	Password *string `json:"password,omitempty"`
	// Repositories are globs; none = every repository.
	Repositories []string  `json:"repositories,omitempty"`
	Tags         TagFilter `json:"tags"`
	// Schedule is a Go duration ("6h"); "" or "0" = manual syncs only.
	Schedule string `json:"schedule,omitempty"`
	// Insecure allows plain HTTP and unverified TLS certificates.
	Insecure bool `json:"insecure,omitempty"`
}

// RegistrySync is the outcome of a registry's latest sync.
type RegistrySync struct {
	At     time.Time `json:"at"`
	Status string    `json:"status,omitempty"`
	Error  string    `json:"error,omitempty"`
}

// Registry is a registry as the API shows it: never the password.
type Registry struct {
	ID           int64     `json:"id"`
	Name         string    `json:"name"`
	URL          string    `json:"url"`
	Username     string    `json:"username,omitempty"`
	PasswordSet  bool      `json:"passwordSet"`
	Repositories []string  `json:"repositories"`
	Tags         TagFilter `json:"tags"`
	// RepositoryFilter and TagFilter are the same filters in text form
	// (what the console shows).
	RepositoryFilter string `json:"repositoryFilter"`
	TagFilter        string `json:"tagFilter"`
	// Schedule is the interval as a Go duration ("6h0m0s"), "" when manual.
	Schedule  string       `json:"schedule"`
	Insecure  bool         `json:"insecure"`
	CreatedAt time.Time    `json:"createdAt"`
	UpdatedAt time.Time    `json:"updatedAt"`
	LastSync  RegistrySync `json:"lastSync"`
	// Syncing is true while a sync runs in this server process.
	Syncing bool `json:"syncing"`
}

// RegistryList answers GET /api/v1/registries.
type RegistryList struct {
	Registries []Registry `json:"registries"`
}

// Started answers the routes that start background work (registry sync,
// re-match): Status is "started", or "running" when one already runs.
type Started struct {
	Status   string `json:"status"`
	Registry int64  `json:"registry,omitempty"`
}

// ---------------------------------------------------------------------------
// Tokens

// Token is an API token as listed: never the secret, nor its hash.
type Token struct {
	ID   int64  `json:"id"`
	Name string `json:"name"`
	Role string `json:"role"`
	// Cluster binds a cluster or agent token to a cluster ("" otherwise).
	Cluster    string    `json:"cluster,omitempty"`
	Prefix     string    `json:"prefix"`
	CreatedAt  time.Time `json:"createdAt"`
	LastUsedAt time.Time `json:"lastUsedAt,omitempty"`
	ExpiresAt  time.Time `json:"expiresAt,omitempty"`
	RevokedAt  time.Time `json:"revokedAt,omitempty"`
}

// TokenList answers GET /api/v1/tokens.
type TokenList struct {
	Tokens []Token `json:"tokens"`
}

// TokenRequest creates a token (POST /api/v1/tokens).
type TokenRequest struct {
	Name string `json:"name"`
	// Role is admin, operator, viewer, cluster or agent.
	Role string `json:"role"`
	// Cluster binds a cluster token (required) or an agent token (optional:
	// agents of bare hosts have none) to a registered cluster.
	Cluster string `json:"cluster,omitempty"`
	// ExpiresIn is a Go duration ("720h"); "" never expires.
	ExpiresIn string `json:"expiresIn,omitempty"`
}

// TokenCreated answers POST /api/v1/tokens: the stored token plus, this
// once, the secret.
type TokenCreated struct {
	ID        int64     `json:"id"`
	Name      string    `json:"name"`
	Role      string    `json:"role"`
	Cluster   string    `json:"cluster,omitempty"`
	Prefix    string    `json:"prefix"`
	CreatedAt time.Time `json:"createdAt"`
	ExpiresAt time.Time `json:"expiresAt,omitzero"`
	// Token is the secret, returned only here, once.
	Token string `json:"token"`
}

// ---------------------------------------------------------------------------
// Vulnerability database

// DBInfo answers GET /api/v1/db.
type DBInfo struct {
	// Available is false when the server has no vulnerability DB.
	Available  bool           `json:"available"`
	BuiltAt    time.Time      `json:"builtAt,omitzero"`
	Records    int            `json:"records"`
	Ecosystems map[string]int `json:"ecosystems,omitempty"`
	// MatchedBuiltAt is the built-at of the DB the stored vulnerabilities
	// were last re-matched against ("" before the first re-match).
	MatchedBuiltAt string        `json:"matchedBuiltAt,omitempty"`
	Rematch        RematchStatus `json:"rematch"`
}

// RematchStatus describes the latest re-match.
type RematchStatus struct {
	Running    bool      `json:"running"`
	StartedAt  time.Time `json:"startedAt,omitzero"`
	FinishedAt time.Time `json:"finishedAt,omitzero"`
	// Images re-matched, Skipped (a newer scan arrived meanwhile, or deleted).
	Images  int    `json:"images"`
	Skipped int    `json:"skipped"`
	Error   string `json:"error,omitempty"`
	// DBBuiltAt is the built-at of the DB matched against.
	DBBuiltAt time.Time `json:"dbBuiltAt,omitzero"`
}
