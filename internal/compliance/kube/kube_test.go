package kube

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"mamori/internal/compliance/posture"
)

func crb(name, role string, subjects ...rbacv1.Subject) rbacv1.ClusterRoleBinding {
	return rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: name},
		RoleRef: rbacv1.RoleRef{Kind: "ClusterRole", Name: role}, Subjects: subjects}
}

func sa(ns, name string) rbacv1.Subject {
	return rbacv1.Subject{Kind: rbacv1.ServiceAccountKind, Namespace: ns, Name: name}
}

func TestReviewBindings(t *testing.T) {
	rb := &rbacObjects{
		clusterRoles: []rbacv1.ClusterRole{
			{ObjectMeta: metav1.ObjectMeta{Name: "everything"}, Rules: []rbacv1.PolicyRule{{APIGroups: []string{"*"}, Resources: []string{"*"}, Verbs: []string{"*"}}}},
			{ObjectMeta: metav1.ObjectMeta{Name: "reader"}, Rules: []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"get", "list"}}}},
			{ObjectMeta: metav1.ObjectMeta{Name: "metrics"}, Rules: []rbacv1.PolicyRule{{NonResourceURLs: []string{"*"}, Verbs: []string{"*"}}}},
		},
		roles: []rbacv1.Role{{ObjectMeta: metav1.ObjectMeta{Namespace: "app", Name: "all-in-ns"},
			Rules: []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"*"}, Verbs: []string{"*"}}}}},
		clusterRoleBindings: []rbacv1.ClusterRoleBinding{
			crb("cluster-admin", "cluster-admin", rbacv1.Subject{Kind: rbacv1.GroupKind, Name: "system:masters"}),
			crb("ctrl", "cluster-admin", sa("kube-system", "ctrl")),
			crb("ci-admin", "cluster-admin", sa("ci", "deployer")),
			crb("wild", "everything", rbacv1.Subject{Kind: rbacv1.UserKind, Name: "alice"}),
			crb("read", "reader", rbacv1.Subject{Kind: rbacv1.UserKind, Name: "bob"}),
			crb("metrics", "metrics", rbacv1.Subject{Kind: rbacv1.UserKind, Name: "prom"}),
			crb("allowed", "cluster-admin", rbacv1.Subject{Kind: rbacv1.UserKind, Name: "breakglass"}),
		},
		roleBindings: []rbacv1.RoleBinding{
			{ObjectMeta: metav1.ObjectMeta{Namespace: "app", Name: "ns-all"}, RoleRef: rbacv1.RoleRef{Kind: "Role", Name: "all-in-ns"},
				Subjects: []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: "default"}}},
		},
	}
	got, reviewed := reviewBindings(rb, []string{"User:breakglass"})
	if reviewed != 8 {
		t.Errorf("reviewed %d bindings, want 8", reviewed)
	}
	want := map[string]string{ // name -> reason/allowed/subjects
		"allowed":  "cluster-admin true User:breakglass",
		"ci-admin": "cluster-admin false ServiceAccount:ci/deployer",
		"wild":     "wildcard false User:alice",
		"ns-all":   "wildcard false ServiceAccount:app/default",
	}
	if len(got) != len(want) {
		t.Fatalf("got %d bindings, want %d: %+v", len(got), len(want), got)
	}
	for _, b := range got {
		w, ok := want[b.Name]
		if !ok {
			t.Errorf("unexpected binding %+v", b)
			continue
		}
		g := b.Reason + " " + map[bool]string{true: "true", false: "false"}[b.Allowed] + " " + strings.Join(b.Subjects, ",")
		if g != w {
			t.Errorf("%s: %q, want %q", b.Name, g, w)
		}
	}
}

