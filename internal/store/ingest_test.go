package store

import (
	"context"
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"mamori/internal/model"
)

func TestIngestRoundTrip(t *testing.T) {
	engines(t, func(t *testing.T, s *sqlStore) {
		ctx := context.Background()
		vulns := []model.Vulnerability{
			vuln("CVE-2024-0001", "openssl", model.SeverityCritical, 9.8, "3.0.1", "DSA-1"),
			vuln("CVE-2024-0002", "zlib", model.SeverityLow, 3.1, ""),
			vuln("CVE-2024-0001", "libssl3", model.SeverityCritical, 9.8, "3.0.1", "DSA-1"),
		}
		res := result("registry.local/app:1", "sha256:aaa", "scan-1", t0, vulns,
			secret("aws-access-key-id", model.SeverityHigh),
			model.Finding{Kind: model.KindMisconfig, ID: "MSC-001", Title: "root user", Severity: model.SeverityMedium,
				Location: model.Location{Config: "User"}})
		out := mustIngest(t, s, res)
		if out.Status != IngestCreated || out.ImageID == 0 || out.ScanID == 0 || out.Packages != 4 || out.Vulnerabilities != 3 || out.Findings != 2 {
			t.Fatalf("outcome = %+v", out)
		}

		img, err := s.GetImage(ctx, out.ImageID)
		if err != nil {
			t.Fatal(err)
		}
		if img.Name != "registry.local/app:1" || img.Digest != dg("sha256:aaa") || img.ConfigDigest != "sha256:cfg"+dg("sha256:aaa") ||
			img.OS != "Debian GNU/Linux 12 (bookworm)" || img.LatestScanID != out.ScanID || !img.LastScannedAt.Equal(t0) ||
			img.ScanID != "scan-1" || img.Tool.Version != "test" || img.PackageCount != 4 || img.Platform != "linux/amd64" {
			t.Errorf("image = %+v", img.ImageSummary)
		}
		want := SeverityCounts{Critical: 2, Low: 1, Fixable: 2}
		if img.Vulnerabilities != want || img.Vulnerabilities.Total() != 3 {
			t.Errorf("counts = %+v, want %+v", img.Vulnerabilities, want)
		}
		if img.FindingCounts != (FindingCounts{Secret: 1, Misconfig: 1}) {
			t.Errorf("finding counts = %+v", img.FindingCounts)
		}
		if !reflect.DeepEqual(img.Packages, res.Inventory.Packages) {
			t.Errorf("packages differ:\n got %+v\nwant %+v", img.Packages, res.Inventory.Packages)
		}
		if !reflect.DeepEqual(img.OSInfo, res.Inventory.OS) || !reflect.DeepEqual(img.Layers, res.Target.Layers) ||
			!reflect.DeepEqual(img.Warnings, res.Warnings) || !reflect.DeepEqual(img.Scanners, res.Scanners) ||
			!img.DB.BuiltAt.Equal(res.DB.BuiltAt) {
			t.Errorf("detail = %+v", img)
		}
		// Findings come back worst first.
		if len(img.Findings) != 2 || img.Findings[0].ID != "aws-access-key-id" || !reflect.DeepEqual(img.Findings[0], res.Findings[0]) ||
			!reflect.DeepEqual(img.Findings[1], res.Findings[1]) {
			t.Errorf("findings = %+v", img.Findings)
		}
		secrets, err := s.ListFindings(ctx, out.ImageID, model.KindSecret)
		if err != nil || len(secrets) != 1 || secrets[0].Kind != model.KindSecret {
			t.Errorf("ListFindings(secret) = %+v, %v", secrets, err)
		}
		if _, err := s.ListFindings(ctx, 999, ""); !errors.Is(err, ErrNotFound) {
			t.Errorf("ListFindings(unknown image) err = %v", err)
		}

		got, err := s.ListImageVulnerabilities(ctx, out.ImageID)
		if err != nil {
			t.Fatal(err)
		}
		// Worst first, then ID, then package.
		wantV := []model.Vulnerability{vulns[2], vulns[0], vulns[1]}
		if len(got) != 3 {
			t.Fatalf("got %d rows", len(got))
		}
		for i := range got {
			w := wantV[i]
			g := got[i]
			if !g.Published.Equal(w.Published) || !g.Modified.Equal(w.Modified) {
				t.Errorf("row %d times differ", i)
			}
			g.Published, g.Modified, w.Published, w.Modified = time.Time{}, time.Time{}, time.Time{}, time.Time{}
			if !reflect.DeepEqual(g, w) {
				t.Errorf("row %d:\n got %+v\nwant %+v", i, g, w)
			}
		}

		scans, err := s.ListScans(ctx, ScanFilter{ImageID: out.ImageID})
		if err != nil || scans.Total != 1 || !scans.Scans[0].Latest || scans.Scans[0].ScanID != "scan-1" ||
			scans.Scans[0].Vulnerabilities != 3 || !scans.Scans[0].CreatedAt.Equal(t0) {
			t.Errorf("scans = %+v, %v", scans, err)
		}
		if _, err := s.GetImage(ctx, 12345); !errors.Is(err, ErrNotFound) {
			t.Errorf("GetImage(unknown) err = %v", err)
		}
		checkAggregates(t, s)
	})
}

