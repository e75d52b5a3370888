package model

import (
	"fmt"
	"regexp"
	"time"
)

// Limits of a result, enforced by Result.Validate, each with its reason.
const (
	// MaxScanIDLen: mamori's scan IDs are 32 hex characters; other
	// producers may use UUIDs; 128 leaves room without letting an ID be a payload.
	MaxScanIDLen = 128
	// MaxResultTextLen bounds names and IDs used as keys (target names,
	// package names, advisory and finding IDs): real ones are well under 1 KiB.
	MaxResultTextLen = 4096
	// MaxInUseContainers bounds the containers one finding names as having
	// loaded its package (the rest are counted, not listed).
	MaxInUseContainers = 100
	// MaxClockSkew: a result created further in the future than this (by
	// the receiver's clock) is refused, so that a skewed clock cannot pin
	// an image's latest scan.
	MaxClockSkew = 24 * time.Hour
)

var (
	scanIDRE = regexp.MustCompile(`^[A-Za-z0-9._:-]+$`)
	digestRE = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)
)

// resultUpgrades lists, by the schema version they read, the functions
// that turn a result written by an older mamori into the next version, in
// place: resultUpgrades[v] upgrades version v to v+1. mamori has written
// schema version 1 only, so the list is empty; the day SchemaVersion
// becomes 2, the upgrade of version 1 goes here and every reader (the
// server's ingest, the store) keeps accepting version 1 results.
var resultUpgrades = map[int]func(*Result) error{}

// Upgrade brings a result written by an older mamori to SchemaVersion (the
// edge of every reader: decode, Upgrade, Validate). A version mamori never
// wrote (0, negative, or newer than this binary) is refused.
func (r *Result) Upgrade() error {
	if r == nil {
		return fmt.Errorf("%w: nil scan result", ErrInvalid)
	}
	return upgrade(r, resultUpgrades)
}

func upgrade(r *Result, steps map[int]func(*Result) error) error {
	for r.SchemaVersion >= 1 && r.SchemaVersion < SchemaVersion {
		step, ok := steps[r.SchemaVersion]
		if !ok {
			break
		}
		from := r.SchemaVersion
		if err := step(r); err != nil {
			return fmt.Errorf("%w: upgrade schemaVersion %d: %w", ErrInvalid, from, err)
		}
		if r.SchemaVersion != from+1 {
			return fmt.Errorf("%w: upgrade of schemaVersion %d gave %d", ErrInvalid, from, r.SchemaVersion)
		}
	}
	if r.SchemaVersion != SchemaVersion {
		return fmt.Errorf("%w: schemaVersion %d is not supported (this mamori reads 1 to %d)", ErrInvalid, r.SchemaVersion, SchemaVersion)
	}
	return nil
}