func TestAnonymousBindings(t *testing.T) {
	rb := &rbacObjects{clusterRoleBindings: []rbacv1.ClusterRoleBinding{
		crb("system:public-info-viewer", "system:public-info-viewer", rbacv1.Subject{Kind: rbacv1.GroupKind, Name: "system:unauthenticated"}),
	}}
	if it := anonymousBindings(rb)[0]; it.Status != posture.Pass {
		t.Fatalf("default binding: %+v", it)
	}
	rb.clusterRoleBindings = append(rb.clusterRoleBindings, crb("oops", "view", rbacv1.Subject{Kind: rbacv1.UserKind, Name: "system:anonymous"}))
	it := anonymousBindings(rb)[0]
	if it.Status != posture.Fail || !strings.Contains(it.Actual, "oops") {
		t.Fatalf("anonymous view binding: %+v", it)
	}
}

func TestDefaultDeny(t *testing.T) {
	for _, c := range []struct {
		name    string
		spec    networkingv1.NetworkPolicySpec
		in, out bool
	}{
		{"deny ingress (implied type)", networkingv1.NetworkPolicySpec{}, true, false},
		{"deny both", networkingv1.NetworkPolicySpec{PolicyTypes: []networkingv1.PolicyType{"Ingress", "Egress"}}, true, true},
		{"deny egress only", networkingv1.NetworkPolicySpec{PolicyTypes: []networkingv1.PolicyType{"Egress"}}, false, true},
		{"allow all ingress", networkingv1.NetworkPolicySpec{Ingress: []networkingv1.NetworkPolicyIngressRule{{}}}, false, false},
		{"selects some pods", networkingv1.NetworkPolicySpec{PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{"a": "b"}},
			PolicyTypes: []networkingv1.PolicyType{"Ingress", "Egress"}}, false, false},
		{"egress rules imply egress type", networkingv1.NetworkPolicySpec{Egress: []networkingv1.NetworkPolicyEgressRule{{}}}, true, false},
	} {
		p := &networkingv1.NetworkPolicy{Spec: c.spec}
		in, out := denies(p)
		if in != c.in || out != c.out {
			t.Errorf("%s: ingress %v egress %v, want %v %v", c.name, in, out, c.in, c.out)
		}
	}
}

func pod(ns, name, node string, labels map[string]string, spec corev1.PodSpec) corev1.Pod {
	spec.NodeName = node
	return corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: labels}, Spec: spec,
		Status: corev1.PodStatus{Phase: corev1.PodRunning}}
}

func TestSensitivityAndCoverage(t *testing.T) {
	l := func(v string) map[string]string { return map[string]string{DefaultSensitivityLabel: v} }
	pods := []corev1.Pod{
		pod("a", "p1", "n1", l("high"), corev1.PodSpec{}),
		pod("b", "p2", "n1", l("low"), corev1.PodSpec{}),
		pod("a", "p3", "n2", l("high"), corev1.PodSpec{}),
		pod("a", "p4", "n2", nil, corev1.PodSpec{}),
	}
	nw := sensitivity(pods, DefaultSensitivityLabel)
	if len(nw) != 2 || nw[0].Node != "n1" || len(nw[0].Levels) != 2 || len(nw[1].Levels) != 1 {
		t.Fatalf("sensitivity: %+v", nw)
	}
	nss := []corev1.Namespace{{ObjectMeta: metav1.ObjectMeta{Name: "a"}}, {ObjectMeta: metav1.ObjectMeta{Name: "b"}}}
	nps := map[string][]networkingv1.NetworkPolicy{"a": {{ObjectMeta: metav1.ObjectMeta{Name: "deny"},
		Spec: networkingv1.NetworkPolicySpec{PolicyTypes: []networkingv1.PolicyType{"Ingress", "Egress"}}}}}
	cov := namespaceCoverage(nss, nps, pods)
	if len(cov) != 2 || !cov[0].DefaultDenyIngress || !cov[0].DefaultDenyEgress || cov[0].Pods != 3 || cov[1].DefaultDenyIngress || cov[1].Pods != 1 {
		t.Fatalf("coverage: %+v", cov)
	}
}

