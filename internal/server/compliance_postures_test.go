package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"mamori/internal/api"
	"mamori/internal/api/client"
	"mamori/internal/auth"
	"mamori/internal/compliance"
	"mamori/internal/compliance/posture"
	"mamori/internal/demo"
)

func goodNode(name string, inv bool) *posture.Node {
	n := &posture.Node{Node: name, Root: "/", CollectedAt: time.Now().Add(-time.Second),
		Users:     []posture.User{{Name: "root", UID: 0, Shell: "/bin/bash"}},
		Sudoers:   []posture.SudoRule{{File: "/etc/sudoers", Line: 1, Who: "root", Spec: "ALL=(ALL:ALL) ALL", Allowed: true}},
		SSHD:      []posture.Item{{ID: "sshd-permit-root-login", Title: "PermitRootLogin no", Status: posture.Pass}},
		Listening: []posture.Listener{{Proto: "tcp", Address: "0.0.0.0", Port: 22, Process: "sshd", Expected: true}}, ListeningRead: true}
	if inv {
		i := testResult("host", digestN(7), time.Now()).Inventory
		n.Inventory = &i
	}
	return n
}

func reportOf(t *testing.T, e *testEnv, token, standard string) map[string]compliance.ControlResult {
	t.Helper()
	code, body := e.do("GET", "/api/v1/compliance/report?standard="+standard, token, nil)
	if code != http.StatusOK {
		t.Fatalf("report: %d %s", code, body)
	}
	var r compliance.Report
	if err := json.Unmarshal(body, &r); err != nil {
		t.Fatal(err)
	}
	if err := r.Validate(); err != nil {
		t.Fatal(err)
	}
	out := map[string]compliance.ControlResult{}
	for _, c := range r.Controls {
		out[c.ID] = c
	}
	return out
}

