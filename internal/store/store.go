// Package store is the persistent store of mamori server: scanned images and
// their latest inventory, vulnerabilities and findings, registries, API
// tokens, console sessions and server metadata.
//
// One Store interface has two engines behind it, chosen by Open from the DSN:
// embedded SQLite (the default: a file in the server's data dir, WAL,
// synchronous=FULL, foreign keys on; pure Go, no cgo) and PostgreSQL (pgx).
// Both share one migration library (goose) with one migration set per dialect
// embedded in the binary; Open migrates an older schema and refuses a newer one
// (ErrSchemaTooNew).
//
// Every write that is acknowledged (returned nil) is committed and durable;
// every multi-row write (an ingest, a re-match) is one transaction, so a crash
// or an error leaves either all of it or none of it.
//
// Times are stored as UTC with microsecond precision; a zero time.Time means
// "never" / "not set". Secrets (registry passwords, tokens, session IDs) are
// never stored in the clear: the caller encrypts or hashes them and the store
// keeps bytes only.
//
// The store's row types carry no JSON tags: they are not a wire format. The
// API serves the types of package api, converted from these rows.
package store

import (
	"context"
	"errors"
	"time"

	"mamori/internal/model"
)

// Sentinel errors. Errors returned by the store wrap one of these when the
// condition applies; test with errors.Is.
var (
	// ErrNotFound: the image, vulnerability, registry, token, session or meta
	// key does not exist (or, for a token, was revoked; for a session, expired).
	ErrNotFound = errors.New("store: not found")
	// ErrConflict: a unique key is already taken (registry name, token hash, session ID hash).
	ErrConflict = errors.New("store: already exists")
	// ErrInvalid: the input is not acceptable (no target name, unknown
	// severity or finding kind, bad role, empty hash ...). Nothing was stored.
	ErrInvalid = errors.New("store: invalid input")
	// ErrSchemaTooNew: the database was migrated by a newer mamori than this
	// binary; Open refuses it rather than run against a schema it does not know.
	ErrSchemaTooNew = errors.New("store: database schema is newer than this mamori")
	// ErrStale: ReplaceVulnerabilities was given an InventoryRef whose scan is
	// no longer the image's latest (a newer scan was ingested meanwhile).
	ErrStale = errors.New("store: inventory is no longer the image's latest")
)

// Store is the whole store. It is safe for concurrent use.
type Store interface {
	ImageStore
	VulnerabilityStore
	RegistryStore
	TokenStore
	SessionStore
	MetaStore
	EventStore
	ClusterStore
	PolicyStore
	ImageRefStore
	InventoryStore
	MitigationStore
	ComplianceStore
	HostStore
	AssessmentStore
	LoadStore
	NodeContainerStore

	// Engine names the engine: "sqlite" or "postgres".
	Engine() string
	// SchemaVersion is the migration version the database is at.
	SchemaVersion(ctx context.Context) (int64, error)
	// Close releases the database. The Store must not be used afterwards.
	Close() error
}

// Pagination defaults and caps. A zero Limit means DefaultLimit; a Limit above
// MaxLimit is lowered to MaxLimit so that no request can ask for the whole table.
const (
	DefaultLimit = 50
	MaxLimit     = 1000
)

// Page selects a window of a sorted list: Offset rows skipped, at most Limit returned.
type Page struct {
	Limit  int
	Offset int
}

// ---------------------------------------------------------------------------
// Images and scans

