package console

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"mamori/internal/auth"
	"mamori/internal/policy"
)

// TestPoliciesConsole: the Policies page applies through the policy service
// (the same checks and errors with lines as the API), lists rules,
// exceptions, versions and clusters, assigns a cluster, and refuses to
// delete a policy in use.
func TestPoliciesConsole(t *testing.T) {
	e := newEnv(t)
	viewer := e.login(auth.RoleViewer)
	if code, body, _ := viewer.get("/policies"); code != 200 || !strings.Contains(body, "No policies yet") || strings.Contains(body, "Apply a policy") {
		t.Fatalf("viewer, empty: %d", code)
	}
	admin := e.login(auth.RoleAdmin)
	bad := "apiVersion: mamori.dev/v1\nkind: Policy\nname: prod\nadmission:\n  - name: r\n    action: block\n    cel: 'vulnerabilities.all(a, vulnerabilities.exists(b, a.id == b.id))'\n"
	code, body, _ := admin.postCSRF("/policies", url.Values{"file": {"prod.yaml"}, "document": {bad}})
	if code != http.StatusBadRequest || !strings.Contains(body, "prod.yaml:7:10: admission[0].cel: too expensive") || !strings.Contains(body, "vulnerabilities.all(a") {
		t.Fatalf("bad policy: %d %s", code, body)
	}
	doc := strings.Replace(string(policy.DefaultPolicyYAML()), "name: default", "name: prod", 1) +
		"exceptions:\n  - {name: legacy, reason: old <app>, namespaces: [legacy], expires: '2020-01-01'}\n" +
		"runtime:\n  - {ruleset: default, rules: {crypto-miner-binary: terminate}}\n"
	code, _, hdr := admin.postCSRF("/policies", url.Values{"file": {"prod.yaml"}, "document": {strings.ReplaceAll(doc, "\n", "\r\n")}})
	if code != http.StatusSeeOther || hdr.Get("Location") != "/policies/prod?done=created" {
		t.Fatalf("apply: %d %q", code, hdr.Get("Location"))
	}
	_, body, _ = admin.get(hdr.Get("Location"))
	for _, want := range []string{"Policy created", "version 1 of 1", "pss-baseline", "podSecurity (baseline)", "critical-vulnerabilities",
		"legacy", "expired", "old &lt;app&gt;", "crypto-miner-binary: terminate", "No cluster enforces this policy", "scan (if the scan fails: allow)"} {
		if !strings.Contains(body, want) {
			t.Errorf("policy page: missing %q", want)
		}
	}
	code, _, hdr = admin.postCSRF("/policies", url.Values{"document": {strings.Replace(doc, "action: log\n    podSecurity: {level: restricted}", "action: block\n    podSecurity: {level: restricted}", 1)}})
	if code != http.StatusSeeOther || hdr.Get("Location") != "/policies/prod?done=updated" {
		t.Fatalf("update: %d %q", code, hdr.Get("Location"))
	}
	if _, body, _ := admin.get("/policies/prod?version=1"); !strings.Contains(body, "version 1 of 2") || !strings.Contains(body, "see the latest") {
		t.Error("version 1 page")
	}
	c, err := e.st.CreateCluster(context.Background(), "eu-1", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	id := strconv.FormatInt(c.ID, 10)
	if code, _, hdr := admin.postCSRF("/policies/prod/assign", url.Values{"cluster": {id}}); code != http.StatusSeeOther || !strings.Contains(hdr.Get("Location"), "done=assigned") {
		t.Fatalf("assign: %d", code)
	}
	if _, body, _ := viewer.get("/policies"); !strings.Contains(body, "eu-1") || !strings.Contains(body, "1 expired") || strings.Contains(body, "Apply a policy") {
		t.Error("list after assign")
	}
	// The viewer can read but not change.
	if code, _, _ := viewer.postCSRF("/policies/prod/delete", nil); code != http.StatusForbidden {
		t.Errorf("viewer delete: %d", code)
	}
	code, _, hdr = admin.postCSRF("/policies/prod/delete", nil)
	if code != http.StatusSeeOther || !strings.Contains(hdr.Get("Location"), "in-use") {
		t.Fatalf("delete in use: %d %q", code, hdr.Get("Location"))
	}
	if code, body, _ := admin.get(hdr.Get("Location")); !strings.Contains(body, "enforced by a cluster") {
		t.Errorf("no in-use message: %d %s", code, body)
	}
	if code, _, _ := admin.postCSRF("/policies/prod/assign", url.Values{"cluster": {id}, "remove": {"1"}}); code != http.StatusSeeOther {
		t.Fatalf("remove: %d", code)
	}
	if code, _, hdr := admin.postCSRF("/policies/prod/delete", nil); code != http.StatusSeeOther || hdr.Get("Location") != "/policies?done=policy-deleted" {
		t.Fatalf("delete: %d %q", code, hdr.Get("Location"))
	}
	if code, _, _ := admin.get("/policies/prod"); code != http.StatusNotFound {
		t.Errorf("deleted policy page: %d", code)
	}
}
