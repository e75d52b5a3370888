package vulndb

import (
	"slices"
	"strings"
)

// What kind of record a record is decides how it relates to others: a
// distribution's advisory bundling several CVEs (a DSA fixing five issues)
// is not the same vulnerability as any one of them, and OSV's "related"
// means "a different vulnerability" except in distributions' advisories,
// which list the CVEs they fix there.

// IsDistroAdvisory reports whether id is a distribution's advisory ID,
// which bundles the CVEs it fixes.
func IsDistroAdvisory(id string) bool {
	for _, p := range []string{"ALSA-", "ALBA-", "ALEA-", "RLSA-", "RXSA-", "RHSA-", "RHBA-", "RHEA-", "DSA-", "DLA-", "DTSA-", "USN-", "SUSE-", "openSUSE-"} {
		if strings.HasPrefix(id, p) {
			return true
		}
	}
	return false
}

// osBases are the OSV ecosystems of operating-system distributions.
var osBases = []string{"AlmaLinux", "Alpine", "Azure Linux", "Chainguard", "Debian", "Mageia", "openEuler",
	"openSUSE", "Photon OS", "Red Hat", "Rocky Linux", "SUSE", "Ubuntu", "Wolfi"}

// IsDistro reports whether every affected entry of r is in a distribution's
// ecosystem (its ratings are the distribution's); a record without entries
// is judged by its ID.
func (r *Record) IsDistro() bool {
	if len(r.Affected) == 0 {
		return IsDistroAdvisory(r.ID) || strings.HasPrefix(r.ID, "DEBIAN-") || strings.HasPrefix(r.ID, "UBUNTU-") ||
			strings.HasPrefix(r.ID, "ALPINE-")
	}
	for _, a := range r.Affected {
		base, _ := SplitEcosystem(a.Package.Ecosystem)
		if !slices.Contains(osBases, base) {
			return false
		}
	}
	return true
}

// IsBundle reports whether r is a distribution's record about several CVEs.
func (r *Record) IsBundle() bool {
	if !IsDistroAdvisory(r.ID) && !r.IsDistro() {
		return false
	}
	var cves []string
	for _, list := range [][]string{{r.ID}, r.Aliases, r.Upstream, r.Related} {
		for _, id := range list {
			if strings.HasPrefix(id, "CVE-") && !slices.Contains(cves, id) {
				cves = append(cves, id)
				if len(cves) > 1 {
					return true
				}
			}
		}
	}
	return false
}

// SameVulnerability returns the IDs that name r's vulnerability: its own,
// its aliases and upstream, and for a distribution's advisory the CVE it
// lists as related. A bundle is named by its own ID only.
func (r *Record) SameVulnerability() []string {
	out := []string{r.ID}
	if r.IsBundle() {
		return out
	}
	lists := [][]string{r.Aliases, r.Upstream}
	if IsDistroAdvisory(r.ID) {
		lists = append(lists, r.Related)
	}
	for _, list := range lists {
		for _, id := range list {
			if id != "" && !slices.Contains(out, id) {
				out = append(out, id)
			}
		}
	}
	return out
}

// Rating is what a record says about its vulnerability's severity, kept
// (bucket ratings) for the records another record's finding may take a
// severity from: the matcher reads it instead of decoding the record.
type Rating struct {
	ID string `json:"id"`
	// Distro is true for a distribution's record or advisory.
	Distro bool `json:"distro,omitempty"`
	// CVSS are the CVSS vectors of the record and its entries.
	CVSS []string `json:"cvss,omitempty"`
	// Word is database_specific.severity (GitHub's rating).
	Word string `json:"word,omitempty"`
	// DistroWords are the entries' urgency and severity words and Ubuntu
	// priorities; SummaryWord is the text before ":" of a distribution
	// advisory's summary (Red Hat's rating in AlmaLinux and Rocky ones).
	DistroWords []string `json:"distroWords,omitempty"`
	SummaryWord string   `json:"summaryWord,omitempty"`
}

// Lends reports whether another record's finding may take r's severity:
// not withdrawn, not a malicious-package record, not a bundle.
func (r *Record) Lends() bool {
	return r.Withdrawn == "" && !strings.HasPrefix(r.ID, "MAL-") && !r.IsBundle()
}

// RatingOf extracts r's rating; ok is false when r says nothing about
// severity or does not lend (Lends).
func RatingOf(r *Record) (rt Rating, ok bool) {
	if !r.Lends() {
		return rt, false
	}
	rt = Rating{ID: r.ID, Distro: r.IsDistro() || IsDistroAdvisory(r.ID)}
	addWord := func(w string) {
		if w = strings.TrimSpace(w); w != "" && !slices.Contains(rt.DistroWords, w) {
			rt.DistroWords = append(rt.DistroWords, w)
		}
	}
	add := func(ss []Severity) {
		for _, s := range ss {
			switch {
			case strings.HasPrefix(s.Type, "CVSS_") && s.Score != "":
				if !slices.Contains(rt.CVSS, s.Score) {
					rt.CVSS = append(rt.CVSS, s.Score)
				}
			case s.Type == "Ubuntu":
				addWord(s.Score)
			}
		}
	}
	add(r.Severity)
	for _, a := range r.Affected {
		add(a.Severity)
		for _, sp := range []*Specific{a.EcosystemSpecific, a.DatabaseSpecific} {
			if sp != nil {
				addWord(string(sp.Urgency))
				addWord(string(sp.Severity))
			}
		}
	}
	if r.DatabaseSpecific != nil {
		rt.Word = string(r.DatabaseSpecific.Severity)
	}
	if IsDistroAdvisory(r.ID) {
		if w, _, ok := strings.Cut(r.Summary, ":"); ok && len(w) <= 16 {
			rt.SummaryWord = w
		}
	}
	ok = len(rt.CVSS) > 0 || rt.Word != "" || len(rt.DistroWords) > 0 || rt.SummaryWord != ""
	return rt, ok
}
