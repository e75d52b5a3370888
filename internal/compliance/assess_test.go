package compliance

import (
	"slices"
	"strings"
	"testing"
	"time"

	"mamori/internal/compliance/posture"
	"mamori/internal/model"
)

var testNow = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)

// goodEvidence is an estate on which every control passes.
func goodEvidence() *Evidence {
	recent := testNow.Add(-time.Hour)
	img := func(ref, digest string) ImageEvidence {
		return ImageEvidence{Ref: ref, Digest: digest, Registry: RegistryOf(ref), Link: "/images/" + digest,
			BuiltAt: testNow.Add(-10 * 24 * time.Hour), ScannedAt: recent, DBBuiltAt: testNow.Add(-2 * time.Hour),
			Scanners: []string{"vuln", "secret", "malware", "misconfig"}, FromRegistryScan: true, Running: 1,
			Vulnerabilities: []VulnSummary{{ID: "CVE-1", Package: "zlib", Severity: model.SeverityLow, Fixed: "1.2"},
				{ID: "CVE-2", Package: "curl", Severity: model.SeverityCritical}},
			Findings:  []FindingBrief{{Kind: model.KindMisconfig, ID: "MSC-IMG-009", Severity: model.SeverityLow, Controls: []string{"4.1.2"}}},
			Signature: &SignatureEvidence{Verified: true, Required: true, Signer: "key:sha256:abc", VerifiedAt: recent}}
	}
	return &Evidence{
		Images:        []ImageEvidence{img("reg.example:5000/app/web:1.2", "sha256:aa"), img("reg.example:5000/app/db:3", "sha256:bb")},
		VulnDBBuiltAt: testNow.Add(-2 * time.Hour),
		Registries: []RegistryEvidence{{Name: "main", Address: "reg.example:5000", Private: true, Link: "/registries/1",
			Probe: &RegistryProbe{At: recent, TLS: true, CertValid: true, CertExpires: testNow.Add(300 * 24 * time.Hour),
				Anonymous: map[string]string{"app/web": "refused"}}}},
		Policies: []PolicyEvidence{{Cluster: "prod", Name: "prod", Version: 3, Enforced: true, VulnGate: true,
			SignatureRules: []SignatureRule{{Registries: []string{"reg.example:5000"}, Keys: []string{"k1"}, Block: true}}}},
		Clusters: []posture.Cluster{{Cluster: "prod", CollectedAt: recent, BindingsReviewed: 40,
			Anonymous:  []posture.Item{{ID: "anon-list-namespaces", Title: "anonymous may not list namespaces", Status: posture.Pass, Controls: []string{"4.3.2"}}},
			Namespaces: []posture.Namespace{{Name: "shop", DefaultDenyIngress: true, DefaultDenyEgress: true, Policies: []string{"default-deny"}, Pods: 2}},
			Nodes:      []posture.NodeWorkloads{{Node: "n1", Levels: map[string][]string{"high": {"shop/web", "shop/db"}}}},
			Pods: []posture.Pod{
				{Namespace: "shop", Name: "web", Node: "n1", Sensitivity: "high", Images: []posture.Image{{Container: "web", Image: "reg.example:5000/app/web:1.2", Digest: "sha256:aa"}}},
				{Namespace: "shop", Name: "db", Node: "n1", Sensitivity: "high", Images: []posture.Image{{Container: "db", Image: "reg.example:5000/app/db:3", Digest: "sha256:bb"}}},
			}}},
		Nodes: []posture.Node{{Node: "n1", Cluster: "prod", CollectedAt: recent, Root: "/", HasKubelet: true,
			Kubelet: []posture.Item{
				{ID: "CIS-K8s-4.2.1", Title: "anonymous-auth false", Status: posture.Pass, Controls: []string{"4.3.2"}},
				{ID: "CIS-K8s-4.2.10", Title: "rotate certificates", Status: posture.Pass, Controls: []string{"4.3.5"}}},
			Components: []posture.Component{{Name: "containerd", Version: "2.1.0"}, {Name: "runc", Version: "1.3.0"}},
			Users:      []posture.User{{Name: "root", UID: 0, Shell: "/bin/bash"}},
			Sudoers:    []posture.SudoRule{{File: "/etc/sudoers", Line: 10, Who: "root", Spec: "ALL=(ALL:ALL) ALL", Allowed: true}},
			SSHD:       []posture.Item{{ID: "sshd-permit-root-login", Title: "PermitRootLogin no", Status: posture.Pass}},
			Listening:  []posture.Listener{{Proto: "tcp", Address: "0.0.0.0", Port: 22, Process: "sshd", Expected: true}}, ListeningRead: true,
			Modules: map[string]posture.Module{
				"runtime":     {Active: true, Detail: "12 rules", LastActivity: recent},
				"integrity":   {Active: true, Detail: "baseline of 1,000 files", LastActivity: recent},
				"antimalware": {Active: true, Detail: "on access", LastActivity: recent}},
			Containers: []posture.Container{{ID: "c0ffee0123456789", Runtime: "containerd", Image: "reg.example:5000/app/web:1.2", Digest: "sha256:aa", Managed: true}},
			Inventory:  &model.Inventory{Packages: []model.Package{{Name: "runc", Version: "1.3.0"}, {Name: "openssl", Version: "3.0"}}},
		}},
		HostVulns: map[string][]model.Vulnerability{"n1": {
			{ID: "CVE-9", Package: model.PackageRef{Name: "openssl", Version: "3.0"}, Severity: model.SeverityLow, FixedVersion: "3.1"}}},
	}
}

