package match

import (
	"strings"

	"mamori/internal/cvss"
	"mamori/internal/model"
)

// Severity, never invented: the first of these that the record gives wins.
//
//  1. The distro's own rating of the matched package, for distro records:
//     Debian's affected[].ecosystem_specific.urgency (unimportant, low,
//     medium, high; "not yet assigned" and "end-of-life" give none), Ubuntu's
//     severity[] of type "Ubuntu", and the Red Hat rating AlmaLinux and Rocky
//     put in front of the summary ("Important: openssl security update").
//     The distro rates the package as it ships it, which is why Grype and
//     Trivy prefer it too.
//  2. CVSS: the preferred vector of severity[] and affected[].severity
//     (v4.0 over v3.1 over v3.0 over v2.0), scored per the specification.
//  3. GitHub's database_specific.severity (LOW, MODERATE, HIGH, CRITICAL).
//  4. Unknown.
//
// CVSS vectors and scores are reported whatever decided the severity.

// severityFor returns the severity and CVSS list of a hit.
func (a *advisory) severityFor(h hit) (model.Severity, []model.CVSS) {
	a.sevOnce.Do(a.scoreCVSS)
	if s := a.distroSeverity(h); s != model.SeverityUnknown {
		return s, a.cvss
	}
	return a.severity, a.cvss
}

// scoreCVSS computes the record-level part once: CVSS, then GitHub's word.
func (a *advisory) scoreCVSS() {
	var vectors []string
	add := func(t, score string) {
		if strings.HasPrefix(t, "CVSS_") && score != "" {
			vectors = append(vectors, score)
		}
	}
	for _, s := range a.rec.Severity {
		add(s.Type, s.Score)
	}
	for _, e := range a.entries {
		for _, s := range e.severity {
			add(s.Type, s.Score)
		}
	}
	sev, scored := cvss.SeverityFromVectors(vectors)
	for _, s := range scored {
		if s.Err != nil {
			continue
		}
		a.cvss = append(a.cvss, model.CVSS{Version: s.Version, Vector: s.Vector, Score: s.Score, Source: a.id})
	}
	if sev == model.SeverityUnknown && a.rec.DatabaseSpecific != nil {
		if s, err := model.ParseSeverity(string(a.rec.DatabaseSpecific.Severity)); err == nil {
			sev = s
		}
	}
	a.severity = sev
}

// distroSeverity is the highest distro rating among the matched entries.
func (a *advisory) distroSeverity(h hit) model.Severity {
	best := model.SeverityUnknown
	for _, e := range h.entries {
		if s := distroWord(e.urgency); s > best {
			best = s
		}
		for _, s := range e.severity {
			if s.Type == "Ubuntu" {
				if v := distroWord(s.Score); v > best {
					best = v
				}
			}
		}
	}
	for _, s := range a.rec.Severity {
		if s.Type == "Ubuntu" {
			if v := distroWord(s.Score); v > best {
				best = v
			}
		}
	}
	if best == model.SeverityUnknown && isRedHatFamily(h.ecosystem) {
		if word, _, ok := strings.Cut(a.rec.Summary, ":"); ok {
			best = distroWord(word)
		}
	}
	return best
}

// distroWord maps the rating words of Debian's tracker, Ubuntu's CVE
// tracker and Red Hat's errata to the scale; anything else is Unknown.
func distroWord(w string) model.Severity {
	switch strings.ToLower(strings.TrimSpace(w)) {
	case "unimportant", "negligible":
		return model.SeverityNegligible
	case "low":
		return model.SeverityLow
	case "medium", "moderate":
		return model.SeverityMedium
	case "high", "important":
		return model.SeverityHigh
	case "critical":
		return model.SeverityCritical
	}
	return model.SeverityUnknown
}

func isRedHatFamily(eco string) bool {
	for _, p := range []string{"AlmaLinux", "Rocky Linux", "Red Hat"} {
		if strings.HasPrefix(eco, p) {
			return true
		}
	}
	return false
}
