package store

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"mamori/internal/model"
)

// seedVulns stores three images (A, B, C) with a known set of vulnerabilities
// and returns their IDs.
func seedVulns(t *testing.T, s *sqlStore) (a, b, c int64) {
	t.Helper()
	crit := func(pkg string) model.Vulnerability {
		return vuln("CVE-2024-1000", pkg, model.SeverityCritical, 9.8, "3.0.2", "DSA-5000", "GHSA-aaaa-bbbb-cccc")
	}
	A := []model.Vulnerability{
		crit("openssl"),
		vuln("CVE-2024-2000", "zlib", model.SeverityHigh, 7.5, ""),
		vuln("CVE-2024-4000", "bash", model.SeverityLow, -1, ""),
		vuln("CVE-2024-6000", "lib_foo", model.SeverityHigh, 8.1, ""),
	}
	B := []model.Vulnerability{
		crit("openssl"),
		vuln("CVE-2024-3000", "curl", model.SeverityMedium, 5.3, "8.0"),
		vuln("CVE-2024-7000", "libxfoo", model.SeverityMedium, 6.5, ""),
	}
	C := []model.Vulnerability{
		crit("libssl3"),
		vuln("CVE-2024-4000", "bash", model.SeverityLow, -1, ""),
		vuln("GO-2024-5000", "golang.org/x/net", model.SeverityUnknown, -1, "0.23.0"),
	}
	a = mustIngest(t, s, result("alpha:1", "sha256:a", "sa", t0, A)).ImageID
	b = mustIngest(t, s, result("bravo:1", "sha256:b", "sb", t0.Add(time.Minute), B)).ImageID
	c = mustIngest(t, s, result("charlie:1", "sha256:c", "sc", t0.Add(2*time.Minute), C)).ImageID
	return a, b, c
}

func fp(v float64) *float64 { return &v }