// TestCompliancePostures: the agent's and the cluster component's
// postures are stored per node and cluster (the cluster is the token's),
// the node's host inventory is matched with the server's database, and
// the controls that read them are assessed from them; snapshots and
// history; the wrong roles and hostile postures are refused.
func TestCompliancePostures(t *testing.T) {
	engines(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		dbDir := t.TempDir()
		if _, err := demo.ImportDB(ctx, dbDir); err != nil {
			t.Fatal(err)
		}
		e := newEnv(t, dsn, func(c *Config) { c.VulnDBDir = dbDir })
		e.srv.checkVulnDB(ctx)
		if code, body := e.do("POST", "/api/v1/clusters", e.admin, api.ClusterRequest{Name: "prod"}); code != http.StatusCreated {
			t.Fatalf("cluster: %d %s", code, body)
		}
		agentTok, _ := e.clusterToken(auth.RoleAgent, "prod")
		clusterTok, _ := e.clusterToken(auth.RoleCluster, "prod")
		viewer, _ := e.token(auth.RoleViewer)
		op, _ := e.token(auth.RoleOperator)
		agent, cl := newClient(t, e, agentTok), newClient(t, e, clusterTok)

		before := reportOf(t, e, viewer, "")
		for _, id := range []string{"4.5.3", "4.5.4", "4.3.1"} {
			if before[id].Status != compliance.StatusNotAssessed {
				t.Fatalf("%s before any posture: %s", id, before[id].Status)
			}
		}

		n := goodNode("node-1", true)
		n.Cluster = "spoofed"
		res, err := agent.ReportNodePosture(ctx, n)
		if err != nil || !res.Matched || res.HostPackages != 2 || res.HostVulnerabilities == 0 {
			t.Fatalf("node posture: %+v %v", res, err)
		}
		nps, err := e.srv.Store().NodePostures(ctx)
		if err != nil || len(nps) != 1 || nps[0].Cluster != "prod" || nps[0].Vulns == "" || nps[0].DBBuiltAt.IsZero() {
			t.Fatalf("stored node postures: %+v %v", nps, err)
		}
		cp := &posture.Cluster{CollectedAt: time.Now().Add(-time.Second), BindingsReviewed: 3,
			Bindings: []posture.Binding{{Kind: "ClusterRoleBinding", Name: "ci-admin", Role: "ClusterRole/cluster-admin",
				Subjects: []string{"ServiceAccount:ci/deployer"}, Reason: "cluster-admin"}}}
		if err := cl.ReportClusterPosture(ctx, cp); err != nil {
			t.Fatal(err)
		}
		after := reportOf(t, e, viewer, "")
		if c := after["4.3.1"]; c.Status != compliance.StatusFail || !strings.Contains(c.Reason, "ci-admin") {
			t.Errorf("4.3.1: %s %s", c.Status, c.Reason)
		}
		if c := after["4.5.4"]; c.Status != compliance.StatusPass {
			t.Errorf("4.5.4: %s %s", c.Status, c.Reason)
		}
		// The demo DB has fixable lodash vulnerabilities: the host fails 4.5.3.
		if c := after["4.5.3"]; c.Status != compliance.StatusFail || !strings.Contains(c.Reason, "node-1") {
			t.Errorf("4.5.3: %s %s", c.Status, c.Reason)
		}
		if c := after["4.4.1"]; c.Status != compliance.StatusNotAssessed || !strings.Contains(c.Reason, "no runtime software") {
			t.Errorf("4.4.1 without runtime packages: %s %s", c.Status, c.Reason)
		}
		cis := reportOf(t, e, viewer, "cis-kubernetes")
		if c := cis["CIS-K8s-5.1.1"]; c.Status != compliance.StatusFail {
			t.Errorf("CIS 5.1.1: %s %s", c.Status, c.Reason)
		}

		// Snapshots: a re-assessment stores one per standard; the same
		// outcome again stores nothing.
		var as api.ComplianceAssessed
		code, body := e.do("POST", "/api/v1/compliance/assess", op, nil)
		if code != 200 || json.Unmarshal(body, &as) != nil || len(as.Snapshots) != 3 {
			t.Fatalf("assess: %d %s", code, body)
		}
		code, body = e.do("POST", "/api/v1/compliance/assess", op, nil)
		if json.Unmarshal(body, &as) != nil || as.Snapshots[0].Stored {
			t.Errorf("unchanged outcome stored again: %d %s", code, body)
		}
		h, err := newClient(t, e, viewer).ComplianceHistory(ctx, "", 10)
		if err != nil || h.Standard != "nist-800-190" || len(h.Snapshots) == 0 || len(h.Snapshots[0].Groups) != 5 || h.Snapshots[0].Summary.Fail == 0 {
			t.Fatalf("history: %+v %v", h, err)
		}
		pdf, err := newClient(t, e, viewer).ComplianceReport(ctx, "cis-docker", "pdf")
		if err != nil || !strings.HasPrefix(string(pdf), "%PDF-") {
			t.Errorf("cis-docker pdf: %v %q", err, pdf[:min(len(pdf), 10)])
		}
		if code, body := e.do("GET", fmt.Sprintf("/api/v1/compliance/snapshots/%d?format=html", h.Snapshots[0].ID), viewer, nil); code != 200 || !strings.Contains(string(body), "4.3.1") {
			t.Errorf("snapshot html: %d", code)
		}
		if code, _ := e.do("GET", "/api/v1/compliance/snapshots/999999", viewer, nil); code != 404 {
			t.Errorf("unknown snapshot: %d", code)
		}

		// Roles: a cluster token may not send a node posture, nor an agent
		// a cluster's; viewers neither.
		if _, err := cl.ReportNodePosture(ctx, goodNode("node-2", false)); !errors.Is(err, client.ErrUnauthorized) {
			t.Errorf("cluster token sending a node posture: %v", err)
		}
		if err := agent.ReportClusterPosture(ctx, cp); !errors.Is(err, client.ErrUnauthorized) {
			t.Errorf("agent token sending a cluster posture: %v", err)
		}
		// Hostile postures are refused with the reason.
		for name, body := range map[string]any{
			"control characters": posture.Node{Node: "n", Root: "/", CollectedAt: time.Now(), Users: []posture.User{{Name: "a\x1b[2J"}}},
			"bad node name":      posture.Node{Node: "../../etc", Root: "/", CollectedAt: time.Now()},
			"future":             posture.Node{Node: "n", Root: "/", CollectedAt: time.Now().Add(48 * time.Hour)},
			"bad status":         posture.Node{Node: "n", Root: "/", CollectedAt: time.Now(), SSHD: []posture.Item{{ID: "x", Status: "maybe"}}},
			"garbage":            []byte(`{"node": [1,2,3]`),
		} {
			if code, b := e.do("POST", "/api/v1/agents/posture", agentTok, body); code != 400 {
				t.Errorf("%s: %d %s", name, code, b)
			}
		}
		if nps, _ := e.srv.Store().NodePostures(ctx); len(nps) != 1 {
			t.Errorf("refused postures stored: %d", len(nps))
		}
	})
}
