package match

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"mamori/internal/model"
	"mamori/internal/vulndb"
)

// prioDB imports testdata/prio (real GO-, PYSEC-, GHSA- and Debian records,
// a KEV subset and EPSS rows: see its NOTICE) with the directory
// convention for the feeds; without ghsa/ when noGHSA (the data a Go or
// PyPI advisory database alone has).
func prioDB(t testing.TB, noGHSA bool) *vulndb.DB {
	t.Helper()
	src := "testdata/prio"
	if noGHSA {
		src = t.TempDir()
		for _, d := range []string{"Go", "PyPI", "Debian", "kev", "epss"} {
			if err := os.CopyFS(filepath.Join(src, d), os.DirFS(filepath.Join("testdata/prio", d))); err != nil {
				t.Fatal(err)
			}
		}
	}
	dir := t.TempDir()
	res, err := vulndb.Import(context.Background(), dir, src)
	if err != nil {
		t.Fatal(err)
	}
	if res.Skipped != 0 || res.KEV == nil || res.EPSS == nil {
		t.Fatalf("import: %+v", res)
	}
	db, err := vulndb.Open(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// oldappInventory is what the Go binary of testdata/prio/oldapp (built with
// go1.19.13) and an old Python application install: the packages the
// issue's "must show" image has.
func oldappInventory() *model.Inventory {
	golang := func(name, ver string) model.Package {
		p := pkg(model.TypeGolang, name, ver)
		p.Ecosystem = model.EcosystemGo
		p.Locations[0].Path = "usr/local/bin/oldapp"
		return p
	}
	py := func(name, ver string) model.Package {
		p := pkg(model.TypePyPI, name, ver)
		p.Ecosystem = model.EcosystemPyPI
		p.Locations[0].Path = "usr/lib/python3/dist-packages/" + name + "-" + ver + ".dist-info/METADATA"
		return p
	}
	return &model.Inventory{Packages: []model.Package{
		golang("golang.org/x/crypto", "v0.0.0-20200220183623-bac4c82f6975"),
		golang("golang.org/x/net", "v0.0.0-20220127200216-cd36cc0744dd"),
		golang("golang.org/x/text", "v0.3.7"),
		golang("stdlib", "1.19.13"),
		py("PyYAML", "5.3"),
		py("urllib3", "1.24.1"),
		py("requests", "2.19.0"),
		py("Jinja2", "2.10"),
	}}
}

func byPkgID(vs []model.Vulnerability) map[string]model.Vulnerability {
	m := map[string]model.Vulnerability{}
	for _, v := range vs {
		m[v.Package.Name+" "+v.ID] = v
	}
	return m
}

func unknownShare(vs []model.Vulnerability) (int, int) {
	n := 0
	for _, v := range vs {
		if v.Severity == model.SeverityUnknown {
			n++
		}
	}
	return n, len(vs)
}

// TestOneFindingPerVulnerability (issue 15): with Go's and PyPA's records
// and the GitHub advisories that alias them in one database, each
// vulnerability of a package is one finding under the most specific ID,
// with the others as aliases and a severity from the GitHub advisory,
// named; without the GitHub advisories the same records have no severity.
func TestOneFindingPerVulnerability(t *testing.T) {
	ctx := context.Background()
	inv := oldappInventory()

	before, _, err := Match(ctx, prioDB(t, true), inv)
	if err != nil {
		t.Fatal(err)
	}
	vulns, _, err := Match(ctx, prioDB(t, false), inv)
	if err != nil {
		t.Fatal(err)
	}
	ub, nb := unknownShare(before)
	ua, na := unknownShare(vulns)
	t.Logf("Unknown severity: %d of %d findings without the GHSA records, %d of %d with them", ub, nb, ua, na)
	if nb != na {
		t.Errorf("the GHSA records changed the number of findings: %d -> %d (each should merge into a GO/PYSEC finding)", nb, na)
	}
	if ub == 0 || ua >= ub {
		t.Errorf("Unknown: %d before, %d after", ub, ua)
	}

	// No package has two findings naming the same ID.
	ids := map[string]string{}
	for _, v := range vulns {
		for _, id := range append([]string{v.ID}, v.Aliases...) {
			k := v.Package.Name + " " + id
			if other, dup := ids[k]; dup {
				t.Errorf("%s: %s is named by two findings, %s and %s", v.Package.Name, id, other, v.ID)
			}
			ids[k] = v.ID
		}
		if strings.HasPrefix(v.ID, "GHSA-") {
			t.Errorf("%s on %s: the GHSA record should be an alias of the GO/PYSEC finding", v.ID, v.Package.Name)
		}
		if v.Priority == nil || v.Priority.Reason == "" {
			t.Errorf("%s: no priority", v.ID)
		}
	}

	got := byPkgID(vulns)
	for _, c := range []struct {
		key, source string
		sev         model.Severity
		alias       string
	}{
		// The GHSA record matches the same module: merged, its severity used.
		{"golang.org/x/net GO-2022-0969", "GHSA-69cg-p879-7622", model.SeverityHigh, "GHSA-69cg-p879-7622"},
		{"golang.org/x/text GO-2022-1059", "GHSA-69ch-w2m2-3vjp", model.SeverityHigh, "CVE-2022-32149"},
		{"PyYAML PYSEC-2021-142", "GHSA-8q59-q68h-6hv4", model.SeverityCritical, "GHSA-8q59-q68h-6hv4"},
		{"urllib3 PYSEC-2019-133", "GHSA-mh33-7rrq-662w", model.SeverityHigh, "CVE-2019-11324"},
		// GHSA-4v7x-pqxf-cx7m names "net/http", not "stdlib": it does not
		// match the standard library, its severity comes through the
		// alias index.
		{"stdlib GO-2024-2687", "GHSA-4v7x-pqxf-cx7m", model.SeverityMedium, "GHSA-4v7x-pqxf-cx7m"},
	} {
		v, ok := got[c.key]
		if !ok {
			t.Errorf("%s: not found", c.key)
			continue
		}
		if v.Severity != c.sev || v.SeveritySource != c.source || !slices.Contains(v.Aliases, c.alias) {
			t.Errorf("%s: severity %v from %q, aliases %v; want %v from %s, alias %s", c.key, v.Severity, v.SeveritySource, v.Aliases, c.sev, c.source, c.alias)
		}
		if !slices.ContainsFunc(v.CVSS, func(x model.CVSS) bool { return x.Source == c.source }) {
			t.Errorf("%s: the CVSS of %s is missing: %+v", c.key, c.source, v.CVSS)
		}
		if !strings.Contains(v.Priority.Reason, "from "+c.source) {
			t.Errorf("%s: priority reason %q does not name %s", c.key, v.Priority.Reason, c.source)
		}
		if b := byPkgID(before)[c.key]; b.Severity != model.SeverityUnknown || b.SeveritySource != "" {
			t.Errorf("%s without GHSA records: severity %v from %q, want Unknown", c.key, b.Severity, b.SeveritySource)
		}
	}
	// A record with its own severity keeps it: PYSEC-2023-192 has a CVSS
	// vector (its GHSA alias is not in the data).
	if v := got["urllib3 PYSEC-2023-192"]; v.Severity != model.SeverityHigh || v.SeveritySource != "" {
		t.Errorf("PYSEC-2023-192: %v from %q", v.Severity, v.SeveritySource)
	}

	// GO-2022-0197 aliases two GHSA records, both HIGH, both matching an
	// x/net of 2018: one finding, the lower GHSA ID named.
	inv = &model.Inventory{Packages: []model.Package{pkg(model.TypeGolang, "golang.org/x/net", "v0.0.0-20180724234803-3673e40ba225")}}
	vulns, _, err = Match(ctx, prioDB(t, false), inv)
	if err != nil {
		t.Fatal(err)
	}
	v := byPkgID(vulns)["golang.org/x/net GO-2022-0197"]
	if v.SeveritySource != "GHSA-4r78-hx75-jjj2" || v.Severity != model.SeverityHigh ||
		!slices.Contains(v.Aliases, "GHSA-mv93-wvcp-7m7r") || !slices.Contains(v.Aliases, "GHSA-4r78-hx75-jjj2") {
		t.Errorf("GO-2022-0197: %v from %q, aliases %v", v.Severity, v.SeveritySource, v.Aliases)
	}
	for _, v := range vulns {
		if strings.HasPrefix(v.ID, "GHSA-") {
			t.Errorf("%s reported on its own", v.ID)
		}
	}
}

// TestDistroAdvisoriesMerge: a DSA about one CVE is the DEBIAN-CVE record's
// vulnerability; a DSA fixing three CVEs stays its own finding and links
// none of them.
func TestDistroAdvisoriesMerge(t *testing.T) {
	db := prioDB(t, false)
	inv := &model.Inventory{OS: &model.OS{ID: "debian", VersionID: "12"},
		Packages: []model.Package{debPkg("libc6", "glibc", "2.36-9+deb12u2")}}
	vulns, _, err := Match(context.Background(), db, inv)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, v := range vulns {
		ids = append(ids, v.ID)
	}
	want := []string{"DEBIAN-CVE-2023-4911", "DEBIAN-CVE-2023-6246", "DEBIAN-CVE-2023-6779", "DEBIAN-CVE-2023-6780",
		"DEBIAN-CVE-2024-2961", "DSA-5611-1"}
	if !slices.Equal(ids, want) {
		t.Fatalf("findings %v, want %v", ids, want)
	}
	got := byPkgID(vulns)
	if a := got["libc6 DEBIAN-CVE-2023-4911"].Aliases; !slices.Equal(a, []string{"CVE-2023-4911", "DSA-5514-1"}) {
		t.Errorf("DEBIAN-CVE-2023-4911 aliases %v", a)
	}
	if a := got["libc6 DEBIAN-CVE-2024-2961"].Aliases; !slices.Equal(a, []string{"CVE-2024-2961", "DSA-5673-1"}) {
		t.Errorf("DEBIAN-CVE-2024-2961 aliases %v", a)
	}
	if a := got["libc6 DEBIAN-CVE-2023-6246"].Aliases; slices.Contains(a, "DSA-5611-1") {
		t.Errorf("the bundle DSA-5611-1 was merged into DEBIAN-CVE-2023-6246: %v", a)
	}
	// The bundle has no severity of its own and none is borrowed.
	if v := got["libc6 DSA-5611-1"]; v.Severity != model.SeverityUnknown || v.SeveritySource != "" {
		t.Errorf("DSA-5611-1: %v from %q", v.Severity, v.SeveritySource)
	}

	// Known exploited (Looney Tunables) and EPSS, on the merged finding.
	v := got["libc6 DEBIAN-CVE-2023-4911"]
	if v.KEV == nil || *v.KEV != (model.KEV{CVE: "CVE-2023-4911", DateAdded: "2023-11-21", DueDate: "2023-12-12"}) {
		t.Errorf("KEV %+v", v.KEV)
	}
	if v.EPSS == nil || *v.EPSS != (model.EPSS{CVE: "CVE-2023-4911", Score: 0.69791, Percentile: 0.98614, Date: "2026-01-02"}) {
		t.Errorf("EPSS %+v", v.EPSS)
	}
	if r := v.Priority.Reason; r != "high (CVSS 7.8), known exploited since 2023-11-21, EPSS 0.70, fix 2.36-9+deb12u3" {
		t.Errorf("reason %q", r)
	}
	// Not in KEV: no field (not false).
	if x := got["libc6 DEBIAN-CVE-2024-2961"]; x.KEV != nil || x.EPSS == nil || x.EPSS.Score != 0.92739 {
		t.Errorf("CVE-2024-2961: KEV %+v EPSS %+v", x.KEV, x.EPSS)
	}
	// The priority puts the known-exploited finding first.
	top := slices.MaxFunc(vulns, func(a, b model.Vulnerability) int {
		return int((a.Priority.Score - b.Priority.Score) * 10)
	})
	if top.ID != "DEBIAN-CVE-2023-4911" {
		t.Errorf("highest priority %s (%v)", top.ID, top.Priority)
	}
}

// TestKEVOnLanguageRecords: a GO- record whose CVE CISA lists, and a
// Source without intelligence (no KEV, no EPSS, no borrowed severity).
func TestKEVOnLanguageRecords(t *testing.T) {
	db := prioDB(t, false)
	inv := &model.Inventory{Packages: []model.Package{pkg(model.TypeGolang, "stdlib", "go1.13.5"), pkg(model.TypePyPI, "salt", "2019.2.0")}}
	vulns, _, err := Match(context.Background(), db, inv)
	if err != nil {
		t.Fatal(err)
	}
	got := byPkgID(vulns)
	if v := got["stdlib GO-2022-0535"]; v.KEV == nil || v.KEV.CVE != "CVE-2020-0601" || v.KEV.DateAdded != "2021-11-03" {
		t.Errorf("GO-2022-0535 KEV %+v", v.KEV)
	}
	if v := got["salt PYSEC-2020-102"]; v.KEV == nil || v.KEV.CVE != "CVE-2020-11651" {
		t.Errorf("PYSEC-2020-102 KEV %+v", v.KEV)
	}

	// The same data through a Source that has only Lookup.
	vulns, _, err = Match(context.Background(), lookupOnly{db}, oldappInventory())
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range vulns {
		if v.KEV != nil || v.EPSS != nil || v.SeveritySource != "" && !strings.HasPrefix(v.SeveritySource, "GHSA-") {
			t.Errorf("%s: %+v %+v %q", v.ID, v.KEV, v.EPSS, v.SeveritySource)
		}
	}
}

type lookupOnly struct{ db *vulndb.DB }

func (l lookupOnly) Lookup(eco, name string) ([]*vulndb.Record, error) { return l.db.Lookup(eco, name) }

// TestSeverityTiers: the tier order of borrowed severities.
func TestSeverityTiers(t *testing.T) {
	ghsa := &vulndb.Record{ID: "GHSA-aaaa-bbbb-cccc", DatabaseSpecific: &vulndb.Specific{Severity: "MODERATE"},
		Affected: []vulndb.Affected{{Package: vulndb.Package{Ecosystem: "Go", Name: "x"}}}}
	deb := &vulndb.Record{ID: "DEBIAN-CVE-2020-1", Upstream: []string{"CVE-2020-1"},
		Affected: []vulndb.Affected{{Package: vulndb.Package{Ecosystem: "Debian:12", Name: "x"},
			EcosystemSpecific: &vulndb.Specific{Urgency: "high"}}}}
	nvd := &vulndb.Record{ID: "CVE-2020-1", Severity: []vulndb.Severity{{Type: "CVSS_V3", Score: "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}}}
	bundle := &vulndb.Record{ID: "DSA-1-1", Upstream: []string{"CVE-2020-1", "CVE-2020-2"}, Summary: "x",
		Affected: []vulndb.Affected{{Package: vulndb.Package{Ecosystem: "Debian:12", Name: "x"},
			EcosystemSpecific: &vulndb.Specific{Urgency: "critical"}}}}
	for _, c := range []struct {
		r    *vulndb.Record
		tier int
		sev  model.Severity
		ok   bool
	}{
		{ghsa, tierGHSA, model.SeverityMedium, true},
		{deb, tierDistro, model.SeverityHigh, true},
		{nvd, tierOther, model.SeverityCritical, true},
		{bundle, 0, 0, false},
		{&vulndb.Record{ID: "GHSA-w", Withdrawn: "2020-01-01T00:00:00Z"}, 0, 0, false},
	} {
		rt, ok := vulndb.RatingOf(c.r)
		got := ratingCandidate(rt)
		if ok != c.ok || ok && (got.tier != c.tier || got.sev != c.sev) {
			t.Errorf("%s: %+v %v", c.r.ID, got, ok)
		}
	}
}