// violations make exactly the named controls fail, one deliberate
// violation each (the unit counterpart of the cluster e2e).
var violations = []struct {
	name  string
	fails []string
	do    func(e *Evidence)
}{
	{"4.1.1", []string{"4.1.1"}, func(e *Evidence) {
		e.Images[0].Vulnerabilities = append(e.Images[0].Vulnerabilities, VulnSummary{ID: "CVE-X", Package: "openssl", Severity: model.SeverityHigh, Fixed: "3.0.1"})
	}},
	{"4.1.2", []string{"4.1.2"}, func(e *Evidence) {
		e.Images[1].Findings = append(e.Images[1].Findings, FindingBrief{Kind: model.KindMisconfig, ID: "MSC-IMG-001", Severity: model.SeverityHigh, Controls: []string{"4.1.2"}})
	}},
	{"4.1.3", []string{"4.1.3"}, func(e *Evidence) {
		e.Images[0].Findings = append(e.Images[0].Findings, FindingBrief{Kind: model.KindMalware, ID: "Eicar-Test-Signature", Severity: model.SeverityCritical, Where: "/eicar"})
	}},
	{"4.1.4", []string{"4.1.4"}, func(e *Evidence) {
		e.Images[0].Findings = append(e.Images[0].Findings, FindingBrief{Kind: model.KindSecret, ID: "aws-access-key-id", Severity: model.SeverityCritical})
	}},
	{"4.1.5", []string{"4.1.5"}, func(e *Evidence) {
		e.Images[1].Signature = &SignatureEvidence{Required: true, Reason: "no signature found"}
	}},
	{"4.2.1", []string{"4.2.1"}, func(e *Evidence) {
		e.Registries[0].Probe.CertValid, e.Registries[0].Probe.CertError = false, "x509: certificate signed by unknown authority"
	}},
	{"4.2.2", []string{"4.2.2"}, func(e *Evidence) { e.Images[1].BuiltAt = testNow.Add(-400 * 24 * time.Hour) }},
	{"4.2.3", []string{"4.2.3"}, func(e *Evidence) { e.Registries[0].Probe.Anonymous["app/db"] = "allowed" }},
	{"4.3.1", []string{"4.3.1"}, func(e *Evidence) {
		e.Clusters[0].Bindings = append(e.Clusters[0].Bindings, posture.Binding{Kind: "ClusterRoleBinding", Name: "ci", Role: "cluster-admin",
			Subjects: []string{"ServiceAccount shop/ci"}, Reason: "cluster-admin"})
	}},
	{"4.3.2", []string{"4.3.2"}, func(e *Evidence) { e.Nodes[0].Kubelet[0].Status = posture.Fail }},
	{"4.3.3", []string{"4.3.3", "4.4.2"}, func(e *Evidence) {
		e.Clusters[0].Namespaces = append(e.Clusters[0].Namespaces, posture.Namespace{Name: "open", Pods: 1})
	}},
	{"4.3.4", []string{"4.3.4"}, func(e *Evidence) { e.Clusters[0].Nodes[0].Levels["low"] = []string{"dev/tool"} }},
	{"4.3.5", []string{"4.3.5"}, func(e *Evidence) { e.Nodes[0].Kubelet[1].Status = posture.Fail }},
	{"4.4.1", []string{"4.4.1"}, func(e *Evidence) {
		e.HostVulns["n1"] = append(e.HostVulns["n1"], model.Vulnerability{ID: "CVE-RUNC", Package: model.PackageRef{Name: "runc", Version: "1.3.0"}, Severity: model.SeverityHigh, FixedVersion: "1.3.1"})
	}},
	{"4.4.2", []string{"4.4.2"}, func(e *Evidence) { e.Clusters[0].Namespaces[0].DefaultDenyEgress = false }},
	{"4.4.3", []string{"4.4.3"}, func(e *Evidence) {
		e.Clusters[0].Pods[0].Findings = append(e.Clusters[0].Pods[0].Findings, posture.Finding{ID: "MSC-K8S-001", Title: "privileged", Severity: model.SeverityCritical, Controls: []string{"4.4.3"}})
	}},
	{"4.4.4", []string{"4.4.4"}, func(e *Evidence) {
		e.Nodes[0].Modules["runtime"] = posture.Module{Active: false, Detail: "BPF load failed"}
	}},
	{"4.4.5", []string{"4.4.5"}, func(e *Evidence) {
		e.Nodes[0].Containers = append(e.Nodes[0].Containers, posture.Container{ID: "dead", Runtime: "containerd", Image: "reg.example:5000/app/web:1.2", Digest: "sha256:aa"})
	}},
	{"4.5.1", []string{"4.5.1"}, func(e *Evidence) {
		e.Nodes[0].Listening = append(e.Nodes[0].Listening, posture.Listener{Proto: "tcp", Address: "0.0.0.0", Port: 6379, Process: "redis-server"})
	}},
	{"4.5.2", []string{"4.5.2"}, func(e *Evidence) {
		e.Clusters[0].Pods[1].Findings = []posture.Finding{{ID: "MSC-K8S-003", Title: "hostPID", Severity: model.SeverityHigh, Controls: []string{"4.5.2"}}}
	}},
	{"4.5.3", []string{"4.5.3"}, func(e *Evidence) {
		e.HostVulns["n1"] = append(e.HostVulns["n1"], model.Vulnerability{ID: "CVE-SSL", Package: model.PackageRef{Name: "openssl", Version: "3.0"}, Severity: model.SeverityCritical, FixedVersion: "3.0.9"})
	}},
	{"4.5.4", []string{"4.5.4"}, func(e *Evidence) {
		e.Nodes[0].Sudoers = append(e.Nodes[0].Sudoers, posture.SudoRule{File: "/etc/sudoers.d/mallory", Line: 1, Who: "mallory", Spec: "ALL=(ALL) NOPASSWD: ALL", NoPasswd: true})
	}},
	{"4.5.5", []string{"4.5.5"}, func(e *Evidence) { delete(e.Nodes[0].Modules, "integrity") }},
}