func TestPodPosture(t *testing.T) {
	yes := true
	p := pod("app", "web", "n1", nil, corev1.PodSpec{HostPID: true, Containers: []corev1.Container{{Name: "c", Image: "reg.example/web:1",
		SecurityContext: &corev1.SecurityContext{Privileged: &yes}}}})
	p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "c", ImageID: "reg.example/web@sha256:" + strings.Repeat("a", 64)}}
	var warned []string
	pp := podPosture(&p, DefaultSensitivityLabel, func(f string, a ...any) { warned = append(warned, f) })
	if len(warned) > 0 {
		t.Fatalf("warnings: %v", warned)
	}
	if len(pp.Images) != 1 || pp.Images[0].Digest != "sha256:"+strings.Repeat("a", 64) {
		t.Fatalf("images: %+v", pp.Images)
	}
	ids := map[string][]string{}
	for _, f := range pp.Findings {
		ids[f.ID] = f.Controls
	}
	if c, ok := ids["MSC-K8S-001"]; !ok || !contains(c, "4.4.3") {
		t.Errorf("privileged finding missing or without 4.4.3: %v", ids)
	}
	if c, ok := ids["MSC-K8S-002"]; !ok || !contains(c, "4.5.2") {
		t.Errorf("hostPID finding missing or without 4.5.2: %v", ids)
	}
}

func contains(xs []string, s string) bool {
	for _, x := range xs {
		if x == s {
			return true
		}
	}
	return false
}

func TestImageDigest(t *testing.T) {
	d := "sha256:" + strings.Repeat("b", 64)
	for in, want := range map[string]string{
		"docker-pullable://reg/x@" + d: d,
		"reg/x@" + d:                   d,
		d:                              "",
		"":                             "",
	} {
		if got := ImageDigest(in); got != want {
			t.Errorf("ImageDigest(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestAPIServerFlags(t *testing.T) {
	f := parseFlags([]string{"kube-apiserver", "--anonymous-auth=false", "--authorization-mode", "Node,RBAC",
		"--enable-admission-plugins=NodeRestriction", "--profiling=false", "--audit-log-path=/var/log/a", "--client-ca-file=/ca",
		"--tls-cert-file=/c", "--tls-private-key-file=/k", "--etcd-certfile=/e", "--etcd-keyfile=/ek",
		"--kubelet-client-certificate=/kc", "--kubelet-client-key=/kk", "--kubelet-certificate-authority=/kca",
		"--encryption-provider-config=/enc"})
	for _, it := range APIServerFlagItems(f, "test") {
		if it.Status != posture.Pass {
			t.Errorf("hardened flags: %s %s: %s", it.ID, it.Status, it.Actual)
		}
	}
	f["authorization-mode"] = "AlwaysAllow"
	fails := map[string]bool{}
	for _, it := range APIServerFlagItems(f, "test") {
		if it.Status == posture.Fail {
			fails[it.ID] = true
		}
	}
	for _, id := range []string{"CIS-K8s-1.2.6", "CIS-K8s-1.2.7", "CIS-K8s-1.2.8"} {
		if !fails[id] {
			t.Errorf("AlwaysAllow: %s did not fail (%v)", id, fails)
		}
	}
	if len(fails) != 3 {
		t.Errorf("AlwaysAllow failed %v, want exactly 1.2.6-1.2.8", fails)
	}
}

func TestValidateRefusesHostileText(t *testing.T) {
	c := &posture.Cluster{Cluster: "c", Namespaces: []posture.Namespace{{Name: "a\x1b[31m"}}}
	if err := c.Validate(); err == nil {
		t.Fatal("control characters accepted")
	}
	c.Namespaces[0].Name = strings.Repeat("x", posture.MaxText+1)
	if err := c.Validate(); err == nil {
		t.Fatal("overlong text accepted")
	}
	c.Namespaces = make([]posture.Namespace, posture.MaxItems+1)
	if err := c.Validate(); err == nil {
		t.Fatal("too many namespaces accepted")
	}
}
