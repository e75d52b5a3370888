package report

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"mamori/internal/model"
	"mamori/internal/priority"
)

// prioSample is sample() with a second finding whose severity comes from
// another record, known exploited, with an EPSS score and seen in use.
func prioSample() *model.Result {
	r := sample()
	r.Inventory.Packages = append(r.Inventory.Packages, model.Package{Name: "golang.org/x/net", Version: "v0.0.0-20220127200216-cd36cc0744dd",
		Type: "golang", Ecosystem: "Go", PURL: "pkg:golang/golang.org/x/net@v0.0.0-20220127200216-cd36cc0744dd", Cataloger: "gobinary",
		Locations: []model.PackageLocation{{Path: "usr/local/bin/app"}}})
	r.Vulnerabilities = append(r.Vulnerabilities, model.Vulnerability{
		ID: "GO-2022-0969", Aliases: []string{"CVE-2022-27664", "GHSA-69cg-p879-7622"},
		Package:      model.PackageRef{Name: "golang.org/x/net", Version: "v0.0.0-20220127200216-cd36cc0744dd", Type: "golang", Ecosystem: "Go", Path: "usr/local/bin/app"},
		FixedVersion: "0.0.0-20220906165146-f3363e06e74c", Severity: model.SeverityHigh, SeveritySource: "GHSA-69cg-p879-7622",
		CVSS:    []model.CVSS{{Version: "3.1", Vector: "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H", Score: 7.5, Source: "GHSA-69cg-p879-7622"}},
		Summary: "Denial of service in net/http and golang.org/x/net/http2", DataSource: "Go",
		KEV:  &model.KEV{CVE: "CVE-2022-27664", DateAdded: "2024-05-01", Ransomware: true},
		EPSS: &model.EPSS{CVE: "CVE-2022-27664", Score: 0.97, Percentile: 0.999, Date: "2026-01-02"},
		InUse: &model.InUse{Loaded: true, Count: 2, LastSeen: time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC),
			Containers: []model.InUseContainer{{ID: "c1", LastSeen: time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC)}}},
	})
	priority.Apply(r.Vulnerabilities)
	return r
}

// TestPrioritisationInEveryFormat (issue 15): where a severity came from,
// KEV, EPSS and the priority reach the reader in every format that has
// vulnerabilities (SPDX 2.3 carries none).
func TestPrioritisationInEveryFormat(t *testing.T) {
	for _, c := range []struct {
		f    Format
		want []string
	}{
		{FormatTable, []string{"HIGH (from GHSA-69cg-p879-7622)", "KEV 2024-05-01 ransomware, EPSS 0.97, in use", "Known exploited: 1"}},
		{FormatJSON, []string{`"severitySource": "GHSA-69cg-p879-7622"`, `"dateAdded": "2024-05-01"`, `"percentile": 0.999`, `"reason": "high (from GHSA-69cg-p879-7622, CVSS 7.5), known exploited`, `"inUse": {`}},
		{FormatCycloneDX, []string{`"name": "mamori:severitySource"`, `"value": "GHSA-69cg-p879-7622"`, `"name": "mamori:kev:dateAdded"`, `"name": "mamori:epss:score"`, `"name": "mamori:priority:reason"`}},
		{FormatSARIF, []string{"Severity: HIGH, from GHSA-69cg-p879-7622", "Known exploited: in CISA's KEV catalogue since 2024-05-01", "EPSS: 0.97", `"severitySource": "GHSA-69cg-p879-7622"`, `"priority": {`, "known-exploited"}},
		{FormatJUnit, []string{"Severity: HIGH, from GHSA-69cg-p879-7622", "since 2024-05-01", "Priority: "}},
	} {
		var buf bytes.Buffer
		if err := Write(&buf, c.f, []*model.Result{prioSample()}, Options{}); err != nil {
			t.Fatalf("%s: %v", c.f, err)
		}
		for _, w := range c.want {
			if !strings.Contains(buf.String(), w) {
				t.Errorf("%s lacks %q:\n%s", c.f, w, buf.String())
			}
		}
	}
}

// TestTableSortsByPriority: the known-exploited HIGH comes before the
// CRITICAL that is not.
func TestTableSortsByPriority(t *testing.T) {
	var buf bytes.Buffer
	if err := Write(&buf, FormatTable, []*model.Result{prioSample()}, Options{}); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	if i, j := strings.Index(out, "GO-2022-0969"), strings.Index(out, "GHSA-jfh8-c2jp-5v3q"); i < 0 || j < 0 || i > j {
		t.Errorf("order:\n%s", out)
	}
}