// ImageStore keeps scanned targets (images, and file-system targets by name),
// their scans, and the latest scan's inventory, vulnerabilities and findings.
type ImageStore interface {
	// IngestScan stores one scan result in one transaction. The target is
	// identified by its manifest digest (Target.Digest) for images, else by
	// Target.Type and Target.Name. Re-ingesting the same (target, ScanID)
	// stores nothing and reports IngestDuplicate. A scan older (CreatedAt)
	// than the image's latest is recorded in the scan history only
	// (IngestStale); otherwise it becomes the latest and replaces the image's
	// packages, vulnerabilities and findings. An invalid result (no ScanID,
	// no target name, unknown severity or kind ...) is refused with ErrInvalid.
	IngestScan(ctx context.Context, res *model.Result) (IngestOutcome, error)
	// ListImages lists images with their latest scan's counts.
	ListImages(ctx context.Context, f ImageFilter) (ImagePage, error)
	// GetImage returns one image with its latest inventory and findings.
	GetImage(ctx context.Context, id int64) (*ImageDetail, error)
	// DeleteImage removes an image, its scans and everything they stored.
	DeleteImage(ctx context.Context, id int64) error
	// ListImageVulnerabilities returns the latest vulnerability rows (one per
	// vulnerability × package) of one image, worst severity first.
	ListImageVulnerabilities(ctx context.Context, imageID int64) ([]model.Vulnerability, error)
	// ListFindings returns the latest findings of one image, of one kind or of
	// every kind when kind is "", worst severity first.
	ListFindings(ctx context.Context, imageID int64, kind model.FindingKind) ([]model.Finding, error)
	// ListScans lists recorded scans, newest first (all images when ImageID is 0).
	ListScans(ctx context.Context, f ScanFilter) (ScanPage, error)

	// ListInventories calls fn with every image's latest inventory, one image
	// at a time, in image ID order, without holding a transaction across
	// calls: fn may write to the store (ReplaceVulnerabilities). Images
	// ingested during the walk may or may not be visited. An error from fn
	// stops the walk and is returned.
	ListInventories(ctx context.Context, fn func(ref InventoryRef, inv *model.Inventory) error) error
	// ReplaceVulnerabilities replaces the vulnerabilities of ref's image with
	// vulns (a re-match of its stored inventory against a new vulnerability
	// DB), in one transaction. It returns ErrStale, changing nothing, when
	// ref.ScanID is no longer the image's latest scan, and ErrNotFound when
	// the image is gone.
	ReplaceVulnerabilities(ctx context.Context, ref InventoryRef, vulns []model.Vulnerability) error
	// ReplaceMatches is ReplaceVulnerabilities that also replaces, in the
	// same transaction and under the same ErrStale/ErrNotFound rules, the
	// image's malware findings made by matching (Kind malware, Engine
	// model.EngineOSV: OSV MAL-* records) with malware, leaving every other
	// finding (clamd's, YARA's, the hash lists') as the scan stored it, and
	// updates the image's malware count. A re-match uses it.
	ReplaceMatches(ctx context.Context, ref InventoryRef, vulns []model.Vulnerability, malware []model.Finding) error
}

// IngestStatus says what IngestScan did.
type IngestStatus string

const (
	// IngestCreated: the scan was stored and is now the image's latest.
	IngestCreated IngestStatus = "created"
	// IngestDuplicate: this scan ID was already stored for this target; nothing changed.
	IngestDuplicate IngestStatus = "duplicate"
	// IngestStale: the scan was recorded but is older than the image's latest
	// scan, whose data the image keeps showing.
	IngestStale IngestStatus = "stale"
)

// IngestOutcome is the result of IngestScan.
type IngestOutcome struct {
	Status IngestStatus
	// ImageID is the stored image's ID, ScanID the stored scan's row ID.
	ImageID int64
	ScanID  int64
	// Counts of what the scan carried.
	Packages        int
	Vulnerabilities int
	Findings        int
}

// InventoryRef names one stored inventory: an image and the scan it came from.
type InventoryRef struct {
	ImageID int64
	ScanID  int64
	// Digest is the image's manifest digest, when it is known by one.
	Digest string
}

// SeverityCounts counts vulnerability rows (vulnerability × package) by severity.
type SeverityCounts struct {
	Critical   int
	High       int
	Medium     int
	Low        int
	Negligible int
	Unknown    int
	// Fixable counts the rows with a known fixed version.
	Fixable int
}

// Total is the number of vulnerability rows.
func (c SeverityCounts) Total() int {
	return c.Critical + c.High + c.Medium + c.Low + c.Negligible + c.Unknown
}

// FindingCounts counts an image's latest findings by kind.
type FindingCounts struct {
	Secret    int
	Malware   int
	Misconfig int
}

// ImageSummary is one image as listed.
type ImageSummary struct {
	ID int64
	// Name is the reference the latest scan was given (image ref, path).
	Name string
	// Type is the target type (model.TargetImage, TargetRootFS, TargetFS ...).
	Type string
	// Digest is the manifest digest; ConfigDigest the image ID (config digest).
	Digest       string
	ConfigDigest string
	RepoTags     []string
	Platform     string
	// OS is the detected OS's pretty name ("Debian GNU/Linux 12 (bookworm)"), or "".
	OS   string
	Size int64
	// FirstSeen is when the image was first ingested; LastScannedAt is the
	// CreatedAt of its latest scan.
	FirstSeen     time.Time
	LastScannedAt time.Time
	LatestScanID  int64
	// PackageCount counts the latest inventory's packages.
	PackageCount    int
	Vulnerabilities SeverityCounts
	FindingCounts   FindingCounts
}

// ImageSort orders ListImages.
type ImageSort string

