package server

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"mamori/internal/api"
	"mamori/internal/auth"
	"mamori/internal/model"
	"mamori/internal/vulndb"
)

// TestInUse (issue 15 "in use at run time"): an agent's load report marks
// the findings of the package whose file a container ran (through merged
// /usr: dpkg's bin/tar is the kernel's /usr/bin/tar), not the ones of a
// library nobody loaded; an image no agent reports has no mark; the API's
// inUse filter keeps what is in use; a re-match keeps the marks.
func TestInUse(t *testing.T) {
	engines(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		dbDir := filepath.Join(t.TempDir(), "db")
		e := newEnv(t, dsn, func(c *Config) { c.VulnDBDir = dbDir })
		if _, err := vulndb.Import(ctx, dbDir, "../inuse/e2e/testdata/osv"); err != nil {
			t.Fatal(err)
		}
		e.srv.checkVulnDB(ctx)
		pk := func(name, src, ver string, files ...string) model.Package {
			return model.Package{Name: name, SourceName: src, Version: ver, Type: "deb", Ecosystem: "Debian", Cataloger: "dpkg",
				PURL: "pkg:deb/debian/" + name + "@" + ver + "?distro=debian-12", Files: files,
				Locations: []model.PackageLocation{{Path: "var/lib/dpkg/status"}}}
		}
		var ids []int64
		for i, d := range []string{digestN(7001), digestN(7002)} {
			res := testResult(fmt.Sprintf("inuse-%d", i), d, time.Now())
			res.Vulnerabilities = nil
			res.Inventory.Packages = []model.Package{
				pk("tar", "", "1.34+dfsg-1.2+deb12u1", "bin/tar", "usr/sbin/tarcat"),
				pk("zlib1g", "zlib", "1:1.2.13.dfsg-1", "lib/x86_64-linux-gnu/libz.so.1.2.13"),
			}
			if err := e.srv.matcher.MatchResult(ctx, res); err != nil {
				t.Fatal(err)
			}
			code, body := e.do("POST", "/api/v1/scans", e.admin, res)
			var out api.IngestOutcome
			if code != 201 || json.Unmarshal(body, &out) != nil {
				t.Fatalf("upload: %d %s", code, body)
			}
			ids = append(ids, out.ImageID)
		}
		agentTok, _ := e.token(auth.RoleAgent)
		report := api.LoadReport{Node: "node-1", Sync: true, Running: []string{"c1"}, Containers: []api.LoadContainer{
			{ID: "c1", Name: "app", Image: "app:1", ImageDigest: digestN(7001), Loads: []api.Load{
				{Path: "/usr/bin/tar", Time: time.Now()}, {Path: "/usr/lib/x86_64-linux-gnu/libc.so.6", Time: time.Now()}}}}}
		code, body := e.do("POST", "/api/v1/agents/loads", agentTok, report)
		var lr api.LoadReportResult
		if code != 200 || json.Unmarshal(body, &lr) != nil || lr.Accepted != 2 {
			t.Fatalf("report: %d %s", code, body)
		}
		e.srv.loads.MarkPending(ctx)

		use := func(id int64) map[string]*model.InUse {
			t.Helper()
			code, body := e.do("GET", fmt.Sprintf("/api/v1/images/%d/vulnerabilities", id), e.admin, nil)
			var iv api.ImageVulnerabilities
			if code != 200 || json.Unmarshal(body, &iv) != nil {
				t.Fatalf("image vulnerabilities: %d %s", code, body)
			}
			out := map[string]*model.InUse{}
			for _, v := range iv.Vulnerabilities {
				out[v.ID] = v.InUse
			}
			if len(out) != 2 {
				t.Fatalf("image %d: %d findings, want tar's and zlib's: %s", id, len(out), body)
			}
			return out
		}
		u := use(ids[0])
		if tar := u["DEBIAN-CVE-2005-2541"]; tar == nil || !tar.Loaded || tar.Count != 1 || tar.Containers[0].ID != "c1" {
			t.Fatalf("tar: %+v", tar)
		}
		if z := u["DEBIAN-CVE-2023-45853"]; z == nil || z.Loaded {
			t.Fatalf("zlib: %+v, want not loaded", z)
		}
		for id, v := range use(ids[1]) {
			if v != nil {
				t.Errorf("image without agent data: %s %+v", id, v)
			}
		}
		list := func(q string) []string {
			t.Helper()
			code, body := e.do("GET", "/api/v1/vulnerabilities"+q, e.admin, nil)
			var p api.VulnerabilityPage
			if code != 200 || json.Unmarshal(body, &p) != nil {
				t.Fatalf("%s: %d %s", q, code, body)
			}
			var ids []string
			for _, v := range p.Vulnerabilities {
				ids = append(ids, v.ID)
			}
			return ids
		}
		if got := list("?inUse=true"); len(got) != 1 || got[0] != "DEBIAN-CVE-2005-2541" {
			t.Errorf("inUse=true: %v", got)
		}
		if got := list(fmt.Sprintf("?inUse=true&image=%d", ids[1])); len(got) != 0 {
			t.Errorf("inUse=true of the unwatched image: %v", got)
		}
		if code, _ := e.do("GET", "/api/v1/vulnerabilities?inUse=maybe", e.admin, nil); code != 400 {
			t.Errorf("inUse=maybe: %d", code)
		}
		// A re-match (new DB) keeps the marks.
		if _, err := vulndb.Import(ctx, dbDir, "../inuse/e2e/testdata/osv"); err != nil {
			t.Fatal(err)
		}
		e.srv.checkVulnDB(ctx)
		if tar := use(ids[0])["DEBIAN-CVE-2005-2541"]; tar == nil || !tar.Loaded {
			t.Fatalf("after a re-match: %+v", tar)
		}
		// Bad reports: 400, nothing stored.
		for _, bad := range []any{
			api.LoadReport{Node: "node-1", Containers: []api.LoadContainer{{ID: "c2", ImageDigest: "sha256:x"}}},
			map[string]any{"node": 5},
			"[",
		} {
			if code, body := e.do("POST", "/api/v1/agents/loads", agentTok, bad); code != 400 {
				t.Errorf("%v: %d %s", bad, code, body)
			}
		}
	})
}
