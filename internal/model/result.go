package model

import (
	"time"
)

// SchemaVersion is the version of the JSON output schema (docs/json-output.md).
// Additive changes keep it; anything that changes the meaning of an existing
// field bumps it.
const SchemaVersion = 1

// Target kinds.
const (
	TargetImage  = "image"
	TargetRootFS = "rootfs"
	TargetFS     = "fs"
	TargetConfig = "config"
)

// Result is the whole outcome of scanning one target.
type Result struct {
	SchemaVersion int       `json:"schemaVersion"`
	Tool          Tool      `json:"tool"`
	ScanID        string    `json:"scanID"`
	CreatedAt     time.Time `json:"createdAt"`
	Target        Target    `json:"target"`
	// Scanners lists the scanners that ran ("vuln", "secret", "malware", "misconfig").
	Scanners        []string        `json:"scanners"`
	Inventory       Inventory       `json:"inventory"`
	Vulnerabilities []Vulnerability `json:"vulnerabilities"`
	Findings        []Finding       `json:"findings"`
	// Warnings are problems that did not stop the scan (a malformed package
	// database, a file over the size cap, no clamd, a stale vulnerability DB).
	Warnings []string `json:"warnings,omitempty"`
	// DB describes the vulnerability database used, when vulnerabilities were matched.
	DB *DBInfo `json:"db,omitempty"`
}

// Tool names the scanner that produced a result.
type Tool struct {
	Name    string `json:"name"`
	Version string `json:"version"`
}

// Target describes what was scanned.
type Target struct {
	// Name is what the user gave: an image reference, a file, a directory.
	Name string `json:"name"`
	Type string `json:"type"`
	// Digest is the image manifest digest (sha256:…), ImageID the config digest.
	Digest   string   `json:"digest,omitempty"`
	ImageID  string   `json:"imageID,omitempty"`
	RepoTags []string `json:"repoTags,omitempty"`
	Platform string   `json:"platform,omitempty"`
	Layers   []Layer  `json:"layers,omitempty"`
	// Size is the sum of the layers' compressed sizes.
	Size int64 `json:"size,omitempty"`
	// Created is the image configuration's creation time (when the image
	// was built); zero when unknown or not an image.
	Created time.Time `json:"created,omitzero"`
}

// Layer describes one image layer.
type Layer struct {
	DiffID    string `json:"diffID"`
	Digest    string `json:"digest,omitempty"`
	Size      int64  `json:"size,omitempty"`
	CreatedBy string `json:"createdBy,omitempty"`
}

// DBInfo describes the vulnerability database a scan matched against.
type DBInfo struct {
	BuiltAt    time.Time `json:"builtAt"`
	Ecosystems []string  `json:"ecosystems,omitempty"`
	// KEVCatalog is the version of CISA's KEV catalogue in the database
	// ("2025.08.25"), EPSSDate the date of its EPSS scores; empty when the
	// database has none (then no finding can carry kev or epss).
	KEVCatalog string `json:"kevCatalog,omitempty"`
	EPSSDate   string `json:"epssDate,omitempty"`
}
