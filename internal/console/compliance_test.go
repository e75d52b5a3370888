package console

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"mamori/internal/auth"
	"mamori/internal/compliance/posture"
	"mamori/internal/store"
)

// TestCompliancePage: the page shows the current assessment of each
// standard with its controls and the score per group over time (one line
// per group, from stored snapshots); a control's drill-down shows its
// countermeasure and evidence with console links; operators re-assess,
// viewers may not; hostile names are escaped; a bad standard is a 400.
func TestCompliancePage(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	viewer, op := e.login(auth.RoleViewer), e.login(auth.RoleOperator)
	code, body, _ := viewer.get("/compliance")
	if code != 200 {
		t.Fatalf("page: %d", code)
	}
	for _, want := range []string{"NIST SP 800-190", `data-control="4.1.1"`, `data-control="4.5.5"`, "not assessed: agent not deployed",
		"No snapshot yet", `href="/compliance/controls/4.1.1?standard=nist-800-190"`} {
		if !strings.Contains(body, want) {
			t.Errorf("page: missing %q", want)
		}
	}
	if strings.Contains(body, `id="reassess"`) {
		t.Error("a viewer is offered to re-assess")
	}
	if code, _, _ := viewer.postCSRF("/compliance/assess", nil); code != http.StatusForbidden && code != http.StatusSeeOther {
		t.Errorf("viewer re-assess: %d", code)
	}
	// A cluster posture with a hostile namespace name, then two
	// re-assessments with a change between: two snapshots, a chart.
	body2, _ := json.Marshal(posture.Cluster{Cluster: "prod", CollectedAt: time.Now(), BindingsReviewed: 1,
		Namespaces: []posture.Namespace{{Name: `<script>alert(1)</script>`, Pods: 1}}})
	if err := e.st.PutClusterPosture(ctx, store.ClusterPosture{Cluster: "prod", CollectedAt: time.Now(), ReceivedAt: time.Now(), Body: string(body2)}); err != nil {
		t.Fatal(err)
	}
	code, _, hdr := op.postCSRF("/compliance/assess?standard=nist-800-190", url.Values{})
	if code != http.StatusSeeOther || !strings.Contains(hdr.Get("Location"), "assessed=1") {
		t.Fatalf("re-assess: %d %q", code, hdr.Get("Location"))
	}
	body3, _ := json.Marshal(posture.Cluster{Cluster: "prod", CollectedAt: time.Now(), BindingsReviewed: 1,
		Namespaces: []posture.Namespace{{Name: "shop", Pods: 1, DefaultDenyIngress: true, DefaultDenyEgress: true, Policies: []string{"deny"}}}})
	if err := e.st.PutClusterPosture(ctx, store.ClusterPosture{Cluster: "prod", CollectedAt: time.Now(), ReceivedAt: time.Now(), Body: string(body3)}); err != nil {
		t.Fatal(err)
	}
	if code, _, _ := op.postCSRF("/compliance/assess", url.Values{}); code != http.StatusSeeOther {
		t.Fatalf("re-assess 2: %d", code)
	}
	_, body, _ = op.get("/compliance?standard=nist-800-190&assessed=1")
	for _, want := range []string{"every standard re-assessed", "2 snapshots", `<svg class="score-chart"`, "<polyline", "orchestrator", `id="reassess"`} {
		if !strings.Contains(body, want) {
			t.Errorf("after re-assessment: missing %q", want)
		}
	}
	// The drill-down of a failing control: its evidence with links.
	_, body, _ = viewer.get("/compliance/controls/4.1.1?standard=nist-800-190")
	for _, want := range []string{"Image vulnerabilities", "Countermeasure", "TestEachControlFails/4.1.1", `href="/images/`, "st-fail"} {
		if !strings.Contains(body, want) {
			t.Errorf("control page: missing %q", want)
		}
	}
	// Hostile names in stored snapshots and the history are escaped.
	hist, _ := e.st.Assessments(ctx, "nist-800-190", 10)
	if len(hist) != 2 {
		t.Fatalf("%d snapshots", len(hist))
	}
	_, body, _ = viewer.get("/compliance/controls/4.3.3?standard=nist-800-190")
	if strings.Contains(body, "<script>alert") {
		t.Error("hostile namespace name not escaped")
	}
	_, body, _ = viewer.get("/compliance?standard=cis-kubernetes")
	if !strings.Contains(body, "CIS-K8s-4.2.1") || !strings.Contains(body, `aria-current="page">CIS Kubernetes`) {
		t.Error("CIS Kubernetes tab")
	}
	if code, _, _ := viewer.get("/compliance?standard=pci"); code != http.StatusBadRequest {
		t.Errorf("unknown standard: %d", code)
	}
	if code, _, _ := viewer.get("/compliance/controls/9.9.9"); code != http.StatusNotFound {
		t.Errorf("unknown control: %d", code)
	}
}