// Validate checks a result the way every reader needs it: the CLI before
// an upload, the server's ingest, the store. The schema version is
// SchemaVersion (Upgrade older ones first); the scan ID, creation time
// and target identify the scan (an image by its manifest digest); every
// text is valid UTF-8 without NUL bytes (what PostgreSQL stores
// faithfully) and key fields are within their limits; severities, finding
// kinds and CVSS scores are in range. now is the receiver's clock: a
// result created more than MaxClockSkew after it is refused; the zero time
// skips that check. The error wraps ErrInvalid and names the first bad
// field. Validate does not change r.
func (r *Result) Validate(now time.Time) error {
	if r == nil {
		return fmt.Errorf("%w: nil scan result", ErrInvalid)
	}
	v := &validator{}
	if r.SchemaVersion != SchemaVersion {
		v.fail("schemaVersion %d is not supported (this mamori reads 1 to %d)", r.SchemaVersion, SchemaVersion)
	}
	v.required("scanID", r.ScanID, MaxScanIDLen)
	if v.err == nil && !scanIDRE.MatchString(r.ScanID) {
		v.fail("scanID must be letters, digits, '.', '_', ':' and '-'")
	}
	switch {
	case r.CreatedAt.IsZero():
		v.fail("createdAt is missing")
	case !now.IsZero() && r.CreatedAt.After(now.Add(MaxClockSkew)):
		v.fail("createdAt %s is in the future", r.CreatedAt.Format(time.RFC3339))
	}
	t := &r.Target
	v.required("target.name", t.Name, MaxResultTextLen)
	v.required("target.type", t.Type, MaxResultTextLen)
	if v.err == nil {
		switch t.Type {
		case TargetImage:
			if !digestRE.MatchString(t.Digest) {
				v.fail("target.digest %q: an image needs its manifest digest (sha256:<64 hex>)", truncate(t.Digest))
			}
		case TargetRootFS, TargetFS, TargetConfig:
			if t.Digest != "" && !digestRE.MatchString(t.Digest) {
				v.fail("target.digest %q is not a sha256 digest", truncate(t.Digest))
			}
		default:
			v.fail("target.type %q: want image, rootfs, fs or config", truncate(t.Type))
		}
	}
	v.str("target.imageID", t.ImageID)
	v.str("target.platform", t.Platform)
	v.strs("target.repoTags", t.RepoTags)
	for i, l := range t.Layers {
		v.str(fmt.Sprintf("target.layers[%d].diffID", i), l.DiffID)
		v.str(fmt.Sprintf("target.layers[%d].digest", i), l.Digest)
		v.str(fmt.Sprintf("target.layers[%d].createdBy", i), l.CreatedBy)
	}
	v.str("tool.name", r.Tool.Name)
	v.str("tool.version", r.Tool.Version)
	v.strs("scanners", r.Scanners)
	v.strs("warnings", r.Warnings)
	if v.err != nil {
		return v.err
	}
	if err := r.Inventory.Validate(); err != nil {
		return err
	}
	if err := ValidateVulnerabilities(r.Vulnerabilities); err != nil {
		return err
	}
	return ValidateFindings(r.Findings)
}

// Validate checks an inventory (part of Result.Validate; the server checks
// an inventory a component sends for matching with it too): package names
// present, every text valid UTF-8 without NUL bytes.
func (inv *Inventory) Validate() error {
	v := &validator{}
	if os := inv.OS; os != nil {
		v.str("inventory.os.id", os.ID)
		v.str("inventory.os.versionID", os.VersionID)
		v.str("inventory.os.codename", os.Codename)
		v.str("inventory.os.prettyName", os.PrettyName)
		v.strs("inventory.os.idLike", os.IDLike)
	}
	if v.err != nil {
		return v.err
	}
	for i := range inv.Packages {
		p := &inv.Packages[i]
		f := fmt.Sprintf("inventory.packages[%d]", i)
		v.required(f+".name", p.Name, MaxResultTextLen)
		for _, kv := range [][2]string{{"version", p.Version}, {"type", p.Type}, {"ecosystem", p.Ecosystem},
			{"purl", p.PURL}, {"sourceName", p.SourceName}, {"sourceVersion", p.SourceVersion},
			{"arch", p.Arch}, {"cataloger", p.Cataloger}} {
			v.str(f+"."+kv[0], kv[1])
		}
		v.strs(f+".licenses", p.Licenses)
		v.strs(f+".files", p.Files)
		for j, l := range p.Locations {
			v.str(fmt.Sprintf("%s.locations[%d].path", f, j), l.Path)
			v.str(fmt.Sprintf("%s.locations[%d].layerDiffID", f, j), l.LayerDiffID)
		}
		if v.err != nil {
			return v.err
		}
	}
	return nil
}

