package report

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	cdx "github.com/CycloneDX/cyclonedx-go"

	"mamori/internal/model"
)

// writeCycloneDX writes a CycloneDX 1.6 JSON BOM: the target as the
// metadata component, the OS and packages as components, and the
// vulnerabilities (VEX-style, affecting component refs). Several targets
// become one BOM with one top-level component each under metadata.
func writeCycloneDX(w io.Writer, results []*model.Result) error {
	bom := CycloneDX(results)
	enc := cdx.NewBOMEncoder(w, cdx.BOMFileFormatJSON)
	enc.SetPretty(true)
	if err := enc.EncodeVersion(bom, cdx.SpecVersion1_6); err != nil {
		return fmt.Errorf("report: cyclonedx: %w", err)
	}
	return nil
}

// CycloneDX builds the BOM for results.
func CycloneDX(results []*model.Result) *cdx.BOM {
	bom := cdx.NewBOM()
	bom.SerialNumber = "urn:uuid:" + uuidFrom(results)
	comps := []cdx.Component{}
	var vulns []cdx.Vulnerability
	var deps []cdx.Dependency
	var top []cdx.Component
	for ti, r := range results {
		targetRef := fmt.Sprintf("target-%d", ti)
		tc := cdx.Component{BOMRef: targetRef, Type: cdx.ComponentTypeContainer, Name: r.Target.Name}
		if r.Target.Type != model.TargetImage {
			tc.Type = cdx.ComponentTypeFile
		}
		if r.Target.Digest != "" {
			tc.Version = r.Target.Digest
		}
		top = append(top, tc)
		if bom.Metadata == nil {
			bom.Metadata = &cdx.Metadata{
				Timestamp: r.CreatedAt.Format("2006-01-02T15:04:05Z"),
				Tools: &cdx.ToolsChoice{Components: &[]cdx.Component{{
					Type: cdx.ComponentTypeApplication, Name: "mamori", Version: r.Tool.Version,
				}}},
			}
		}
		var dependsOn []string
		if os := r.Inventory.OS; os != nil {
			ref := fmt.Sprintf("%s/os", targetRef)
			comps = append(comps, cdx.Component{BOMRef: ref, Type: cdx.ComponentTypeOS, Name: os.ID, Version: os.VersionID, Description: os.PrettyName})
			dependsOn = append(dependsOn, ref)
		}
		refs := map[string]string{} // package key -> bom-ref
		for i := range r.Inventory.Packages {
			p := &r.Inventory.Packages[i]
			ref := fmt.Sprintf("%s/pkg-%d", targetRef, i)
			refs[pkgKey(p.Name, p.Version, p.Type, firstLoc(p))] = ref
			comps = append(comps, component(p, ref))
			dependsOn = append(dependsOn, ref)
		}
		deps = append(deps, cdx.Dependency{Ref: targetRef, Dependencies: &dependsOn})
		for _, v := range r.Vulnerabilities {
			ref := refs[pkgKey(v.Package.Name, v.Package.Version, v.Package.Type, v.Package.Path)]
			if ref == "" {
				ref = targetRef
			}
			vulns = append(vulns, cdxVuln(v, ref))
		}
	}
	if len(top) == 1 {
		bom.Metadata.Component = &top[0]
	} else {
		// CycloneDX has one metadata component: describe the set, and list
		// each target as a component.
		bom.Metadata.Component = &cdx.Component{BOMRef: "targets", Type: cdx.ComponentTypeApplication, Name: "mamori scan"}
		comps = append(top, comps...)
	}
	if warns := warnings(results); len(warns) > 0 {
		props := make([]cdx.Property, 0, len(warns))
		for _, w := range warns {
			props = append(props, cdx.Property{Name: "mamori:warning", Value: w})
		}
		bom.Metadata.Properties = &props
	}
	bom.Components = &comps
	bom.Dependencies = &deps
	if len(vulns) > 0 {
		bom.Vulnerabilities = &vulns
	}
	return bom
}

func component(p *model.Package, ref string) cdx.Component {
	c := cdx.Component{BOMRef: ref, Type: cdx.ComponentTypeLibrary, Name: p.Name, Version: p.Version, PackageURL: p.PURL}
	if p.Type == model.TypeMaven {
		if g, a, ok := strings.Cut(p.Name, ":"); ok {
			c.Group, c.Name = g, a
		}
	}
	if len(p.Licenses) > 0 {
		var ls cdx.Licenses
		for _, l := range p.Licenses {
			ls = append(ls, cdx.LicenseChoice{License: &cdx.License{Name: l}})
		}
		c.Licenses = &ls
	}
	props := []cdx.Property{{Name: "mamori:package:type", Value: p.Type}, {Name: "mamori:cataloger", Value: p.Cataloger}}
	for _, l := range p.Locations {
		props = append(props, cdx.Property{Name: "mamori:location:path", Value: l.Path})
		if l.LayerDiffID != "" {
			props = append(props, cdx.Property{Name: "mamori:location:layerDiffID", Value: l.LayerDiffID})
		}
	}
	if p.SourceName != "" {
		props = append(props, cdx.Property{Name: "mamori:package:sourceName", Value: p.SourceName})
	}
	if p.SourceVersion != "" {
		props = append(props, cdx.Property{Name: "mamori:package:sourceVersion", Value: p.SourceVersion})
	}
	c.Properties = &props
	return c
}

