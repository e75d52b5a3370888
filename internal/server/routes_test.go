package server

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	yaml "go.yaml.in/yaml/v3"

	"mamori/internal/api"
	"mamori/internal/auth"
	"mamori/internal/compliance/posture"
	"mamori/internal/demo"
	"mamori/internal/model"
	"mamori/internal/store"
)

// routeCase builds a fresh request for one route (fixtures created anew
// for each call, so destructive routes can succeed for every allowed role).
type routeCase func(t *testing.T, e *testEnv) (path string, body any)

func routeCases() map[string]routeCase {
	static := func(p string) routeCase { return func(*testing.T, *testEnv) (string, any) { return p, nil } }
	image := func(suffix string) routeCase {
		return func(t *testing.T, e *testEnv) (string, any) {
			id := ingestFixture(t, e)
			return fmt.Sprintf("/api/v1/images/%d%s", id, suffix), nil
		}
	}
	registry := func(suffix string, body func() any) routeCase {
		return func(t *testing.T, e *testEnv) (string, any) {
			id := registryFixture(t, e)
			var b any
			if body != nil {
				b = body()
			}
			return fmt.Sprintf("/api/v1/registries/%d%s", id, suffix), b
		}
	}
	regBody := func() any {
		return map[string]any{"name": fmt.Sprintf("reg-%d", time.Now().UnixNano()), "url": "https://127.0.0.1:1",
			"username": "u", "password": "p", "repositories": []string{"team/*"}, "tags": map[string]any{"latest": 2}}
	}
	return map[string]routeCase{
		"GET /healthz":                            static("/healthz"),
		"GET /api/v1/whoami":                      static("/api/v1/whoami"),
		"GET /api/v1/db":                          static("/api/v1/db"),
		"GET /api/v1/images":                      static("/api/v1/images"),
		"GET /api/v1/images/{id}":                 image(""),
		"DELETE /api/v1/images/{id}":              image(""),
		"GET /api/v1/images/{id}/vulnerabilities": image("/vulnerabilities"),
		"GET /api/v1/images/{id}/findings":        image("/findings"),
		"GET /api/v1/vulnerabilities":             static("/api/v1/vulnerabilities?severity=high&cvssMin=1"),
		"GET /api/v1/vulnerabilities/{id}": func(t *testing.T, e *testEnv) (string, any) {
			ingestFixture(t, e)
			return "/api/v1/vulnerabilities/DEBIAN-CVE-2023-5678", nil
		},
		"GET /api/v1/scans": static("/api/v1/scans"),
		"POST /api/v1/scans": func(t *testing.T, e *testEnv) (string, any) {
			return "/api/v1/scans", testResult(fmt.Sprintf("rt-%d", time.Now().UnixNano()), digestN(int(time.Now().UnixNano()%1e9)), time.Now())
		},
		"GET /api/v1/registries":            static("/api/v1/registries"),
		"POST /api/v1/registries":           func(*testing.T, *testEnv) (string, any) { return "/api/v1/registries", regBody() },
		"GET /api/v1/registries/{id}":       registry("", nil),
		"PUT /api/v1/registries/{id}":       registry("", regBody),
		"DELETE /api/v1/registries/{id}":    registry("", nil),
		"POST /api/v1/registries/{id}/sync": registry("/sync", nil),
		"POST /api/v1/rematch":              static("/api/v1/rematch"),
		"GET /api/v1/tokens":                static("/api/v1/tokens"),
		"POST /api/v1/tokens": func(*testing.T, *testEnv) (string, any) {
			return "/api/v1/tokens", map[string]any{"name": fmt.Sprintf("t-%d", time.Now().UnixNano()), "role": "viewer"}
		},
		"POST /api/v1/events": func(*testing.T, *testEnv) (string, any) {
			return "/api/v1/events", api.EventBatch{Events: []model.Event{{ID: fmt.Sprintf("rt-%d", time.Now().UnixNano()),
				Time: time.Now(), Source: model.SourceRuntime, Action: model.ActionLog, Severity: model.SeverityHigh, Message: "routes test"}}}
		},
		"GET /api/v1/events":        static("/api/v1/events?severity=high&source=runtime"),
		"GET /api/v1/events/attack": static("/api/v1/events/attack?since=2026-01-01T00:00:00Z&cluster=prod&technique=t1059.004"),
		"GET /api/v1/runtime/rules": static("/api/v1/runtime/rules"),
		"GET /api/v1/runtime/rulesets": func(t *testing.T, e *testEnv) (string, any) {
			policyFixture(t, e)
			return "/api/v1/runtime/rulesets", nil
		},
		"POST /api/v1/match": func(*testing.T, *testEnv) (string, any) {
			return "/api/v1/match", api.MatchRequest{Inventory: testResult("m", digestN(1), time.Now()).Inventory}
		},
		"GET /api/v1/clusters": static("/api/v1/clusters"),
		"POST /api/v1/clusters": func(*testing.T, *testEnv) (string, any) {
			return "/api/v1/clusters", map[string]any{"name": fmt.Sprintf("c-%d", time.Now().UnixNano())}
		},
		"DELETE /api/v1/clusters/{id}": func(t *testing.T, e *testEnv) (string, any) {
			c, err := e.srv.Store().CreateCluster(context.Background(), fmt.Sprintf("victim-%d", time.Now().UnixNano()), time.Now())
			if err != nil {
				t.Fatal(err)
			}
			return fmt.Sprintf("/api/v1/clusters/%d", c.ID), nil
		},
		"POST /api/v1/clusters/register": func(*testing.T, *testEnv) (string, any) {
			return "/api/v1/clusters/register", api.ClusterReport{Version: "t"}
		},
		"POST /api/v1/clusters/heartbeat": func(*testing.T, *testEnv) (string, any) { return "/api/v1/clusters/heartbeat", api.ClusterReport{} },
		"GET /api/v1/clusters/config":     static("/api/v1/clusters/config"),
		"GET /api/v1/agents":              static("/api/v1/agents"),
		"DELETE /api/v1/agents/{id}": func(t *testing.T, e *testEnv) (string, any) {
			a, err := e.srv.Store().RegisterAgent(context.Background(), store.Agent{Node: fmt.Sprintf("victim-%d", time.Now().UnixNano())})
			if err != nil {
				t.Fatal(err)
			}
			return fmt.Sprintf("/api/v1/agents/%d", a.ID), nil
		},
		"POST /api/v1/agents/register": func(*testing.T, *testEnv) (string, any) {
			return "/api/v1/agents/register", api.AgentReport{Node: "node-1", Version: "t"}
		},
		"POST /api/v1/agents/heartbeat": func(t *testing.T, e *testEnv) (string, any) {
			// The agent of the routes test's cluster is registered (the heartbeat of an unknown one is a 404).
			if _, err := e.srv.Store().RegisterAgent(context.Background(), store.Agent{Cluster: routesCluster, Node: "node-1"}); err != nil {
				t.Fatal(err)
			}
			return "/api/v1/agents/heartbeat", api.AgentReport{Node: "node-1"}
		},
		"GET /api/v1/agents/config": static("/api/v1/agents/config"),
		"POST /api/v1/clusters/images/lookup": func(*testing.T, *testEnv) (string, any) {
			return "/api/v1/clusters/images/lookup", api.ImageLookup{Images: []string{"registry.example.com/shop/app:1.0", "nginx"}}
		},
		"POST /api/v1/clusters/scans": func(*testing.T, *testEnv) (string, any) {
			res := testResult(fmt.Sprintf("cs-%d", time.Now().UnixNano()), digestN(int(time.Now().UnixNano()%1e9)), time.Now())
			res.Vulnerabilities = nil
			return "/api/v1/clusters/scans", res
		},
		"POST /api/v1/clusters/inventory": func(*testing.T, *testEnv) (string, any) {
			return "/api/v1/clusters/inventory", api.InventoryBatch{Generation: 1, Objects: []api.InventoryObject{routesPod()}}
		},
		"GET /api/v1/clusters/{id}/inventory": func(t *testing.T, e *testEnv) (string, any) {
			c, err := e.srv.Store().GetClusterByName(context.Background(), routesCluster)
			if err != nil {
				t.Fatal(err)
			}
			return fmt.Sprintf("/api/v1/clusters/%d/inventory?kind=Pod", c.ID), nil
		},
		"GET /api/v1/clusters/mitigations": static("/api/v1/clusters/mitigations"),
		"POST /api/v1/clusters/mitigations/{id}": func(t *testing.T, e *testEnv) (string, any) {
			m, _, err := e.srv.Store().CreateMitigation(context.Background(), store.Mitigation{Cluster: routesCluster, Action: "isolate",
				Namespace: "shop", Pod: "web-1", Source: "compliance", RequestedBy: "server"})
			if err != nil {
				t.Fatal(err)
			}
			return fmt.Sprintf("/api/v1/clusters/mitigations/%d", m.ID), api.MitigationOutcome{Done: true, Detail: "routes test"}
		},
		"POST /api/v1/agents/mitigations": func(t *testing.T, e *testEnv) (string, any) {
			pod := routesPod()
			if _, err := e.srv.Store().ApplyInventory(context.Background(), routesCluster, store.InventoryBatch{Generation: 1,
				Objects: []store.ClusterObject{{ObjectRef: store.ObjectRef{Kind: pod.Kind, Namespace: pod.Namespace, Name: pod.Name, UID: pod.UID},
					Node: pod.Node, Body: pod.Object}}}, time.Now()); err != nil {
				t.Fatal(err)
			}
			return "/api/v1/agents/mitigations", api.MitigationRequest{EventID: fmt.Sprintf("ev-%d", time.Now().UnixNano()),
				Action: model.ActionTerminate, Node: "node-1", Namespace: pod.Namespace, Pod: pod.Name, Rule: "shell"}
		},
		"POST /api/v1/agents/loads": func(*testing.T, *testEnv) (string, any) {
			return "/api/v1/agents/loads", api.LoadReport{Node: "node-1", Sync: true, Running: []string{"c1"},
				Containers: []api.LoadContainer{{ID: "c1", ImageDigest: digestN(1), Loads: []api.Load{{Path: "/usr/bin/tar", Time: time.Now()}}}}}
		},
		"PUT /api/v1/agents/containers": func(*testing.T, *testEnv) (string, any) {
			return "/api/v1/agents/containers", api.NodeContainersReport{Node: "node-1", Containers: []api.NodeContainer{
				{ID: "c1", Name: "web", Image: "web:1", ImageDigest: digestN(1), Runtime: "containerd"}}}
		},
		"GET /api/v1/mitigations":        static("/api/v1/mitigations?state=pending&cluster=" + routesCluster),
		"GET /api/v1/policies":           static("/api/v1/policies"),
		"GET /api/v1/compliance/report":  static("/api/v1/compliance/report"),
		"GET /api/v1/compliance/history": static("/api/v1/compliance/history?standard=cis-docker&limit=5"),
		"GET /api/v1/compliance/snapshots/{id}": func(t *testing.T, e *testEnv) (string, any) {
			snaps, err := e.srv.assessments.Reassess(context.Background(), "test")
			if err != nil {
				t.Fatal(err)
			}
			return fmt.Sprintf("/api/v1/compliance/snapshots/%d?format=html", snaps[0].ID), nil
		},
		"POST /api/v1/compliance/assess": static("/api/v1/compliance/assess"),
		"POST /api/v1/agents/posture": func(*testing.T, *testEnv) (string, any) {
			return "/api/v1/agents/posture", posture.Node{Node: "node-1", Root: "/", CollectedAt: time.Now().Add(-time.Second)}
		},
		"POST /api/v1/clusters/posture": func(*testing.T, *testEnv) (string, any) {
			return "/api/v1/clusters/posture", posture.Cluster{CollectedAt: time.Now().Add(-time.Second)}
		},
		"POST /api/v1/policies": func(*testing.T, *testEnv) (string, any) {
			return "/api/v1/policies", api.PolicyApply{File: "p.yaml", Document: policyDoc(fmt.Sprintf("p-%d", time.Now().UnixNano()))}
		},
		"GET /api/v1/policies/{name}": func(t *testing.T, e *testEnv) (string, any) {
			return "/api/v1/policies/" + policyFixture(t, e), nil
		},
		"DELETE /api/v1/policies/{name}": func(t *testing.T, e *testEnv) (string, any) {
			return "/api/v1/policies/" + policyFixture(t, e), nil
		},
		"GET /api/v1/policies/{name}/versions": func(t *testing.T, e *testEnv) (string, any) {
			return "/api/v1/policies/" + policyFixture(t, e) + "/versions", nil
		},
		"GET /api/v1/policies/{name}/versions/{version}": func(t *testing.T, e *testEnv) (string, any) {
			return "/api/v1/policies/" + policyFixture(t, e) + "/versions/1", nil
		},
		"PUT /api/v1/clusters/{id}/policy": func(t *testing.T, e *testEnv) (string, any) {
			c, err := e.srv.Store().CreateCluster(context.Background(), fmt.Sprintf("pc-%d", time.Now().UnixNano()), time.Now())
			if err != nil {
				t.Fatal(err)
			}
			return fmt.Sprintf("/api/v1/clusters/%d/policy", c.ID), api.ClusterPolicyRequest{Policy: policyFixture(t, e)}
		},
		"GET /api/v1/clusters/policy": func(t *testing.T, e *testEnv) (string, any) {
			assignRoutesPolicy(t, e)
			return "/api/v1/clusters/policy", nil
		},
		"GET /api/v1/agents/policy": func(t *testing.T, e *testEnv) (string, any) {
			assignRoutesPolicy(t, e)
			return "/api/v1/agents/policy", nil
		},
		"GET /api/v1/hostgroups": static("/api/v1/hostgroups"),
		"POST /api/v1/hostgroups": func(*testing.T, *testEnv) (string, any) {
			return "/api/v1/hostgroups", api.HostGroupRequest{Name: fmt.Sprintf("hg-%d", time.Now().UnixNano()),
				Settings: api.HostSettings{Antimalware: api.AntimalwareSettings{Mode: "block"}}}
		},
		"GET /api/v1/hostgroups/{id}": func(t *testing.T, e *testEnv) (string, any) {
			return fmt.Sprintf("/api/v1/hostgroups/%d", hostGroupFixture(t, e)), nil
		},
		"PUT /api/v1/hostgroups/{id}": func(t *testing.T, e *testEnv) (string, any) {
			return fmt.Sprintf("/api/v1/hostgroups/%d", hostGroupFixture(t, e)), api.HostGroupRequest{Description: "d"}
		},
		"DELETE /api/v1/hostgroups/{id}": func(t *testing.T, e *testEnv) (string, any) {
			return fmt.Sprintf("/api/v1/hostgroups/%d", hostGroupFixture(t, e)), nil
		},
		"GET /api/v1/hostgroups/{id}/allowlist": func(t *testing.T, e *testEnv) (string, any) {
			return fmt.Sprintf("/api/v1/hostgroups/%d/allowlist", hostGroupFixture(t, e)), nil
		},
		"PUT /api/v1/hostgroups/{id}/allowlist": func(t *testing.T, e *testEnv) (string, any) {
			return fmt.Sprintf("/api/v1/hostgroups/%d/allowlist", hostGroupFixture(t, e)), api.AllowListDocument{Format: "mamori-appcontrol-allowlist",
				Version: 1, Generated: time.Now(), Entries: []api.AllowListEntry{{SHA256: strings.Repeat("ab", 32), Source: "manual", Added: time.Now()}}}
		},
		"POST /api/v1/hostgroups/{id}/allowlist": func(t *testing.T, e *testEnv) (string, any) {
			return fmt.Sprintf("/api/v1/hostgroups/%d/allowlist", hostGroupFixture(t, e)), api.AllowListAdd{Entries: []api.AllowListEntry{{SHA256: strings.Repeat("cd", 32)}}}
		},
		"DELETE /api/v1/hostgroups/{id}/allowlist/{sha256}": func(t *testing.T, e *testEnv) (string, any) {
			id := hostGroupFixture(t, e)
			if _, err := e.srv.Store().AddAllowEntries(context.Background(), id, []store.AllowEntry{{SHA256: strings.Repeat("ef", 32), Source: "manual"}}, time.Now(), "t"); err != nil {
				t.Fatal(err)
			}
			return fmt.Sprintf("/api/v1/hostgroups/%d/allowlist/%s", id, strings.Repeat("ef", 32)), nil
		},
		"PUT /api/v1/agents/{id}/hostgroup": func(t *testing.T, e *testEnv) (string, any) {
			return fmt.Sprintf("/api/v1/agents/%d/hostgroup", routesAgent(t, e).ID), api.HostPlacement{Group: "default"}
		},
		"GET /api/v1/agents/{id}/requests": func(t *testing.T, e *testEnv) (string, any) {
			return fmt.Sprintf("/api/v1/agents/%d/requests", routesAgent(t, e).ID), nil
		},
		"POST /api/v1/agents/{id}/requests": func(t *testing.T, e *testEnv) (string, any) {
			return fmt.Sprintf("/api/v1/agents/%d/requests", routesAgent(t, e).ID), api.HostRequestCreate{Kind: api.RequestBaselineRebuild}
		},
		"GET /api/v1/quarantine": static("/api/v1/quarantine"),
		"GET /api/v1/baselines":  static("/api/v1/baselines"),
		"GET /api/v1/agents/host": func(t *testing.T, e *testEnv) (string, any) {
			routesAgent(t, e)
			return "/api/v1/agents/host?node=node-1", nil
		},
		"GET /api/v1/agents/host/allowlist": func(t *testing.T, e *testEnv) (string, any) {
			routesAgent(t, e)
			return "/api/v1/agents/host/allowlist?node=node-1", nil
		},
		"POST /api/v1/agents/host/allowlist": func(t *testing.T, e *testEnv) (string, any) {
			routesAgent(t, e)
			return "/api/v1/agents/host/allowlist?node=node-1", api.AllowListAdd{Entries: []api.AllowListEntry{{SHA256: strings.Repeat("12", 32), Source: "inventory"}}}
		},
		"PUT /api/v1/agents/host/quarantine": func(t *testing.T, e *testEnv) (string, any) {
			routesAgent(t, e)
			return "/api/v1/agents/host/quarantine?node=node-1", api.QuarantineReport{Entries: []api.QuarantineEntry{{ID: strings.Repeat("0f", 16), Path: "/tmp/x", Time: time.Now()}}}
		},
		"PUT /api/v1/agents/host/baseline": func(t *testing.T, e *testEnv) (string, any) {
			routesAgent(t, e)
			return "/api/v1/agents/host/baseline?node=node-1", api.BaselineReport{Root: "/", Files: 1}
		},
		"POST /api/v1/agents/host/requests/{id}": func(t *testing.T, e *testEnv) (string, any) {
			a := routesAgent(t, e)
			r, err := e.srv.Store().CreateHostRequest(context.Background(), store.HostRequest{AgentID: a.ID, Kind: api.RequestBaselineRebuild, Args: "{}"})
			if err != nil {
				t.Fatal(err)
			}
			return fmt.Sprintf("/api/v1/agents/host/requests/%d?node=node-1", r.ID), api.HostRequestResult{OK: true, Message: "rebuilt"}
		},
		"DELETE /api/v1/tokens/{id}": func(t *testing.T, e *testEnv) (string, any) {
			_, rec, err := auth.NewToken(fmt.Sprintf("victim-%d", time.Now().UnixNano()), auth.RoleViewer, "", time.Time{})
			if err != nil {
				t.Fatal(err)
			}
			tok, err := e.srv.Store().CreateToken(context.Background(), rec)
			if err != nil {
				t.Fatal(err)
			}
			return fmt.Sprintf("/api/v1/tokens/%d", tok.ID), nil
		},
	}
}

