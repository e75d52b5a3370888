package priority

import (
	"testing"
	"time"

	"mamori/internal/model"
)

func TestOf(t *testing.T) {
	cvss := func(s float64) []model.CVSS { return []model.CVSS{{Version: "3.1", Vector: "CVSS:3.1/x", Score: s}} }
	for _, c := range []struct {
		name   string
		v      model.Vulnerability
		score  float64
		reason string
	}{
		{"the issue's example",
			model.Vulnerability{Severity: model.SeverityCritical, CVSS: cvss(9.8), FixedVersion: "1.2.4",
				KEV:   &model.KEV{CVE: "CVE-2024-1", DateAdded: "2024-05-01"},
				EPSS:  &model.EPSS{CVE: "CVE-2024-1", Score: 0.97, Percentile: 0.999},
				InUse: &model.InUse{Loaded: true, Count: 2}},
			98.9, "critical (CVSS 9.8), known exploited since 2024-05-01, EPSS 0.97, in use in 2 containers, fix 1.2.4"},
		{"severity from another record, no fix",
			model.Vulnerability{Severity: model.SeverityHigh, SeveritySource: "GHSA-69cg-p879-7622", CVSS: cvss(7.5)},
			26.3, "high (from GHSA-69cg-p879-7622, CVSS 7.5), no fix"},
		{"distribution rating lower than CVSS: the rating decides",
			model.Vulnerability{Severity: model.SeverityLow, CVSS: cvss(9.8), FixedVersion: "2"},
			13.8, "low, fix 2"},
		{"unknown counts as the middle",
			model.Vulnerability{Severity: model.SeverityUnknown},
			17.5, "severity unknown, no fix"},
		{"known exploited with ransomware",
			model.Vulnerability{Severity: model.SeverityMedium, KEV: &model.KEV{CVE: "CVE-1", DateAdded: "2021-11-03", Ransomware: true}},
			59.3, "medium, known exploited since 2021-11-03 (ransomware), no fix"},
		{"agent watched, never loaded",
			model.Vulnerability{Severity: model.SeverityHigh, FixedVersion: "1", InUse: &model.InUse{Loaded: false},
				EPSS: &model.EPSS{Score: 0.00042}},
			23, "high, EPSS 0.00042, not loaded at run time, fix 1"},
		{"floor at 0",
			model.Vulnerability{Severity: model.SeverityNegligible, InUse: &model.InUse{}},
			0, "negligible, not loaded at run time, no fix"},
	} {
		p := Of(&c.v)
		if p.Score != c.score || p.Reason != c.reason {
			t.Errorf("%s: %v %q, want %v %q", c.name, p.Score, p.Reason, c.score, c.reason)
		}
	}
}

// TestOrder: what to fix first, on the cases.
func TestOrder(t *testing.T) {
	vs := []model.Vulnerability{
		{ID: "critical-unused", Severity: model.SeverityCritical, CVSS: []model.CVSS{{Score: 9.8}}, FixedVersion: "1",
			InUse: &model.InUse{Loaded: false}},
		{ID: "unknown", Severity: model.SeverityUnknown},
		{ID: "low-kev", Severity: model.SeverityLow, KEV: &model.KEV{DateAdded: "2022-01-01"}},
		{ID: "critical", Severity: model.SeverityCritical, CVSS: []model.CVSS{{Score: 9.8}}, FixedVersion: "1"},
		{ID: "high-kev-in-use", Severity: model.SeverityHigh, KEV: &model.KEV{DateAdded: "2022-01-01"},
			InUse: &model.InUse{Loaded: true, Containers: []model.InUseContainer{{ID: "c1", LastSeen: time.Now()}}}},
		{ID: "no-priority", Severity: model.SeverityCritical},
	}
	Apply(vs[:5])
	Sort(vs)
	var got []string
	for _, v := range vs {
		got = append(got, v.ID)
	}
	want := []string{"high-kev-in-use", "low-kev", "critical", "critical-unused", "unknown", "no-priority"}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("order %v, want %v", got, want)
		}
	}
}
