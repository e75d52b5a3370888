package loads

import (
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"mamori/internal/api"
	"mamori/internal/auth"
	"mamori/internal/model"
	"mamori/internal/priority"
	"mamori/internal/service"
	"mamori/internal/service/images"
	"mamori/internal/store"
)

var t0 = time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)

const (
	dApp   = "sha256:1111111111111111111111111111111111111111111111111111111111111111"
	dOther = "sha256:2222222222222222222222222222222222222222222222222222222222222222"
)

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func newService(t *testing.T) (*Service, *images.Service, store.Store, *clock) {
	t.Helper()
	st, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "mamori.db"), store.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	c := &clock{t0}
	s := New(Config{Store: st, Now: c.now})
	im := images.New(st, nil, c.now)
	im.SetUseMarker(s)
	return s, im, st, c
}

func agent(cluster string) context.Context {
	return auth.WithPrincipal(context.Background(), &auth.Principal{TokenID: 3, TokenName: "node-agent", Role: auth.RoleAgent, Cluster: cluster})
}

// appResult is a Debian image with tar (run by one container) and zlib
// (never loaded), as dpkg lists them on a merged-/usr system.
func appResult(scanID string, created time.Time) *model.Result {
	pk := func(name, ver string, files ...string) model.Package {
		return model.Package{Name: name, Version: ver, Type: model.TypeDeb, Ecosystem: "Debian:12", Cataloger: "dpkg",
			PURL: "pkg:deb/debian/" + name + "@" + ver, Files: files, Locations: []model.PackageLocation{{Path: "var/lib/dpkg/status"}}}
	}
	pkgs := []model.Package{
		pk("tar", "1.34+dfsg-1.2+deb12u1", "bin/tar", "usr/sbin/tarcat"),
		pk("zlib1g", "1:1.2.13.dfsg-1", "lib/x86_64-linux-gnu/libz.so.1.2.13"),
	}
	var vulns []model.Vulnerability
	for _, v := range []struct {
		id  string
		pkg model.Package
		sev model.Severity
	}{{"DEBIAN-CVE-2005-2541", pkgs[0], model.SeverityNegligible}, {"DEBIAN-CVE-2023-45853", pkgs[1], model.SeverityCritical}} {
		x := model.Vulnerability{ID: v.id, Severity: v.sev, DataSource: "Debian:12",
			Package: model.PackageRef{Name: v.pkg.Name, Version: v.pkg.Version, Type: v.pkg.Type, Ecosystem: v.pkg.Ecosystem,
				PURL: v.pkg.PURL, Path: "var/lib/dpkg/status"}}
		p := priority.Of(&x)
		x.Priority = &p
		vulns = append(vulns, x)
	}
	return &model.Result{SchemaVersion: model.SchemaVersion, Tool: model.Tool{Name: "mamori", Version: "test"}, ScanID: scanID,
		CreatedAt: created, Target: model.Target{Name: "app:1", Type: model.TargetImage, Digest: dApp},
		Inventory: model.Inventory{OS: &model.OS{ID: "debian", VersionID: "12"}, Packages: pkgs}, Vulnerabilities: vulns}
}

func useOf(t *testing.T, st store.Store, imageID int64) map[string]*model.InUse {
	t.Helper()
	vs, err := st.ListImageVulnerabilities(context.Background(), imageID)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]*model.InUse{}
	for _, v := range vs {
		out[v.Package.Name] = v.InUse
		if v.Priority == nil || (v.InUse != nil && v.InUse.Loaded && !strings.Contains(v.Priority.Reason, "in use")) {
			t.Errorf("%s: priority %+v with use %+v", v.ID, v.Priority, v.InUse)
		}
	}
	return out
}

