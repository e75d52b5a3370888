package store

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"mamori/internal/model"
)

// TestLoads (issue 15 "in use"): an agent's loads are kept per container
// (new paths counted, known ones only moved, capped per container), the
// node's running list ends the containers it lacks, expiry deletes ended
// and silent ones with their loads, and the in-use marks written for an
// image's rows come back in the views and the "in use" filter.
func TestLoads(t *testing.T) {
	engines(t, func(t *testing.T, s *sqlStore) {
		ctx := context.Background()
		d1, d2 := dg("sha256:a1"), dg("sha256:a2")
		now := t0.Add(time.Hour)
		out, err := s.RecordLoads(ctx, LoadBatch{Cluster: "prod", Node: "n1", Containers: []LoadContainer{
			{ID: "c1", Name: "web", Image: "web:1", ImageDigest: d1, Loads: []Load{
				{Path: "/usr/bin/tar", Time: now}, {Path: "/usr/lib/libz.so.1", Time: now}, {Path: "/usr/bin/tar", Time: now.Add(time.Second)}}},
			{ID: "c2", ImageDigest: d2, Loads: []Load{{Path: "/bin/sh", Time: now}}},
		}}, now)
		if err != nil {
			t.Fatal(err)
		}
		if out.Accepted != 3 || out.Duplicates != 0 || out.Capped != 0 || !reflect.DeepEqual(out.Digests, []string{d1, d2}) {
			t.Fatalf("first report: %+v", out)
		}
		// Known paths: duplicates, last seen moved; nothing changed for the image.
		out, err = s.RecordLoads(ctx, LoadBatch{Cluster: "prod", Node: "n1", Containers: []LoadContainer{
			{ID: "c1", ImageDigest: d1, Loads: []Load{{Path: "/usr/bin/tar", Time: now.Add(time.Minute)}}}}}, now.Add(time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		if out.Accepted != 0 || out.Duplicates != 1 || len(out.Digests) != 0 {
			t.Fatalf("second report: %+v", out)
		}
		cs, err := s.ImageLoads(ctx, d1)
		if err != nil {
			t.Fatal(err)
		}
		if len(cs) != 1 || cs[0].ID != "c1" || cs[0].Name != "web" || cs[0].Image != "web:1" || cs[0].Paths != 2 || len(cs[0].Loads) != 2 ||
			cs[0].Loads[0].Path != "/usr/bin/tar" || !cs[0].Loads[0].Time.Equal(now.Add(time.Minute)) || !cs[0].LastLoad.Equal(now.Add(time.Minute)) {
			t.Fatalf("loads of %s: %+v", d1, cs)
		}

		// The cap per container.
		var many []Load
		for i := range MaxLoadsPerContainer + 10 {
			many = append(many, Load{Path: fmt.Sprintf("/data/f%05d", i), Time: now})
		}
		out, err = s.RecordLoads(ctx, LoadBatch{Cluster: "prod", Node: "n1", Containers: []LoadContainer{{ID: "c2", ImageDigest: d2, Loads: many}}}, now)
		if err != nil {
			t.Fatal(err)
		}
		if out.Accepted != MaxLoadsPerContainer-1 || out.Capped != 11 {
			t.Fatalf("capped report: %+v", out)
		}
		cs, err = s.ImageLoads(ctx, d2)
		if err != nil {
			t.Fatal(err)
		}
		if cs[0].Paths != MaxLoadsPerContainer || len(cs[0].Loads) != MaxLoadsPerContainer || cs[0].Capped != 11 {
			t.Fatalf("capped container: paths %d loads %d capped %d", cs[0].Paths, len(cs[0].Loads), cs[0].Capped)
		}

		// Another node's list does not touch n1; n1's list ends c2.
		if out, err = s.RecordLoads(ctx, LoadBatch{Cluster: "prod", Node: "n2", Sync: true}, now); err != nil || out.Ended != 0 {
			t.Fatalf("n2 sync: %+v %v", out, err)
		}
		out, err = s.RecordLoads(ctx, LoadBatch{Cluster: "prod", Node: "n1", Sync: true, Running: []string{"c1"}}, now.Add(2*time.Minute))
		if err != nil || out.Ended != 1 || !reflect.DeepEqual(out.Digests, []string{d2}) {
			t.Fatalf("n1 sync: %+v %v", out, err)
		}
		cs, _ = s.ImageLoads(ctx, d2)
		if len(cs) != 1 || !cs[0].EndedAt.Equal(now.Add(2*time.Minute)) {
			t.Fatalf("ended container: %+v", cs)
		}
		if ds, err := s.LoadDigests(ctx); err != nil || !reflect.DeepEqual(ds, []string{d1, d2}) {
			t.Fatalf("digests %v %v", ds, err)
		}
		// Expiry: ended before the bound goes (with its loads); c1 was
		// reported at +2m, so a stale bound before that keeps it.
		gone, err := s.ExpireLoads(ctx, now.Add(3*time.Minute), now.Add(time.Minute))
		if err != nil || !reflect.DeepEqual(gone, []string{d2}) {
			t.Fatalf("expire: %v %v", gone, err)
		}
		var n int
		if err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM container_loads`).Scan(&n); err != nil || n != 2 {
			t.Fatalf("loads left: %d %v", n, err)
		}
		gone, err = s.ExpireLoads(ctx, now, now.Add(3*time.Minute))
		if err != nil || !reflect.DeepEqual(gone, []string{d1}) {
			t.Fatalf("expire stale: %v %v", gone, err)
		}

		// Bad input is refused whole.
		for _, b := range []LoadBatch{
			{Node: ""},
			{Node: "n1", Containers: []LoadContainer{{ID: "", ImageDigest: d1}}},
			{Node: "n1", Containers: []LoadContainer{{ID: "c", ImageDigest: d1, Loads: []Load{{Path: "/a\x00b"}}}}},
		} {
			if _, err := s.RecordLoads(ctx, b, now); !errors.Is(err, ErrInvalid) {
				t.Errorf("%+v: %v, want ErrInvalid", b, err)
			}
		}
	})
}

// TestImageUse: marks and priorities written by SetImageUse are what the
// views read, the filter keeps what is in use, and a rescan makes the
// marks stale.
func TestImageUse(t *testing.T) {
	engines(t, func(t *testing.T, s *sqlStore) {
		ctx := context.Background()
		vulns := []model.Vulnerability{
			prioVuln("DEBIAN-CVE-2005-2541", "tar", model.SeverityNegligible, -1, 1.8, "", -1),
			prioVuln("DEBIAN-CVE-2023-45853", "zlib1g", model.SeverityCritical, 9.8, 34.3, "", -1),
		}
		r := result("app:1", "sha256:b1", "s1", t0, vulns)
		r.Inventory.Packages[0].Files = []string{"bin/tar"}
		id := mustIngest(t, s, r).ImageID
		digest := r.Target.Digest

		d, err := s.ImageUse(ctx, digest)
		if err != nil {
			t.Fatal(err)
		}
		if d.Ref.ImageID != id || d.Ref.Digest != digest || len(d.Vulns) != 2 || len(d.Seqs) != 2 ||
			!reflect.DeepEqual(d.Inventory.Packages[0].Files, []string{"bin/tar"}) || d.Vulns[1].CVSS[0].Score != 9.8 {
			t.Fatalf("image use: %+v", d)
		}
		if _, err := s.ImageUse(ctx, dg("sha256:none")); !errors.Is(err, ErrNotFound) {
			t.Fatalf("unknown digest: %v", err)
		}

		seen := t0.Add(time.Hour)
		used := &model.InUse{Loaded: true, Count: 1, LastSeen: seen, Containers: []model.InUseContainer{{ID: "c1", Path: "usr/bin/tar", LastSeen: seen}}}
		rows := []RowUse{
			{Seq: d.Seqs[0], ID: d.Vulns[0].ID, InUse: used, Priority: &model.Priority{Score: 11.8, Reason: "in use"}},
			{Seq: d.Seqs[1], ID: d.Vulns[1].ID, InUse: &model.InUse{}, Priority: &model.Priority{Score: 24.3, Reason: "not loaded"}},
		}
		if err := s.SetImageUse(ctx, d.Ref, rows); err != nil {
			t.Fatal(err)
		}
		got, err := s.ListImageVulnerabilities(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		byID := map[string]model.Vulnerability{}
		for _, v := range got {
			byID[v.ID] = v
		}
		if u := byID["DEBIAN-CVE-2005-2541"].InUse; u == nil || !u.Loaded || u.Containers[0].ID != "c1" || !u.LastSeen.Equal(seen) {
			t.Errorf("tar row: %+v", u)
		}
		if u := byID["DEBIAN-CVE-2023-45853"].InUse; u == nil || u.Loaded {
			t.Errorf("zlib row: %+v", u)
		}
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
		if got := list(VulnerabilityFilter{InUse: true}); !reflect.DeepEqual(got, []string{"DEBIAN-CVE-2005-2541"}) {
			t.Errorf("in use: %v", got)
		}
		if got := list(VulnerabilityFilter{InUse: true, ImageID: id + 1}); len(got) != 0 {
			t.Errorf("in use in another image: %v", got)
		}
		// The vulnerability's priority follows its rows.
		p, err := s.ListVulnerabilities(ctx, VulnerabilityFilter{Sort: VulnSortPriority})
		if err != nil {
			t.Fatal(err)
		}
		if v := p.Vulnerabilities[0]; v.ID != "DEBIAN-CVE-2023-45853" || v.Priority == nil || *v.Priority != 24.3 {
			t.Errorf("priority order: %+v", p.Vulnerabilities)
		}
		// Absent again (no agent data): the row's use is gone.
		if err := s.SetImageUse(ctx, d.Ref, []RowUse{{Seq: d.Seqs[0], ID: d.Vulns[0].ID, Priority: &model.Priority{Score: 1.8}}}); err != nil {
			t.Fatal(err)
		}
		if got := list(VulnerabilityFilter{InUse: true}); len(got) != 0 {
			t.Errorf("in use after clearing: %v", got)
		}

		// A rescan makes the read stale.
		mustIngest(t, s, result("app:1", "sha256:b1", "s2", t0.Add(time.Minute), vulns))
		if err := s.SetImageUse(ctx, d.Ref, rows); !errors.Is(err, ErrStale) {
			t.Fatalf("after a rescan: %v, want ErrStale", err)
		}
		checkAggregates(t, s)
	})
}
