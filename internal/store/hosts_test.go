package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestHostGroups(t *testing.T) {
	engines(t, func(t *testing.T, s *sqlStore) {
		ctx := context.Background()
		gs, err := s.ListHostGroups(ctx)
		if err != nil || len(gs) != 1 || gs[0].Name != DefaultHostGroup || gs[0].Settings != "{}" || gs[0].SettingsVersion != 1 {
			t.Fatalf("a new store has the default group only: %+v %v", gs, err)
		}
		def := gs[0]
		prod, err := s.CreateHostGroup(ctx, HostGroup{Name: "prod", Cluster: "c1", Settings: `{"antimalware":{"mode":"block"}}`, UpdatedBy: "admin", CreatedAt: t0})
		if err != nil || prod.ID == 0 || prod.SettingsVersion != 1 || !prod.CreatedAt.Equal(t0) || prod.Cluster != "c1" {
			t.Fatalf("create: %+v %v", prod, err)
		}
		for _, g := range []HostGroup{{Name: "prod", Settings: "{}"}, {Name: "other", Cluster: "c1", Settings: "{}"}} {
			if _, err := s.CreateHostGroup(ctx, g); !errors.Is(err, ErrConflict) {
				t.Errorf("create %+v: want ErrConflict, got %v", g, err)
			}
		}
		for _, g := range []HostGroup{{Name: "", Settings: "{}"}, {Name: "x"}, {Name: "x\x00", Settings: "{}"}} {
			if _, err := s.CreateHostGroup(ctx, g); !errors.Is(err, ErrInvalid) {
				t.Errorf("create %+v: want ErrInvalid, got %v", g, err)
			}
		}
		// Same settings: no new version; new settings: version 2.
		prod.Description = "production nodes"
		g, err := s.UpdateHostGroup(ctx, prod)
		if err != nil || g.SettingsVersion != 1 || g.Description != "production nodes" {
			t.Fatalf("update without settings change: %+v %v", g, err)
		}
		prod.Settings = `{"antimalware":{"mode":"log"}}`
		if g, err = s.UpdateHostGroup(ctx, prod); err != nil || g.SettingsVersion != 2 {
			t.Fatalf("update: %+v %v", g, err)
		}
		def.Cluster = "c9"
		if _, err := s.UpdateHostGroup(ctx, def); !errors.Is(err, ErrConflict) {
			t.Errorf("default group given a cluster: %v", err)
		}
		other, err := s.CreateHostGroup(ctx, HostGroup{Name: "other", Settings: "{}"})
		if err != nil {
			t.Fatal(err)
		}
		other.Cluster = "c1"
		if _, err := s.UpdateHostGroup(ctx, other); !errors.Is(err, ErrConflict) {
			t.Errorf("second group of cluster c1: %v", err)
		}
		if _, err := s.UpdateHostGroup(ctx, HostGroup{ID: 999999, Name: "x", Settings: "{}"}); !errors.Is(err, ErrNotFound) {
			t.Errorf("update unknown: %v", err)
		}
		if g, err := s.GetHostGroupByName(ctx, "prod"); err != nil || g.ID != prod.ID {
			t.Errorf("by name: %+v %v", g, err)
		}

		// Membership: placed > cluster > default.
		a1, _ := s.RegisterAgent(ctx, Agent{Cluster: "c1", Node: "n1"})
		a2, _ := s.RegisterAgent(ctx, Agent{Cluster: "c2", Node: "n2"})
		a3, _ := s.RegisterAgent(ctx, Agent{Node: "bare"})
		for _, tc := range []struct {
			a         Agent
			group     string
			placement string
		}{{a1, "prod", PlacementCluster}, {a2, DefaultHostGroup, PlacementDefault}, {a3, DefaultHostGroup, PlacementDefault}} {
			h, err := s.AgentHost(ctx, tc.a.Cluster, tc.a.Node)
			if err != nil || h.Group.Name != tc.group || h.Placement != tc.placement || h.Agent.ID != tc.a.ID {
				t.Errorf("%s: %+v %v", tc.a.Node, h, err)
			}
		}
		h, err := s.PlaceAgent(ctx, a1.ID, other.ID)
		if err != nil || h.Group.Name != "other" || h.Placement != PlacementPlaced {
			t.Fatalf("place: %+v %v", h, err)
		}
		// Registering again keeps the placement.
		if _, err := s.RegisterAgent(ctx, Agent{Cluster: "c1", Node: "n1", Version: "2"}); err != nil {
			t.Fatal(err)
		}
		if h, _ := s.AgentHost(ctx, "c1", "n1"); h.Group.Name != "other" {
			t.Errorf("re-registration lost the placement: %+v", h)
		}
		if _, err := s.PlaceAgent(ctx, a1.ID, 999999); !errors.Is(err, ErrNotFound) {
			t.Errorf("place in unknown group: %v", err)
		}
		if _, err := s.PlaceAgent(ctx, 999999, other.ID); !errors.Is(err, ErrNotFound) {
			t.Errorf("place unknown agent: %v", err)
		}
		if _, err := s.AgentHost(ctx, "c1", "nobody"); !errors.Is(err, ErrNotFound) {
			t.Errorf("unknown agent: %v", err)
		}
		hs, err := s.ListAgentHosts(ctx)
		if err != nil || len(hs) != 3 {
			t.Fatalf("list: %+v %v", hs, err)
		}
		got := map[string]string{}
		for _, h := range hs {
			got[h.Agent.Node] = h.Group.Name + "/" + h.Placement
		}
		if got["n1"] != "other/placed" || got["n2"] != "default/default" || got["bare"] != "default/default" {
			t.Errorf("list placements: %v", got)
		}
		// Deleting the group puts its agents back.
		if err := s.DeleteHostGroup(ctx, other.ID); err != nil {
			t.Fatal(err)
		}
		if h, _ := s.AgentHost(ctx, "c1", "n1"); h.Group.Name != "prod" || h.Placement != PlacementCluster {
			t.Errorf("after delete: %+v", h)
		}
		if err := s.DeleteHostGroup(ctx, def.ID); !errors.Is(err, ErrConflict) {
			t.Errorf("delete default: %v", err)
		}
		if err := s.DeleteHostGroup(ctx, other.ID); !errors.Is(err, ErrNotFound) {
			t.Errorf("delete twice: %v", err)
		}
		// Placing back (0) after a placement.
		if _, err := s.PlaceAgent(ctx, a2.ID, prod.ID); err != nil {
			t.Fatal(err)
		}
		if h, err := s.PlaceAgent(ctx, a2.ID, 0); err != nil || h.Group.Name != DefaultHostGroup {
			t.Errorf("unplace: %+v %v", h, err)
		}
	})
}

