package main

import (
	"bytes"
	"context"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"mamori/internal/auth"
	"mamori/internal/policy"
	"mamori/internal/server"
)

// mamoriCLI runs the CLI in-process and returns its exit code, stdout and stderr.
func mamoriCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	root := newRootCmd()
	var out, errb bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errb)
	root.SetArgs(append([]string{"--quiet"}, args...))
	err := root.ExecuteContext(context.Background())
	code := 0
	if err != nil {
		code = 1
		if ee, ok := err.(*exitError); ok {
			code = ee.code
		} else {
			errb.WriteString(err.Error())
		}
	}
	return code, out.String(), errb.String()
}

// TestPolicyCommands: apply, get, versions, assign, delete against a real
// server (in-process, SQLite), as an operator would.
func TestPolicyCommands(t *testing.T) {
	admin, err := auth.GenerateToken()
	if err != nil {
		t.Fatal(err)
	}
	srv, err := server.New(context.Background(), server.Config{
		Listen: "127.0.0.1:0", DataDir: t.TempDir(), InsecureHTTP: true, Version: "test",
		Logger: slog.New(slog.DiscardHandler), Stderr: &bytes.Buffer{}, SchedulerTick: time.Hour,
		Getenv: func(k string) string {
			if k == server.EnvBootstrapToken {
				return admin
			}
			return ""
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv.Handler())
	defer ts.Close()
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "admin.token")
	if err := os.WriteFile(tokenFile, []byte(admin+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	conn := []string{"--server", ts.URL, "--token-file", tokenFile}
	file := filepath.Join(dir, "prod.yaml")
	doc := strings.Replace(string(policy.DefaultPolicyYAML()), "name: default", "name: prod", 1)
	if err := os.WriteFile(file, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}

	if code, out, errs := mamoriCLI(t, append([]string{"policy", "apply", "-f", file}, conn...)...); code != 0 || !strings.Contains(out, `policy "prod" created (version 1)`) {
		t.Fatalf("apply: %d %q %q", code, out, errs)
	}
	if code, out, _ := mamoriCLI(t, append([]string{"policy", "apply", "-f", file}, conn...)...); code != 0 || !strings.Contains(out, "unchanged (version 1)") {
		t.Fatalf("re-apply: %d %q", code, out)
	}
	if err := os.WriteFile(file, []byte(doc+"exceptions:\n  - {name: legacy, reason: old app, namespaces: [legacy], expires: '2020-01-01'}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, out, _ := mamoriCLI(t, append([]string{"policy", "apply", "-f", file}, conn...)...); code != 0 || !strings.Contains(out, "updated to version 2") {
		t.Fatalf("update: %d %q", code, out)
	}
	// A broken policy is refused by the server with the line.
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("apiVersion: mamori.dev/v1\nkind: Policy\nname: prod\nadmission:\n  - {name: r, action: deny, privileged: {}}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, _, errs := mamoriCLI(t, append([]string{"policy", "apply", "-f", bad}, conn...)...); code == 0 || !strings.Contains(errs, "bad.yaml:5:") {
		t.Fatalf("bad apply: %d %q", code, errs)
	}
	code, out, _ := mamoriCLI(t, append([]string{"policy", "get", "prod"}, conn...)...)
	if code != 0 || !strings.Contains(out, "Policy prod, version 2 of 2") || !strings.Contains(out, "pss-baseline") ||
		!strings.Contains(out, "2020-01-01 (expired)") || !strings.Contains(out, "Enforced by: -") {
		t.Fatalf("get: %d\n%s", code, out)
	}
	if code, out, _ := mamoriCLI(t, append([]string{"policy", "get", "prod", "--version", "1", "-o", "yaml"}, conn...)...); code != 0 || out != doc {
		t.Fatalf("get -o yaml: %d\n%s", code, out)
	}
	if code, out, _ := mamoriCLI(t, append([]string{"policy", "versions", "prod"}, conn...)...); code != 0 || strings.Count(out, "sha256:") != 2 {
		t.Fatalf("versions: %d\n%s", code, out)
	}
	if _, err := srv.Store().CreateCluster(context.Background(), "eu-1", time.Now()); err != nil {
		t.Fatal(err)
	}
	if code, _, errs := mamoriCLI(t, append([]string{"policy", "assign", "prod", "--cluster", "eu-1"}, conn...)...); code != 0 {
		t.Fatalf("assign: %d %s", code, errs)
	}
	if code, out, _ := mamoriCLI(t, append([]string{"policy", "get"}, conn...)...); code != 0 || !strings.Contains(out, "prod") || !strings.Contains(out, "eu-1") || !strings.Contains(out, "1 (1 expired)") {
		t.Fatalf("list: %d\n%s", code, out)
	}
	if code, _, errs := mamoriCLI(t, append([]string{"policy", "delete", "prod"}, conn...)...); code == 0 || !strings.Contains(errs, "enforced by a cluster") {
		t.Fatalf("delete in use: %d %s", code, errs)
	}
	if code, _, errs := mamoriCLI(t, append([]string{"policy", "assign", "--none", "--cluster", "eu-1"}, conn...)...); code != 0 {
		t.Fatalf("unassign: %d %s", code, errs)
	}
	if code, _, errs := mamoriCLI(t, append([]string{"policy", "delete", "prod"}, conn...)...); code != 0 {
		t.Fatalf("delete: %d %s", code, errs)
	}
	if code, _, _ := mamoriCLI(t, append([]string{"policy", "get", "prod"}, conn...)...); code == 0 {
		t.Fatal("deleted policy still there")
	}
	if code, _, errs := mamoriCLI(t, "policy", "get", "--server", ts.URL); code == 0 || !strings.Contains(errs, "no token") {
		t.Errorf("no token: %d %s", code, errs)
	}
}

// TestPolicyCheckAndEval: offline checking and evaluation of manifests.
func TestPolicyCheckAndEval(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	if err := os.WriteFile(good, policy.DefaultPolicyYAML(), 0o600); err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("apiVersion: mamori.dev/v1\nkind: Policy\nname: b\nadmission:\n  - name: r\n    action: block\n    cel: 'object.spec.containers.all(a, object.spec.containers.all(b, object.spec.containers.all(c, a.name != c.name)))'\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, out, _ := mamoriCLI(t, "policy", "check", good); code != 0 || !strings.Contains(out, `policy "default": 2 admission, 2 compliance rules`) {
		t.Errorf("check good: %d %s", code, out)
	}
	if code, _, errs := mamoriCLI(t, "policy", "check", good, bad); code != 1 || !strings.Contains(errs, "bad.yaml:7:10: admission[0].cel: too expensive") {
		t.Errorf("check bad: %d %s", code, errs)
	}
	manifests := filepath.Join(dir, "deploy.yaml")
	if err := os.WriteFile(manifests, []byte(`apiVersion: v1
kind: Service
metadata: {name: web}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: shop}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - {name: web, image: nginx:1.27, securityContext: {privileged: true}}
---
apiVersion: v1
kind: Pod
metadata: {name: ok, namespace: shop}
spec:
  securityContext: {runAsNonRoot: true, seccompProfile: {type: RuntimeDefault}}
  containers:
  - {name: a, image: nginx:1.27, securityContext: {allowPrivilegeEscalation: false, capabilities: {drop: [ALL]}}}
`), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, _ := mamoriCLI(t, "policy", "eval", "-f", good, manifests)
	if code != 1 || !strings.Contains(out, "deploy.yaml:5 Deployment web: BLOCK") ||
		!strings.Contains(out, `privileged at spec.template.spec.containers[0].securityContext.privileged`) ||
		!strings.Contains(out, "deploy.yaml:16 Pod ok: ALLOW") || strings.Contains(out, "Service") {
		t.Errorf("eval: %d\n%s", code, out)
	}
	if code, out, _ := mamoriCLI(t, "policy", "eval", "-f", good, "-o", "json", manifests); code != 1 || !strings.Contains(out, `"control": "privileged"`) {
		t.Errorf("eval json: %d\n%s", code, out)
	}
}