func failing(r *Report) []string {
	var out []string
	for _, c := range r.Controls {
		if c.Status == StatusFail {
			out = append(out, c.ID)
		}
	}
	return out
}

func TestCatalogue(t *testing.T) {
	cs := NIST800190()
	if len(cs) != 23 {
		t.Fatalf("%d controls, want the 23 risks", len(cs))
	}
	seen := map[string]bool{}
	for i, c := range cs {
		g := slices.Index(Groups, c.Group) + 1
		if g == 0 || !strings.HasPrefix(c.Seed, string(rune('0'+g))+".") || c.ID != "4."+c.Seed {
			t.Errorf("control %d: ID %s seed %s group %s out of step", i, c.ID, c.Seed, c.Group)
		}
		if seen[c.ID] || c.Title == "" || len(c.Countermeasure) < 80 || c.Feature == "" || c.Reads == "" || len(c.Tests) == 0 {
			t.Errorf("control %s incomplete or duplicated", c.ID)
		}
		seen[c.ID] = true
		if id, ok := SeedOf(c.Seed); !ok || id != c.ID {
			t.Errorf("SeedOf(%s) = %s", c.Seed, id)
		}
	}
	if len(assessors()) != len(cs) {
		t.Errorf("%d assessors for %d controls", len(assessors()), len(cs))
	}
}

func TestGoodEstatePasses(t *testing.T) {
	r := Assess(goodEvidence(), Settings{}, testNow)
	if err := r.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, c := range r.Controls {
		if c.Status != StatusPass {
			t.Errorf("%s: %s (%s)", c.ID, c.Status, c.Reason)
		}
	}
	if r.Summary.Pass != 23 || r.Summary.Score != 100 || len(r.Groups) != 5 {
		t.Errorf("summary %+v, groups %d", r.Summary, len(r.Groups))
	}
}

