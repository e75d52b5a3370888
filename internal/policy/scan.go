package policy

import (
	"strconv"
	"strings"
	"time"

	"mamori/internal/model"
)

// Criteria over the scan results of images.

// vulnCheck matches vulnerabilities; every condition set must hold.
type vulnCheck struct {
	sev     model.Severity
	cvss    float64
	fixable bool
	age     time.Duration
	kev     bool
	ids     []string
	desc    string // the conditions, for messages: " at or above HIGH, fixable"
}

func newVulnCheck(c *Vulnerabilities) *vulnCheck {
	v := &vulnCheck{cvss: c.CVSS, fixable: c.Fixable, kev: c.KnownExploited, ids: c.IDs}
	var parts []string
	if c.Severity != "" {
		v.sev, _ = model.ParseSeverity(c.Severity) // validated by Parse
		parts = append(parts, "at or above "+v.sev.String())
	}
	if c.CVSS > 0 {
		parts = append(parts, "CVSS >= "+strconv.FormatFloat(c.CVSS, 'f', -1, 64))
	}
	if c.Fixable {
		parts = append(parts, "fixable")
	}
	if c.PublishedDaysAgo > 0 {
		v.age = time.Duration(c.PublishedDaysAgo) * 24 * time.Hour
		parts = append(parts, "published "+strconv.Itoa(c.PublishedDaysAgo)+"+ days ago")
	}
	if c.KnownExploited {
		parts = append(parts, "known exploited")
	}
	if len(c.IDs) > 0 {
		parts = append(parts, "listed")
	}
	if len(parts) > 0 {
		v.desc = " (" + strings.Join(parts, ", ") + ")"
	}
	return v
}

func (c *vulnCheck) matches(v *model.Vulnerability, at time.Time) bool {
	if v.Severity < c.sev {
		return false
	}
	if c.cvss > 0 && maxCVSS(v) < c.cvss {
		return false
	}
	if c.fixable && v.FixedVersion == "" {
		return false
	}
	if c.age > 0 && !v.Published.IsZero() && at.Sub(v.Published) < c.age {
		return false
	}
	if c.kev && !knownExploited(v) {
		return false
	}
	if len(c.ids) > 0 && !namesVuln(c.ids, v) {
		return false
	}
	return true
}

func maxCVSS(v *model.Vulnerability) float64 {
	var m float64
	for _, c := range v.CVSS {
		m = max(m, c.Score)
	}
	return m
}

// namesVuln: one of ids is v's ID or an alias (case-insensitive).
func namesVuln(ids []string, v *model.Vulnerability) bool {
	for _, id := range ids {
		if strings.EqualFold(id, v.ID) {
			return true
		}
		for _, a := range v.Aliases {
			if strings.EqualFold(id, a) {
				return true
			}
		}
	}
	return false
}

func (c *vulnCheck) image(s *state, im *imageInfo) {
	res := im.scan.Result
	if res == nil {
		return
	}
	var (
		hit, waived     idList
		waivedBy, why   string
		vulnExceptions  = s.vulnExceptions(im)
		checkExceptions = len(vulnExceptions) > 0
	)
	for i := range res.Vulnerabilities {
		v := &res.Vulnerabilities[i]
		if !c.matches(v, s.at) {
			continue
		}
		if checkExceptions {
			if ex := exceptionFor(vulnExceptions, v); ex != nil {
				waived.add(v.ID)
				if waivedBy == "" {
					waivedBy, why = ex.name, ex.reason
				}
				continue
			}
		}
		hit.add(v.ID)
	}
	if hit.count > 0 {
		s.reportImage(CtlVulnerabilities, im, hit,
			strconv.Itoa(hit.count)+" "+plural(hit.count, "vulnerability", "vulnerabilities")+c.desc+" in image "+strconv.Quote(im.ref.raw)+": "+hit.String())
	}
	if waived.count > 0 {
		v := s.violation(CtlVulnerabilities, im, strconv.Itoa(waived.count)+" "+plural(waived.count, "vulnerability", "vulnerabilities")+c.desc+" in image "+strconv.Quote(im.ref.raw)+": "+waived.String())
		v.Findings, v.Count, v.Exception, v.Reason = waived.ids, waived.count, waivedBy, why
		s.d.Exempted = append(s.d.Exempted, v)
	}
}

// findingCheck matches malware, secret or misconfiguration findings.
type findingCheck struct {
	control string
	kind    model.FindingKind
	sev     model.Severity
	ids     globs
	desc    string
}

func newFindingCheck(control string, kind model.FindingKind, f *Findings) *findingCheck {
	c := &findingCheck{control: control, kind: kind, ids: newGlobs(f.IDs)}
	if f.Severity != "" {
		c.sev, _ = model.ParseSeverity(f.Severity) // validated by Parse
		c.desc = " at or above " + c.sev.String()
	}
	return c
}

func (c *findingCheck) image(s *state, im *imageInfo) {
	res := im.scan.Result
	if res == nil {
		return
	}
	var hit idList
	for i := range res.Findings {
		f := &res.Findings[i]
		if f.Kind != c.kind || f.Severity < c.sev || (c.ids != nil && !c.ids.any(f.ID)) {
			continue
		}
		hit.add(f.ID)
	}
	if hit.count == 0 {
		return
	}
	one, many := findingNoun(c.kind)
	s.reportImage(c.control, im, hit,
		strconv.Itoa(hit.count)+" "+plural(hit.count, one, many)+c.desc+" in image "+strconv.Quote(im.ref.raw)+": "+hit.String())
}

func ctlNotScanned(s *state, im *imageInfo) {
	if im.scan.Result != nil || im.pending {
		return
	}
	msg := "image " + strconv.Quote(im.ref.raw) + " was never scanned"
	if im.scan.ScanError != "" {
		msg = "image " + strconv.Quote(im.ref.raw) + " could not be scanned: " + im.scan.ScanError
	}
	s.failImage(CtlNotScanned, im, msg)
}

func scanAge(maxAge time.Duration) func(*state, *imageInfo) {
	return func(s *state, im *imageInfo) {
		res := im.scan.Result
		if res == nil {
			return
		}
		if res.CreatedAt.IsZero() {
			s.failImage(CtlScanAge, im, "image "+strconv.Quote(im.ref.raw)+" has a scan of unknown age")
			return
		}
		if age := s.at.Sub(res.CreatedAt); age > maxAge {
			s.failImage(CtlScanAge, im, "image "+strconv.Quote(im.ref.raw)+" was last scanned "+
				strconv.Itoa(int(age.Hours()))+" hours ago (more than "+strconv.Itoa(int(maxAge.Hours()))+")")
		}
	}
}

// idList counts findings and keeps the first maxFindingIDs distinct IDs.
type idList struct {
	ids       []string
	count     int
	truncated bool
}

func (l *idList) add(id string) {
	l.count++
	for _, x := range l.ids {
		if x == id {
			return
		}
	}
	if len(l.ids) >= maxFindingIDs {
		l.truncated = true
		return
	}
	l.ids = append(l.ids, id)
}

func (l idList) String() string {
	s := strings.Join(l.ids, ", ")
	if l.truncated {
		s += ", ..."
	}
	return s
}

func findingNoun(k model.FindingKind) (string, string) {
	switch k {
	case model.KindMalware:
		return "malware finding", "malware findings"
	case model.KindSecret:
		return "secret", "secrets"
	case model.KindMisconfig:
		return "misconfiguration", "misconfigurations"
	}
	return "finding", "findings"
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