func TestListVulnerabilitiesFilterAndSort(t *testing.T) {
	engines(t, func(t *testing.T, s *sqlStore) {
		ctx := context.Background()
		a, _, c := seedVulns(t, s)
		const (
			v1, v2, v3, v4, v5, v6, v7 = "CVE-2024-1000", "CVE-2024-2000", "CVE-2024-3000", "CVE-2024-4000", "GO-2024-5000", "CVE-2024-6000", "CVE-2024-7000"
		)
		all := []string{v1, v6, v2, v7, v3, v4, v5}
		cases := []struct {
			name  string
			f     VulnerabilityFilter
			want  []string
			total int // when different from len(want)
		}{
			{"default: severity, then CVSS", VulnerabilityFilter{}, all, 0},
			{"query ID substring", VulnerabilityFilter{Query: "2024-3"}, []string{v3}, 0},
			{"query alias, any case", VulnerabilityFilter{Query: "dsa-5000"}, []string{v1}, 0},
			{"query package, any case", VulnerabilityFilter{Query: "OPENSSL"}, []string{v1}, 0},
			{"query second package", VulnerabilityFilter{Query: "libssl"}, []string{v1}, 0},
			{"underscore is literal", VulnerabilityFilter{Query: "b_f"}, []string{v6}, 0},
			{"percent is literal", VulnerabilityFilter{Query: "%"}, []string{}, 0},
			{"package only", VulnerabilityFilter{Package: "zlib"}, []string{v2}, 0},
			{"package filter ignores IDs", VulnerabilityFilter{Package: "cve"}, []string{}, 0},
			{"severities", VulnerabilityFilter{Severities: []model.Severity{model.SeverityHigh, model.SeverityCritical}}, []string{v1, v6, v2}, 0},
			{"unknown severity", VulnerabilityFilter{Severities: []model.Severity{model.SeverityUnknown}}, []string{v5}, 0},
			{"CVSS min", VulnerabilityFilter{CVSSMin: fp(7)}, []string{v1, v6, v2}, 0},
			{"CVSS max excludes no CVSS", VulnerabilityFilter{CVSSMax: fp(6.5)}, []string{v7, v3}, 0},
			{"CVSS range inclusive", VulnerabilityFilter{CVSSMin: fp(5.3), CVSSMax: fp(7.5)}, []string{v2, v7, v3}, 0},
			{"fixable", VulnerabilityFilter{FixableOnly: true}, []string{v1, v3, v5}, 0},
			{"image", VulnerabilityFilter{ImageID: a}, []string{v1, v6, v2, v4}, 0},
			{"image fixable", VulnerabilityFilter{ImageID: a, FixableOnly: true}, []string{v1}, 0},
			{"image C", VulnerabilityFilter{ImageID: c}, []string{v1, v4, v5}, 0},
			{"combined", VulnerabilityFilter{Query: "lib", Severities: []model.Severity{model.SeverityMedium, model.SeverityHigh}, CVSSMin: fp(7)}, []string{v6, v2}, 0},
			{"sort ID", VulnerabilityFilter{Sort: VulnSortID}, []string{v1, v2, v3, v4, v6, v7, v5}, 0},
			{"sort ID reversed", VulnerabilityFilter{Sort: VulnSortID, Reverse: true}, []string{v5, v7, v6, v4, v3, v2, v1}, 0},
			{"sort package", VulnerabilityFilter{Sort: VulnSortPackage}, []string{v4, v3, v5, v6, v1, v7, v2}, 0},
			{"sort images", VulnerabilityFilter{Sort: VulnSortImages}, []string{v1, v4, v6, v2, v7, v3, v5}, 0},
			{"sort CVSS", VulnerabilityFilter{Sort: VulnSortCVSS}, []string{v1, v6, v2, v7, v3, v4, v5}, 0},
			{"severity reversed", VulnerabilityFilter{Reverse: true}, []string{v5, v4, v3, v7, v2, v6, v1}, 0},
			{"page", VulnerabilityFilter{Page: Page{Limit: 2, Offset: 2}}, []string{v2, v7}, 7},
			{"last page", VulnerabilityFilter{Page: Page{Limit: 5, Offset: 5}}, []string{v4, v5}, 7},
			{"past the end", VulnerabilityFilter{Page: Page{Limit: 5, Offset: 50}}, []string{}, 7},
			{"filtered page", VulnerabilityFilter{Severities: []model.Severity{model.SeverityHigh, model.SeverityMedium}, Page: Page{Limit: 1, Offset: 1}}, []string{v2}, 4},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				p, err := s.ListVulnerabilities(ctx, tc.f)
				if err != nil {
					t.Fatal(err)
				}
				total := tc.total
				if total == 0 {
					total = len(tc.want)
				}
				if got := summaryIDs(p); !reflect.DeepEqual(got, tc.want) || p.Total != total {
					t.Errorf("got %v (total %d), want %v (total %d)", got, p.Total, tc.want, total)
				}
			})
		}
		for _, bad := range []VulnerabilityFilter{{Sort: "nope"}, {Severities: []model.Severity{42}}} {
			if _, err := s.ListVulnerabilities(ctx, bad); !errors.Is(err, ErrInvalid) {
				t.Errorf("%+v: err = %v, want ErrInvalid", bad, err)
			}
		}

		p, _ := s.ListVulnerabilities(ctx, VulnerabilityFilter{Query: v1})
		got := p.Vulnerabilities[0]
		if got.AffectedImages != 3 || !reflect.DeepEqual(got.Packages, []string{"libssl3", "openssl"}) || got.PackageCount != 2 ||
			!got.Fixable || got.CVSS == nil || *got.CVSS != 9.8 || got.Severity != model.SeverityCritical ||
			!reflect.DeepEqual(got.Aliases, []string{"DSA-5000", "GHSA-aaaa-bbbb-cccc"}) || got.Summary != "summary of "+v1 ||
			!got.Published.Equal(t0.Add(-48*time.Hour)) {
			t.Errorf("summary = %+v", got)
		}
		p, _ = s.ListVulnerabilities(ctx, VulnerabilityFilter{Query: v4})
		if p.Vulnerabilities[0].CVSS != nil || p.Vulnerabilities[0].Fixable {
			t.Errorf("no-CVSS summary = %+v", p.Vulnerabilities[0])
		}
	})
}

