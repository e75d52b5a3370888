package hosts

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"mamori/internal/api"
	"mamori/internal/auth"
	"mamori/internal/service"
	"mamori/internal/store"
)

var now = time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)

func newService(t *testing.T) (*Service, store.Store, *bytes.Buffer) {
	t.Helper()
	st, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "mamori.db"), store.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	logs := &bytes.Buffer{}
	return New(st, slog.New(slog.NewTextHandler(logs, nil)), func() time.Time { return now }), st, logs
}

func as(role auth.Role, cluster string) context.Context {
	return auth.WithPrincipal(context.Background(), &auth.Principal{TokenID: 7, TokenName: "alice", Role: role, Cluster: cluster})
}

func sum(c byte) string { return strings.Repeat(string(c), 64) }

func TestGroupsAndPlacement(t *testing.T) {
	s, st, logs := newService(t)
	admin := as(auth.RoleAdmin, "")
	ctx := context.Background()
	if _, err := st.CreateCluster(ctx, "c1", now); err != nil {
		t.Fatal(err)
	}
	a1, _ := st.RegisterAgent(ctx, store.Agent{Cluster: "c1", Node: "n1"})
	a2, _ := st.RegisterAgent(ctx, store.Agent{Node: "bare"})

	g, err := s.CreateGroup(admin, api.HostGroupRequest{Name: "prod", Cluster: "c1",
		Settings: api.HostSettings{Antimalware: api.AntimalwareSettings{Mode: "block"}, Integrity: api.IntegritySettings{Rules: []api.IntegrityRule{}}}})
	if err != nil {
		t.Fatal(err)
	}
	if g.Settings.Antimalware.Mode != "block" || g.SettingsVersion != 1 || len(g.Members) != 1 || g.Members[0].Node != "n1" ||
		g.Members[0].Placement != store.PlacementCluster || g.UpdatedBy != "alice" {
		t.Fatalf("created: %+v", g)
	}
	if !strings.Contains(logs.String(), "host group created") || !strings.Contains(logs.String(), "by=alice") {
		t.Errorf("audit line: %s", logs)
	}
	// Bad input: every one refused as invalid with what is wrong.
	for _, req := range []api.HostGroupRequest{
		{Name: "bad name"},
		{Name: "x", Cluster: "bad cluster"},
		{Name: "x", Description: strings.Repeat("d", 2000)},
		{Name: "x", Settings: api.HostSettings{Antimalware: api.AntimalwareSettings{Mode: "kill"}}},
		{Name: "x", Settings: api.HostSettings{Firewall: api.FirewallSettings{Ruleset: api.FirewallRuleset{Rules: []api.FirewallRule{{Name: "a", Direction: "in", Action: "drop", Sources: []string{"300.1.1.1"}}}}}}},
	} {
		if _, err := s.CreateGroup(admin, req); !errors.Is(err, service.ErrInvalid) {
			t.Errorf("%+v: %v", req, err)
		}
	}
	_, err = s.CreateGroup(admin, api.HostGroupRequest{Name: "x", Settings: api.HostSettings{Antimalware: api.AntimalwareSettings{Mode: "kill"}, Firewall: api.FirewallSettings{Mode: "x"}}})
	if err == nil || !strings.Contains(err.Error(), "antimalware.mode") || !strings.Contains(err.Error(), "firewall.mode") {
		t.Errorf("every problem: %v", err)
	}
	if _, err := s.CreateGroup(admin, api.HostGroupRequest{Name: "prod"}); !errors.Is(err, store.ErrConflict) {
		t.Errorf("duplicate: %v", err)
	}
	// Update: a settings change is a new version; renaming is refused.
	upd, err := s.UpdateGroup(admin, g.ID, api.HostGroupRequest{Cluster: "c1", Settings: api.HostSettings{Antimalware: api.AntimalwareSettings{Mode: "log"}}})
	if err != nil || upd.SettingsVersion != 2 || upd.Settings.Antimalware.Mode != "log" {
		t.Fatalf("update: %+v %v", upd, err)
	}
	if _, err := s.UpdateGroup(admin, g.ID, api.HostGroupRequest{Name: "renamed"}); !errors.Is(err, service.ErrInvalid) {
		t.Errorf("rename: %v", err)
	}
	// Placement by name.
	other, err := s.CreateGroup(admin, api.HostGroupRequest{Name: "edge"})
	if err != nil {
		t.Fatal(err)
	}
	pg, err := s.PlaceAgent(admin, a2.ID, "edge")
	if err != nil || pg.ID != other.ID || len(pg.Members) != 1 || pg.Members[0].Placement != store.PlacementPlaced {
		t.Fatalf("place: %+v %v", pg, err)
	}
	if _, err := s.PlaceAgent(admin, a2.ID, "nope"); !errors.Is(err, service.ErrInvalid) {
		t.Errorf("unknown group: %v", err)
	}
	if back, err := s.PlaceAgent(admin, a2.ID, ""); err != nil || back.Name != store.DefaultHostGroup {
		t.Errorf("unplace: %+v %v", back, err)
	}
	gs, err := s.ListGroups(admin)
	if err != nil || len(gs) != 3 || !gs[0].Default || gs[0].Name != "default" || len(gs[0].Members) != 1 {
		t.Fatalf("list: %+v %v", gs, err)
	}
	if err := s.DeleteGroup(admin, gs[0].ID); !errors.Is(err, store.ErrConflict) {
		t.Errorf("delete default: %v", err)
	}
	if err := s.DeleteGroup(admin, other.ID); err != nil {
		t.Fatal(err)
	}
	_ = a1
}