func cdxVuln(v model.Vulnerability, ref string) cdx.Vulnerability {
	cv := cdx.Vulnerability{
		BOMRef:      ref + "/" + v.ID,
		ID:          v.ID,
		Source:      &cdx.Source{Name: "osv", URL: "https://osv.dev/vulnerability/" + v.ID},
		Description: v.Summary,
		Detail:      v.Details,
		Affects:     &[]cdx.Affects{{Ref: ref}},
	}
	if v.FixedVersion != "" {
		cv.Recommendation = "Upgrade " + v.Package.Name + " to " + v.FixedVersion
	}
	var ratings []cdx.VulnerabilityRating
	for _, c := range v.CVSS {
		score := c.Score
		r := cdx.VulnerabilityRating{Score: &score, Vector: c.Vector, Severity: cdxSeverity(v.Severity)}
		if c.Source != "" && c.Source != v.ID {
			// A vector of another record of the same vulnerability (the
			// severity's source, a merged alias).
			r.Source = &cdx.Source{Name: c.Source, URL: "https://osv.dev/vulnerability/" + c.Source}
		}
		switch c.Version {
		case "2.0":
			r.Method = cdx.ScoringMethodCVSSv2
		case "3.0":
			r.Method = cdx.ScoringMethodCVSSv3
		case "3.1":
			r.Method = cdx.ScoringMethodCVSSv31
		case "4.0":
			r.Method = cdx.ScoringMethodCVSSv4
		default:
			r.Method = cdx.ScoringMethodOther
		}
		ratings = append(ratings, r)
	}
	if len(ratings) == 0 {
		r := cdx.VulnerabilityRating{Severity: cdxSeverity(v.Severity), Method: cdx.ScoringMethodOther}
		if v.SeveritySource != "" {
			r.Source = &cdx.Source{Name: v.SeveritySource, URL: "https://osv.dev/vulnerability/" + v.SeveritySource}
		}
		ratings = append(ratings, r)
	}
	cv.Ratings = &ratings
	if props := cdxVulnProps(&v); len(props) > 0 {
		cv.Properties = &props
	}
	if len(v.Aliases) > 0 {
		var refs []cdx.VulnerabilityReference
		for _, a := range v.Aliases {
			refs = append(refs, cdx.VulnerabilityReference{ID: a, Source: &cdx.Source{Name: aliasSource(a)}})
		}
		cv.References = &refs
	}
	if len(v.References) > 0 {
		var adv []cdx.Advisory
		for _, u := range v.References {
			adv = append(adv, cdx.Advisory{URL: u})
		}
		cv.Advisories = &adv
	}
	return cv
}

// cdxVulnProps are the mamori: properties of a vulnerability: where its
// severity came from, KEV, EPSS, use at run time and priority (CycloneDX
// has no fields for them).
func cdxVulnProps(v *model.Vulnerability) []cdx.Property {
	var props []cdx.Property
	add := func(name, value string) { props = append(props, cdx.Property{Name: "mamori:" + name, Value: value}) }
	if v.SeveritySource != "" {
		add("severity", v.Severity.String())
		add("severitySource", v.SeveritySource)
	}
	if k := v.KEV; k != nil {
		add("kev:cve", k.CVE)
		add("kev:dateAdded", k.DateAdded)
		if k.DueDate != "" {
			add("kev:dueDate", k.DueDate)
		}
		if k.Ransomware {
			add("kev:ransomware", "true")
		}
	}
	if e := v.EPSS; e != nil {
		add("epss:cve", e.CVE)
		add("epss:score", strconv.FormatFloat(e.Score, 'f', -1, 64))
		add("epss:percentile", strconv.FormatFloat(e.Percentile, 'f', -1, 64))
		if e.Date != "" {
			add("epss:date", e.Date)
		}
	}
	if u := v.InUse; u != nil {
		add("inUse", strconv.FormatBool(u.Loaded))
		if u.Loaded {
			add("inUse:containers", strconv.Itoa(max(u.Count, len(u.Containers))))
			add("inUse:lastSeen", u.LastSeen.UTC().Format(time.RFC3339))
		}
	}
	if p := v.Priority; p != nil {
		add("priority", strconv.FormatFloat(p.Score, 'f', 1, 64))
		add("priority:reason", p.Reason)
	}
	return props
}

func aliasSource(id string) string {
	switch {
	case strings.HasPrefix(id, "CVE-"):
		return "NVD"
	case strings.HasPrefix(id, "GHSA-"):
		return "GitHub"
	}
	return "osv"
}

func cdxSeverity(s model.Severity) cdx.Severity {
	switch s {
	case model.SeverityCritical:
		return cdx.SeverityCritical
	case model.SeverityHigh:
		return cdx.SeverityHigh
	case model.SeverityMedium:
		return cdx.SeverityMedium
	case model.SeverityLow:
		return cdx.SeverityLow
	case model.SeverityNegligible:
		return cdx.SeverityInfo
	}
	return cdx.SeverityUnknown
}

func pkgKey(name, version, typ, path string) string {
	return typ + "\x00" + name + "\x00" + version + "\x00" + path
}

func firstLoc(p *model.Package) string {
	if len(p.Locations) == 0 {
		return ""
	}
	return p.Locations[0].Path
}

// uuidFrom derives a version-4-shaped UUID from the scan IDs, so a BOM's
// serial number is stable for the same scan.
func uuidFrom(results []*model.Result) string {
	seed := ""
	for _, r := range results {
		seed += r.ScanID
	}
	for len(seed) < 32 {
		seed += "0"
	}
	h := []byte(seed[:32])
	for i, c := range h {
		if !strings.ContainsRune("0123456789abcdef", rune(c)) {
			h[i] = "0123456789abcdef"[int(c)%16]
		}
	}
	h[12] = '4'
	h[16] = "89ab"[hexVal(h[16])%4]
	s := string(h)
	return s[0:8] + "-" + s[8:12] + "-" + s[12:16] + "-" + s[16:20] + "-" + s[20:32]
}

func hexVal(c byte) int {
	v, _ := strconv.ParseInt(string(c), 16, 0)
	return int(v)
}