func TestIngestIdempotentAndLatest(t *testing.T) {
	engines(t, func(t *testing.T, s *sqlStore) {
		ctx := context.Background()
		v1 := []model.Vulnerability{vuln("CVE-1", "a", model.SeverityHigh, 7.5, ""), vuln("CVE-2", "b", model.SeverityLow, -1, "2")}
		r1 := result("app:1", "sha256:d1", "scan-1", t0, v1)
		first := mustIngest(t, s, r1)

		// The same scan again (a retried upload): nothing new.
		again := mustIngest(t, s, result("app:1", "sha256:d1", "scan-1", t0, v1))
		if again.Status != IngestDuplicate || again.ImageID != first.ImageID || again.ScanID != first.ScanID {
			t.Fatalf("re-ingest = %+v, first %+v", again, first)
		}
		page, _ := s.ListVulnerabilities(ctx, VulnerabilityFilter{})
		if page.Total != 2 || page.Vulnerabilities[0].AffectedImages != 1 {
			t.Fatalf("after duplicate: %+v", page)
		}
		scans, _ := s.ListScans(ctx, ScanFilter{})
		if scans.Total != 1 {
			t.Fatalf("scans after duplicate = %d", scans.Total)
		}

		// A newer scan replaces the views: CVE-1 fixed, CVE-3 new.
		v2 := []model.Vulnerability{vuln("CVE-2", "b", model.SeverityLow, -1, "2"), vuln("CVE-3", "c", model.SeverityMedium, 5, "")}
		second := mustIngest(t, s, result("app:1", "sha256:d1", "scan-2", t0.Add(time.Hour), v2))
		if second.Status != IngestCreated || second.ImageID != first.ImageID {
			t.Fatalf("second = %+v", second)
		}
		page, _ = s.ListVulnerabilities(ctx, VulnerabilityFilter{Sort: VulnSortID})
		if ids := summaryIDs(page); !reflect.DeepEqual(ids, []string{"CVE-2", "CVE-3"}) {
			t.Errorf("after rescan ids = %v", ids)
		}
		// An older scan arriving late is history only.
		old := mustIngest(t, s, result("app:1", "sha256:d1", "scan-0", t0.Add(-time.Hour), v1))
		if old.Status != IngestStale {
			t.Fatalf("late old scan = %+v", old)
		}
		page, _ = s.ListVulnerabilities(ctx, VulnerabilityFilter{Sort: VulnSortID})
		if ids := summaryIDs(page); !reflect.DeepEqual(ids, []string{"CVE-2", "CVE-3"}) {
			t.Errorf("after stale ids = %v", ids)
		}
		img, _ := s.GetImage(ctx, first.ImageID)
		if img.ScanID != "scan-2" || img.LatestScanID != second.ScanID {
			t.Errorf("latest = %s/%d", img.ScanID, img.LatestScanID)
		}
		scans, _ = s.ListScans(ctx, ScanFilter{ImageID: first.ImageID})
		if scans.Total != 3 || scans.Scans[0].ScanID != "scan-2" || !scans.Scans[0].Latest || scans.Scans[1].Latest || scans.Scans[2].ScanID != "scan-0" {
			t.Errorf("scan history = %+v", scans.Scans)
		}
		// Same scan ID for another image is another scan.
		other := mustIngest(t, s, result("other:1", "sha256:d2", "scan-1", t0, v1))
		if other.Status != IngestCreated || other.ImageID == first.ImageID {
			t.Errorf("other image = %+v", other)
		}
		// Non-image targets are keyed by type and name.
		fs1 := result("/srv/app", "", "fs-1", t0, v1)
		fs1.Target.Type = model.TargetFS
		a := mustIngest(t, s, fs1)
		fs2 := result("/srv/app", "", "fs-2", t0.Add(time.Minute), v2)
		fs2.Target.Type = model.TargetFS
		b := mustIngest(t, s, fs2)
		if a.ImageID != b.ImageID || b.Status != IngestCreated {
			t.Errorf("fs targets: %+v %+v", a, b)
		}
		checkAggregates(t, s)
	})
}