func TestAgentSide(t *testing.T) {
	s, st, _ := newService(t)
	admin := as(auth.RoleAdmin, "")
	ctx := context.Background()
	a, _ := st.RegisterAgent(ctx, store.Agent{Cluster: "c1", Node: "n1"})
	agent := as(auth.RoleAgent, "c1")

	// Only agents, only registered ones, with a node.
	if _, err := s.AgentHost(admin, "n1"); !errors.Is(err, auth.ErrForbidden) {
		t.Errorf("admin as agent: %v", err)
	}
	if _, err := s.AgentHost(agent, ""); !errors.Is(err, service.ErrInvalid) {
		t.Errorf("no node: %v", err)
	}
	if _, err := s.AgentHost(agent, "n9"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("unregistered: %v", err)
	}
	if _, err := s.AgentHost(as(auth.RoleAgent, "c2"), "n1"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("another cluster's token: %v", err)
	}
	hc, err := s.AgentHost(agent, "n1")
	if err != nil || hc.Group != "default" || hc.Placement != "default" || hc.PollInterval != "15s" || len(hc.Requests) != 0 {
		t.Fatalf("host config: %+v %v", hc, err)
	}

	// Learned entries go to the group's list; manual ones are the admin's.
	learned := []api.AllowListEntry{{SHA256: strings.ToUpper(sum('a')), Path: "/usr/bin/a", Kind: "executable", Source: "inventory"},
		{SHA256: sum('b'), Path: "/usr/lib/b.so", Kind: "library", Source: "dpkg", Package: "libb"}}
	ch, err := s.AgentLearned(agent, "n1", learned)
	if err != nil || ch.Added != 2 || ch.Revision != 1 || ch.Group != "default" {
		t.Fatalf("learned: %+v %v", ch, err)
	}
	if _, err := s.AgentLearned(agent, "n1", []api.AllowListEntry{{SHA256: sum('c'), Source: "manual"}}); !errors.Is(err, service.ErrInvalid) {
		t.Errorf("agent adding manual entries: %v", err)
	}
	for _, bad := range [][]api.AllowListEntry{{{SHA256: "abc", Source: "inventory"}}, {{SHA256: sum('c'), Source: "inventory", Kind: "virus"}}} {
		if _, err := s.AgentLearned(agent, "n1", bad); !errors.Is(err, service.ErrInvalid) {
			t.Errorf("bad entry %+v: %v", bad, err)
		}
	}
	hc, _ = s.AgentHost(agent, "n1")
	if hc.AllowListRevision != 1 {
		t.Errorf("revision in host config: %+v", hc)
	}
	al, err := s.AgentAllowList(agent, "n1")
	if err != nil || al.Revision != 1 || len(al.List.Entries) != 2 || al.List.Entries[0].SHA256 != sum('a') || al.List.Format != "mamori-appcontrol-allowlist" {
		t.Fatalf("agent allow-list: %+v %v", al, err)
	}
	ch, err = s.AddAllowEntries(admin, hc.GroupID, []api.AllowListEntry{{SHA256: sum('c'), Path: "/opt/tool"}})
	if err != nil || ch.Added != 1 || ch.Entries != 3 {
		t.Fatalf("manual add: %+v %v", ch, err)
	}
	if ch, err = s.RemoveAllowEntry(admin, hc.GroupID, sum('a')); err != nil || ch.Removed != 1 || ch.Entries != 2 {
		t.Fatalf("remove: %+v %v", ch, err)
	}
	if _, err := s.RemoveAllowEntry(admin, hc.GroupID, sum('a')); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("remove twice: %v", err)
	}
	if _, err := s.RemoveAllowEntry(admin, hc.GroupID, "../etc"); !errors.Is(err, service.ErrInvalid) {
		t.Errorf("remove bad digest: %v", err)
	}
	doc := api.AllowListDocument{Format: "mamori-appcontrol-allowlist", Version: 1, Generated: now, Entries: []api.AllowListEntry{{SHA256: sum('d'), Source: "manual", Added: now}}}
	if ch, err = s.ReplaceAllowList(admin, hc.GroupID, doc); err != nil || ch.Entries != 1 {
		t.Fatalf("replace: %+v %v", ch, err)
	}
	doc.Format = "other"
	if _, err := s.ReplaceAllowList(admin, hc.GroupID, doc); !errors.Is(err, service.ErrInvalid) {
		t.Errorf("another format: %v", err)
	}

	// Quarantine report, then a restore that allows the file.
	qid := strings.Repeat("0a", 16)
	rep := api.QuarantineReport{Entries: []api.QuarantineEntry{{ID: qid, Time: now, Path: "/tmp/eicar", Size: 68, SHA256: sum('e'),
		Hits: []api.QuarantineHit{{Engine: "sha256", Signature: "EICAR-Test-File"}}, Removed: true}}}
	if err := s.AgentQuarantine(agent, "n1", rep); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []api.QuarantineEntry{{ID: "../x", Path: "/x"}, {ID: qid, Path: "x"}, {ID: qid, Path: "/x", SHA256: "zz"}, {ID: qid, Path: "/x", Size: -1}} {
		if err := s.AgentQuarantine(agent, "n1", api.QuarantineReport{Entries: []api.QuarantineEntry{bad}}); !errors.Is(err, service.ErrInvalid) {
			t.Errorf("bad quarantine entry %+v: %v", bad, err)
		}
	}
	q, err := s.Quarantine(admin, 0)
	if err != nil || len(q) != 1 || q[0].Entry.Hits[0].Signature != "EICAR-Test-File" || q[0].Node != "n1" || q[0].Cluster != "c1" {
		t.Fatalf("quarantine view: %+v %v", q, err)
	}
	if _, err := s.CreateRequest(admin, a.ID, api.HostRequestCreate{Kind: api.RequestQuarantineRestore, Entry: strings.Repeat("1", 32)}); !errors.Is(err, service.ErrInvalid) {
		t.Errorf("restore of an unreported entry: %v", err)
	}
	r, err := s.CreateRequest(admin, a.ID, api.HostRequestCreate{Kind: api.RequestQuarantineRestore, Entry: qid, Allow: true})
	if err != nil || r.State != "pending" || r.Entry != qid {
		t.Fatalf("restore request: %+v %v", r, err)
	}
	g, _ := s.GetGroup(admin, hc.GroupID)
	if got := g.Settings.Antimalware.Exclusions.AllowSHA256; len(got) != 1 || got[0] != sum('e') || g.SettingsVersion != 2 {
		t.Errorf("allow on restore: %+v (version %d)", got, g.SettingsVersion)
	}
	for _, bad := range []api.HostRequestCreate{
		{Kind: "reboot"},
		{Kind: api.RequestQuarantineDelete, Entry: qid, Allow: true},
		{Kind: api.RequestScan},
		{Kind: api.RequestScan, Paths: []string{"relative"}},
		{Kind: api.RequestBaselineRebuild, Entry: qid},
		{Kind: api.RequestBaselineRebuild, Paths: []string{"/x"}},
		{Kind: api.RequestScan, Container: "abc"},
		{Kind: api.RequestScan, Container: "../../../../etc/passwd"},
		{Kind: api.RequestIntegrityCompare, Container: strings.Repeat("a", 64)},
	} {
		if _, err := s.CreateRequest(admin, a.ID, bad); !errors.Is(err, service.ErrInvalid) {
			t.Errorf("bad request %+v: %v", bad, err)
		}
	}
	if _, err := s.CreateRequest(admin, 999999, api.HostRequestCreate{Kind: api.RequestBaselineRebuild}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("request to unknown agent: %v", err)
	}
	scan, err := s.CreateRequest(admin, a.ID, api.HostRequestCreate{Kind: api.RequestScan, Paths: []string{"/srv"}, Containers: true})
	if err != nil || !scan.Containers || scan.Paths[0] != "/srv" {
		t.Fatalf("scan request: %+v %v", scan, err)
	}
	hc, _ = s.AgentHost(agent, "n1")
	if len(hc.Requests) != 2 || hc.Requests[0].ID != r.ID || hc.SettingsVersion != 2 {
		t.Fatalf("pending requests: %+v", hc)
	}
	done, err := s.AgentRequestResult(agent, "n1", r.ID, api.HostRequestResult{OK: true, Message: "restored /tmp/eicar\x00"})
	if err != nil || done.State != "done" || done.Result != "restored /tmp/eicar" {
		t.Fatalf("result: %+v %v", done, err)
	}
	if _, err := s.AgentRequestResult(agent, "n1", r.ID, api.HostRequestResult{}); !errors.Is(err, store.ErrConflict) {
		t.Errorf("result twice: %v", err)
	}
	rs, err := s.Requests(admin, a.ID)
	if err != nil || len(rs) != 2 || rs[0].ID != scan.ID {
		t.Errorf("requests: %+v %v", rs, err)
	}

	// Baseline report.
	br := api.BaselineReport{Created: now, Root: "/", Files: 10, Objects: 3, Rules: []api.BaselineRule{{Name: "etc", Severity: "medium", Files: 10}},
		ObjectKinds: map[string]int{"user": 3}}
	if err := s.AgentBaseline(agent, "n1", br); err != nil {
		t.Fatal(err)
	}
	if err := s.AgentBaseline(agent, "n1", api.BaselineReport{Root: "relative"}); !errors.Is(err, service.ErrInvalid) {
		t.Errorf("bad baseline: %v", err)
	}
	bs, err := s.Baselines(admin)
	if err != nil || len(bs) != 1 || bs[0].Baseline.Files != 10 || bs[0].Baseline.ObjectKinds["user"] != 3 {
		t.Fatalf("baselines: %+v %v", bs, err)
	}
}