// TestEachControlFails is the named test of every control: one
// deliberate violation each, flipping exactly the controls it should.
func TestEachControlFails(t *testing.T) {
	covered := map[string]bool{}
	for _, v := range violations {
		t.Run(v.name, func(t *testing.T) {
			e := goodEvidence()
			v.do(e)
			r := Assess(e, Settings{}, testNow)
			if err := r.Validate(); err != nil {
				t.Fatal(err)
			}
			if got := failing(r); !slices.Equal(got, v.fails) {
				t.Fatalf("failing controls %v, want %v", got, v.fails)
			}
			for _, c := range r.Controls {
				if c.ID == v.name && (c.Reason == "" || c.Evidence[0].Result != StatusFail) {
					t.Errorf("%s fails without a reason or with a passing first evidence: %+v", c.ID, c)
				}
			}
		})
		covered[v.name] = true
	}
	for _, c := range NIST800190() {
		if !covered[c.ID] {
			t.Errorf("control %s has no failing case", c.ID)
		}
	}
}

// TestNothingReportedIsNotAssessed: with no evidence at all, no control
// passes and each says which component is missing.
func TestNothingReportedIsNotAssessed(t *testing.T) {
	r := Assess(&Evidence{}, Settings{}, testNow)
	if err := r.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, c := range r.Controls {
		if c.Status != StatusNotAssessed || !strings.HasPrefix(c.Reason, "not assessed: ") {
			t.Errorf("%s: %s %q", c.ID, c.Status, c.Reason)
		}
	}
	byID := map[string]ControlResult{}
	for _, c := range r.Controls {
		byID[c.ID] = c
	}
	for id, want := range map[string]string{"4.3.1": "cluster component not deployed", "4.5.4": "agent not deployed",
		"4.1.5": "policy not deployed", "4.1.1": "no image scanned", "4.2.1": "no registry configured"} {
		if !strings.Contains(byID[id].Reason, want) {
			t.Errorf("%s reason %q, want %q", id, byID[id].Reason, want)
		}
	}
	if r.Summary.Score != -1 {
		t.Errorf("score %v with nothing assessed", r.Summary.Score)
	}
}

// TestPartialSources: images only — image controls are assessed, the
// others say which component is missing.
func TestPartialSources(t *testing.T) {
	e := goodEvidence()
	e.Clusters, e.Nodes, e.HostVulns, e.Policies = nil, nil, nil, nil
	r := Assess(e, Settings{}, testNow)
	for _, c := range r.Controls {
		switch c.ID {
		case "4.1.1", "4.1.2", "4.1.3", "4.1.4", "4.2.1", "4.2.2", "4.2.3":
			if c.Status != StatusPass {
				t.Errorf("%s: %s %s", c.ID, c.Status, c.Reason)
			}
		default:
			if c.Status != StatusNotAssessed {
				t.Errorf("%s: %s, want not assessed", c.ID, c.Status)
			}
		}
	}
}

func TestEvidenceCap(t *testing.T) {
	e := goodEvidence()
	for i := range 3 * MaxEvidence {
		e.Images = append(e.Images, ImageEvidence{Ref: "x/" + string(rune('a'+i%26)), Scanners: []string{"vuln"}})
	}
	r := Assess(e, Settings{}, testNow)
	c := r.Controls[0]
	if c.Status != StatusPass || len(c.Evidence) != MaxEvidence || c.Omitted != len(e.Images)-MaxEvidence {
		t.Errorf("status %s, %d evidence, %d omitted", c.Status, len(c.Evidence), c.Omitted)
	}
}

func TestRegistryOfAndLatest(t *testing.T) {
	for ref, want := range map[string]string{"nginx": "docker.io", "library/nginx:1": "docker.io", "localhost/a": "localhost",
		"127.0.0.1:5000/a/b:1": "127.0.0.1:5000", "ghcr.io/x/y@sha256:00": "ghcr.io"} {
		if got := RegistryOf(ref); got != want {
			t.Errorf("RegistryOf(%q) = %q, want %q", ref, got, want)
		}
	}
	for ref, want := range map[string]bool{"nginx": true, "nginx:latest": true, "127.0.0.1:5000/a": true, "127.0.0.1:5000/a:1": false,
		"a@sha256:00": false} {
		if isLatest(ref) != want {
			t.Errorf("isLatest(%q) != %v", ref, want)
		}
	}
}

