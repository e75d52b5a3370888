package match

import (
	"slices"
	"strings"

	"mamori/internal/model"
	"mamori/internal/vulndb"
)

// Known exploitation and exploit prediction of a finding: every CVE among
// its ID and aliases (a distribution advisory's related CVEs included) is
// looked up in the database's KEV and EPSS data. A finding is known
// exploited when one of them is in the KEV catalogue (the earliest
// dateAdded is shown); its EPSS is the highest score among them.

// advIntel is the KEV and EPSS data of one advisory's CVEs.
type advIntel struct {
	kev  *model.KEV
	epss *model.EPSS
}

// merge combines two advisories' data: the earliest KEV entry, the
// highest EPSS score.
func (a advIntel) merge(b advIntel) advIntel {
	if b.kev != nil && (a.kev == nil || b.kev.DateAdded < a.kev.DateAdded ||
		b.kev.DateAdded == a.kev.DateAdded && b.kev.CVE < a.kev.CVE) {
		a.kev = b.kev
	}
	if b.epss != nil && (a.epss == nil || b.epss.Score > a.epss.Score ||
		b.epss.Score == a.epss.Score && b.epss.CVE < a.epss.CVE) {
		a.epss = b.epss
	}
	return a
}

// cvesOf returns the CVE IDs among an advisory's ID and aliases.
func cvesOf(a *advisory) []string {
	var out []string
	for _, id := range append([]string{a.id}, a.aliases...) {
		if strings.HasPrefix(id, "CVE-") && vulndb.IsCVE(id) && !slices.Contains(out, id) {
			out = append(out, id)
		}
	}
	return out
}

// advIntel looks an advisory's CVEs up, once per advisory.
func (m *Matcher) advIntel(a *advisory) (advIntel, error) {
	a.intelOnce.Do(func() {
		cves := cvesOf(a)
		if len(cves) == 0 {
			return
		}
		found, err := m.intel.Exploits(cves)
		if err != nil {
			a.intelErr = err
			return
		}
		for _, f := range found {
			if k := f.KEV; k != nil {
				a.intel = a.intel.merge(advIntel{kev: &model.KEV{CVE: f.CVE, DateAdded: k.DateAdded, DueDate: k.DueDate, Ransomware: k.Ransomware}})
			}
			if s := f.EPSS; s != nil {
				a.intel = a.intel.merge(advIntel{epss: &model.EPSS{CVE: f.CVE, Score: s.Score, Percentile: s.Percentile}})
			}
		}
	})
	return a.intel, a.intelErr
}
