package store

import (
	"context"
	"reflect"
	"testing"
	"time"

	"mamori/internal/model"
)

// prioVuln is vuln with the prioritisation fields of issue 15.
func prioVuln(id, pkg string, sev model.Severity, cvss float64, prio float64, kev string, epss float64) model.Vulnerability {
	v := vuln(id, pkg, sev, cvss, "1.0")
	v.Priority = &model.Priority{Score: prio, Reason: "reason of " + id}
	if kev != "" {
		v.KEV = &model.KEV{CVE: id, DateAdded: kev, Ransomware: true}
	}
	if epss >= 0 {
		v.EPSS = &model.EPSS{CVE: id, Score: epss, Percentile: 0.5, Date: "2026-01-02"}
	}
	return v
}

// TestPrioritisationStored (issue 15): severity source, KEV, EPSS, priority
// and run-time use are kept per row and per vulnerability, filter (known
// exploited, EPSS at least) and sort (priority) the list, and come back in
// an image's vulnerabilities and a vulnerability's affected rows.
func TestPrioritisationStored(t *testing.T) {
	engines(t, func(t *testing.T, s *sqlStore) {
		ctx := context.Background()
		seen := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
		borrowed := prioVuln("GO-2022-0969", "golang.org/x/net", model.SeverityHigh, 7.5, 31.3, "", 0.00056)
		borrowed.SeveritySource = "GHSA-69cg-p879-7622"
		borrowed.InUse = &model.InUse{Loaded: true, Count: 1, LastSeen: seen,
			Containers: []model.InUseContainer{{ID: "c1", Name: "web", Path: "usr/local/bin/app", LastSeen: seen}}}
		vulns := []model.Vulnerability{
			prioVuln("DEBIAN-CVE-2023-4911", "libc6", model.SeverityHigh, 7.8, 77.8, "2023-11-21", 0.69791),
			prioVuln("CVE-2024-0001", "zlib1g", model.SeverityCritical, 9.8, 39.3, "", -1),
			borrowed,
			vuln("CVE-2024-0002", "bash", model.SeverityLow, -1, ""), // no priority: an old client's result
		}
		id := mustIngest(t, s, result("prio:1", "sha256:p", "sp", t0, vulns)).ImageID

		list := func(f VulnerabilityFilter) []string {
			t.Helper()
			p, err := s.ListVulnerabilities(ctx, f)
			if err != nil {
				t.Fatal(err)
			}
			var ids []string
			for _, v := range p.Vulnerabilities {
				ids = append(ids, v.ID)
			}
			return ids
		}
		for _, c := range []struct {
			name string
			f    VulnerabilityFilter
			want []string
		}{
			{"priority", VulnerabilityFilter{Sort: VulnSortPriority}, []string{"DEBIAN-CVE-2023-4911", "CVE-2024-0001", "GO-2022-0969", "CVE-2024-0002"}},
			{"priority reversed", VulnerabilityFilter{Sort: VulnSortPriority, Reverse: true}, []string{"CVE-2024-0002", "GO-2022-0969", "CVE-2024-0001", "DEBIAN-CVE-2023-4911"}},
			{"known exploited", VulnerabilityFilter{KnownExploited: true}, []string{"DEBIAN-CVE-2023-4911"}},
			{"EPSS at least 0.5", VulnerabilityFilter{EPSSMin: fp(0.5)}, []string{"DEBIAN-CVE-2023-4911"}},
			{"EPSS at least 0", VulnerabilityFilter{EPSSMin: fp(0), Sort: VulnSortPriority}, []string{"DEBIAN-CVE-2023-4911", "GO-2022-0969"}},
		} {
			if got := list(c.f); !reflect.DeepEqual(got, c.want) {
				t.Errorf("%s: %v, want %v", c.name, got, c.want)
			}
		}
		if _, err := s.ListVulnerabilities(ctx, VulnerabilityFilter{EPSSMin: fp(2)}); err == nil {
			t.Error("EPSS bound 2: no error")
		}

		p, err := s.ListVulnerabilities(ctx, VulnerabilityFilter{KnownExploited: true})
		if err != nil {
			t.Fatal(err)
		}
		sum := p.Vulnerabilities[0]
		if sum.KEV == nil || *sum.KEV != (model.KEV{CVE: "DEBIAN-CVE-2023-4911", DateAdded: "2023-11-21", Ransomware: true}) ||
			sum.EPSS == nil || sum.EPSS.Score != 0.69791 || sum.Priority == nil || *sum.Priority != 77.8 {
			t.Errorf("summary %+v KEV %+v EPSS %+v", sum, sum.KEV, sum.EPSS)
		}

		got, err := s.ListImageVulnerabilities(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 4 || got[0].ID != "DEBIAN-CVE-2023-4911" || got[3].Priority != nil {
			t.Fatalf("image vulnerabilities in priority order: %+v", got)
		}
		for _, v := range got {
			if v.ID != "GO-2022-0969" {
				continue
			}
			if v.SeveritySource != "GHSA-69cg-p879-7622" || !reflect.DeepEqual(v.InUse, borrowed.InUse) ||
				!reflect.DeepEqual(v.Priority, borrowed.Priority) || !reflect.DeepEqual(v.EPSS, borrowed.EPSS) {
				t.Errorf("round trip: %+v", v)
			}
		}
		d, err := s.GetVulnerability(ctx, "GO-2022-0969", Page{})
		if err != nil {
			t.Fatal(err)
		}
		if a := d.Affected[0]; a.SeveritySource != "GHSA-69cg-p879-7622" || a.Priority == nil || a.Priority.Score != 31.3 ||
			a.InUse == nil || !a.InUse.Loaded {
			t.Errorf("affected row %+v", a)
		}
		checkAggregates(t, s)
	})
}
