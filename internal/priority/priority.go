// Package priority ranks vulnerability findings by what to fix first. The
// score combines the severity (and its CVSS base score), CISA's Known
// Exploited Vulnerabilities catalogue, FIRST's EPSS probability, whether a
// fix exists and whether the package is in use at run time; each finding
// gets the score and one line that explains it. docs/prioritisation.md is
// the reference; the constants below are the formula.
//
// The package is pure: it reads model values and nothing else.
package priority

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"mamori/internal/model"
)

// The formula: score = severity + known exploited + EPSS + fix + in use,
// clamped to 0..100 and rounded to one decimal.
const (
	// SeverityWeight multiplies the base score (0-10): 0-35 points.
	SeverityWeight = 3.5
	// KEVPoints are added for a vulnerability in CISA's KEV catalogue,
	// RansomwarePoints more when CISA knows it used by ransomware: as much
	// as the severity can give, so that a known-exploited vulnerability
	// comes before an unexploited one of any severity unless EPSS says
	// exploitation of the latter is likely.
	KEVPoints        = 35.0
	RansomwarePoints = 5.0
	// EPSSWeight multiplies the EPSS probability (0-1): 0-15 points.
	EPSSWeight = 15.0
	// FixPoints are added when a fixed version is known: the finding can
	// be acted on now.
	FixPoints = 5.0
	// InUsePoints are added when the runtime agent saw the package loaded,
	// and taken away when it watched the image's containers and did not.
	// Without agent data nothing is added or taken.
	InUsePoints = 10.0
)

// representative is the base score used for a severity when the finding
// has no CVSS score of that rating: the middle of the CVSS v3 band (an
// Unknown severity counts as the middle of the scale: unknown is not low).
var representative = map[model.Severity]float64{
	model.SeverityCritical:   9.5,
	model.SeverityHigh:       8.0,
	model.SeverityMedium:     5.5,
	model.SeverityLow:        2.5,
	model.SeverityNegligible: 0.5,
	model.SeverityUnknown:    5.0,
}

// rating is the CVSS v3 qualitative rating of a base score.
func rating(score float64) model.Severity {
	switch {
	case score >= 9.0:
		return model.SeverityCritical
	case score >= 7.0:
		return model.SeverityHigh
	case score >= 4.0:
		return model.SeverityMedium
	case score > 0:
		return model.SeverityLow
	}
	return model.SeverityUnknown
}

// baseScore is the highest CVSS base score whose rating is the finding's
// severity (the severity shown decides: a distribution may rate a CVE
// lower than its CVSS says for the package as it ships it), else the
// severity's representative score. ok says whether a CVSS score was used.
func baseScore(v *model.Vulnerability) (score float64, ok bool) {
	for _, c := range v.CVSS {
		if rating(c.Score) == v.Severity && c.Score > score {
			score, ok = c.Score, true
		}
	}
	if ok {
		return score, true
	}
	return representative[v.Severity], false
}

// Of computes v's priority.
func Of(v *model.Vulnerability) model.Priority {
	base, fromCVSS := baseScore(v)
	score := SeverityWeight * base
	var parts []string
	sev := strings.ToLower(v.Severity.String())
	var detail []string
	if v.SeveritySource != "" {
		detail = append(detail, "from "+v.SeveritySource)
	}
	if fromCVSS {
		detail = append(detail, "CVSS "+strconv.FormatFloat(base, 'f', 1, 64))
	}
	if v.Severity == model.SeverityUnknown {
		sev = "severity unknown"
	}
	if len(detail) > 0 {
		sev += " (" + strings.Join(detail, ", ") + ")"
	}
	parts = append(parts, sev)
	if k := v.KEV; k != nil {
		score += KEVPoints
		s := "known exploited since " + k.DateAdded
		if k.Ransomware {
			score += RansomwarePoints
			s += " (ransomware)"
		}
		parts = append(parts, s)
	}
	if e := v.EPSS; e != nil {
		score += EPSSWeight * e.Score
		parts = append(parts, "EPSS "+FormatEPSS(e.Score))
	}
	if u := v.InUse; u != nil {
		if u.Loaded {
			score += InUsePoints
			n := max(u.Count, len(u.Containers), 1)
			parts = append(parts, fmt.Sprintf("in use in %d container%s", n, plural(n)))
		} else {
			score -= InUsePoints
			parts = append(parts, "not loaded at run time")
		}
	}
	if v.FixedVersion != "" {
		score += FixPoints
		parts = append(parts, "fix "+v.FixedVersion)
	} else {
		parts = append(parts, "no fix")
	}
	score = math.Round(min(max(score, 0), 100)*10) / 10
	return model.Priority{Score: score, Reason: strings.Join(parts, ", ")}
}

// FormatEPSS prints an EPSS probability as people quote them: two
// decimals from 0.1 ("0.97"), three from 0.01 ("0.026"), five below
// ("0.00069"), the precision FIRST publishes.
func FormatEPSS(p float64) string {
	switch {
	case p >= 0.1:
		return strconv.FormatFloat(p, 'f', 2, 64)
	case p >= 0.01:
		return strconv.FormatFloat(p, 'f', 3, 64)
	}
	return strconv.FormatFloat(p, 'f', 5, 64)
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// Apply sets the priority of every vulnerability.
func Apply(vs []model.Vulnerability) {
	for i := range vs {
		p := Of(&vs[i])
		vs[i].Priority = &p
	}
}

// Sort orders vulnerabilities by priority (highest first), then severity,
// package and ID; those without a priority come last.
func Sort(vs []model.Vulnerability) {
	slices.SortStableFunc(vs, func(a, b model.Vulnerability) int {
		return cmp.Or(
			-cmp.Compare(score(&a), score(&b)),
			-cmp.Compare(a.Severity, b.Severity),
			cmp.Compare(a.Package.Name, b.Package.Name),
			cmp.Compare(a.Package.Path, b.Package.Path),
			cmp.Compare(a.ID, b.ID))
	})
}

func score(v *model.Vulnerability) float64 {
	if v.Priority == nil {
		return -1
	}
	return v.Priority.Score
}
