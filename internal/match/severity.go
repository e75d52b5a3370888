package match

import (
	"cmp"
	"strings"

	"mamori/internal/cvss"
	"mamori/internal/model"
	"mamori/internal/vulndb"
)

// Severity, never invented. First the matched record's own (the most
// specific record of the finding, dedupe.go): the first of these that it
// gives wins.
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
//
// When it gives none (Go's GO- and PyPA's PYSEC- records carry no
// severity), the severity comes from the other records of the same
// vulnerability: those merged into the finding, the records its ID, aliases
// and upstream name, and the records that list one of them as an alias or
// upstream (the database's alias index). They are tried in tiers, and the
// first tier where any gives a severity decides, with the highest there
// (the lowest ID among equals):
//
//  a. GitHub advisories (GHSA-): their CVSS, else GitHub's rating.
//  b. Other records that are not a distribution's (an ecosystem database's,
//     a CVE record): their CVSS, else database_specific.severity.
//  c. A distribution's records about the same CVE (DEBIAN-CVE-, UBUNTU-,
//     ALSA- …): the distribution's rating (the highest over their entries;
//     for records that matched the package, the rating of the matched
//     entries), else their CVSS.
//
// Withdrawn and malicious-package records and distribution advisories that
// bundle several CVEs are never used. The finding names the record in
// SeveritySource and carries its CVSS vectors. Nothing gives one: Unknown.
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

// Tiers of the records a severity may be taken from (see above).
const (
	tierGHSA = iota
	tierOther
	tierDistro
)

// candidate is another record's severity.
type candidate struct {
	id   string
	tier int
	sev  model.Severity
	cvss []model.CVSS
}

// tierOf places a record in a tier; ok is false for a record that must not
// give a severity.
func tierOf(r *vulndb.Record) (tier int, ok bool) {
	switch {
	case r.Withdrawn != "" || strings.HasPrefix(r.ID, "MAL-") || r.IsBundle():
		return 0, false
	case strings.HasPrefix(r.ID, "GHSA-"):
		return tierGHSA, true
	case r.IsDistro() || vulndb.IsDistroAdvisory(r.ID):
		return tierDistro, true
	}
	return tierOther, true
}

// ratingCandidate is what a record that did not match the package says:
// distributions' records their rating first, the others their CVSS first.
func ratingCandidate(rt vulndb.Rating) candidate {
	c := candidate{id: rt.ID, tier: tierOther}
	switch {
	case strings.HasPrefix(rt.ID, "GHSA-"):
		c.tier = tierGHSA
	case rt.Distro:
		c.tier = tierDistro
	}
	cv, scored := cvss.SeverityFromVectors(rt.CVSS)
	for _, s := range scored {
		if s.Err == nil {
			c.cvss = append(c.cvss, model.CVSS{Version: s.Version, Vector: s.Vector, Score: s.Score, Source: rt.ID})
		}
	}
	word, err := model.ParseSeverity(rt.Word)
	if err != nil {
		word = model.SeverityUnknown
	}
	if c.tier == tierDistro {
		best := model.SeverityUnknown
		for _, w := range rt.DistroWords {
			best = max(best, distroWord(w))
		}
		if best == model.SeverityUnknown && isRedHatAdvisory(rt.ID) {
			best = distroWord(rt.SummaryWord)
		}
		c.sev = cmp.Or(best, cv, word)
		return c
	}
	c.sev = cmp.Or(cv, word)
	return c
}

func isRedHatAdvisory(id string) bool {
	for _, p := range []string{"ALSA-", "ALBA-", "ALEA-", "RLSA-", "RXSA-", "RHSA-", "RHBA-", "RHEA-"} {
		if strings.HasPrefix(id, p) {
			return true
		}
	}
	return false
}

// borrowSeverity picks the severity of a finding whose most specific record
// has none, from the group's other records and the records related to the
// group's by the alias index; nil when none gives one.
func (m *Matcher) borrowSeverity(group []pkgHit) (*candidate, error) {
	var cands []candidate
	for _, h := range group[1:] {
		tier, ok := tierOf(h.adv.rec)
		if !ok {
			continue
		}
		sev, cv := h.adv.severityFor(h.hit)
		cands = append(cands, candidate{id: h.adv.id, tier: tier, sev: sev, cvss: cv})
	}
	if m.intel != nil {
		for _, h := range group {
			others, err := m.related(h.adv)
			if err != nil {
				return nil, err
			}
			cands = append(cands, others...)
		}
	}
	var best *candidate
	for i := range cands {
		c := &cands[i]
		if c.sev == model.SeverityUnknown || c.id == group[0].adv.id {
			continue
		}
		if best == nil || c.tier < best.tier || c.tier == best.tier && (c.sev > best.sev || c.sev == best.sev && c.id < best.id) {
			best = c
		}
	}
	return best, nil
}

// related returns (once per advisory) the severities of the records that
// name the advisory's vulnerability, other than itself.
func (m *Matcher) related(a *advisory) ([]candidate, error) {
	a.relOnce.Do(func() {
		rts, err := m.intel.Ratings(a.id, a.links)
		if err != nil {
			a.relErr = err
			return
		}
		for _, rt := range rts {
			if c := ratingCandidate(rt); c.sev != model.SeverityUnknown {
				a.others = append(a.others, c)
			}
		}
	})
	return a.others, a.relErr
}