var fixtureSeq int

// routesCluster is the cluster the machine tokens of the routes test are bound to.
const routesCluster = "routes"

// routesPod is a pod of routesCluster on node-1 as its component reports it.
func routesPod() api.InventoryObject {
	return api.InventoryObject{InventoryRef: api.InventoryRef{Kind: "Pod", Namespace: "shop", Name: "web-1", UID: "u-web-1"},
		Node: "node-1", Phase: "Running", Object: []byte(`{"apiVersion":"v1","kind":"Pod","metadata":{"name":"web-1","namespace":"shop"},"spec":{"containers":[{"name":"c","image":"nginx"}]}}`),
		Containers: []api.InventoryContainer{{Name: "c", Image: "nginx", ImageDigest: "sha256:" + strings.Repeat("e", 64), Running: true}}}
}

func ingestFixture(t *testing.T, e *testEnv) int64 {
	t.Helper()
	fixtureSeq++
	out, err := e.srv.Store().IngestScan(context.Background(), testResult(fmt.Sprintf("fx-%d", fixtureSeq), digestN(100000+fixtureSeq), time.Now()))
	if err != nil {
		t.Fatal(err)
	}
	return out.ImageID
}

func policyDoc(name string) string {
	return "apiVersion: mamori.dev/v1\nkind: Policy\nname: " + name + "\nadmission:\n  - {name: baseline, action: block, podSecurity: {level: baseline}}\n"
}