const (
	// ImageSortLastScanned (default): most recently scanned first.
	ImageSortLastScanned ImageSort = "lastScanned"
	// ImageSortName: by name, then digest.
	ImageSortName ImageSort = "name"
	// ImageSortRisk: most critical, then high, then medium rows first.
	ImageSortRisk ImageSort = "risk"
)

// ImageFilter selects and orders images.
type ImageFilter struct {
	// Query matches a substring of the name or digest, case-insensitively.
	Query string
	Sort  ImageSort
	// Reverse inverts the sort's natural direction.
	Reverse bool
	Page
}

// ImagePage is a page of images and the number of images the filter matches.
type ImagePage struct {
	Images []ImageSummary
	Total  int
}

// ImageDetail is one image with its latest scan's content.
type ImageDetail struct {
	ImageSummary
	Layers   []model.Layer
	OSInfo   *model.OS
	Tool     model.Tool
	ScanID   string
	Scanners []string
	Warnings []string
	DB       *model.DBInfo
	// Packages are sorted as model.SortPackages sorts them.
	Packages []model.Package
	Findings []model.Finding
}

// ScanRecord is one ingested scan.
type ScanRecord struct {
	ID      int64
	ImageID int64
	// ScanID is the scanner's own scan ID (model.Result.ScanID).
	ScanID     string
	TargetName string
	CreatedAt  time.Time
	IngestedAt time.Time
	Tool       model.Tool
	Scanners   []string
	Warnings   []string
	DB         *model.DBInfo
	// Counts of what the scan carried when ingested.
	Packages        int
	Vulnerabilities int
	Findings        int
	// Latest is true for the scan the image's views show.
	Latest bool
}

// ScanFilter selects scans.
type ScanFilter struct {
	// ImageID restricts to one image; 0 lists all.
	ImageID int64
	Page
}

// ScanPage is a page of scans and the number the filter matches.
type ScanPage struct {
	Scans []ScanRecord
	Total int
}

// ---------------------------------------------------------------------------
// Vulnerabilities

// VulnerabilityStore answers the vulnerability views over all images' latest
// scans: one entry per vulnerability ID, aggregated over images and packages.
type VulnerabilityStore interface {
	// ListVulnerabilities lists the vulnerabilities that affect at least one
	// image, filtered and sorted, with the total the filter matches.
	ListVulnerabilities(ctx context.Context, f VulnerabilityFilter) (VulnerabilityPage, error)
	// GetVulnerability returns one vulnerability by ID (or by an alias when
	// no ID matches) with the page of affected (image, package) rows.
	GetVulnerability(ctx context.Context, id string, affected Page) (*VulnerabilityDetail, error)
}

// VulnerabilitySort orders ListVulnerabilities.
type VulnerabilitySort string

const (
	// VulnSortSeverity (default): worst severity first, then highest CVSS, then ID.
	VulnSortSeverity VulnerabilitySort = "severity"
	// VulnSortID: by ID ascending.
	VulnSortID VulnerabilitySort = "id"
	// VulnSortPackage: by the first affected package name ascending, then ID.
	VulnSortPackage VulnerabilitySort = "package"
	// VulnSortImages: most affected images first, then severity, then ID.
	VulnSortImages VulnerabilitySort = "images"
	// VulnSortCVSS: highest CVSS first (none last), then ID.
	VulnSortCVSS VulnerabilitySort = "cvss"
	// VulnSortPriority: highest priority first (internal/priority; none
	// last), then severity, CVSS and ID.
	VulnSortPriority VulnerabilitySort = "priority"
)

// VulnerabilityFilter selects and orders vulnerabilities. Zero fields do not filter.
type VulnerabilityFilter struct {
	// Query matches a substring of the ID, of an alias, or of an affected
	// package name, case-insensitively.
	Query string
	// Package matches a substring of an affected package name only.
	Package string
	// Severities keeps only these severities (any of them).
	Severities []model.Severity
	// CVSSMin / CVSSMax bound the highest CVSS base score (inclusive); a
	// vulnerability without CVSS never passes a CVSS bound.
	CVSSMin *float64
	CVSSMax *float64
	// FixableOnly keeps vulnerabilities with a known fixed version (in the
	// image given by ImageID, when set).
	FixableOnly bool
	// KnownExploited keeps vulnerabilities in CISA's KEV catalogue;
	// EPSSMin those whose EPSS probability is at least this (0-1).
	KnownExploited bool
	EPSSMin        *float64
	// ImageID keeps vulnerabilities of this image's latest scan; 0 = all images.
	ImageID int64
	// Running keeps vulnerabilities of images that run now (the runtime
	// vulnerability view): in a container the cluster components report,
	// or one a node agent reported within NodeContainerTTL (a bare host's
	// too), in Cluster when it is not empty.
	Running bool
	Cluster string
	// InUse keeps vulnerabilities whose package a running container
	// executed or loaded, as the node agents report it (an image row
	// marked in use; of the image given by ImageID, when set).
	InUse bool
	Sort  VulnerabilitySort
	// Reverse inverts the sort's natural direction.
	Reverse bool
	Page
}