func TestGetVulnerability(t *testing.T) {
	engines(t, func(t *testing.T, s *sqlStore) {
		ctx := context.Background()
		a, b, c := seedVulns(t, s)
		d, err := s.GetVulnerability(ctx, "CVE-2024-1000", Page{})
		if err != nil {
			t.Fatal(err)
		}
		if d.Details != "details of CVE-2024-1000" || !reflect.DeepEqual(d.References, []string{"https://example.org/CVE-2024-1000"}) ||
			len(d.CVSSVectors) != 1 || d.CVSSVectors[0].Score != 9.8 || !reflect.DeepEqual(d.DataSources, []string{"Debian:12"}) ||
			d.AffectedTotal != 3 || len(d.Workloads) != 0 || d.Workloads == nil {
			t.Errorf("detail = %+v", d)
		}
		type row struct {
			img          int64
			name, pkg    string
			fixed, image string
		}
		var rows []row
		for _, x := range d.Affected {
			rows = append(rows, row{x.ImageID, x.ImageName, x.Package.Name, x.FixedVersion, x.ImageDigest})
			if x.Package.Version != "1.0" || x.Severity != model.SeverityCritical || x.LastScannedAt.IsZero() {
				t.Errorf("affected row = %+v", x)
			}
		}
		want := []row{{a, "alpha:1", "openssl", "3.0.2", dg("sha256:a")}, {b, "bravo:1", "openssl", "3.0.2", dg("sha256:b")},
			{c, "charlie:1", "libssl3", "3.0.2", dg("sha256:c")}}
		if !reflect.DeepEqual(rows, want) {
			t.Errorf("affected = %+v", rows)
		}
		paged, err := s.GetVulnerability(ctx, "CVE-2024-1000", Page{Limit: 1, Offset: 1})
		if err != nil || len(paged.Affected) != 1 || paged.Affected[0].ImageID != b || paged.AffectedTotal != 3 {
			t.Errorf("paged = %+v, %v", paged, err)
		}
		for _, alias := range []string{"DSA-5000", "ghsa-aaaa-bbbb-cccc"} {
			byAlias, err := s.GetVulnerability(ctx, alias, Page{})
			if err != nil || byAlias.ID != "CVE-2024-1000" {
				t.Errorf("by alias %s: %+v, %v", alias, byAlias, err)
			}
		}
		for _, missing := range []string{"CVE-2024-9999", "CVE-2024", "DSA", ""} {
			if _, err := s.GetVulnerability(ctx, missing, Page{}); !errors.Is(err, ErrNotFound) {
				t.Errorf("%q: err = %v, want ErrNotFound", missing, err)
			}
		}
	})
}

func TestListImages(t *testing.T) {
	engines(t, func(t *testing.T, s *sqlStore) {
		ctx := context.Background()
		a, b, c := seedVulns(t, s)
		names := func(p ImagePage) []int64 {
			ids := []int64{}
			for _, im := range p.Images {
				ids = append(ids, im.ID)
			}
			return ids
		}
		cases := []struct {
			name  string
			f     ImageFilter
			want  []int64
			total int
		}{
			{"default: last scanned first", ImageFilter{}, []int64{c, b, a}, 3},
			{"name", ImageFilter{Sort: ImageSortName}, []int64{a, b, c}, 3},
			{"name reversed", ImageFilter{Sort: ImageSortName, Reverse: true}, []int64{c, b, a}, 3},
			// critical ties (1 each); A has 2 high, B none high but 2 medium, C none.
			{"risk", ImageFilter{Sort: ImageSortRisk}, []int64{a, b, c}, 3},
			{"query name", ImageFilter{Query: "BRAVO"}, []int64{b}, 1},
			{"query digest", ImageFilter{Query: strings.ToUpper(dg("sha256:b"))}, []int64{b}, 1},
			{"page", ImageFilter{Sort: ImageSortName, Page: Page{Limit: 1, Offset: 1}}, []int64{b}, 3},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				p, err := s.ListImages(ctx, tc.f)
				if err != nil {
					t.Fatal(err)
				}
				if got := names(p); !reflect.DeepEqual(got, tc.want) || p.Total != tc.total {
					t.Errorf("got %v (%d), want %v (%d)", got, p.Total, tc.want, tc.total)
				}
			})
		}
		if _, err := s.ListImages(ctx, ImageFilter{Sort: "size"}); !errors.Is(err, ErrInvalid) {
			t.Errorf("bad sort err = %v", err)
		}
		p, _ := s.ListImages(ctx, ImageFilter{Query: "alpha"})
		im := p.Images[0]
		if im.Vulnerabilities != (SeverityCounts{Critical: 1, High: 2, Low: 1, Fixable: 1}) || im.PackageCount != 5 ||
			!reflect.DeepEqual(im.RepoTags, []string{"alpha:1"}) || im.FirstSeen.IsZero() {
			t.Errorf("alpha = %+v", im)
		}
	})
}