func statusOf(r *Report, id string) ControlResult {
	for _, c := range r.Controls {
		if c.ID == id {
			return c
		}
	}
	return ControlResult{}
}

// TestEdgeRules: what is not judged, and the DB currency rule.
func TestEdgeRules(t *testing.T) {
	// An empty namespace without policies is not judged; no labelled
	// workload makes 4.3.4 not applicable.
	e := goodEvidence()
	e.Clusters[0].Namespaces = append(e.Clusters[0].Namespaces, posture.Namespace{Name: "empty"})
	e.Clusters[0].Nodes = nil
	r := Assess(e, Settings{}, testNow)
	if c := statusOf(r, "4.3.3"); c.Status != StatusPass {
		t.Errorf("empty namespace judged: %s %s", c.Status, c.Reason)
	}
	if c := statusOf(r, "4.3.4"); c.Status != StatusNotApplicable {
		t.Errorf("no labels: %s %s", c.Status, c.Reason)
	}
	// A medium Pod Security finding is under the threshold.
	e = goodEvidence()
	e.Clusters[0].Pods[0].Findings = []posture.Finding{{ID: "MSC-K8S-017", Severity: model.SeverityMedium, Controls: []string{"4.4.3"}}}
	if c := statusOf(Assess(e, Settings{}, testNow), "4.4.3"); c.Status != StatusPass {
		t.Errorf("medium finding failed 4.4.3: %s", c.Reason)
	}
	// Reproducible builds (epoch time) say nothing of age.
	e = goodEvidence()
	e.Images[0].BuiltAt = time.Unix(0, 0)
	if c := statusOf(Assess(e, Settings{}, testNow), "4.2.2"); c.Status != StatusPass {
		t.Errorf("epoch build time failed 4.2.2: %s", c.Reason)
	}
	// A new DB: stale until re-matched.
	e = goodEvidence()
	e.VulnDBBuiltAt = testNow.Add(-time.Minute)
	if c := statusOf(Assess(e, Settings{}, testNow), "4.2.2"); c.Status != StatusFail || !strings.Contains(c.Reason, "re-matched") {
		t.Errorf("new DB, no re-match: %s %s", c.Status, c.Reason)
	}
	e.RematchedDBBuiltAt = e.VulnDBBuiltAt
	if c := statusOf(Assess(e, Settings{}, testNow), "4.2.2"); c.Status != StatusPass {
		t.Errorf("re-matched: %s %s", c.Status, c.Reason)
	}
	// One of two clusters without a signature rule fails 4.1.5.
	e = goodEvidence()
	e.Policies = append(e.Policies, PolicyEvidence{Cluster: "dev", Name: "dev", Enforced: true})
	if c := statusOf(Assess(e, Settings{}, testNow), "4.1.5"); c.Status != StatusFail || !strings.Contains(c.Reason, "dev") {
		t.Errorf("second policy without a signature rule: %s %s", c.Status, c.Reason)
	}
}

func TestRuntimeComponent(t *testing.T) {
	for _, c := range []struct{ name, path, want string }{
		{"containerd", "var/lib/dpkg/status", "containerd"},
		{"runc", "", "runc"},
		{"github.com/docker/docker", "usr/lib/google-cloud-sdk/bin/kpt", ""},
		{"k8s.io/kubernetes", "usr/bin/kubectl", ""},
		{"k8s.io/kubernetes", "usr/local/bin/kubelet", "kubelet"},
		{"github.com/containerd/containerd/v2", "usr/bin/containerd-shim-runc-v2", "containerd"},
		{"golang.org/x/net", "usr/bin/runc", "runc"},
		{"openssl", "var/lib/dpkg/status", ""},
	} {
		if got := RuntimeComponent(c.name, c.path); got != c.want {
			t.Errorf("RuntimeComponent(%q, %q) = %q, want %q", c.name, c.path, got, c.want)
		}
	}
	e := goodEvidence()
	e.Nodes[0].ListeningRead = false
	if c := statusOf(Assess(e, Settings{}, testNow), "4.5.1"); c.Status != StatusNotAssessed || !strings.Contains(c.Reason, "listening sockets not read") {
		t.Errorf("4.5.1 without /proc: %s %s", c.Status, c.Reason)
	}
}