// VulnerabilitySummary is one vulnerability as listed, aggregated over all
// images' latest scans.
type VulnerabilitySummary struct {
	ID      string
	Aliases []string
	// Severity is the worst severity any affected row reports.
	Severity model.Severity
	// CVSS is the highest CVSS base score of the advisory, nil when it has none.
	CVSS    *float64
	Summary string
	// Packages are the distinct affected package names (sorted, at most
	// MaxSummaryPackages); PackageCount counts them all.
	Packages     []string
	PackageCount int
	// AffectedImages counts the images whose latest scan has it.
	AffectedImages int
	// Fixable is true when a fixed version is known for at least one affected row.
	Fixable   bool
	Published time.Time
	Modified  time.Time
	// KEV and EPSS are the exploit intelligence of the vulnerability, nil
	// when unknown; Priority the highest priority of its rows as last
	// written, nil when none has one.
	KEV      *model.KEV
	EPSS     *model.EPSS
	Priority *float64
}

// MaxSummaryPackages caps VulnerabilitySummary.Packages (a kernel CVE can name
// dozens of binary packages; the list view shows a few and the count).
const MaxSummaryPackages = 5

// VulnerabilityPage is a page of vulnerabilities and the number the filter matches.
type VulnerabilityPage struct {
	Vulnerabilities []VulnerabilitySummary
	Total           int
}

// VulnerabilityDetail is one vulnerability with its advisory text and where it is.
type VulnerabilityDetail struct {
	VulnerabilitySummary
	Details     string
	References  []string
	CVSSVectors []model.CVSS
	// DataSources are the OSV ecosystems the advisory matched in ("Debian:12", "npm").
	DataSources []string
	// Affected is the requested page of (image, package) rows, ordered by
	// image name then package; AffectedTotal counts them all.
	Affected      []AffectedPackage
	AffectedTotal int
	// Workloads are the running workloads using an affected image, as the
	// cluster components report them (one per workload and container).
	Workloads []AffectedWorkload
	// HostContainers are the running containers using an affected image,
	// as the node agents report them (NodeContainerStore): hosts without
	// Kubernetes too.
	HostContainers []NodeContainer
}

// AffectedPackage is one affected package in one image.
type AffectedPackage struct {
	ImageID       int64
	ImageName     string
	ImageDigest   string
	Package       model.PackageRef
	FixedVersion  string
	Severity      model.Severity
	DataSource    string
	LastScannedAt time.Time
	// SeveritySource names the record the severity came from when not the
	// vulnerability's own; Priority and InUse are the row's (nil: none).
	SeveritySource string
	Priority       *model.Priority
	InUse          *model.InUse
}

// AffectedWorkload is one workload running an affected image (reported
// by a cluster component: InventoryStore).
type AffectedWorkload struct {
	Cluster      string
	Namespace    string
	Kind         string
	Name         string
	Container    string
	ImageID      int64
	LastDetected time.Time
}

// ---------------------------------------------------------------------------
// Registries

// RegistryStore keeps the registries the server scans.
type RegistryStore interface {
	// CreateRegistry stores r (its ID, CreatedAt and UpdatedAt are set by the
	// store) and returns it as stored; ErrConflict when the name is taken.
	CreateRegistry(ctx context.Context, r Registry) (Registry, error)
	GetRegistry(ctx context.Context, id int64) (Registry, error)
	// ListRegistries lists all registries by name.
	ListRegistries(ctx context.Context) ([]Registry, error)
	// UpdateRegistry replaces the configuration fields of registry r.ID (not
	// CreatedAt nor LastSync). A nil Secret keeps the stored secret; an empty
	// non-nil one clears it.
	UpdateRegistry(ctx context.Context, r Registry) (Registry, error)
	DeleteRegistry(ctx context.Context, id int64) error
	// RecordRegistrySync stores the outcome of a registry sync.
	RecordRegistrySync(ctx context.Context, id int64, s RegistrySync) error
}

