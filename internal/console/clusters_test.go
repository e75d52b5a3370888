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
	"mamori/internal/store"
)

// TestClustersAndRuntimeVulnerabilities: the Clusters page (status,
// policy, inventory, compliance, mitigations), registration with its
// token shown once, and the runtime vulnerability view (images running
// now, with the workloads on the vulnerability's page).
func TestClustersAndRuntimeVulnerabilities(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	viewer := e.login(auth.RoleViewer)
	if code, body, _ := viewer.get("/clusters"); code != 200 || !strings.Contains(body, "No clusters yet") || strings.Contains(body, "Register a cluster") {
		t.Fatalf("viewer, no clusters: %d", code)
	}
	if code, _, _ := viewer.postCSRF("/clusters", url.Values{"name": {"eu-1"}}); code != http.StatusForbidden {
		t.Fatalf("viewer creating a cluster: %d", code)
	}
	admin := e.login(auth.RoleAdmin)
	code, body, _ := admin.postCSRF("/clusters", url.Values{"name": {"eu-1"}})
	if code != http.StatusCreated || !strings.Contains(body, "Cluster “eu-1” created") || !strings.Contains(body, "cluster.token=mmr_") {
		t.Fatalf("create: %d %s", code, body)
	}
	if code, body, _ := admin.postCSRF("/clusters", url.Values{"name": {"bad name!"}}); code != http.StatusBadRequest || !strings.Contains(body, "letters, digits") {
		t.Fatalf("bad name: %d", code)
	}
	if code, _, _ := admin.postCSRF("/clusters", url.Values{"name": {"eu-1"}}); code != http.StatusConflict {
		t.Fatalf("duplicate: %d", code)
	}
	cl, err := e.st.GetClusterByName(ctx, "eu-1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.st.RecordClusterContact(ctx, "eu-1", store.ClusterContact{At: time.Now(), Register: true, Version: "1.0", KubernetesVersion: "v1.34.4", Nodes: 2}); err != nil {
		t.Fatal(err)
	}
	// The fixture image registry.local/payments/api:1.4.2 runs in a Deployment.
	digest := "sha256:1111111111111111111111111111111111111111111111111111111111111111"
	pod := store.ClusterObject{ObjectRef: store.ObjectRef{Kind: store.KindPod, Namespace: "payments", Name: "api-7d9f-x2", UID: "u1"},
		OwnerKind: "Deployment", OwnerName: "api", Node: "node-1", Phase: "Running",
		Containers: []store.RunningContainer{{Name: "api", Image: "registry.local/payments/api:1.4.2", ImageDigest: digest, Running: true}},
		Body:       []byte(`{"kind":"Pod"}`)}
	node := store.ClusterObject{ObjectRef: store.ObjectRef{Kind: store.KindNode, Name: "node-1"}}
	dep := store.ClusterObject{ObjectRef: store.ObjectRef{Kind: "Deployment", Namespace: "payments", Name: "api"}}
	if _, err := e.st.ApplyInventory(ctx, "eu-1", store.InventoryBatch{Generation: 1, Begin: true, End: true,
		Objects: []store.ClusterObject{node, dep, pod}}, time.Now()); err != nil {
		t.Fatal(err)
	}
	if _, err := e.st.RecordCompliance(ctx, store.ComplianceRun{Cluster: "eu-1", Policy: "prod", PolicyVersion: 2, Pods: 1, EvaluatedAt: time.Now()},
		[]store.ComplianceViolation{{PodUID: "u1", Rule: "critical-vulnerabilities", Namespace: "payments", Pod: "api-7d9f-x2", Action: "isolate"}}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.st.CreateMitigation(ctx, store.Mitigation{Cluster: "eu-1", Action: "isolate", Namespace: "payments", Pod: "api-7d9f-x2",
		PodUID: "u1", Source: "compliance", Rule: "critical-vulnerabilities", RequestedBy: "server", CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	_, body, _ = viewer.get("/clusters")
	for _, want := range []string{"eu-1", "reporting", "Kubernetes v1.34.4", "1 violations", ">1<", "synced"} {
		if !strings.Contains(body, want) {
			t.Errorf("clusters page: missing %q", want)
		}
	}
	id := strconv.FormatInt(cl.ID, 10)
	_, body, _ = viewer.get("/clusters/" + id)
	for _, want := range []string{"api-7d9f-x2", "Deployment/api", "registry.local/payments/api:1.4.2", "sha256:111111111111", "critical-vulnerabilities",
		"isolate", "pending", "node-1"} {
		if !strings.Contains(body, want) {
			t.Errorf("cluster page: missing %q", want)
		}
	}
	if _, body, _ := viewer.get("/clusters/" + id + "?kind=Node"); !strings.Contains(body, "node-1") || strings.Contains(body, "Deployment/api") {
		t.Error("cluster page, nodes")
	}
	if code, _, _ := viewer.get("/clusters/" + id + "?kind=Secret"); code != http.StatusNotFound {
		t.Errorf("unknown kind: %d", code)
	}
	if code, _, _ := viewer.get("/clusters/999"); code != http.StatusNotFound {
		t.Errorf("unknown cluster: %d", code)
	}
	// The runtime view: only the running image's vulnerabilities.
	_, body, _ = viewer.get("/runtime/vulnerabilities")
	if !strings.Contains(body, "Runtime vulnerabilities") || !strings.Contains(body, "DEBIAN-CVE-2023-38545") || !strings.Contains(body, `#workloads`) {
		t.Errorf("runtime view: %s", body)
	}
	if _, body, _ := viewer.get("/runtime/vulnerabilities?cluster=nowhere"); !strings.Contains(body, "No running vulnerability matches these filters") {
		t.Error("runtime view, another cluster")
	}
	if code, body, _ := viewer.get("/runtime/vulnerabilities?severity=severe"); code != http.StatusBadRequest || !strings.Contains(body, "severity") {
		t.Errorf("runtime view, bad filter: %d", code)
	}
	_, body, _ = viewer.get("/vulnerabilities/DEBIAN-CVE-2023-38545")
	for _, want := range []string{"eu-1", "payments", "Deployment", ">api<"} {
		if !strings.Contains(body, want) {
			t.Errorf("vulnerability page, workloads: missing %q", want)
		}
	}
}

// TestBareHostRuntimeVulnerabilities (issue 11 item 7): a container a
// bare host's agent reports (no cluster, no Kubernetes) puts its image's
// vulnerabilities in the runtime view, and the vulnerability's page lists
// it with its node, name, image, digest and last seen.
func TestBareHostRuntimeVulnerabilities(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	viewer := e.login(auth.RoleViewer)
	if _, body, _ := viewer.get("/runtime/vulnerabilities"); strings.Contains(body, "DEBIAN-CVE-2023-38545") {
		t.Fatal("runtime view lists a vulnerability before anything runs")
	}
	digest := "sha256:1111111111111111111111111111111111111111111111111111111111111111"
	if _, err := e.st.RegisterAgent(ctx, store.Agent{Node: "bare-<1>", LastContact: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.st.ReplaceNodeContainers(ctx, "", "bare-<1>", []store.NodeContainer{{ID: strings.Repeat("ab", 32), Name: "api-<x>",
		Image: "registry.local/payments/api:1.4.2", ImageDigest: digest, Runtime: "docker", Started: time.Now().Add(-time.Hour)}}, time.Now()); err != nil {
		t.Fatal(err)
	}
	_, body, _ := viewer.get("/runtime/vulnerabilities")
	if !strings.Contains(body, "DEBIAN-CVE-2023-38545") {
		t.Errorf("runtime view without the bare host's container's vulnerability: %s", body)
	}
	_, body, _ = viewer.get("/vulnerabilities/DEBIAN-CVE-2023-38545")
	for _, want := range []string{`id="host-containers"`, "bare-&lt;1&gt;", "bare host", "api-&lt;x&gt;", "abababababab", "registry.local/payments/api:1.4.2",
		"sha256:111111111111", "docker", "1 hour ago"} {
		if !strings.Contains(body, want) {
			t.Errorf("vulnerability page, containers on hosts: missing %q", want)
		}
	}
}