func summaryIDs(p VulnerabilityPage) []string {
	ids := []string{}
	for _, v := range p.Vulnerabilities {
		ids = append(ids, v.ID)
	}
	return ids
}

func TestIngestInvalid(t *testing.T) {
	good := func() *model.Result {
		return result("app:1", "sha256:d1", "scan-1", t0, []model.Vulnerability{vuln("CVE-1", "a", model.SeverityHigh, 7, "")},
			secret("k", model.SeverityHigh))
	}
	cases := []struct {
		name   string
		mutate func(r *model.Result) *model.Result
		want   string
	}{
		{"nil", func(*model.Result) *model.Result { return nil }, "nil scan result"},
		{"no target name", func(r *model.Result) *model.Result { r.Target.Name = "  "; return r }, "target.name is empty"},
		{"no target type", func(r *model.Result) *model.Result { r.Target.Type = ""; return r }, "target.type is empty"},
		{"no scan ID", func(r *model.Result) *model.Result { r.ScanID = ""; return r }, "scanID is empty"},
		{"no time", func(r *model.Result) *model.Result { r.CreatedAt = time.Time{}; return r }, "createdAt is missing"},
		{"future schema", func(r *model.Result) *model.Result { r.SchemaVersion = model.SchemaVersion + 1; return r }, "schemaVersion"},
		{"vuln severity", func(r *model.Result) *model.Result { r.Vulnerabilities[0].Severity = 9; return r }, "unknown severity 9"},
		{"negative severity", func(r *model.Result) *model.Result { r.Vulnerabilities[0].Severity = -1; return r }, "unknown severity -1"},
		{"finding severity", func(r *model.Result) *model.Result { r.Findings[0].Severity = 6; return r }, "findings[0].severity"},
		{"finding kind", func(r *model.Result) *model.Result { r.Findings[0].Kind = "virus"; return r }, `unknown kind "virus"`},
		{"vuln without ID", func(r *model.Result) *model.Result { r.Vulnerabilities[0].ID = ""; return r }, "vulnerabilities[0].id is empty"},
		{"vuln without package", func(r *model.Result) *model.Result { r.Vulnerabilities[0].Package.Name = ""; return r }, "package.name is empty"},
		{"package without name", func(r *model.Result) *model.Result { r.Inventory.Packages[0].Name = ""; return r }, "packages[0].name is empty"},
		{"NUL byte", func(r *model.Result) *model.Result { r.Findings[0].Evidence = "a\x00b"; return r }, "NUL byte"},
		{"invalid UTF-8", func(r *model.Result) *model.Result { r.Inventory.Packages[0].Version = "\xff\xfe"; return r }, "not valid UTF-8"},
		{"CVSS out of range", func(r *model.Result) *model.Result { r.Vulnerabilities[0].CVSS[0].Score = 11; return r }, "outside 0..10"},
		{"CVSS NaN", func(r *model.Result) *model.Result { r.Vulnerabilities[0].CVSS[0].Score = math.NaN(); return r }, "outside 0..10"},
		{"huge ID", func(r *model.Result) *model.Result { r.ScanID = strings.Repeat("x", model.MaxScanIDLen+1); return r }, "longer than"},
	}
	engines(t, func(t *testing.T, s *sqlStore) {
		ctx := context.Background()
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				_, err := s.IngestScan(ctx, c.mutate(good()))
				if !errors.Is(err, ErrInvalid) || !errors.Is(err, model.ErrInvalid) || !strings.Contains(err.Error(), c.want) {
					t.Fatalf("err = %v, want ErrInvalid (model's) containing %q", err, c.want)
				}
			})
		}
		imgs, err := s.ListImages(ctx, ImageFilter{})
		if err != nil || imgs.Total != 0 {
			t.Errorf("images after invalid ingests: %+v, %v", imgs, err)
		}
		scans, _ := s.ListScans(ctx, ScanFilter{})
		vulns, _ := s.ListVulnerabilities(ctx, VulnerabilityFilter{})
		if scans.Total != 0 || vulns.Total != 0 {
			t.Errorf("stored after invalid ingests: %d scans, %d vulns", scans.Total, vulns.Total)
		}
		// The good one still goes in.
		mustIngest(t, s, good())
	})
}

