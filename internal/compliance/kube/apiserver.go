package kube

import (
	"context"
	"slices"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"mamori/internal/compliance/posture"
)

// apiServerItems reads the CIS Kubernetes §1.2 items from the flags of the
// kube-apiserver static pod (kubeadm and most distributions run it as one
// in kube-system, labelled component=kube-apiserver). A control plane that
// runs outside the cluster (a managed service, the local test cluster's
// processes) has no such pod: the items are not read, and Warnings says so.
func apiServerItems(ctx context.Context, cs kubernetes.Interface, warn func(string, ...any)) []posture.Item {
	l, err := cs.CoreV1().Pods("kube-system").List(ctx, metav1.ListOptions{LabelSelector: "component=kube-apiserver", Limit: 10})
	if err != nil {
		warn("kube-apiserver pod: %v", err)
		return nil
	}
	for i := range l.Items {
		for _, c := range l.Items[i].Spec.Containers {
			args := append(append([]string{}, c.Command...), c.Args...)
			if len(args) == 0 || !strings.Contains(strings.Join(args, " "), "kube-apiserver") {
				continue
			}
			return APIServerFlagItems(parseFlags(args), "pod kube-system/"+l.Items[i].Name)
		}
	}
	warn("no kube-apiserver pod in kube-system: the API server's flags (CIS Kubernetes 1.2) were not read")
	return nil
}

// parseFlags reads --name=value and --name value flags (the last one wins,
// as in the API server's own flag parsing).
func parseFlags(args []string) map[string]string {
	out := map[string]string{}
	for i := 0; i < len(args); i++ {
		a := args[i]
		if !strings.HasPrefix(a, "--") {
			continue
		}
		name, val, ok := strings.Cut(strings.TrimPrefix(a, "--"), "=")
		if !ok && i+1 < len(args) && !strings.HasPrefix(args[i+1], "-") {
			val = args[i+1]
			i++
		} else if !ok {
			val = "true"
		}
		out[name] = val
	}
	return out
}

// APIServerFlagItems are the CIS Kubernetes §1.2 items decided by the API
// server's flags; source says where they were read.
func APIServerFlagItems(f map[string]string, source string) []posture.Item {
	modes := strings.Split(f["authorization-mode"], ",")
	admission := strings.Split(f["enable-admission-plugins"], ",")
	item := func(id, title string, ok bool, actual string, controls ...string) posture.Item {
		st := posture.Fail
		if ok {
			st = posture.Pass
		}
		return posture.Item{ID: id, Title: title, Status: st, Actual: trim(actual), Source: source, Controls: controls}
	}
	show := func(name string) string {
		v, ok := f[name]
		if !ok {
			return "--" + name + " not set"
		}
		return "--" + name + "=" + v
	}
	return []posture.Item{
		item("CIS-K8s-1.2.1", "--anonymous-auth is false", f["anonymous-auth"] == "false", show("anonymous-auth")),
		item("CIS-K8s-1.2.2", "--token-auth-file is not set", f["token-auth-file"] == "", show("token-auth-file"), "4.3.2"),
		item("CIS-K8s-1.2.4", "--kubelet-client-certificate and --kubelet-client-key are set",
			f["kubelet-client-certificate"] != "" && f["kubelet-client-key"] != "", show("kubelet-client-certificate"), "4.3.5"),
		item("CIS-K8s-1.2.5", "--kubelet-certificate-authority is set", f["kubelet-certificate-authority"] != "",
			show("kubelet-certificate-authority"), "4.3.5"),
		item("CIS-K8s-1.2.6", "--authorization-mode does not include AlwaysAllow",
			f["authorization-mode"] != "" && !slices.Contains(modes, "AlwaysAllow"), show("authorization-mode"), "4.3.1", "4.3.2"),
		item("CIS-K8s-1.2.7", "--authorization-mode includes Node", slices.Contains(modes, "Node"), show("authorization-mode"), "4.3.5"),
		item("CIS-K8s-1.2.8", "--authorization-mode includes RBAC", slices.Contains(modes, "RBAC"), show("authorization-mode"), "4.3.1"),
		item("CIS-K8s-1.2.10", "the AlwaysAdmit admission plugin is not enabled", !slices.Contains(admission, "AlwaysAdmit"),
			show("enable-admission-plugins"), "4.4.3"),
		item("CIS-K8s-1.2.15", "the NodeRestriction admission plugin is enabled", slices.Contains(admission, "NodeRestriction"),
			show("enable-admission-plugins"), "4.3.5"),
		item("CIS-K8s-1.2.16", "--profiling is false", f["profiling"] == "false", show("profiling")),
		item("CIS-K8s-1.2.17", "--audit-log-path is set", f["audit-log-path"] != "", show("audit-log-path")),
		item("CIS-K8s-1.2.27", "--service-account-lookup is not false", f["service-account-lookup"] != "false",
			show("service-account-lookup"), "4.3.2"),
		item("CIS-K8s-1.2.29", "--etcd-certfile and --etcd-keyfile are set", f["etcd-certfile"] != "" && f["etcd-keyfile"] != "",
			show("etcd-certfile"), "4.3.5"),
		item("CIS-K8s-1.2.30", "--tls-cert-file and --tls-private-key-file are set",
			f["tls-cert-file"] != "" && f["tls-private-key-file"] != "", show("tls-cert-file"), "4.3.2"),
		item("CIS-K8s-1.2.31", "--client-ca-file is set", f["client-ca-file"] != "", show("client-ca-file"), "4.3.2"),
		item("CIS-K8s-1.2.33", "--encryption-provider-config is set (secrets encrypted at rest)",
			f["encryption-provider-config"] != "", show("encryption-provider-config"), "4.3.2"),
	}
}