// Registry is one registry configuration.
type Registry struct {
	ID   int64
	Name string
	// URL is the registry's address ("https://registry.example.com", "127.0.0.1:5000").
	URL      string
	Username string
	// Secret is the password or token, encrypted by the server with its key;
	// the store keeps the bytes as given.
	Secret []byte
	// RepositoryFilter and TagFilter select what is scanned (syntax is the server's).
	RepositoryFilter string
	TagFilter        string
	// Schedule is the interval between syncs; 0 = manual only.
	Schedule  time.Duration
	Insecure  bool
	CreatedAt time.Time
	UpdatedAt time.Time
	LastSync  RegistrySync
}

// Registry sync statuses (RegistrySync.Status is free text; these are the usual ones).
const (
	SyncRunning = "running"
	SyncOK      = "ok"
	SyncFailed  = "failed"
)

// RegistrySync is the outcome of the latest registry sync.
type RegistrySync struct {
	At     time.Time
	Status string
	Error  string
}

// ---------------------------------------------------------------------------
// Tokens

// TokenStore keeps API tokens. The store never sees a token: the server
// hashes it and stores the hash and a short display prefix.
type TokenStore interface {
	// CreateToken stores t (ID set by the store, CreatedAt when zero) and
	// returns it as stored; ErrConflict when the hash is taken (names need
	// not be unique), ErrInvalid for an empty name, no role or an empty hash.
	// The role is the caller's vocabulary (package auth); the store keeps
	// it as text.
	CreateToken(ctx context.Context, t Token) (Token, error)
	// GetTokenByHash finds a token by hash; ErrNotFound when unknown or
	// revoked. The caller checks expiry (Token.Active).
	GetTokenByHash(ctx context.Context, hash []byte) (Token, error)
	GetToken(ctx context.Context, id int64) (Token, error)
	// ListTokens lists all tokens, revoked ones included, by creation time.
	ListTokens(ctx context.Context) ([]Token, error)
	// TouchToken records a use of the token.
	TouchToken(ctx context.Context, id int64, at time.Time) error
	// RevokeToken revokes a token and deletes its console sessions.
	RevokeToken(ctx context.Context, id int64, at time.Time) error
}

// Token is one API token (its hash, never the token).
type Token struct {
	ID   int64
	Name string
	Role string
	// Cluster binds a machine token to a cluster ("" when unbound).
	Cluster string
	// Hash is the server's hash of the token.
	Hash []byte
	// Prefix is the first characters of the token, for display ("mmr_3fA9").
	Prefix     string
	CreatedAt  time.Time
	LastUsedAt time.Time
	// ExpiresAt zero = never.
	ExpiresAt time.Time
	RevokedAt time.Time
}

// Active reports whether the token is neither revoked nor expired at now.
func (t Token) Active(now time.Time) bool {
	return t.RevokedAt.IsZero() && (t.ExpiresAt.IsZero() || now.Before(t.ExpiresAt))
}

// ---------------------------------------------------------------------------
// Console sessions

// SessionStore keeps console sessions. The store keeps the hash of the
// session ID, never the ID itself.
type SessionStore interface {
	// CreateSession stores s; ErrConflict when the ID hash exists,
	// ErrNotFound when the token does not exist.
	CreateSession(ctx context.Context, s Session) error
	// GetSession returns the session with this ID hash; ErrNotFound when
	// unknown or expired at now.
	GetSession(ctx context.Context, idHash []byte, now time.Time) (Session, error)
	// DeleteSession deletes one session (no error when already gone).
	DeleteSession(ctx context.Context, idHash []byte) error
	// DeleteExpiredSessions deletes the sessions expired at now and returns how many.
	DeleteExpiredSessions(ctx context.Context, now time.Time) (int64, error)
}

// Session is one console session.
type Session struct {
	// IDHash is the server's hash of the session cookie value.
	IDHash  []byte
	TokenID int64
	Role    string
	// CSRFSecret is the per-session CSRF secret.
	CSRFSecret []byte
	CreatedAt  time.Time
	ExpiresAt  time.Time
}

// ---------------------------------------------------------------------------
// Meta

// MetaStore keeps small server-wide key/value settings.
type MetaStore interface {
	// GetMeta returns a value; ErrNotFound when the key is not set.
	GetMeta(ctx context.Context, key string) (string, error)
	// SetMeta sets a value, replacing any previous one.
	SetMeta(ctx context.Context, key, value string) error
}

// Well-known meta keys.
const (
	// MetaVulnDBBuiltAt is the built-at (RFC 3339) of the vulnerability DB
	// the stored vulnerabilities were last re-matched against.
	MetaVulnDBBuiltAt = "vulndb.builtAt"
	// MetaServerKeyID names the server key that encrypts registry secrets.
	MetaServerKeyID = "server.keyID"
)