// TestMarking: a container that runs tar marks tar's finding in use (its
// path through merged /usr), zlib's not loaded; an image no agent reports
// stays absent; a forged mark in an upload is removed; a rescan keeps the
// marks; the container's end and expiry make them absent again.
func TestMarking(t *testing.T) {
	s, im, st, c := newService(t)
	ctx := context.Background()
	out, err := im.Ingest(ctx, appResult("s1", t0))
	if err != nil {
		t.Fatal(err)
	}
	// A forged mark on an image without agent data is removed at ingest.
	forged := appResult("o1", t0)
	forged.Target.Name, forged.Target.Digest = "other:1", dOther
	forged.Vulnerabilities[0].InUse = &model.InUse{Loaded: true, Count: 1}
	other, err := im.Ingest(ctx, forged)
	if err != nil {
		t.Fatal(err)
	}
	if u := useOf(t, st, other.ImageID); u["tar"] != nil || u["zlib1g"] != nil {
		t.Fatalf("forged or absent marks stored: %+v", u)
	}

	seen := t0.Add(-time.Second)
	res, err := s.Ingest(agent("prod"), api.LoadReport{Node: "n1", Containers: []api.LoadContainer{
		{ID: "c1", Name: "app", Image: "app:1", ImageDigest: dApp, Loads: []api.Load{
			{Path: "/usr/bin/tar", Time: seen}, {Path: "/usr/lib/x86_64-linux-gnu/libc.so.6", Time: seen}}},
	}, Sync: true, Running: []string{"c1"}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Accepted != 2 {
		t.Fatalf("report: %+v", res)
	}
	s.MarkPending(ctx)
	u := useOf(t, st, out.ImageID)
	if tar := u["tar"]; tar == nil || !tar.Loaded || tar.Count != 1 || tar.Containers[0].ID != "c1" || tar.Containers[0].Name != "app" ||
		tar.Containers[0].Path != "usr/bin/tar" || !tar.LastSeen.Equal(seen) {
		t.Fatalf("tar: %+v", tar)
	}
	if z := u["zlib1g"]; z == nil || z.Loaded {
		t.Fatalf("zlib1g: %+v, want not loaded", z)
	}
	if u := useOf(t, st, other.ImageID); u["tar"] != nil {
		t.Fatalf("an image no agent reports got a mark: %+v", u)
	}
	// The in-use filter.
	p, err := im.ListVulnerabilities(ctx, store.VulnerabilityFilter{InUse: true})
	if err != nil || len(p.Vulnerabilities) != 1 || p.Vulnerabilities[0].ID != "DEBIAN-CVE-2005-2541" {
		t.Fatalf("in use filter: %+v %v", p.Vulnerabilities, err)
	}

	// A rescan (new scan ID) is marked at ingest from the stored loads.
	c.t = t0.Add(time.Minute)
	if _, err := im.Ingest(ctx, appResult("s2", t0.Add(time.Minute))); err != nil {
		t.Fatal(err)
	}
	if tar := useOf(t, st, out.ImageID)["tar"]; tar == nil || !tar.Loaded {
		t.Fatalf("after a rescan: %+v", tar)
	}

	// The node's list lacks c1: ended, kept for the retention, then
	// expired: absent again.
	if res, err = s.Ingest(agent("prod"), api.LoadReport{Node: "n1", Sync: true}); err != nil || res.Ended != 1 {
		t.Fatalf("sync: %+v %v", res, err)
	}
	s.MarkPending(ctx)
	if tar := useOf(t, st, out.ImageID)["tar"]; tar == nil || !tar.Loaded {
		t.Fatalf("within the retention: %+v", tar)
	}
	c.t = c.t.Add(DefaultEndedRetention + time.Second)
	s.Expire(ctx)
	s.MarkPending(ctx)
	if u := useOf(t, st, out.ImageID); u["tar"] != nil || u["zlib1g"] != nil {
		t.Fatalf("after expiry: %+v", u)
	}
	if st := s.Stats(); st.Reports != 2 || st.Accepted != 2 || st.Expired != 1 || st.Marked < 3 || st.MarkErrors != 0 {
		t.Errorf("stats %+v", st)
	}
}

// TestIngestRefusesBadReports: one bad field refuses the whole report.
func TestIngestRefusesBadReports(t *testing.T) {
	s, _, st, _ := newService(t)
	good := api.LoadContainer{ID: "c1", ImageDigest: dApp, Loads: []api.Load{{Path: "/bin/sh", Time: t0}}}
	for name, r := range map[string]api.LoadReport{
		"no node":       {Containers: []api.LoadContainer{good}},
		"node newline":  {Node: "n\n1"},
		"bad id":        {Node: "n1", Containers: []api.LoadContainer{{ID: "../x", ImageDigest: dApp}}},
		"bad digest":    {Node: "n1", Containers: []api.LoadContainer{{ID: "c1", ImageDigest: "sha256:abc"}}},
		"relative path": {Node: "n1", Containers: []api.LoadContainer{{ID: "c1", ImageDigest: dApp, Loads: []api.Load{{Path: "bin/sh"}}}}},
		"NUL path":      {Node: "n1", Containers: []api.LoadContainer{{ID: "c1", ImageDigest: dApp, Loads: []api.Load{{Path: "/bin/\x00sh"}}}}},
		"long path":     {Node: "n1", Containers: []api.LoadContainer{{ID: "c1", ImageDigest: dApp, Loads: []api.Load{{Path: "/" + strings.Repeat("a", 5000)}}}}},
		"two digests":   {Node: "n1", Containers: []api.LoadContainer{good, {ID: "c1", ImageDigest: dOther}}},
		"bad running":   {Node: "n1", Sync: true, Running: []string{"c 1"}},
		"too many":      {Node: "n1", Containers: []api.LoadContainer{{ID: "c1", ImageDigest: dApp, Loads: make([]api.Load, api.MaxLoadReportPaths+1)}}},
	} {
		if _, err := s.Ingest(agent(""), r); !errors.Is(err, service.ErrInvalid) {
			t.Errorf("%s: %v, want invalid", name, err)
		}
	}
	for _, role := range []auth.Role{auth.RoleCluster, auth.RoleAdmin, auth.RoleOperator} {
		ctx := auth.WithPrincipal(context.Background(), &auth.Principal{Role: role})
		if _, err := s.Ingest(ctx, api.LoadReport{Node: "n1"}); !errors.Is(err, auth.ErrForbidden) {
			t.Errorf("%s: %v, want forbidden", role, err)
		}
	}
	if ds, _ := st.LoadDigests(context.Background()); len(ds) != 0 {
		t.Errorf("refused reports stored containers: %v", ds)
	}
	// A time far off the server's clock is the time of receipt.
	if _, err := s.Ingest(agent(""), api.LoadReport{Node: "n1", Containers: []api.LoadContainer{
		{ID: "c1", ImageDigest: dApp, Loads: []api.Load{{Path: "/bin/sh", Time: t0.Add(72 * time.Hour)}}}}}); err != nil {
		t.Fatal(err)
	}
	cs, err := st.ImageLoads(context.Background(), dApp)
	if err != nil || len(cs) != 1 || !cs[0].Loads[0].Time.Equal(t0) {
		t.Fatalf("clamped time: %+v %v", cs, err)
	}
}

// TestRun: the marker loop marks a report's image without being asked.
func TestRun(t *testing.T) {
	st, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "mamori.db"), store.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	s := New(Config{Store: st, MarkInterval: 50 * time.Millisecond})
	im := images.New(st, nil, nil)
	im.SetUseMarker(s)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out, err := im.Ingest(ctx, appResult("s1", time.Now().Add(-time.Minute)))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { defer close(done); s.Run(ctx) }()
	start := time.Now()
	if _, err := s.Ingest(agent(""), api.LoadReport{Node: "n1", Containers: []api.LoadContainer{
		{ID: "c1", ImageDigest: dApp, Loads: []api.Load{{Path: "/bin/tar", Time: time.Now()}}}}}); err != nil {
		t.Fatal(err)
	}
	for {
		if tar := useOf(t, st, out.ImageID)["tar"]; tar != nil && tar.Loaded {
			break
		}
		if time.Since(start) > 10*time.Second {
			t.Fatal("not marked within 10 s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("marked %v after the report", time.Since(start).Round(time.Millisecond))
	cancel()
	<-done
}
