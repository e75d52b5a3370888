package server

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"mamori/internal/api"
	"mamori/internal/api/client"
	"mamori/internal/auth"
	"mamori/internal/demo"
	"mamori/internal/model"
	"mamori/internal/service/events"
	"mamori/internal/store"
)

func event(id string, at time.Time, mut ...func(*model.Event)) model.Event {
	e := model.Event{ID: id, Time: at, Source: model.SourceRuntime, Module: "sensor", Node: "node-1", Namespace: "shop",
		Pod: "web-1", Container: &model.ContainerRef{ID: "c1", Name: "nginx", Image: "nginx:1.25"},
		Rule: model.RuleRef{ID: "shell-in-container", Title: "Shell in a container"}, Tactic: "TA0002", Technique: "T1059.004",
		Severity: model.SeverityHigh, Action: model.ActionLog, Message: "bash started by nginx"}
	for _, m := range mut {
		m(&e)
	}
	return e
}

func newClient(t *testing.T, e *testEnv, token string) *client.Client {
	t.Helper()
	c, err := client.New(e.ts.URL, token, client.WithRetries(2, time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestMachineIdentities walks the life of a cluster's components through
// the typed client: an admin creates the cluster (its token shown once),
// the cluster component and a node agent register, send heartbeats, fetch
// their configuration and deliver events scoped to their cluster; deleting
// the cluster locks both out.
func TestMachineIdentities(t *testing.T) {
	engines(t, func(t *testing.T, dsn string) {
		e := newEnv(t, dsn)
		ctx := context.Background()
		code, body := e.do("POST", "/api/v1/clusters", e.admin, api.ClusterRequest{Name: "prod"})
		var created api.ClusterCreated
		if code != 201 || json.Unmarshal(body, &created) != nil || !strings.HasPrefix(created.Token, auth.TokenPrefix) || created.Cluster.Name != "prod" {
			t.Fatalf("create cluster: %d %s", code, body)
		}
		if code, body := e.do("POST", "/api/v1/clusters", e.admin, api.ClusterRequest{Name: "prod"}); code != 409 {
			t.Errorf("duplicate cluster: %d %s", code, body)
		}
		if code, body := e.do("POST", "/api/v1/clusters", e.admin, api.ClusterRequest{Name: "bad name/../"}); code != 400 || !strings.Contains(string(body), "cluster name") {
			t.Errorf("bad cluster name: %d %s", code, body)
		}
		cc := newClient(t, e, created.Token)
		who, err := cc.Whoami(ctx)
		if err == nil {
			t.Errorf("a cluster token may read whoami: %+v", who)
		}
		cl, err := cc.RegisterCluster(ctx, api.ClusterReport{Version: "0.9", KubernetesVersion: "v1.31.2", Nodes: 3})
		if err != nil || cl.Name != "prod" || cl.RegisteredAt.IsZero() || cl.Nodes != 3 {
			t.Fatalf("register cluster: %+v %v", cl, err)
		}
		hb, err := cc.ClusterHeartbeat(ctx, api.ClusterReport{})
		if err != nil || !hb.LastContact.After(cl.CreatedAt) || hb.KubernetesVersion != "v1.31.2" {
			t.Fatalf("cluster heartbeat: %+v %v", hb, err)
		}
		cfg, err := cc.ClusterConfig(ctx)
		if err != nil || cfg.MaxEventBatch != api.MaxEventBatch || cfg.HeartbeatInterval == "" {
			t.Fatalf("cluster config: %+v %v", cfg, err)
		}

		// An agent token of the cluster.
		code, body = e.do("POST", "/api/v1/tokens", e.admin, api.TokenRequest{Name: "prod agents", Role: "agent", Cluster: "prod"})
		var at api.TokenCreated
		if code != 201 || json.Unmarshal(body, &at) != nil || at.Cluster != "prod" {
			t.Fatalf("agent token: %d %s", code, body)
		}
		for _, bad := range []api.TokenRequest{
			{Name: "x", Role: "agent", Cluster: "nope"},
			{Name: "x", Role: "cluster"},
			{Name: "x", Role: "viewer", Cluster: "prod"},
			{Name: "x", Role: "root"},
		} {
			if code, body := e.do("POST", "/api/v1/tokens", e.admin, bad); code != 400 {
				t.Errorf("token %+v: %d %s", bad, code, body)
			}
		}
		ac := newClient(t, e, at.Token)
		if _, err := ac.AgentHeartbeat(ctx, api.AgentReport{Node: "node-1"}); !errors.Is(err, client.ErrNotFound) {
			t.Errorf("heartbeat before registering: %v, want ErrNotFound", err)
		}
		ag, err := ac.RegisterAgent(ctx, api.AgentReport{Node: "node-1", Version: "0.9", Kernel: "6.18.0", Arch: "amd64"})
		if err != nil || ag.Cluster != "prod" || ag.Node != "node-1" || ag.FirstSeen.IsZero() {
			t.Fatalf("register agent: %+v %v", ag, err)
		}
		if _, err := ac.AgentHeartbeat(ctx, api.AgentReport{Node: "node-1"}); err != nil {
			t.Errorf("heartbeat: %v", err)
		}
		// The sensor's mode in the heartbeat, kept by the next one that
		// says none, listed with the agent; a bad one refused.
		sensor := &api.AgentSensor{Mode: "fallback", Hooks: "cn_proc+fanotify", Missing: []string{"connect", "bpf"}}
		if hb, err := ac.AgentHeartbeat(ctx, api.AgentReport{Node: "node-1", Sensor: sensor}); err != nil || hb.Sensor == nil || hb.Sensor.Mode != "fallback" {
			t.Errorf("heartbeat with the sensor: %+v %v", hb, err)
		}
		if hb, err := ac.AgentHeartbeat(ctx, api.AgentReport{Node: "node-1"}); err != nil || hb.Sensor == nil || len(hb.Sensor.Missing) != 2 {
			t.Errorf("heartbeat without the sensor: %+v %v", hb, err)
		}
		for _, bad := range []api.AgentSensor{{Mode: "kprobe"}, {Hooks: "tp_btf"}, {Mode: "ebpf", Missing: []string{"a\nb"}},
			{Mode: "ebpf", Hooks: "tp\x1b[31m"}} {
			if _, err := ac.AgentHeartbeat(ctx, api.AgentReport{Node: "node-1", Sensor: &bad}); !errors.Is(err, client.ErrRejected) {
				t.Errorf("heartbeat with sensor %+v: %v, want refused", bad, err)
			}
		}
		if code, body := e.do("GET", "/api/v1/agents", e.admin, nil); code != 200 ||
			!strings.Contains(string(body), `"sensor":{"mode":"fallback","hooks":"cn_proc+fanotify","missing":["connect","bpf"]}`) {
			t.Errorf("agent list: %d %s", code, body)
		}
		// The node's running containers: stored, replaced by the next
		// report; bad ones refused whole; only agent tokens.
		dg := "sha256:" + strings.Repeat("d", 64)
		nres, err := ac.ReportContainers(ctx, api.NodeContainersReport{Node: "node-1", Containers: []api.NodeContainer{
			{ID: "c1", Name: "web", Image: "web:1", ImageDigest: dg, Runtime: "containerd"}, {ID: "c2", Runtime: "docker"}}})
		if err != nil || nres.Running != 2 || nres.Ended != 0 {
			t.Errorf("node containers: %+v %v", nres, err)
		}
		if nres, err = ac.ReportContainers(ctx, api.NodeContainersReport{Node: "node-1", Containers: []api.NodeContainer{
			{ID: "c1", ImageDigest: dg, Runtime: "containerd"}}}); err != nil || nres.Running != 1 || nres.Ended != 1 {
			t.Errorf("node containers, second report: %+v %v", nres, err)
		}
		for _, bad := range []api.NodeContainer{{ID: "c1", Runtime: "lxc"}, {ID: "c1", Runtime: "docker", ImageDigest: "sha256:zz"},
			{ID: "../x", Runtime: "docker"}, {ID: "c1", Runtime: "docker", Name: "a\x1b[31m"}} {
			if _, err := ac.ReportContainers(ctx, api.NodeContainersReport{Node: "node-1", Containers: []api.NodeContainer{bad}}); !errors.Is(err, client.ErrRejected) {
				t.Errorf("node container %+v: %v, want refused", bad, err)
			}
		}
		if _, err := ac.ReportContainers(ctx, api.NodeContainersReport{Node: "node-1", Containers: []api.NodeContainer{{ID: "c1", Runtime: "docker"}, {ID: "c1", Runtime: "docker"}}}); !errors.Is(err, client.ErrRejected) {
			t.Errorf("a container twice: %v", err)
		}
		if _, err := cc.ReportContainers(ctx, api.NodeContainersReport{Node: "node-1"}); !errors.Is(err, client.ErrUnauthorized) {
			t.Errorf("cluster token reporting node containers: %v", err)
		}
		if _, err := ac.RegisterAgent(ctx, api.AgentReport{Node: "../etc"}); !errors.Is(err, client.ErrRejected) {
			t.Errorf("bad node name: %v", err)
		}
		if _, err := ac.RegisterCluster(ctx, api.ClusterReport{}); !errors.Is(err, client.ErrUnauthorized) {
			t.Errorf("agent registering a cluster: %v", err)
		}
		if _, err := cc.RegisterAgent(ctx, api.AgentReport{Node: "n"}); !errors.Is(err, client.ErrUnauthorized) {
			t.Errorf("cluster registering an agent: %v", err)
		}

		// Events: stamped with the token's cluster; another cluster's refused.
		now := time.Now().UTC().Truncate(time.Second)
		res, err := ac.IngestEvents(ctx, []model.Event{
			event("ev-1", now),
			event("ev-2", now, func(ev *model.Event) { ev.Cluster = "prod" }),
			event("ev-3", now, func(ev *model.Event) { ev.Cluster = "staging" }),
			event("ev-4", now, func(ev *model.Event) { ev.Source = "" }),
			event("ev-5", now.Add(48*time.Hour)),
		})
		if err != nil || res.Accepted != 2 || res.Duplicates != 0 || len(res.Rejected) != 3 {
			t.Fatalf("ingest: %+v %v", res, err)
		}
		for i, want := range map[int]string{0: "belongs to cluster \"prod\"", 1: "source", 2: "future"} {
			if r := res.Rejected[i]; !strings.Contains(r.Error, want) || r.Index != i+2 {
				t.Errorf("rejection %d: %+v, want %q at index %d", i, r, want, i+2)
			}
		}
		res, err = cc.IngestEvents(ctx, []model.Event{event("ev-1", now), event("ev-6", now, func(ev *model.Event) { ev.Source = model.SourceAdmission })})
		if err != nil || res.Accepted != 1 || res.Duplicates != 1 {
			t.Fatalf("re-send: %+v %v", res, err)
		}
		viewer, _ := e.token(auth.RoleViewer)
		vc := newClient(t, e, viewer)
		page, err := vc.ListEvents(ctx, url.Values{"cluster": {"prod"}})
		if err != nil || len(page.Events) != 3 || page.Events[0].ReportedBy == "" {
			t.Fatalf("list: %+v %v", page, err)
		}
		for _, ev := range page.Events {
			if ev.Cluster != "prod" {
				t.Errorf("event %s of cluster %q, want prod (stamped)", ev.ID, ev.Cluster)
			}
		}
		if _, err := vc.IngestEvents(ctx, []model.Event{event("ev-9", now)}); !errors.Is(err, client.ErrUnauthorized) {
			t.Errorf("a viewer delivering events: %v", err)
		}
		if _, err := ac.ListEvents(ctx, nil); !errors.Is(err, client.ErrUnauthorized) {
			t.Errorf("an agent reading events: %v", err)
		}

		// An agent of a bare host may not claim a cluster.
		code, body = e.do("POST", "/api/v1/tokens", e.admin, api.TokenRequest{Name: "bastion", Role: "agent"})
		var bt api.TokenCreated
		if code != 201 || json.Unmarshal(body, &bt) != nil {
			t.Fatalf("bare agent token: %d %s", code, body)
		}
		bc := newClient(t, e, bt.Token)
		res, err = bc.IngestEvents(ctx, []model.Event{event("h-1", now, func(ev *model.Event) { ev.Source, ev.Host = model.SourceHost, "bastion" }),
			event("h-2", now, func(ev *model.Event) { ev.Cluster = "prod" })})
		if err != nil || res.Accepted != 1 || len(res.Rejected) != 1 || !strings.Contains(res.Rejected[0].Error, "not bound to a cluster") {
			t.Fatalf("bare host events: %+v %v", res, err)
		}

		// Lists for people.
		var cls api.ClusterList
		_, body = e.do("GET", "/api/v1/clusters", viewer, nil)
		if json.Unmarshal(body, &cls) != nil || len(cls.Clusters) != 1 || cls.Clusters[0].Version != "0.9" {
			t.Errorf("clusters: %s", body)
		}
		var ags api.AgentList
		_, body = e.do("GET", "/api/v1/agents", viewer, nil)
		if json.Unmarshal(body, &ags) != nil || len(ags.Agents) != 1 || ags.Agents[0].Kernel != "6.18.0" {
			t.Errorf("agents: %s", body)
		}
		if !strings.Contains(e.logs.String(), "cluster created") || !strings.Contains(e.logs.String(), "agent registered") {
			t.Error("no audit lines for the cluster and the agent")
		}

		// Deleting the cluster locks its components out; its events stay.
		if code, body := e.do("DELETE", fmt.Sprintf("/api/v1/clusters/%d", created.Cluster.ID), e.admin, nil); code != 204 {
			t.Fatalf("delete cluster: %d %s", code, body)
		}
		if _, err := cc.ClusterHeartbeat(ctx, api.ClusterReport{}); !errors.Is(err, client.ErrUnauthorized) {
			t.Errorf("cluster token after delete: %v", err)
		}
		if _, err := ac.AgentHeartbeat(ctx, api.AgentReport{Node: "node-1"}); !errors.Is(err, client.ErrUnauthorized) {
			t.Errorf("agent token after delete: %v", err)
		}
		if page, err := vc.ListEvents(ctx, url.Values{"cluster": {"prod"}}); err != nil || len(page.Events) != 3 {
			t.Errorf("events after delete: %d %v", len(page.Events), err)
		}
	})
}

// TestEventsAPI: the ingest refuses bad bodies as a whole (nothing
// stored), the listing pages with its cursor and refuses bad filters.
func TestEventsAPI(t *testing.T) {
	e := newEnv(t, "")
	ctx := context.Background()
	agent, _ := e.token(auth.RoleAgent)
	now := time.Now().UTC().Truncate(time.Second)
	many := make([]model.Event, api.MaxEventBatch+1)
	for i := range many {
		many[i] = event(fmt.Sprintf("m-%d", i), now.Add(-time.Duration(i)*time.Second))
	}
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(bytes.Repeat([]byte(" "), int(api.MaxEventBytes)+1))
	zw.Close()
	for _, c := range []struct {
		name string
		body any
		hdr  http.Header
		want int
	}{
		{"garbage", []byte("{"), nil, 400},
		{"not an object", []byte("[1]"), nil, 400},
		{"too many", api.EventBatch{Events: many}, nil, 400},
		{"gzip bomb", gz.Bytes(), http.Header{"Content-Encoding": {"gzip"}}, 413},
		{"wrong type", []byte("{}"), http.Header{"Content-Type": {"text/plain"}}, 415},
	} {
		resp := e.request("POST", "/api/v1/events", agent, c.body, c.hdr)
		resp.Body.Close()
		if resp.StatusCode != c.want {
			t.Errorf("%s: %d, want %d", c.name, resp.StatusCode, c.want)
		}
	}
	if n, _ := e.srv.Store().CountEvents(ctx); n != 0 {
		t.Fatalf("%d events stored from refused bodies", n)
	}
	// The client splits what the server would refuse.
	ac := newClient(t, e, agent)
	res, err := ac.IngestEvents(ctx, many)
	if err != nil || res.Accepted != len(many) {
		t.Fatalf("client batches: %+v %v", res, err)
	}
	viewer, _ := e.token(auth.RoleViewer)
	vc := newClient(t, e, viewer)
	seen := map[string]bool{}
	cursor := ""
	for pages := 0; ; pages++ {
		q := url.Values{"limit": {"400"}, "severity": {"high"}}
		if cursor != "" {
			q.Set("cursor", cursor)
		}
		p, err := vc.ListEvents(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		for _, ev := range p.Events {
			if seen[ev.ID] {
				t.Fatalf("%s twice", ev.ID)
			}
			seen[ev.ID] = true
		}
		if p.NextCursor == "" {
			if pages != 2 {
				t.Errorf("%d pages, want 3", pages+1)
			}
			break
		}
		cursor = p.NextCursor
	}
	if len(seen) != len(many) {
		t.Errorf("%d events over the pages, want %d", len(seen), len(many))
	}
	for _, q := range []string{"severity=severe", "source=toaster", "since=yesterday", "cursor=garbage!", "action=explode", "limit=-1",
		"since=2026-01-02T00:00:00Z&until=2026-01-01T00:00:00Z", "q=" + strings.Repeat("x", 300)} {
		if code, body := e.do("GET", "/api/v1/events?"+q, viewer, nil); code != 400 || !strings.Contains(string(body), `"error"`) {
			t.Errorf("%s: %d %s", q, code, body)
		}
	}
}

// TestEventsRetention: the server's periodic prune keeps the newest
// MaxCount events and none older than MaxAge.
func TestEventsRetention(t *testing.T) {
	e := newEnv(t, "", func(c *Config) { c.EventRetention = events.Retention{MaxAge: time.Hour, MaxCount: 5} })
	ctx := context.Background()
	agent, _ := e.token(auth.RoleAgent)
	now := time.Now().UTC()
	var evs []model.Event
	for i := range 10 {
		evs = append(evs, event(fmt.Sprintf("r-%d", i), now.Add(-time.Duration(i)*time.Minute)))
	}
	evs = append(evs, event("old", now.Add(-2*time.Hour)))
	if res, err := newClient(t, e, agent).IngestEvents(ctx, evs); err != nil || res.Accepted != 11 {
		t.Fatalf("ingest: %+v %v", res, err)
	}
	e.srv.pruneEvents(ctx)
	n, err := e.srv.Store().CountEvents(ctx)
	if err != nil || n != 5 {
		t.Fatalf("%d events after the prune (%v), want 5", n, err)
	}
	p, _ := e.srv.Store().ListEvents(ctx, events.Filter{})
	if p.Events[0].Event.ID != "r-0" || p.Events[4].Event.ID != "r-4" {
		t.Errorf("kept %v", p.Events)
	}
}

// TestMatchInventory: a component sends the inventory it took and gets
// back what the server's vulnerability database finds; nothing is stored.
// Without a database the answer is 409.
func TestMatchInventory(t *testing.T) {
	ctx := context.Background()
	dbDir := t.TempDir()
	if _, err := demo.ImportDB(ctx, dbDir); err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, "", func(c *Config) { c.VulnDBDir = dbDir })
	e.srv.checkVulnDB(ctx)
	agent, _ := e.token(auth.RoleAgent)
	ac := newClient(t, e, agent)
	inv := testResult("m", digestN(9), time.Now()).Inventory
	res, err := ac.Match(ctx, &inv)
	if err != nil || res.DB == nil || res.DB.BuiltAt.IsZero() {
		t.Fatalf("match: %+v %v", res, err)
	}
	found := false
	for _, v := range res.Vulnerabilities {
		found = found || (v.ID == "GHSA-35jh-r3h4-6jhm" && v.Package.Name == "lodash")
	}
	if !found {
		t.Errorf("GHSA-35jh-r3h4-6jhm (lodash 4.17.20) not matched: %+v", res.Vulnerabilities)
	}
	for i := 1; i < len(res.Vulnerabilities); i++ {
		if res.Vulnerabilities[i].Severity > res.Vulnerabilities[i-1].Severity {
			t.Fatal("vulnerabilities not worst first")
		}
	}
	if n, _ := e.srv.Store().ListImages(ctx, store.ImageFilter{}); n.Total != 0 {
		t.Errorf("match stored %d images", n.Total)
	}
	bad := model.Inventory{Packages: []model.Package{{Name: ""}}}
	if code, body := e.do("POST", "/api/v1/match", agent, api.MatchRequest{Inventory: bad}); code != 400 || !strings.Contains(string(body), "name is empty") {
		t.Errorf("invalid inventory: %d %s", code, body)
	}
	viewer, _ := e.token(auth.RoleViewer)
	if _, err := newClient(t, e, viewer).Match(ctx, &inv); !errors.Is(err, client.ErrUnauthorized) {
		t.Errorf("a viewer matching: %v", err)
	}

	noDB := newEnv(t, "")
	agent2, _ := noDB.token(auth.RoleAgent)
	if _, err := newClient(t, noDB, agent2).Match(ctx, &inv); !errors.Is(err, client.ErrRejected) || !strings.Contains(err.Error(), "409") {
		t.Errorf("without a database: %v", err)
	}
}
