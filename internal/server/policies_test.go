package server

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"mamori/internal/api"
	"mamori/internal/auth"
	"mamori/internal/policy"
)

// TestPolicyAPI: apply (refused with the line of the error, created,
// unchanged, a new version), read versions, assign to a cluster, the
// component's fetch and config, and delete (refused while in use).
func TestPolicyAPI(t *testing.T) {
	engines(t, func(t *testing.T, dsn string) {
		e := newEnv(t, dsn)
		decode := func(body []byte, v any) {
			t.Helper()
			if err := json.Unmarshal(body, v); err != nil {
				t.Fatalf("%v: %s", err, body)
			}
		}
		bad := "apiVersion: mamori.dev/v1\nkind: Policy\nname: prod\nadmission:\n  - name: r\n    action: block\n    cel: 'vulnerabilities.all(a, vulnerabilities.exists(b, a.id == b.id))'\n"
		code, body := e.do("POST", "/api/v1/policies", e.admin, api.PolicyApply{File: "prod.yaml", Document: bad})
		if code != http.StatusBadRequest || !strings.Contains(string(body), "prod.yaml:7:10: admission[0].cel: too expensive") {
			t.Fatalf("expensive CEL: %d %s", code, body)
		}
		doc := string(policy.DefaultPolicyYAML())
		doc = strings.Replace(doc, "name: default", "name: prod", 1)
		var applied api.PolicyApplied
		code, body = e.do("POST", "/api/v1/policies", e.admin, api.PolicyApply{File: "prod.yaml", Document: doc})
		if code != http.StatusCreated {
			t.Fatalf("apply: %d %s", code, body)
		}
		decode(body, &applied)
		if !applied.Created || !applied.Changed || applied.Policy.Version != 1 || len(applied.Policy.Rules) != 4 || applied.Policy.UnknownImages != "scan" {
			t.Fatalf("applied %+v", applied)
		}
		code, body = e.do("POST", "/api/v1/policies", e.admin, api.PolicyApply{Document: doc})
		decode(body, &applied)
		if code != http.StatusOK || applied.Changed || applied.Policy.Version != 1 {
			t.Fatalf("re-apply: %d %s", code, body)
		}
		doc2 := strings.Replace(doc, "action: log\n    podSecurity: {level: restricted}", "action: block\n    podSecurity: {level: restricted}", 1)
		code, body = e.do("POST", "/api/v1/policies", e.admin, api.PolicyApply{Document: doc2})
		decode(body, &applied)
		if code != http.StatusOK || !applied.Changed || applied.Policy.Version != 2 {
			t.Fatalf("new version: %d %s", code, body)
		}
		var p api.Policy
		code, body = e.do("GET", "/api/v1/policies/prod/versions/1", e.admin, nil)
		decode(body, &p)
		if code != 200 || p.Version != 1 || p.LatestVersion != 2 || p.Document != doc || p.Rules[1].Action != "log" {
			t.Fatalf("version 1: %d %+v", code, p)
		}
		var vl api.PolicyVersionList
		code, body = e.do("GET", "/api/v1/policies/prod/versions", e.admin, nil)
		decode(body, &vl)
		if code != 200 || len(vl.Versions) != 2 || vl.Versions[0].Version != 2 || vl.Versions[0].CreatedBy == "" {
			t.Fatalf("versions: %d %s", code, body)
		}
		for _, path := range []string{"/api/v1/policies/none", "/api/v1/policies/prod/versions/9", "/api/v1/policies/none/versions"} {
			if code, body := e.do("GET", path, e.admin, nil); code != 404 {
				t.Errorf("%s: %d %s", path, code, body)
			}
		}
		if code, _ := e.do("GET", "/api/v1/policies/prod/versions/x", e.admin, nil); code != 400 {
			t.Errorf("bad version: %d", code)
		}

		// A cluster enforces it; its component fetches it.
		c, err := e.srv.Store().CreateCluster(context.Background(), "eu-1", time.Now())
		if err != nil {
			t.Fatal(err)
		}
		ctok, _ := e.clusterToken(auth.RoleCluster, "eu-1")
		atok, _ := e.clusterToken(auth.RoleAgent, "eu-1")
		if code, body := e.do("GET", "/api/v1/clusters/policy", ctok, nil); code != 404 {
			t.Errorf("no policy yet: %d %s", code, body)
		}
		if code, body := e.do("PUT", fmt.Sprintf("/api/v1/clusters/%d/policy", c.ID), e.admin, api.ClusterPolicyRequest{Policy: "nope"}); code != 404 {
			t.Errorf("unknown policy: %d %s", code, body)
		}
		var cl api.Cluster
		code, body = e.do("PUT", fmt.Sprintf("/api/v1/clusters/%d/policy", c.ID), e.admin, api.ClusterPolicyRequest{Policy: "prod"})
		decode(body, &cl)
		if code != 200 || cl.Policy != "prod" {
			t.Fatalf("assign: %d %s", code, body)
		}
		for _, tc := range []struct{ path, tok string }{{"/api/v1/clusters/policy", ctok}, {"/api/v1/agents/policy", atok}} {
			var cp api.ComponentPolicy
			code, body := e.do("GET", tc.path, tc.tok, nil)
			decode(body, &cp)
			if code != 200 || cp.Name != "prod" || cp.Version != 2 || cp.Document != doc2 {
				t.Fatalf("%s: %d %s", tc.path, code, body)
			}
			// What the component fetched loads as it is.
			pp, err := policy.Parse(cp.Name+".yaml", []byte(cp.Document))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := policy.Compile(pp); err != nil {
				t.Fatal(err)
			}
		}
		var cfg api.ComponentConfig
		code, body = e.do("GET", "/api/v1/clusters/config", ctok, nil)
		decode(body, &cfg)
		if code != 200 || cfg.Policy != "prod" || cfg.PolicyVersion != 2 {
			t.Fatalf("config: %d %s", code, body)
		}
		var list api.PolicyList
		code, body = e.do("GET", "/api/v1/policies", e.admin, nil)
		decode(body, &list)
		if code != 200 || len(list.Policies) != 1 || list.Policies[0].Clusters[0] != "eu-1" || list.Policies[0].Rules != 4 {
			t.Fatalf("list: %d %s", code, body)
		}
		// In use: not deleted.
		if code, body := e.do("DELETE", "/api/v1/policies/prod", e.admin, nil); code != http.StatusConflict || !strings.Contains(string(body), "enforced by a cluster") {
			t.Fatalf("delete in use: %d %s", code, body)
		}
		if code, body := e.do("PUT", fmt.Sprintf("/api/v1/clusters/%d/policy", c.ID), e.admin, api.ClusterPolicyRequest{Policy: ""}); code != 200 {
			t.Fatalf("unassign: %d %s", code, body)
		}
		if code, body := e.do("DELETE", "/api/v1/policies/prod", e.admin, nil); code != http.StatusNoContent {
			t.Fatalf("delete: %d %s", code, body)
		}
		if code, _ := e.do("GET", "/api/v1/policies/prod", e.admin, nil); code != 404 {
			t.Fatalf("deleted policy still there: %d", code)
		}
	})
}