func TestRematchAndDelete(t *testing.T) {
	engines(t, func(t *testing.T, s *sqlStore) {
		ctx := context.Background()
		a, b, c := seedVulns(t, s)
		refs := map[int64]InventoryRef{}
		err := s.ListInventories(ctx, func(ref InventoryRef, inv *model.Inventory) error {
			refs[ref.ImageID] = ref
			if inv.OS == nil || inv.OS.ID != "debian" || len(inv.Packages) == 0 || inv.Packages[len(inv.Packages)-1].Name != "base-files" {
				t.Errorf("inventory of %d = %+v", ref.ImageID, inv)
			}
			return nil
		})
		if err != nil || len(refs) != 3 {
			t.Fatalf("refs = %v, %v", refs, err)
		}
		stop := errors.New("stop")
		n := 0
		if err := s.ListInventories(ctx, func(InventoryRef, *model.Inventory) error { n++; return stop }); !errors.Is(err, stop) || n != 1 {
			t.Errorf("stop: n=%d err=%v", n, err)
		}

		// A new DB: alpha's openssl is no longer vulnerable, a new advisory appears.
		rematch := []model.Vulnerability{
			vuln("CVE-2024-2000", "zlib", model.SeverityCritical, 9.1, "1.3"),
			vuln("CVE-2025-0001", "bash", model.SeverityHigh, 7, "5.3"),
		}
		if err := s.ReplaceVulnerabilities(ctx, refs[a], rematch); err != nil {
			t.Fatal(err)
		}
		d, err := s.GetVulnerability(ctx, "CVE-2024-1000", Page{})
		if err != nil || d.AffectedTotal != 2 || d.AffectedImages != 2 {
			t.Errorf("CVE-2024-1000 after rematch: %+v, %v", d, err)
		}
		p, _ := s.ListVulnerabilities(ctx, VulnerabilityFilter{ImageID: a, Sort: VulnSortID})
		if got := summaryIDs(p); !reflect.DeepEqual(got, []string{"CVE-2024-2000", "CVE-2025-0001"}) {
			t.Errorf("alpha after rematch = %v", got)
		}
		if p.Vulnerabilities[0].Severity != model.SeverityCritical || !p.Vulnerabilities[0].Fixable {
			t.Errorf("advisory not updated: %+v", p.Vulnerabilities[0])
		}
		img, _ := s.GetImage(ctx, a)
		if img.Vulnerabilities != (SeverityCounts{Critical: 1, High: 1, Fixable: 2}) {
			t.Errorf("alpha counts = %+v", img.Vulnerabilities)
		}
		// CVE-2024-6000 was only in alpha: gone from the list.
		if p, _ := s.ListVulnerabilities(ctx, VulnerabilityFilter{Query: "CVE-2024-6000"}); p.Total != 0 {
			t.Errorf("CVE-2024-6000 still listed")
		}
		checkAggregates(t, s)

		// A newer scan makes the old ref stale.
		mustIngest(t, s, result("bravo:1", "sha256:b", "sb2", t0.Add(time.Hour), nil))
		if err := s.ReplaceVulnerabilities(ctx, refs[b], rematch); !errors.Is(err, ErrStale) {
			t.Errorf("stale ref err = %v", err)
		}
		if err := s.ReplaceVulnerabilities(ctx, InventoryRef{ImageID: 999, ScanID: 1}, nil); !errors.Is(err, ErrNotFound) {
			t.Errorf("missing image err = %v", err)
		}
		if err := s.ReplaceVulnerabilities(ctx, refs[c], []model.Vulnerability{{ID: "X"}}); !errors.Is(err, ErrInvalid) {
			t.Errorf("invalid rows err = %v", err)
		}

		if err := s.DeleteImage(ctx, c); err != nil {
			t.Fatal(err)
		}
		if err := s.DeleteImage(ctx, c); !errors.Is(err, ErrNotFound) {
			t.Errorf("second delete err = %v", err)
		}
		if _, err := s.GetImage(ctx, c); !errors.Is(err, ErrNotFound) {
			t.Errorf("deleted image err = %v", err)
		}
		p, _ = s.ListVulnerabilities(ctx, VulnerabilityFilter{Sort: VulnSortID})
		if got := summaryIDs(p); !reflect.DeepEqual(got, []string{"CVE-2024-2000", "CVE-2025-0001"}) {
			t.Errorf("after delete = %v", got)
		}
		scans, _ := s.ListScans(ctx, ScanFilter{})
		if scans.Total != 3 { // alpha's 1, bravo's 2
			t.Errorf("scans after delete = %d", scans.Total)
		}
		checkAggregates(t, s)
	})
}
