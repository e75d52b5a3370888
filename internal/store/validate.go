package store

import (
	"fmt"
	"strings"
	"unicode/utf8"

	"mamori/internal/model"
)

// Input caps that the store itself enforces (the server also caps the body).
const (
	// maxIDLen bounds IDs and names used as keys (scan IDs, target names,
	// advisory IDs): real ones are well under 1 KiB.
	maxIDLen = 4096
	// maxTypeLen bounds short enumerations (target type, finding kind).
	maxTypeLen = 64
)

// checker collects the first problem found in a result.
type checker struct{ err error }

func (c *checker) fail(format string, args ...any) {
	if c.err == nil {
		c.err = fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
	}
}

// str refuses text that a database cannot store faithfully: PostgreSQL
// rejects NUL bytes and invalid UTF-8 in text columns.
func (c *checker) str(field, v string) {
	if c.err != nil {
		return
	}
	if strings.IndexByte(v, 0) >= 0 {
		c.fail("%s contains a NUL byte", field)
		return
	}
	if !utf8.ValidString(v) {
		c.fail("%s is not valid UTF-8", field)
	}
}

func (c *checker) strs(field string, vs []string) {
	for i, v := range vs {
		c.str(fmt.Sprintf("%s[%d]", field, i), v)
	}
}

func (c *checker) required(field, v string, maxLen int) {
	if strings.TrimSpace(v) == "" {
		c.fail("%s is empty", field)
		return
	}
	if len(v) > maxLen {
		c.fail("%s is longer than %d bytes", field, maxLen)
		return
	}
	c.str(field, v)
}

func (c *checker) severity(field string, s model.Severity) {
	if s < model.SeverityUnknown || s > model.SeverityCritical {
		c.fail("%s: unknown severity %d", field, int(s))
	}
}

// validateResult checks everything IngestScan relies on. It returns an
// error wrapping ErrInvalid that names the first bad field.
func validateResult(res *model.Result) error {
	c := &checker{}
	if res == nil {
		return fmt.Errorf("%w: nil scan result", ErrInvalid)
	}
	if res.SchemaVersion < 1 || res.SchemaVersion > model.SchemaVersion {
		c.fail("schemaVersion %d is not supported (want 1..%d)", res.SchemaVersion, model.SchemaVersion)
	}
	c.required("scanID", res.ScanID, maxIDLen)
	if res.CreatedAt.IsZero() {
		c.fail("createdAt is missing")
	}
	c.required("target.name", res.Target.Name, maxIDLen)
	c.required("target.type", res.Target.Type, maxTypeLen)
	c.str("target.digest", res.Target.Digest)
	c.str("target.imageID", res.Target.ImageID)
	c.str("target.platform", res.Target.Platform)
	c.strs("target.repoTags", res.Target.RepoTags)
	for i, l := range res.Target.Layers {
		c.str(fmt.Sprintf("target.layers[%d].diffID", i), l.DiffID)
		c.str(fmt.Sprintf("target.layers[%d].digest", i), l.Digest)
		c.str(fmt.Sprintf("target.layers[%d].createdBy", i), l.CreatedBy)
	}
	c.str("tool.name", res.Tool.Name)
	c.str("tool.version", res.Tool.Version)
	c.strs("scanners", res.Scanners)
	c.strs("warnings", res.Warnings)
	if os := res.Inventory.OS; os != nil {
		c.str("model.os.id", os.ID)
		c.str("model.os.versionID", os.VersionID)
		c.str("model.os.codename", os.Codename)
		c.str("model.os.prettyName", os.PrettyName)
		c.strs("model.os.idLike", os.IDLike)
	}
	for i := range res.Inventory.Packages {
		p := &res.Inventory.Packages[i]
		f := fmt.Sprintf("model.packages[%d]", i)
		c.required(f+".name", p.Name, maxIDLen)
		for _, kv := range [][2]string{{"version", p.Version}, {"type", p.Type}, {"ecosystem", p.Ecosystem},
			{"purl", p.PURL}, {"sourceName", p.SourceName}, {"sourceVersion", p.SourceVersion},
			{"arch", p.Arch}, {"cataloger", p.Cataloger}} {
			c.str(f+"."+kv[0], kv[1])
		}
		c.strs(f+".licenses", p.Licenses)
		for j, l := range p.Locations {
			c.str(fmt.Sprintf("%s.locations[%d].path", f, j), l.Path)
			c.str(fmt.Sprintf("%s.locations[%d].layerDiffID", f, j), l.LayerDiffID)
		}
		if c.err != nil {
			return c.err
		}
	}
	if err := validateVulnerabilities(res.Vulnerabilities); err != nil {
		return err
	}
	for i := range res.Findings {
		fd := &res.Findings[i]
		f := fmt.Sprintf("findings[%d]", i)
		switch fd.Kind {
		case model.KindSecret, model.KindMalware, model.KindMisconfig, model.KindVulnerability:
		default:
			c.fail("%s.kind: unknown kind %q", f, fd.Kind)
		}
		c.required(f+".id", fd.ID, maxIDLen)
		c.severity(f+".severity", fd.Severity)
		for _, kv := range [][2]string{{"title", fd.Title}, {"category", fd.Category}, {"description", fd.Description},
			{"remediation", fd.Remediation}, {"evidence", fd.Evidence}, {"engine", fd.Engine},
			{"location.path", fd.Location.Path}, {"location.layerDiffID", fd.Location.LayerDiffID},
			{"location.config", fd.Location.Config}, {"location.inner", fd.Location.Inner}} {
			c.str(f+"."+kv[0], kv[1])
		}
		c.strs(f+".references", fd.References)
		c.strs(f+".controls", fd.Controls)
		if c.err != nil {
			return c.err
		}
	}
	return c.err
}

// validateVulnerabilities checks vulnerability rows (IngestScan and ReplaceVulnerabilities).
func validateVulnerabilities(vulns []model.Vulnerability) error {
	c := &checker{}
	for i := range vulns {
		v := &vulns[i]
		f := fmt.Sprintf("vulnerabilities[%d]", i)
		c.required(f+".id", v.ID, maxIDLen)
		c.required(f+".package.name", v.Package.Name, maxIDLen)
		c.severity(f+".severity", v.Severity)
		c.strs(f+".aliases", v.Aliases)
		for _, kv := range [][2]string{{"package.version", v.Package.Version}, {"package.type", v.Package.Type},
			{"package.ecosystem", v.Package.Ecosystem}, {"package.purl", v.Package.PURL},
			{"package.sourceName", v.Package.SourceName}, {"package.path", v.Package.Path},
			{"package.layerDiffID", v.Package.Layer}, {"fixedVersion", v.FixedVersion},
			{"summary", v.Summary}, {"details", v.Details}, {"dataSource", v.DataSource}} {
			c.str(f+"."+kv[0], kv[1])
		}
		c.strs(f+".references", v.References)
		for j, cv := range v.CVSS {
			c.str(fmt.Sprintf("%s.cvss[%d].vector", f, j), cv.Vector)
			c.str(fmt.Sprintf("%s.cvss[%d].version", f, j), cv.Version)
			c.str(fmt.Sprintf("%s.cvss[%d].source", f, j), cv.Source)
			if cv.Score < 0 || cv.Score > 10 || cv.Score != cv.Score { // NaN != NaN
				c.fail("%s.cvss[%d].score %v is outside 0..10", f, j, cv.Score)
			}
		}
		if c.err != nil {
			return c.err
		}
	}
	return nil
}