// ValidateVulnerabilities checks vulnerability rows (part of
// Result.Validate; a re-match checks its new rows with it too).
func ValidateVulnerabilities(vulns []Vulnerability) error {
	v := &validator{}
	for i := range vulns {
		x := &vulns[i]
		f := fmt.Sprintf("vulnerabilities[%d]", i)
		v.required(f+".id", x.ID, MaxResultTextLen)
		v.required(f+".package.name", x.Package.Name, MaxResultTextLen)
		v.severity(f+".severity", x.Severity)
		v.strs(f+".aliases", x.Aliases)
		for _, kv := range [][2]string{{"package.version", x.Package.Version}, {"package.type", x.Package.Type},
			{"package.ecosystem", x.Package.Ecosystem}, {"package.purl", x.Package.PURL},
			{"package.sourceName", x.Package.SourceName}, {"package.path", x.Package.Path},
			{"package.layerDiffID", x.Package.Layer}, {"fixedVersion", x.FixedVersion},
			{"summary", x.Summary}, {"details", x.Details}, {"dataSource", x.DataSource}} {
			v.str(f+"."+kv[0], kv[1])
		}
		v.strs(f+".references", x.References)
		for j, cv := range x.CVSS {
			v.str(fmt.Sprintf("%s.cvss[%d].vector", f, j), cv.Vector)
			v.str(fmt.Sprintf("%s.cvss[%d].version", f, j), cv.Version)
			v.str(fmt.Sprintf("%s.cvss[%d].source", f, j), cv.Source)
			if cv.Score < 0 || cv.Score > 10 || cv.Score != cv.Score { // NaN != NaN
				v.fail("%s.cvss[%d].score %v is outside 0..10", f, j, cv.Score)
			}
		}
		v.str(f+".severitySource", x.SeveritySource)
		if k := x.KEV; k != nil {
			v.str(f+".kev.cve", k.CVE)
			v.str(f+".kev.dateAdded", k.DateAdded)
			v.str(f+".kev.dueDate", k.DueDate)
		}
		if e := x.EPSS; e != nil {
			v.str(f+".epss.cve", e.CVE)
			v.str(f+".epss.date", e.Date)
			v.unit(f+".epss.score", e.Score)
			v.unit(f+".epss.percentile", e.Percentile)
		}
		if u := x.InUse; u != nil {
			if len(u.Containers) > MaxInUseContainers {
				v.fail("%s.inUse.containers: %d, at most %d", f, len(u.Containers), MaxInUseContainers)
			}
			for j, c := range u.Containers {
				v.required(fmt.Sprintf("%s.inUse.containers[%d].id", f, j), c.ID, MaxResultTextLen)
				v.str(fmt.Sprintf("%s.inUse.containers[%d].name", f, j), c.Name)
				v.str(fmt.Sprintf("%s.inUse.containers[%d].path", f, j), c.Path)
			}
		}
		if p := x.Priority; p != nil {
			v.str(f+".priority.reason", p.Reason)
			if p.Score < 0 || p.Score > 100 || p.Score != p.Score {
				v.fail("%s.priority.score %v is outside 0..100", f, p.Score)
			}
		}
		if v.err != nil {
			return v.err
		}
	}
	return nil
}

// ValidateFindings checks findings (part of Result.Validate; a re-match
// checks its malicious-package findings with it too).
func ValidateFindings(findings []Finding) error {
	v := &validator{}
	for i := range findings {
		fd := &findings[i]
		f := fmt.Sprintf("findings[%d]", i)
		switch fd.Kind {
		case KindSecret, KindMalware, KindMisconfig, KindVulnerability:
		default:
			v.fail("%s.kind: unknown kind %q", f, truncate(string(fd.Kind)))
		}
		v.required(f+".id", fd.ID, MaxResultTextLen)
		v.severity(f+".severity", fd.Severity)
		for _, kv := range [][2]string{{"title", fd.Title}, {"category", fd.Category}, {"description", fd.Description},
			{"remediation", fd.Remediation}, {"evidence", fd.Evidence}, {"engine", fd.Engine},
			{"location.path", fd.Location.Path}, {"location.layerDiffID", fd.Location.LayerDiffID},
			{"location.config", fd.Location.Config}, {"location.inner", fd.Location.Inner}} {
			v.str(f+"."+kv[0], kv[1])
		}
		v.strs(f+".references", fd.References)
		v.strs(f+".controls", fd.Controls)
		if v.err != nil {
			return v.err
		}
	}
	return nil
}

// str checks a text of no particular length limit (the body caps it).
func (v *validator) str(field, s string) { v.text(field, s, int(^uint(0)>>1)) }

func (v *validator) strs(field string, ss []string) {
	for i, s := range ss {
		v.str(fmt.Sprintf("%s[%d]", field, i), s)
	}
}

// unit checks a probability: in [0, 1], not NaN.
func (v *validator) unit(field string, x float64) {
	if x < 0 || x > 1 || x != x {
		v.fail("%s %v is outside 0..1", field, x)
	}
}

func (v *validator) severity(field string, s Severity) {
	if s < SeverityUnknown || s > SeverityCritical {
		v.fail("%s: unknown severity %d", field, int(s))
	}
}