func allowEntry(i int, source string) AllowEntry {
	return AllowEntry{SHA256: fmt.Sprintf("%064x", i), Path: fmt.Sprintf("/usr/bin/p%d", i), Kind: "executable", Source: source}
}

func TestAllowLists(t *testing.T) {
	engines(t, func(t *testing.T, s *sqlStore) {
		ctx := context.Background()
		g, err := s.CreateHostGroup(ctx, HostGroup{Name: "g", Settings: "{}"})
		if err != nil {
			t.Fatal(err)
		}
		rev, es, err := s.AllowList(ctx, g.ID)
		if err != nil || rev != 0 || len(es) != 0 {
			t.Fatalf("empty list: %d %v %v", rev, es, err)
		}
		// A large batch (several multi-row INSERTs).
		var batch []AllowEntry
		for i := range 5000 {
			batch = append(batch, allowEntry(i, "inventory"))
		}
		ch, err := s.AddAllowEntries(ctx, g.ID, batch, t0, "agent n1")
		if err != nil || ch.Added != 5000 || ch.Entries != 5000 || ch.Revision != 1 {
			t.Fatalf("add: %+v %v", ch, err)
		}
		// The same again adds nothing and keeps the revision.
		if ch, err = s.AddAllowEntries(ctx, g.ID, batch[:10], t0, "agent n1"); err != nil || ch.Added != 0 || ch.Revision != 1 || ch.Entries != 5000 {
			t.Fatalf("add again: %+v %v", ch, err)
		}
		// The same digest from another source is another entry.
		e := allowEntry(1, "manual")
		e.Added = t0.Add(time.Hour)
		if ch, err = s.AddAllowEntries(ctx, g.ID, []AllowEntry{e}, t0, "admin"); err != nil || ch.Added != 1 || ch.Revision != 2 {
			t.Fatalf("add manual: %+v %v", ch, err)
		}
		if ch, err = s.RemoveAllowEntries(ctx, g.ID, allowEntry(1, "").SHA256, t0, "admin"); err != nil || ch.Removed != 2 || ch.Entries != 4999 || ch.Revision != 3 {
			t.Fatalf("remove: %+v %v", ch, err)
		}
		if ch, err = s.RemoveAllowEntries(ctx, g.ID, allowEntry(1, "").SHA256, t0, "admin"); err != nil || ch.Removed != 0 || ch.Revision != 3 {
			t.Fatalf("remove again: %+v %v", ch, err)
		}
		rev, es, err = s.AllowList(ctx, g.ID)
		if err != nil || rev != 3 || len(es) != 4999 || es[0].SHA256 != allowEntry(0, "").SHA256 || !es[0].Added.Equal(t0) || es[0].Kind != "executable" {
			t.Fatalf("list: %d %d %+v %v", rev, len(es), es[:1], err)
		}
		ch, err = s.ReplaceAllowList(ctx, g.ID, []AllowEntry{allowEntry(7, "manual")}, t0, "admin")
		if err != nil || ch.Entries != 1 || ch.Revision != 4 || ch.Removed != 4999 {
			t.Fatalf("replace: %+v %v", ch, err)
		}
		if g2, _ := s.GetHostGroup(ctx, g.ID); g2.AllowListEntries != 1 || g2.AllowListRevision != 4 {
			t.Errorf("group counts: %+v", g2)
		}
		for _, bad := range [][]AllowEntry{{{SHA256: "", Source: "manual"}}, {{SHA256: "ab", Source: ""}}, {{SHA256: "ab", Source: "x", Path: "a\x00b"}}} {
			if _, err := s.AddAllowEntries(ctx, g.ID, bad, t0, ""); !errors.Is(err, ErrInvalid) {
				t.Errorf("bad entry %+v: %v", bad, err)
			}
		}
		if _, err := s.AddAllowEntries(ctx, 999999, batch[:1], t0, ""); !errors.Is(err, ErrNotFound) {
			t.Errorf("unknown group: %v", err)
		}
		if _, _, err := s.AllowList(ctx, 999999); !errors.Is(err, ErrNotFound) {
			t.Errorf("unknown group list: %v", err)
		}
		// Deleting the group deletes its list.
		if err := s.DeleteHostGroup(ctx, g.ID); err != nil {
			t.Fatal(err)
		}
		var n int
		if err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM allowlist_entries`).Scan(&n); err != nil || n != 0 {
			t.Errorf("%d entries left (%v)", n, err)
		}
	})
}

func TestHostReportsAndRequests(t *testing.T) {
	engines(t, func(t *testing.T, s *sqlStore) {
		ctx := context.Background()
		a, _ := s.RegisterAgent(ctx, Agent{Cluster: "c1", Node: "n1"})
		b, _ := s.RegisterAgent(ctx, Agent{Node: "n2"})
		q := []QuarantineEntry{
			{ID: strings.Repeat("a", 32), Time: t0, Path: "/tmp/eicar", Size: 68, SHA256: "275a", Hits: `[{"engine":"sha256","signature":"EICAR"}]`, Removed: true},
			{ID: strings.Repeat("b", 32), Time: t0.Add(time.Minute), Path: "/x", Root: "/proc/9/root", ContainerPID: 9},
		}
		if err := s.ReplaceQuarantine(ctx, a.ID, q, t0); err != nil {
			t.Fatal(err)
		}
		if err := s.ReplaceQuarantine(ctx, b.ID, q[:1], t0); err != nil {
			t.Fatal(err)
		}
		all, err := s.ListQuarantine(ctx, 0)
		if err != nil || len(all) != 3 || all[0].Path != "/x" || all[0].Cluster != "c1" || all[0].Node != "n1" || all[0].ContainerPID != 9 {
			t.Fatalf("list all: %+v %v", all, err)
		}
		mine, err := s.ListQuarantine(ctx, a.ID)
		if err != nil || len(mine) != 2 {
			t.Fatalf("list one: %+v %v", mine, err)
		}
		e, err := s.GetQuarantineEntry(ctx, a.ID, q[0].ID)
		if err != nil || !e.Removed || e.Hits != q[0].Hits || !e.Time.Equal(t0) || e.Size != 68 {
			t.Fatalf("get: %+v %v", e, err)
		}
		// A new report replaces the old one.
		if err := s.ReplaceQuarantine(ctx, a.ID, q[1:], t0); err != nil {
			t.Fatal(err)
		}
		if _, err := s.GetQuarantineEntry(ctx, a.ID, q[0].ID); !errors.Is(err, ErrNotFound) {
			t.Errorf("replaced entry still there: %v", err)
		}
		if err := s.ReplaceQuarantine(ctx, a.ID, []QuarantineEntry{q[1], q[1]}, t0); !errors.Is(err, ErrInvalid) {
			t.Errorf("duplicate IDs: %v", err)
		}
		if err := s.ReplaceQuarantine(ctx, 999999, q, t0); !errors.Is(err, ErrNotFound) {
			t.Errorf("unknown agent: %v", err)
		}
		if err := s.ReplaceQuarantine(ctx, a.ID, []QuarantineEntry{{ID: "x", Path: ""}}, t0); !errors.Is(err, ErrInvalid) {
			t.Errorf("no path: %v", err)
		}

		if err := s.PutBaseline(ctx, a.ID, t0, `{"files":1}`); err != nil {
			t.Fatal(err)
		}
		if err := s.PutBaseline(ctx, a.ID, t0.Add(time.Hour), `{"files":2}`); err != nil {
			t.Fatal(err)
		}
		if err := s.PutBaseline(ctx, 999999, t0, `{}`); !errors.Is(err, ErrNotFound) {
			t.Errorf("baseline of unknown agent: %v", err)
		}
		bs, err := s.ListBaselines(ctx)
		if err != nil || len(bs) != 1 || bs[0].Body != `{"files":2}` || !bs[0].ReportedAt.Equal(t0.Add(time.Hour)) || bs[0].Node != "n1" {
			t.Fatalf("baselines: %+v %v", bs, err)
		}

		r1, err := s.CreateHostRequest(ctx, HostRequest{AgentID: a.ID, Kind: "integrity.rebuild", Args: "{}", CreatedBy: "admin", CreatedAt: t0})
		if err != nil || r1.State != RequestPending || r1.ID == 0 {
			t.Fatalf("create: %+v %v", r1, err)
		}
		r2, _ := s.CreateHostRequest(ctx, HostRequest{AgentID: a.ID, Kind: "quarantine.delete", Args: `{"entry":"b"}`, CreatedAt: t0})
		if _, err := s.CreateHostRequest(ctx, HostRequest{AgentID: 999999, Kind: "x", Args: "{}"}); !errors.Is(err, ErrNotFound) {
			t.Errorf("request to unknown agent: %v", err)
		}
		pending, err := s.ListHostRequests(ctx, a.ID, true, 0)
		if err != nil || len(pending) != 2 || pending[0].ID != r1.ID {
			t.Fatalf("pending: %+v %v", pending, err)
		}
		done, err := s.CompleteHostRequest(ctx, a.ID, r1.ID, RequestDone, "rebuilt: 12 files", t0.Add(time.Minute))
		if err != nil || done.State != RequestDone || done.Result != "rebuilt: 12 files" || !done.UpdatedAt.Equal(t0.Add(time.Minute)) {
			t.Fatalf("complete: %+v %v", done, err)
		}
		if _, err := s.CompleteHostRequest(ctx, a.ID, r1.ID, RequestFailed, "", t0); !errors.Is(err, ErrConflict) {
			t.Errorf("complete twice: %v", err)
		}
		if _, err := s.CompleteHostRequest(ctx, b.ID, r2.ID, RequestDone, "", t0); !errors.Is(err, ErrNotFound) {
			t.Errorf("another agent's request: %v", err)
		}
		if _, err := s.CompleteHostRequest(ctx, a.ID, r2.ID, "running", "", t0); !errors.Is(err, ErrInvalid) {
			t.Errorf("bad state: %v", err)
		}
		if all, _ := s.ListHostRequests(ctx, a.ID, false, 0); len(all) != 2 || all[0].ID != r2.ID {
			t.Errorf("all requests newest first: %+v", all)
		}
		if p, _ := s.ListHostRequests(ctx, a.ID, true, 0); len(p) != 1 || p[0].ID != r2.ID {
			t.Errorf("pending after completion: %+v", p)
		}
		// Deleting the agent deletes what it reported and its requests.
		if err := s.DeleteAgent(ctx, a.ID); err != nil {
			t.Fatal(err)
		}
		for _, table := range []string{"host_quarantine WHERE agent_id = ?", "host_baselines WHERE agent_id = ?", "host_requests WHERE agent_id = ?"} {
			var n int
			if err := s.db.QueryRowContext(ctx, s.q(`SELECT COUNT(*) FROM `+table), a.ID).Scan(&n); err != nil || n != 0 {
				t.Errorf("%s: %d left (%v)", table, n, err)
			}
		}
	})
}
