package server

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"mamori/internal/api"
	"mamori/internal/model"
	"mamori/internal/vulndb"
)

// TestRematchPrioritisation (issue 15): the server's re-match goes through
// the same matcher as the CLI: one finding per vulnerability, severities
// taken from alias records and named, KEV, EPSS and priority, all stored
// and served, filtered and sorted by the API.
func TestRematchPrioritisation(t *testing.T) {
	engines(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		dbDir := filepath.Join(t.TempDir(), "db")
		e := newEnv(t, dsn, func(c *Config) { c.VulnDBDir = dbDir })
		res := testResult("prio-1", digestN(4300), time.Now())
		res.Vulnerabilities = nil
		res.Inventory.Packages = []model.Package{
			{Name: "libc6", Version: "2.36-9+deb12u2", Type: "deb", Ecosystem: "Debian", SourceName: "glibc", Cataloger: "dpkg",
				PURL: "pkg:deb/debian/libc6@2.36-9+deb12u2", Locations: []model.PackageLocation{{Path: "var/lib/dpkg/status"}}},
			{Name: "PyYAML", Version: "5.3", Type: "pypi", Ecosystem: "PyPI", Cataloger: "python", PURL: "pkg:pypi/pyyaml@5.3",
				Locations: []model.PackageLocation{{Path: "usr/lib/python3/dist-packages/PyYAML-5.3.dist-info/METADATA"}}},
		}
		if _, err := e.srv.Store().IngestScan(ctx, res); err != nil {
			t.Fatal(err)
		}
		if _, err := vulndb.Import(ctx, dbDir, "../match/testdata/prio"); err != nil {
			t.Fatal(err)
		}
		e.srv.checkVulnDB(ctx)

		list := func(q string) api.VulnerabilityPage {
			t.Helper()
			code, body := e.do("GET", "/api/v1/vulnerabilities"+q, e.admin, nil)
			var p api.VulnerabilityPage
			if code != 200 || json.Unmarshal(body, &p) != nil {
				t.Fatalf("%s: %d %s", q, code, body)
			}
			return p
		}
		p := list("?sort=priority")
		var ids []string
		for _, v := range p.Vulnerabilities {
			ids = append(ids, v.ID)
			if strings.HasPrefix(v.ID, "GHSA-") || strings.HasPrefix(v.ID, "DSA-5514") {
				t.Errorf("%s is a finding of its own", v.ID)
			}
		}
		if len(ids) == 0 || ids[0] != "DEBIAN-CVE-2023-4911" {
			t.Fatalf("priority order %v", ids)
		}
		top := p.Vulnerabilities[0]
		if top.KEV == nil || top.KEV.DateAdded != "2023-11-21" || top.EPSS == nil || top.EPSS.Score != 0.69791 || top.Priority == nil {
			t.Errorf("top %+v", top)
		}
		if k := list("?kev=true"); len(k.Vulnerabilities) != 1 || k.Vulnerabilities[0].ID != "DEBIAN-CVE-2023-4911" {
			t.Errorf("kev=true: %+v", k)
		}
		if k := list("?epssMin=0.9"); len(k.Vulnerabilities) != 1 || k.Vulnerabilities[0].ID != "DEBIAN-CVE-2024-2961" {
			t.Errorf("epssMin=0.9: %+v", k)
		}
		for _, q := range []string{"?epssMin=1.5", "?kev=perhaps", "?sort=urgency"} {
			if code, _ := e.do("GET", "/api/v1/vulnerabilities"+q, e.admin, nil); code != 400 {
				t.Errorf("%s: %d, want 400", q, code)
			}
		}
		code, body := e.do("GET", "/api/v1/vulnerabilities/PYSEC-2021-142", e.admin, nil)
		var d api.VulnerabilityDetail
		if code != 200 || json.Unmarshal(body, &d) != nil || len(d.Affected) != 1 {
			t.Fatalf("detail: %d %s", code, body)
		}
		if a := d.Affected[0]; d.Severity != model.SeverityCritical || a.SeveritySource != "GHSA-8q59-q68h-6hv4" || a.Priority == nil ||
			!strings.Contains(a.Priority.Reason, "from GHSA-8q59-q68h-6hv4") {
			t.Errorf("PYSEC-2021-142: %s", body)
		}
	})
}