// snapshot captures everything the views show, to compare before and after a failed write.
func snapshot(t *testing.T, s *sqlStore) string {
	t.Helper()
	ctx := context.Background()
	var b strings.Builder
	imgs, err := s.ListImages(ctx, ImageFilter{Sort: ImageSortName})
	if err != nil {
		t.Fatal(err)
	}
	for _, im := range imgs.Images {
		d, err := s.GetImage(ctx, im.ID)
		if err != nil {
			t.Fatal(err)
		}
		vs, err := s.ListImageVulnerabilities(ctx, im.ID)
		if err != nil {
			t.Fatal(err)
		}
		b.WriteString(strings.Join([]string{d.Name, d.ScanID, toJSON(t, d.Vulnerabilities), toJSON(t, d.Packages), toJSON(t, d.Findings), toJSON(t, vs)}, "|"))
	}
	vs, err := s.ListVulnerabilities(ctx, VulnerabilityFilter{Page: Page{Limit: MaxLimit}})
	if err != nil {
		t.Fatal(err)
	}
	scans, err := s.ListScans(ctx, ScanFilter{Page: Page{Limit: MaxLimit}})
	if err != nil {
		t.Fatal(err)
	}
	for i := range scans.Scans {
		scans.Scans[i].IngestedAt = time.Time{}
	}
	b.WriteString(toJSON(t, vs) + toJSON(t, scans))
	return b.String()
}

func TestIngestFailureLeavesNothing(t *testing.T) {
	steps := []string{"image", "scan", "packages", "vulnerabilities", "findings", "image-update", "commit"}
	engines(t, func(t *testing.T, s *sqlStore) {
		ctx := context.Background()
		base := []model.Vulnerability{vuln("CVE-1", "a", model.SeverityHigh, 7.5, "2"), vuln("CVE-2", "b", model.SeverityLow, -1, "")}
		mustIngest(t, s, result("app:1", "sha256:d1", "scan-1", t0, base, secret("k", model.SeverityHigh)))
		before := snapshot(t, s)
		for _, step := range steps {
			for _, target := range []struct{ name, digest string }{{"app:1", "sha256:d1"}, {"new:1", "sha256:new"}} {
				s.failAt = func(at string) error {
					if at == step {
						return errors.New("boom")
					}
					return nil
				}
				next := []model.Vulnerability{vuln("CVE-2", "b", model.SeverityLow, -1, "3"), vuln("CVE-9", "z", model.SeverityCritical, 10, "")}
				_, err := s.IngestScan(ctx, result(target.name, target.digest, "scan-2", t0.Add(time.Hour), next))
				s.failAt = nil
				if err == nil || !strings.Contains(err.Error(), "injected failure at "+step) {
					t.Fatalf("%s/%s: err = %v", target.name, step, err)
				}
				if after := snapshot(t, s); after != before {
					t.Fatalf("%s failing at %s changed the store:\nbefore %s\nafter  %s", target.name, step, before, after)
				}
			}
		}
		// A failed re-match changes nothing either.
		var ref InventoryRef
		if err := s.ListInventories(ctx, func(r InventoryRef, _ *model.Inventory) error { ref = r; return nil }); err != nil {
			t.Fatal(err)
		}
		s.failAt = func(at string) error {
			if at == "vulnerabilities" {
				return errors.New("boom")
			}
			return nil
		}
		err := s.ReplaceVulnerabilities(ctx, ref, nil)
		s.failAt = nil
		if err == nil {
			t.Fatal("ReplaceVulnerabilities did not fail")
		}
		if after := snapshot(t, s); after != before {
			t.Fatalf("failed re-match changed the store")
		}
		checkAggregates(t, s)
	})
}