// policyFixture stores a new policy and returns its name.
func policyFixture(t *testing.T, e *testEnv) string {
	t.Helper()
	fixtureSeq++
	name := fmt.Sprintf("fx-%d", fixtureSeq)
	if _, _, err := e.srv.Store().PutPolicy(context.Background(), store.PolicyPut{Name: name, Document: policyDoc(name), Digest: name}); err != nil {
		t.Fatal(err)
	}
	return name
}

// assignRoutesPolicy makes the routes test's cluster enforce a policy.
func assignRoutesPolicy(t *testing.T, e *testEnv) {
	t.Helper()
	c, err := e.srv.Store().GetClusterByName(context.Background(), routesCluster)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.srv.Store().SetClusterPolicy(context.Background(), c.ID, policyFixture(t, e)); err != nil {
		t.Fatal(err)
	}
}

// hostGroupFixture stores a new host group and returns its ID.
func hostGroupFixture(t *testing.T, e *testEnv) int64 {
	t.Helper()
	fixtureSeq++
	g, err := e.srv.Store().CreateHostGroup(context.Background(), store.HostGroup{Name: fmt.Sprintf("fx-%d", fixtureSeq), Settings: "{}"})
	if err != nil {
		t.Fatal(err)
	}
	return g.ID
}

// routesAgent registers the routes test's agent (node-1 of its cluster).
func routesAgent(t *testing.T, e *testEnv) store.Agent {
	t.Helper()
	a, err := e.srv.Store().RegisterAgent(context.Background(), store.Agent{Cluster: routesCluster, Node: "node-1"})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func registryFixture(t *testing.T, e *testEnv) int64 {
	t.Helper()
	fixtureSeq++
	r, err := e.srv.Store().CreateRegistry(context.Background(), store.Registry{Name: fmt.Sprintf("fx-%d", fixtureSeq), URL: "https://127.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	return r.ID
}

// TestRoutesByRoles sends every route of the router × every kind of
// caller and checks the answer: 401 for no, garbage, malformed or revoked
// credentials, 403 for a role below the route's, 2xx otherwise. The route
// list is the router's own, so a new route without a case fails here.
func TestRoutesByRoles(t *testing.T) {
	engines(t, func(t *testing.T, dsn string) {
		dbDir := t.TempDir()
		if _, err := demo.ImportDB(context.Background(), dbDir); err != nil {
			t.Fatal(err)
		}
		// Throttling is not what this test is about (TestAuthFailureThrottling
		// is): its 3 kinds of bad credentials × every route, all from
		// 127.0.0.1, stay within a burst this large, so every answer is the
		// authorization one while the limiter still counts each failure.
		e := newEnv(t, dsn, func(c *Config) {
			c.VulnDBDir = dbDir
			c.AuthFailureLimit = auth.FailureLimit{Burst: 1000}
		})
		e.srv.checkVulnDB(context.Background())
		viewer, _ := e.token(auth.RoleViewer)
		operator, _ := e.token(auth.RoleOperator)
		if _, err := e.srv.Store().CreateCluster(context.Background(), routesCluster, time.Now()); err != nil {
			t.Fatal(err)
		}
		clusterTok, _ := e.clusterToken(auth.RoleCluster, routesCluster)
		agentTok, _ := e.clusterToken(auth.RoleAgent, routesCluster)
		revoked, revokedID := e.token(auth.RoleAdmin)
		if code, body := e.do("DELETE", fmt.Sprintf("/api/v1/tokens/%d", revokedID), e.admin, nil); code != 204 {
			t.Fatalf("revoke: %d %s", code, body)
		}
		garbage, _ := auth.GenerateToken()
		callers := []struct {
			name, token string
			role        auth.Role // "" = not authenticated
			header      string    // a raw Authorization header instead of a token
		}{
			{name: "unauthenticated"},
			{name: "garbage", token: garbage},
			{name: "malformed", header: "Basic YWRtaW46YWRtaW4="},
			{name: "revoked", token: revoked},
			{name: "viewer", token: viewer, role: auth.RoleViewer},
			{name: "operator", token: operator, role: auth.RoleOperator},
			{name: "admin", token: e.admin, role: auth.RoleAdmin},
			{name: "cluster", token: clusterTok, role: auth.RoleCluster},
			{name: "agent", token: agentTok, role: auth.RoleAgent},
		}
		cases := routeCases()
		seen := map[string]bool{}
		for _, rt := range e.srv.Routes() {
			key := rt.Method + " " + rt.Pattern
			seen[key] = true
			build, ok := cases[key]
			if !ok {
				t.Errorf("route %s has no case in routeCases: add one", key)
				continue
			}
			for _, c := range callers {
				path, body := build(t, e)
				var hdr http.Header
				if c.header != "" {
					hdr = http.Header{"Authorization": {c.header}}
				}
				resp := e.request(rt.Method, path, c.token, body, hdr)
				resp.Body.Close()
				var want string
				switch {
				case rt.Action == auth.ActionPublic:
					want = "2xx"
				case c.role == "":
					want = "401"
				case !auth.Allowed(c.role, rt.Action):
					want = "403"
				default:
					want = "2xx"
				}
				got := fmt.Sprint(resp.StatusCode)
				if resp.StatusCode >= 200 && resp.StatusCode < 300 {
					got = "2xx"
				}
				if got != want {
					t.Errorf("%s as %s: %d, want %s", key, c.name, resp.StatusCode, want)
				}
				if want == "401" && resp.Header.Get("WWW-Authenticate") == "" {
					t.Errorf("%s as %s: 401 without WWW-Authenticate", key, c.name)
				}
			}
		}
		for key := range cases {
			if !seen[key] {
				t.Errorf("routeCases has %s, which the router does not serve", key)
			}
		}
		if s := e.srv.limiter.Stats(); s.Tracked != 1 {
			t.Errorf("limiter tracks %d addresses, want 1 (127.0.0.1's failures)", s.Tracked)
		}
		// Unknown API paths are JSON 404s, whoever asks.
		if code, body := e.do("GET", "/api/v1/nothing", e.admin, nil); code != 404 || !strings.Contains(string(body), `"error"`) {
			t.Errorf("unknown route: %d %s", code, body)
		}
	})
}

// TestOpenAPIMatchesRoutes checks docs/openapi.yaml documents exactly the
// router's routes (path and method), and that it parses as OpenAPI 3.1.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("..", "..", "docs", "openapi.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		OpenAPI string                    `yaml:"openapi"`
		Paths   map[string]map[string]any `yaml:"paths"`
	}
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		t.Fatalf("openapi.yaml: %v", err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.1") {
		t.Errorf("openapi version %q, want 3.1.x", doc.OpenAPI)
	}
	documented := map[string]bool{}
	docRole := map[string]string{}
	methods := map[string]bool{"get": true, "put": true, "post": true, "delete": true, "patch": true, "head": true, "options": true}
	for p, ops := range doc.Paths {
		for m, op := range ops {
			if !methods[m] {
				continue
			}
			documented[strings.ToUpper(m)+" "+p] = true
			o, ok := op.(map[string]any)
			if !ok || o["responses"] == nil {
				t.Errorf("%s %s: no responses", m, p)
				continue
			}
			docRole[strings.ToUpper(m)+" "+p] = fmt.Sprint(o["x-mamori-role"])
		}
	}
	e := newEnv(t, "")
	served := map[string]bool{}
	for _, rt := range e.srv.Routes() {
		key := rt.Method + " " + rt.Pattern
		served[key] = true
		want := auth.Who(rt.Action)
		// The document is the independent statement of who may call what:
		// a route whose action changes without the document fails here.
		if got, ok := docRole[key]; ok && got != want {
			t.Errorf("%s: router requires %q, openapi.yaml says x-mamori-role %q", key, want, got)
		}
	}
	var missing, extra []string
	for k := range served {
		if !documented[k] {
			missing = append(missing, k)
		}
	}
	for k := range documented {
		if !served[k] {
			extra = append(extra, k)
		}
	}
	sort.Strings(missing)
	sort.Strings(extra)
	if len(missing) > 0 {
		t.Errorf("routes not in docs/openapi.yaml: %v", missing)
	}
	if len(extra) > 0 {
		t.Errorf("docs/openapi.yaml documents routes the server does not serve: %v", extra)
	}
	// Every documented non-public route names its security.
	re := regexp.MustCompile(`x-mamori-role: (\w[\w ]*)`)
	if n := len(re.FindAll(raw, -1)); n != len(served) {
		t.Errorf("x-mamori-role given %d times, want once per route (%d)", n, len(served))
	}
}

// TestSecurityHeaders checks the headers on API, error and console-less responses.
func TestSecurityHeaders(t *testing.T) {
	e := newEnv(t, "")
	for _, p := range []string{"/healthz", "/api/v1/images", "/api/v1/nothing", "/"} {
		resp := e.request("GET", p, "", nil, nil)
		resp.Body.Close()
		h := resp.Header
		if !strings.Contains(h.Get("Content-Security-Policy"), "default-src 'self'") || !strings.Contains(h.Get("Content-Security-Policy"), "frame-ancestors 'none'") {
			t.Errorf("%s: CSP %q", p, h.Get("Content-Security-Policy"))
		}
		if h.Get("X-Content-Type-Options") != "nosniff" || h.Get("Referrer-Policy") == "" {
			t.Errorf("%s: headers %v", p, h)
		}
		if h.Get("Strict-Transport-Security") != "" {
			t.Errorf("%s: HSTS over plain HTTP", p)
		}
	}
}
