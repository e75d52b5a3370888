package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"mamori/internal/api"
	"mamori/internal/api/client"
	"mamori/internal/auth"
	"mamori/internal/model"
)

// TestHostsAPI: an admin makes a group for a cluster, its agent gets the
// group's settings through the typed client, learns allow-list entries
// (a gzip body), reports its quarantine and baseline; the admin asks for a
// restore (allowing the file), the agent sees the request and reports its
// outcome; bad settings and unknown fields are refused with what is wrong.
func TestHostsAPI(t *testing.T) {
	engines(t, func(t *testing.T, dsn string) {
		e := newEnv(t, dsn)
		ctx := context.Background()
		admin, err := client.New(e.ts.URL, e.admin, client.WithRetries(1, 0))
		if err != nil {
			t.Fatal(err)
		}
		if code, body := e.do("POST", "/api/v1/clusters", e.admin, api.ClusterRequest{Name: "prod"}); code != http.StatusCreated {
			t.Fatalf("cluster: %d %s", code, body)
		}
		agentTok, _ := e.clusterToken(auth.RoleAgent, "prod")
		agent, err := client.New(e.ts.URL, agentTok, client.WithRetries(1, 0))
		if err != nil {
			t.Fatal(err)
		}

		// Settings errors: every problem, by field; unknown fields refused.
		_, err = admin.CreateHostGroup(ctx, api.HostGroupRequest{Name: "nodes", Settings: api.HostSettings{
			Antimalware: api.AntimalwareSettings{Mode: "prevent"}, Firewall: api.FirewallSettings{ConfirmTimeout: "1ms"}}})
		if !errors.Is(err, client.ErrRejected) || !strings.Contains(err.Error(), "antimalware.mode") || !strings.Contains(err.Error(), "firewall.confirmTimeout") {
			t.Fatalf("bad settings: %v", err)
		}
		code, body := e.do("POST", "/api/v1/hostgroups", e.admin, []byte(`{"name":"nodes","settings":{"antimalware":{"mod":"block"}}}`))
		if code != http.StatusBadRequest || !strings.Contains(string(body), `unknown field \"mod\"`) {
			t.Fatalf("unknown field: %d %s", code, body)
		}

		g, err := admin.CreateHostGroup(ctx, api.HostGroupRequest{Name: "nodes", Cluster: "prod", Settings: api.HostSettings{
			PollInterval: "2s", Antimalware: api.AntimalwareSettings{Mode: "block"},
			Firewall: api.FirewallSettings{Mode: "block", Ruleset: api.FirewallRuleset{Rules: []api.FirewallRule{
				{Name: "no-telnet", Direction: "in", Action: "drop", Protocol: "tcp", DestinationPorts: []string{"23"}}}}}}})
		if err != nil {
			t.Fatal(err)
		}

		// The agent: unregistered, then registered.
		if _, err := agent.HostConfig(ctx, "node-a"); !errors.Is(err, client.ErrNotFound) {
			t.Fatalf("unregistered agent: %v", err)
		}
		if _, err := agent.RegisterAgent(ctx, api.AgentReport{Node: "node-a"}); err != nil {
			t.Fatal(err)
		}
		hc, err := agent.HostConfig(ctx, "node-a")
		if err != nil || hc.Group != "nodes" || hc.Placement != "cluster" || hc.PollInterval != "2s" || hc.Settings.Antimalware.Mode != "block" ||
			hc.Settings.Firewall.Ruleset.Rules[0].Name != "no-telnet" || hc.SettingsVersion != 1 {
			t.Fatalf("host config: %+v %v", hc, err)
		}
		if _, err := admin.HostConfig(ctx, "node-a"); !errors.Is(err, client.ErrUnauthorized) {
			t.Errorf("admin on the agent route: %v", err)
		}

		// The group's runtime rulesets reach the agent with its settings
		// (a bare host's rulesets from the server); a bad one is refused.
		if _, err := admin.UpdateHostGroup(ctx, g.ID, api.HostGroupRequest{Name: "nodes", Cluster: "prod", Settings: api.HostSettings{
			RuntimeRulesets: []api.RuntimeRulesetRef{{Ruleset: "default", Action: "quarantine"}}}}); !errors.Is(err, client.ErrRejected) ||
			!strings.Contains(err.Error(), "runtimeRulesets[0].action") {
			t.Errorf("bad runtime rulesets: %v", err)
		}
		set := hc.Settings
		set.RuntimeRulesets = []api.RuntimeRulesetRef{{Ruleset: "default", Rules: map[string]model.Action{"terminal-shell-in-container": model.ActionTerminate}}}
		if _, err := admin.UpdateHostGroup(ctx, g.ID, api.HostGroupRequest{Name: "nodes", Cluster: "prod", Settings: set}); err != nil {
			t.Fatal(err)
		}
		if hc, err = agent.HostConfig(ctx, "node-a"); err != nil || hc.SettingsVersion != 2 || len(hc.Settings.RuntimeRulesets) != 1 ||
			hc.Settings.RuntimeRulesets[0].Rules["terminal-shell-in-container"] != model.ActionTerminate {
			t.Fatalf("host config with runtime rulesets: %+v %v", hc, err)
		}
		if code, body := e.do("GET", "/api/v1/runtime/rulesets", e.admin, nil); code != 200 || !strings.Contains(string(body), `"groupRulesets":true`) {
			t.Errorf("runtime rulesets view: %d %.300s", code, body)
		}

		// Learned entries: 200 entries make a body over the gzip threshold.
		var learned []api.AllowListEntry
		for i := range 200 {
			learned = append(learned, api.AllowListEntry{SHA256: fmt.Sprintf("%064x", i+1), Path: fmt.Sprintf("/usr/bin/tool-%d", i), Kind: "executable", Source: "inventory"})
		}
		ch, err := agent.ReportLearned(ctx, "node-a", learned)
		if err != nil || ch.Added != 200 || ch.Revision != 1 || ch.Group != "nodes" {
			t.Fatalf("learned: %+v %v", ch, err)
		}
		al, err := agent.HostAllowList(ctx, "node-a")
		if err != nil || len(al.List.Entries) != 200 || al.Revision != 1 {
			t.Fatalf("allow-list: %d entries rev %d %v", len(al.List.Entries), al.Revision, err)
		}
		if ch, err = admin.AddAllowEntries(ctx, g.ID, []api.AllowListEntry{{SHA256: strings.Repeat("f", 64), Path: "/opt/new"}}); err != nil || ch.Entries != 201 || ch.Revision != 2 {
			t.Fatalf("admin add: %+v %v", ch, err)
		}

		// Quarantine and baseline reports.
		qid := strings.Repeat("ab", 16)
		err = agent.ReportQuarantine(ctx, "node-a", api.QuarantineReport{Entries: []api.QuarantineEntry{{ID: qid, Time: time.Now(), Path: "/srv/eicar.com",
			Size: 68, SHA256: "275a021bbfb6489e54d471899f7db9d1663fc695ec2fe2a2c4538aabf651fd0f", Hits: []api.QuarantineHit{{Engine: "sha256", Signature: "EICAR-Test-File"}}, Removed: true}}})
		if err != nil {
			t.Fatal(err)
		}
		if err := agent.ReportBaseline(ctx, "node-a", api.BaselineReport{Created: time.Now(), Root: "/", Files: 1234, Objects: 56,
			Rules: []api.BaselineRule{{Name: "binaries", Severity: "high", Files: 1000}}, ObjectKinds: map[string]int{"user": 20, "port": 3}}); err != nil {
			t.Fatal(err)
		}
		q, err := admin.Quarantine(ctx, 0)
		if err != nil || len(q.Entries) != 1 || q.Entries[0].Node != "node-a" || q.Entries[0].Cluster != "prod" || q.Entries[0].Entry.Hits[0].Signature != "EICAR-Test-File" {
			t.Fatalf("quarantine view: %+v %v", q, err)
		}
		bs, err := admin.Baselines(ctx)
		if err != nil || len(bs.Baselines) != 1 || bs.Baselines[0].Baseline.Files != 1234 {
			t.Fatalf("baselines: %+v %v", bs, err)
		}

		// A restore that allows the file, seen by the agent at its next poll.
		agentID := q.Entries[0].AgentID
		r, err := admin.CreateHostRequest(ctx, agentID, api.HostRequestCreate{Kind: api.RequestQuarantineRestore, Entry: qid, Allow: true})
		if err != nil || r.State != "pending" {
			t.Fatalf("restore: %+v %v", r, err)
		}
		hc, err = agent.HostConfig(ctx, "node-a")
		if err != nil || len(hc.Requests) != 1 || hc.Requests[0].Entry != qid || hc.SettingsVersion != 3 ||
			len(hc.Settings.Antimalware.Exclusions.AllowSHA256) != 1 {
			t.Fatalf("agent sees the request and the allowed hash: %+v %v", hc, err)
		}
		done, err := agent.HostRequestResult(ctx, "node-a", r.ID, api.HostRequestResult{OK: true, Message: "restored /srv/eicar.com"})
		if err != nil || done.State != "done" {
			t.Fatalf("result: %+v %v", done, err)
		}
		if _, err := agent.HostRequestResult(ctx, "node-a", r.ID, api.HostRequestResult{OK: true}); !errors.Is(err, client.ErrRejected) {
			t.Errorf("second result: %v", err)
		}
		rs, err := admin.HostRequests(ctx, agentID)
		if err != nil || len(rs.Requests) != 1 || rs.Requests[0].Result != "restored /srv/eicar.com" {
			t.Fatalf("requests: %+v %v", rs, err)
		}

		// Placement moves the agent to another group's settings.
		edge, err := admin.CreateHostGroup(ctx, api.HostGroupRequest{Name: "edge", Settings: api.HostSettings{AppControl: api.AppControlSettings{Enabled: ptr(true)}}})
		if err != nil {
			t.Fatal(err)
		}
		if pg, err := admin.PlaceAgent(ctx, agentID, "edge"); err != nil || pg.ID != edge.ID || len(pg.Members) != 1 {
			t.Fatalf("place: %+v %v", pg, err)
		}
		if hc, err = agent.HostConfig(ctx, "node-a"); err != nil || hc.Group != "edge" || hc.Placement != "placed" || hc.Settings.AppControl.Enabled == nil {
			t.Fatalf("after placement: %+v %v", hc, err)
		}
		gl, err := admin.ListHostGroups(ctx)
		if err != nil || len(gl.Groups) != 3 || gl.Groups[0].Name != "default" {
			t.Fatalf("groups: %+v %v", gl, err)
		}

		// The connectivity check the firewall's safe apply uses.
		if err := agent.CheckConnection(ctx); err != nil {
			t.Fatalf("check: %v", err)
		}
		dead, _ := client.New("http://127.0.0.1:1", agentTok)
		if err := dead.CheckConnection(ctx); err == nil {
			t.Error("a closed port is reachable")
		}
	})
}

func ptr[T any](v T) *T { return &v }
