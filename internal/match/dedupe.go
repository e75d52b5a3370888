package match

import (
	"cmp"
	"slices"
	"strings"

	"mamori/internal/model"
	"mamori/internal/priority"
	"mamori/internal/vulndb"
)

// One finding per vulnerability.
//
// Several databases describe one vulnerability: Go's GO-2022-0969, GitHub's
// GHSA-69cg-p879-7622 and the CVE both list are one bug, and when the
// database holds both records a package both cover matched twice. Records
// that name each other (an ID of one is the ID, an alias or the upstream of
// the other, or both list the same alias) and match the same package are
// one finding:
//
//   - its ID is the most specific record's: the ecosystem's own database
//     (GO-, PYSEC-, RUSTSEC-, DEBIAN-CVE-, ALPINE-CVE-, UBUNTU-CVE- …), then
//     a distribution's advisory (DSA-, DLA-, USN-, ALSA-, RLSA-, RHSA- …),
//     then GitHub's (GHSA-), then the CVE itself (CVE-), then anything
//     else; the lowest ID among equals (rankOf);
//   - the other records' IDs and aliases become its aliases;
//   - its fixed version is the most specific record's, else the first other
//     record's that names one for the package;
//   - its CVSS vectors are all the records' (each naming its record);
//   - its severity is decided as severity.go says, over all of them.
//
// A distribution advisory that bundles several CVEs (a DSA fixing five
// issues) is not the same vulnerability as any one of them: its upstream
// and related IDs do not link it (it stays its own finding) and it is never
// where another record's severity comes from. `related` IDs never link
// records: OSV defines them as different vulnerabilities.

// pkgHit is one advisory that matched one package.
type pkgHit struct {
	adv *advisory
	q   query
	hit hit
}

// findings appends the findings of one query's hits (without their
// package): one per group of hits that name the same vulnerability, with
// its priority.
func (m *Matcher) findings(out []model.Vulnerability, hits []pkgHit) ([]model.Vulnerability, error) {
	if len(hits) == 1 {
		v, err := m.finding(hits)
		if err != nil {
			return out, err
		}
		return append(out, v), nil
	}
	// Union-find over the (few) hits of one package.
	parent := make([]int, len(hits))
	for i := range parent {
		parent[i] = i
	}
	find := func(i int) int {
		for parent[i] != i {
			parent[i] = parent[parent[i]]
			i = parent[i]
		}
		return i
	}
	for i := range hits {
		for j := i + 1; j < len(hits); j++ {
			if linked(hits[i].adv, hits[j].adv) {
				parent[find(j)] = find(i)
			}
		}
	}
	groups := map[int][]pkgHit{}
	var roots []int
	for i := range hits {
		r := find(i)
		if _, ok := groups[r]; !ok {
			roots = append(roots, r)
		}
		groups[r] = append(groups[r], hits[i])
	}
	for _, r := range roots {
		v, err := m.finding(groups[r])
		if err != nil {
			return out, err
		}
		out = append(out, v)
	}
	return out, nil
}

// linked reports whether two advisories name the same vulnerability.
func linked(a, b *advisory) bool {
	for _, x := range a.links {
		if slices.Contains(b.links, x) {
			return true
		}
	}
	return false
}

// finding builds the one finding of a group of hits on one package, and
// its priority.
func (m *Matcher) finding(group []pkgHit) (model.Vulnerability, error) {
	if len(group) > 1 {
		slices.SortFunc(group, func(a, b pkgHit) int {
			return cmp.Or(cmp.Compare(a.adv.rank, b.adv.rank), cmp.Compare(a.adv.id, b.adv.id))
		})
	}
	prim := group[0]
	v := prim.adv.template(prim.hit)
	if len(group) > 1 {
		ids := slices.Clone(v.Aliases)
		for _, h := range group[1:] {
			ids = append(ids, h.adv.id)
			ids = append(ids, h.adv.aliases...)
			if v.FixedVersion == "" {
				v.FixedVersion = h.hit.fix
			}
			_, cv := h.adv.severityFor(h.hit)
			v.CVSS = addCVSS(v.CVSS, cv)
			if v.Summary == "" {
				v.Summary = h.adv.rec.Summary
			}
		}
		slices.Sort(ids)
		ids = slices.Compact(ids)
		if i := slices.Index(ids, v.ID); i >= 0 {
			ids = slices.Delete(ids, i, i+1)
		}
		v.Aliases = ids
	}
	if v.Severity == model.SeverityUnknown {
		c, err := m.borrowSeverity(group)
		if err != nil {
			return v, err
		}
		if c != nil {
			v.Severity, v.SeveritySource = c.sev, c.id
			v.CVSS = addCVSS(v.CVSS, c.cvss)
		}
	}
	if m.intel != nil {
		var in advIntel
		for _, h := range group {
			hi, err := m.advIntel(h.adv)
			if err != nil {
				return v, err
			}
			in = in.merge(hi)
		}
		v.KEV = in.kev
		if in.epss != nil {
			e := *in.epss
			e.Date = m.epssDate
			v.EPSS = &e
		}
	}
	pr := priority.Of(&v)
	v.Priority = &pr
	return v, nil
}

// addCVSS appends the vectors of more that list does not hold yet.
func addCVSS(list, more []model.CVSS) []model.CVSS {
	for _, c := range more {
		if !slices.ContainsFunc(list, func(x model.CVSS) bool { return x.Vector == c.Vector }) {
			list = append(list, c)
		}
	}
	return list
}

// linksOf returns the IDs that name r's vulnerability for merging: its
// own, its aliases and its upstream (not related: a distribution advisory
// about one CVE lists it there, but the per-CVE record of the same
// distribution lists the advisory nowhere, and two records of one
// distribution for one package are merged through the CVE's upstream).
// A bundle is named by its own ID only.
func linksOf(r *vulndb.Record) []string {
	out := []string{r.ID}
	if r.IsBundle() {
		return out
	}
	for _, list := range [][]string{r.Aliases, r.Upstream} {
		for _, id := range list {
			if id != "" && !slices.Contains(out, id) {
				out = append(out, id)
			}
		}
	}
	return out
}

// Ranks of rankOf, most specific first.
const (
	rankEcosystem = iota // the ecosystem's own database: GO-, PYSEC-, RUSTSEC-, DEBIAN-CVE- …
	rankDistroAdvisory
	rankGHSA
	rankCVE
)

// rankOf says how specific a record ID is (lower is more specific).
func rankOf(id string) int {
	switch {
	case strings.HasPrefix(id, "GHSA-"):
		return rankGHSA
	case strings.HasPrefix(id, "CVE-"):
		return rankCVE
	case vulndb.IsDistroAdvisory(id):
		return rankDistroAdvisory
	}
	return rankEcosystem
}
