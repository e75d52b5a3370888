// Package kube collects a cluster's compliance posture (posture.Cluster)
// for NIST SP 800-190 §4.1.5, §4.2.2, §4.3.1-§4.3.4, §4.4.2, §4.4.3,
// §4.4.5, §4.5.2 and §4.5.5 and the CIS Kubernetes Benchmark's control
// plane items, read from the Kubernetes API: cluster-admin and wildcard
// bindings to non-system subjects, what anonymous requests may do and
// whether the API is served over plain HTTP, namespaces without a
// default-deny NetworkPolicy, nodes running workloads of different
// sensitivity labels, and the running pods with their images (as written
// and as resolved) and their Pod Security findings (internal/misconfig).
//
// The cluster component calls Collect with its clientset and sends the
// result with client.ReportClusterPosture; the server assesses it. Collect
// only reads (list), never changes an object. It needs list on
// namespaces, pods, nodes, networkpolicies (networking.k8s.io), roles,
// clusterroles, rolebindings and clusterrolebindings
// (rbac.authorization.k8s.io).
package kube

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"mamori/internal/compliance/posture"
	"mamori/internal/misconfig"
)

// Defaults, each with its reason.
const (
	// DefaultSensitivityLabel is the pod label naming a workload's
	// sensitivity level (§4.3.4: one level per host).
	DefaultSensitivityLabel = "mamori.io/sensitivity"
	// DefaultProbeTimeout bounds each anonymous probe: the API server
	// answers an unauthenticated request at once or not at all.
	DefaultProbeTimeout = 10 * time.Second
	// listPage is the page size of every list: the API server's own
	// recommended chunk, a few MiB of pods.
	listPage = 500
)

// DefaultSystemNamespaces are the namespaces of the control plane: their
// NetworkPolicies and pods are the platform's, not the applications'.
var DefaultSystemNamespaces = []string{"kube-system", "kube-public", "kube-node-lease"}

// Options of a collection. Zero fields take the defaults.
type Options struct {
	// Cluster names the cluster in the posture.
	Cluster string
	// Anonymous, when set, is the API server's address and CA (the
	// component's rest.Config: its credentials are dropped) for the
	// anonymous and plain-HTTP probes; nil skips them (Warnings says so).
	Anonymous *rest.Config
	// SensitivityLabel defaults to DefaultSensitivityLabel.
	SensitivityLabel string
	// SystemNamespaces default to DefaultSystemNamespaces.
	SystemNamespaces []string
	// NamespaceSelector limits the namespaces (and their pods) looked at
	// to those matching this label selector ("" = every namespace). The
	// cluster-scoped checks (bindings, anonymous access) are unaffected.
	NamespaceSelector string
	// AllowedSubjects are subjects the baseline allows broad rights
	// ("ServiceAccount:ns/name", "User:name", "Group:name").
	AllowedSubjects []string
	// MaxPods bounds the pods collected (default posture.MaxItems).
	MaxPods int
}

// Collect reads the posture of the cluster cs talks to. Errors of one part
// (a list the component may not do) become Warnings and leave that part
// empty; only a cancelled context fails the whole collection.
func Collect(ctx context.Context, cs kubernetes.Interface, opts Options, now time.Time) (*posture.Cluster, error) {
	if cs == nil {
		return nil, errors.New("cluster posture: no Kubernetes client")
	}
	if opts.SensitivityLabel == "" {
		opts.SensitivityLabel = DefaultSensitivityLabel
	}
	if opts.SystemNamespaces == nil {
		opts.SystemNamespaces = DefaultSystemNamespaces
	}
	if opts.MaxPods <= 0 || opts.MaxPods > posture.MaxItems {
		opts.MaxPods = posture.MaxItems
	}
	c := &posture.Cluster{Cluster: opts.Cluster, CollectedAt: now.UTC()}
	warn := func(format string, args ...any) {
		if len(c.Warnings) < 100 {
			c.Warnings = append(c.Warnings, trim(fmt.Sprintf(format, args...)))
		}
	}
	rb, err := readRBAC(ctx, cs)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		warn("rbac: %v", err)
	} else {
		c.Bindings, c.BindingsReviewed = reviewBindings(rb, opts.AllowedSubjects)
		c.Anonymous = append(c.Anonymous, anonymousBindings(rb)...)
	}
	if opts.Anonymous != nil {
		c.Anonymous = append(c.Anonymous, probeAnonymous(ctx, opts.Anonymous)...)
	} else {
		warn("anonymous probes skipped: no API server address given")
	}
	nss, err := listNamespaces(ctx, cs, opts)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		warn("namespaces: %v", err)
	}
	pods, err := listPods(ctx, cs, opts, nss)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		warn("pods: %v", err)
	}
	nps, err := listNetworkPolicies(ctx, cs, nss)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		warn("network policies: %v", err)
	}
	c.Namespaces = namespaceCoverage(nss, nps, pods)
	c.Nodes = sensitivity(pods, opts.SensitivityLabel)
	for i := range pods {
		c.Pods = append(c.Pods, podPosture(&pods[i], opts.SensitivityLabel, warn))
	}
	c.APIServer = apiServerItems(ctx, cs, warn)
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("cluster posture: %w", err)
	}
	return c, nil
}

func trim(s string) string {
	if len(s) > posture.MaxText {
		return s[:posture.MaxText-3] + "..."
	}
	return s
}

// rbacObjects are the cluster's roles and bindings.
type rbacObjects struct {
	clusterRoles        []rbacv1.ClusterRole
	roles               []rbacv1.Role
	clusterRoleBindings []rbacv1.ClusterRoleBinding
	roleBindings        []rbacv1.RoleBinding
}

func readRBAC(ctx context.Context, cs kubernetes.Interface) (*rbacObjects, error) {
	r := &rbacObjects{}
	api := cs.RbacV1()
	err := paginate(ctx, func(o metav1.ListOptions) (string, error) {
		l, err := api.ClusterRoles().List(ctx, o)
		if err != nil {
			return "", fmt.Errorf("list clusterroles: %w", err)
		}
		r.clusterRoles = append(r.clusterRoles, l.Items...)
		return l.Continue, nil
	})
	if err != nil {
		return nil, err
	}
	err = paginate(ctx, func(o metav1.ListOptions) (string, error) {
		l, err := api.Roles("").List(ctx, o)
		if err != nil {
			return "", fmt.Errorf("list roles: %w", err)
		}
		r.roles = append(r.roles, l.Items...)
		return l.Continue, nil
	})
	if err != nil {
		return nil, err
	}
	err = paginate(ctx, func(o metav1.ListOptions) (string, error) {
		l, err := api.ClusterRoleBindings().List(ctx, o)
		if err != nil {
			return "", fmt.Errorf("list clusterrolebindings: %w", err)
		}
		r.clusterRoleBindings = append(r.clusterRoleBindings, l.Items...)
		return l.Continue, nil
	})
	if err != nil {
		return nil, err
	}
	err = paginate(ctx, func(o metav1.ListOptions) (string, error) {
		l, err := api.RoleBindings("").List(ctx, o)
		if err != nil {
			return "", fmt.Errorf("list rolebindings: %w", err)
		}
		r.roleBindings = append(r.roleBindings, l.Items...)
		return l.Continue, nil
	})
	if err != nil {
		return nil, err
	}
	return r, nil
}

// paginate calls list with Limit and Continue until the last page.
func paginate(ctx context.Context, list func(metav1.ListOptions) (string, error)) error {
	opts := metav1.ListOptions{Limit: listPage}
	for range 10_000 {
		if err := ctx.Err(); err != nil {
			return err
		}
		next, err := list(opts)
		if err != nil {
			return err
		}
		if next == "" {
			return nil
		}
		opts.Continue = next
	}
	return errors.New("more than 10000 pages")
}

// wildcardRule reports whether a rule grants every verb on every resource
// (of every API group, or of the core group where a rule names no group).
func wildcardRule(r rbacv1.PolicyRule) bool {
	if len(r.NonResourceURLs) > 0 && len(r.Resources) == 0 {
		return false
	}
	return slices.Contains(r.Verbs, "*") && slices.Contains(r.Resources, "*")
}

func wildcardRules(rs []rbacv1.PolicyRule) bool {
	return slices.ContainsFunc(rs, wildcardRule)
}

// SubjectString names a subject as Options.AllowedSubjects does.
func SubjectString(s rbacv1.Subject, bindingNS string) string {
	if s.Kind == rbacv1.ServiceAccountKind {
		ns := s.Namespace
		if ns == "" {
			ns = bindingNS
		}
		return "ServiceAccount:" + ns + "/" + s.Name
	}
	return s.Kind + ":" + s.Name
}

// systemSubject: the platform's own identities — system: users and groups
// (system:masters, the controllers, the nodes) and the service accounts
// of kube-system.
func systemSubject(s rbacv1.Subject, bindingNS string) bool {
	if s.Kind == rbacv1.ServiceAccountKind {
		ns := s.Namespace
		if ns == "" {
			ns = bindingNS
		}
		return ns == "kube-system"
	}
	return strings.HasPrefix(s.Name, "system:")
}

// reviewBindings lists the bindings that grant cluster-admin or a wildcard
// role to at least one non-system subject; Allowed when every such subject
// is in allowed. The second result counts the bindings read.
func reviewBindings(rb *rbacObjects, allowed []string) ([]posture.Binding, int) {
	wildCR := map[string]bool{}
	for _, r := range rb.clusterRoles {
		if wildcardRules(r.Rules) {
			wildCR[r.Name] = true
		}
	}
	wildR := map[string]bool{}
	for _, r := range rb.roles {
		if wildcardRules(r.Rules) {
			wildR[r.Namespace+"/"+r.Name] = true
		}
	}
	reason := func(ref rbacv1.RoleRef, ns string) string {
		switch {
		case ref.Kind == "ClusterRole" && ref.Name == "cluster-admin":
			return "cluster-admin"
		case ref.Kind == "ClusterRole" && wildCR[ref.Name]:
			return "wildcard"
		case ref.Kind == "Role" && wildR[ns+"/"+ref.Name]:
			return "wildcard"
		}
		return ""
	}
	var out []posture.Binding
	add := func(kind, ns, name string, ref rbacv1.RoleRef, subjects []rbacv1.Subject) {
		why := reason(ref, ns)
		if why == "" {
			return
		}
		var subs []string
		ok := true
		for _, s := range subjects {
			if systemSubject(s, ns) {
				continue
			}
			n := SubjectString(s, ns)
			subs = append(subs, n)
			if !slices.Contains(allowed, n) {
				ok = false
			}
		}
		if len(subs) == 0 {
			return
		}
		out = append(out, posture.Binding{Kind: kind, Name: name, Namespace: ns, Role: ref.Kind + "/" + ref.Name,
			Subjects: subs, Reason: why, Allowed: ok})
	}
	for _, b := range rb.clusterRoleBindings {
		add("ClusterRoleBinding", "", b.Name, b.RoleRef, b.Subjects)
	}
	for _, b := range rb.roleBindings {
		add("RoleBinding", b.Namespace, b.Name, b.RoleRef, b.Subjects)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Namespace != out[j].Namespace {
			return out[i].Namespace < out[j].Namespace
		}
		return out[i].Name < out[j].Name
	})
	return out, len(rb.clusterRoleBindings) + len(rb.roleBindings)
}

// anonymousDefaults are the bindings Kubernetes itself makes for
// unauthenticated requests (health, version and discovery information).
var anonymousDefaults = []string{"system:public-info-viewer", "system:discovery", "system:basic-user"}

// anonymousBindings is the item "no binding grants anything to
// system:anonymous or system:unauthenticated beyond Kubernetes' own".
func anonymousBindings(rb *rbacObjects) []posture.Item {
	var bad []string
	check := func(kind, ns, name string, ref rbacv1.RoleRef, subjects []rbacv1.Subject) {
		if ref.Kind == "ClusterRole" && slices.Contains(anonymousDefaults, ref.Name) && slices.Contains(anonymousDefaults, name) {
			return
		}
		for _, s := range subjects {
			if (s.Kind == rbacv1.UserKind && s.Name == "system:anonymous") || (s.Kind == rbacv1.GroupKind && s.Name == "system:unauthenticated") {
				where := name
				if ns != "" {
					where = ns + "/" + name
				}
				bad = append(bad, fmt.Sprintf("%s %s grants %s/%s to %s", kind, where, ref.Kind, ref.Name, s.Name))
			}
		}
	}
	for _, b := range rb.clusterRoleBindings {
		check("ClusterRoleBinding", "", b.Name, b.RoleRef, b.Subjects)
	}
	for _, b := range rb.roleBindings {
		check("RoleBinding", b.Namespace, b.Name, b.RoleRef, b.Subjects)
	}
	it := posture.Item{ID: "API-anonymous-bindings", Title: "no RBAC grant to system:anonymous or system:unauthenticated beyond Kubernetes' defaults",
		Source: "rbac.authorization.k8s.io bindings", Controls: []string{"4.3.2"}, Status: posture.Pass, Actual: "none"}
	if len(bad) > 0 {
		it.Status = posture.Fail
		it.Actual = trim(strings.Join(bad, "; "))
	}
	return []posture.Item{it}
}

// probeAnonymous asks the API server, with no credentials, for what an
// anonymous client may read, and whether it answers plain HTTP.
func probeAnonymous(ctx context.Context, cfg *rest.Config) []posture.Item {
	anon := rest.AnonymousClientConfig(cfg)
	anon.Timeout = DefaultProbeTimeout
	var out []posture.Item
	if strings.HasPrefix(anon.Host, "http://") {
		out = append(out, posture.Item{ID: "API-plain-http", Title: "the API server is reached over TLS", Status: posture.Fail,
			Actual: "configured address " + anon.Host + " is plain HTTP", Source: "component configuration", Controls: []string{"4.3.2"}})
	}
	hc, err := rest.HTTPClientFor(anon)
	if err != nil {
		return append(out, posture.Item{ID: "API-anonymous", Title: "anonymous API probes", Status: posture.Unknown,
			Actual: trim(err.Error()), Controls: []string{"4.3.2"}})
	}
	base := strings.TrimSuffix(anon.Host, "/")
	if !strings.Contains(base, "://") {
		base = "https://" + base
	}
	get := func(path string) (int, error) {
		rctx, cancel := context.WithTimeout(ctx, DefaultProbeTimeout)
		defer cancel()
		req, err := http.NewRequestWithContext(rctx, http.MethodGet, base+path, nil)
		if err != nil {
			return 0, err
		}
		resp, err := hc.Do(req)
		if err != nil {
			return 0, err
		}
		defer resp.Body.Close()
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
		return resp.StatusCode, nil
	}
	// CIS 1.2.1: anonymous requests authenticated at all (401 = refused
	// before authorization). Kubernetes' default is to accept them as
	// system:anonymous for health and version: a CIS item, not a NIST
	// failure by itself (the probes below decide 4.3.2).
	code, err := get("/version")
	it := posture.Item{ID: "CIS-K8s-1.2.1", Title: "anonymous requests to the API server are refused (--anonymous-auth=false)",
		Source: "GET /version without credentials"}
	switch {
	case err != nil:
		it.Status, it.Actual = posture.Unknown, trim(err.Error())
	case code == http.StatusUnauthorized:
		it.Status, it.Actual = posture.Pass, "401"
	default:
		it.Status, it.Actual = posture.Fail, fmt.Sprintf("%d: anonymous requests are authenticated as system:anonymous", code)
	}
	out = append(out, it)
	for _, p := range []struct{ id, title, path string }{
		{"API-anonymous-namespaces", "anonymous clients may not list namespaces", "/api/v1/namespaces"},
		{"API-anonymous-secrets", "anonymous clients may not list secrets", "/api/v1/secrets"},
		{"API-anonymous-pods", "anonymous clients may not list pods", "/api/v1/pods"},
	} {
		code, err := get(p.path + "?limit=1")
		it := posture.Item{ID: p.id, Title: p.title, Source: "GET " + p.path + " without credentials", Controls: []string{"4.3.2"}}
		switch {
		case err != nil:
			it.Status, it.Actual = posture.Unknown, trim(err.Error())
		case code == http.StatusUnauthorized || code == http.StatusForbidden:
			it.Status, it.Actual = posture.Pass, fmt.Sprintf("%d", code)
		default:
			it.Status, it.Actual = posture.Fail, fmt.Sprintf("%d: answered an anonymous request", code)
		}
		out = append(out, it)
	}
	if strings.HasPrefix(base, "https://") {
		out = append(out, probePlainHTTP(ctx, "http://"+strings.TrimPrefix(base, "https://")))
	}
	return out
}

// probePlainHTTP asks the API server's port for /api over plain HTTP: an
// HTTPS server answers 400 (or closes); an API answer means the API is
// served in the clear.
func probePlainHTTP(ctx context.Context, url string) posture.Item {
	it := posture.Item{ID: "API-insecure-port", Title: "the API server does not serve the API over plain HTTP",
		Source: "GET " + url + "/api over plain HTTP", Controls: []string{"4.3.2"}}
	rctx, cancel := context.WithTimeout(ctx, DefaultProbeTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, http.MethodGet, url+"/api", nil)
	if err != nil {
		it.Status, it.Actual = posture.Unknown, trim(err.Error())
		return it
	}
	hc := &http.Client{Timeout: DefaultProbeTimeout, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := hc.Do(req)
	if err != nil {
		it.Status, it.Actual = posture.Pass, "no plain HTTP answer"
		return it
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var v struct {
		Kind string `json:"kind"`
	}
	if resp.StatusCode == http.StatusOK && json.Unmarshal(b, &v) == nil && v.Kind == "APIVersions" {
		it.Status, it.Actual = posture.Fail, "the API answered over plain HTTP"
		return it
	}
	it.Status, it.Actual = posture.Pass, fmt.Sprintf("%d: plain HTTP refused", resp.StatusCode)
	return it
}

func listNamespaces(ctx context.Context, cs kubernetes.Interface, opts Options) ([]corev1.Namespace, error) {
	var out []corev1.Namespace
	err := paginate(ctx, func(o metav1.ListOptions) (string, error) {
		o.LabelSelector = opts.NamespaceSelector
		l, err := cs.CoreV1().Namespaces().List(ctx, o)
		if err != nil {
			return "", fmt.Errorf("list namespaces: %w", err)
		}
		for _, n := range l.Items {
			if !slices.Contains(opts.SystemNamespaces, n.Name) && n.Status.Phase != corev1.NamespaceTerminating {
				out = append(out, n)
			}
		}
		if len(out) > posture.MaxItems {
			return "", fmt.Errorf("more than %d namespaces", posture.MaxItems)
		}
		return l.Continue, nil
	})
	return out, err
}

// listPods lists the running (or starting, once placed) pods of the
// namespaces.
func listPods(ctx context.Context, cs kubernetes.Interface, opts Options, nss []corev1.Namespace) ([]corev1.Pod, error) {
	in := map[string]bool{}
	for _, n := range nss {
		in[n.Name] = true
	}
	var out []corev1.Pod
	err := paginate(ctx, func(o metav1.ListOptions) (string, error) {
		l, err := cs.CoreV1().Pods("").List(ctx, o)
		if err != nil {
			return "", fmt.Errorf("list pods: %w", err)
		}
		for _, p := range l.Items {
			if !in[p.Namespace] || p.DeletionTimestamp != nil || p.Spec.NodeName == "" ||
				(p.Status.Phase != corev1.PodRunning && p.Status.Phase != corev1.PodPending) {
				continue
			}
			if len(out) >= opts.MaxPods {
				return "", fmt.Errorf("more than %d pods: the rest not read", opts.MaxPods)
			}
			out = append(out, p)
		}
		return l.Continue, nil
	})
	return out, err
}

func listNetworkPolicies(ctx context.Context, cs kubernetes.Interface, nss []corev1.Namespace) (map[string][]networkingv1.NetworkPolicy, error) {
	in := map[string]bool{}
	for _, n := range nss {
		in[n.Name] = true
	}
	out := map[string][]networkingv1.NetworkPolicy{}
	err := paginate(ctx, func(o metav1.ListOptions) (string, error) {
		l, err := cs.NetworkingV1().NetworkPolicies("").List(ctx, o)
		if err != nil {
			return "", fmt.Errorf("list networkpolicies: %w", err)
		}
		for _, p := range l.Items {
			if in[p.Namespace] {
				out[p.Namespace] = append(out[p.Namespace], p)
			}
		}
		return l.Continue, nil
	})
	return out, err
}

// denies reports whether a NetworkPolicy selects every pod of its
// namespace for ingress (egress) with no rule letting traffic in (out):
// Kubernetes' "default deny".
func denies(p *networkingv1.NetworkPolicy) (ingress, egress bool) {
	if len(p.Spec.PodSelector.MatchLabels) > 0 || len(p.Spec.PodSelector.MatchExpressions) > 0 {
		return false, false
	}
	types := p.Spec.PolicyTypes
	if len(types) == 0 {
		// Kubernetes defaults policyTypes to Ingress, plus Egress when
		// the policy has egress rules.
		types = []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}
		if len(p.Spec.Egress) > 0 {
			types = append(types, networkingv1.PolicyTypeEgress)
		}
	}
	ingress = slices.Contains(types, networkingv1.PolicyTypeIngress) && len(p.Spec.Ingress) == 0
	egress = slices.Contains(types, networkingv1.PolicyTypeEgress) && len(p.Spec.Egress) == 0
	return ingress, egress
}

func namespaceCoverage(nss []corev1.Namespace, nps map[string][]networkingv1.NetworkPolicy, pods []corev1.Pod) []posture.Namespace {
	count := map[string]int{}
	for _, p := range pods {
		count[p.Namespace]++
	}
	var out []posture.Namespace
	for _, n := range nss {
		ns := posture.Namespace{Name: n.Name, Pods: count[n.Name]}
		for i := range nps[n.Name] {
			p := &nps[n.Name][i]
			ns.Policies = append(ns.Policies, p.Name)
			in, eg := denies(p)
			ns.DefaultDenyIngress = ns.DefaultDenyIngress || in
			ns.DefaultDenyEgress = ns.DefaultDenyEgress || eg
		}
		sort.Strings(ns.Policies)
		out = append(out, ns)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// sensitivity groups the labelled pods by node and level; unlabelled pods
// have no level and mix with nothing.
func sensitivity(pods []corev1.Pod, label string) []posture.NodeWorkloads {
	by := map[string]map[string][]string{}
	for _, p := range pods {
		l, ok := p.Labels[label]
		if !ok || l == "" {
			continue
		}
		if by[p.Spec.NodeName] == nil {
			by[p.Spec.NodeName] = map[string][]string{}
		}
		by[p.Spec.NodeName][l] = append(by[p.Spec.NodeName][l], p.Namespace+"/"+p.Name)
	}
	var out []posture.NodeWorkloads
	for n, levels := range by {
		for _, ps := range levels {
			sort.Strings(ps)
		}
		out = append(out, posture.NodeWorkloads{Node: n, Levels: levels})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Node < out[j].Node })
	return out
}

// ImageDigest returns the manifest digest of a container status's imageID
// ("docker-pullable://repo@sha256:…", "repo@sha256:…"); "" when the
// runtime reports only the image's configuration ID ("sha256:…").
func ImageDigest(imageID string) string {
	if _, d, ok := strings.Cut(imageID, "@"); ok && strings.HasPrefix(d, "sha256:") {
		return d
	}
	return ""
}

// maxPodFindings bounds the findings kept per pod.
const maxPodFindings = 50

func podPosture(p *corev1.Pod, label string, warn func(string, ...any)) posture.Pod {
	out := posture.Pod{Namespace: p.Namespace, Name: p.Name, Node: p.Spec.NodeName, Sensitivity: p.Labels[label]}
	digests := map[string]string{}
	for _, st := range append(append([]corev1.ContainerStatus{}, p.Status.InitContainerStatuses...), p.Status.ContainerStatuses...) {
		digests[st.Name] = ImageDigest(st.ImageID)
	}
	for _, c := range append(append([]corev1.Container{}, p.Spec.InitContainers...), p.Spec.Containers...) {
		out.Images = append(out.Images, posture.Image{Container: c.Name, Image: c.Image, Digest: digests[c.Name]})
	}
	// The Pod Security checks read the manifest as written: the pod as
	// the API returns it is one (JSON is YAML).
	doc := struct {
		APIVersion string            `json:"apiVersion"`
		Kind       string            `json:"kind"`
		Metadata   metav1.ObjectMeta `json:"metadata"`
		Spec       corev1.PodSpec    `json:"spec"`
	}{"v1", "Pod", metav1.ObjectMeta{Name: p.Name, Namespace: p.Namespace, Annotations: p.Annotations}, p.Spec}
	b, err := json.Marshal(doc)
	if err != nil {
		warn("pod %s/%s: %v", p.Namespace, p.Name, err)
		return out
	}
	fs, err := misconfig.CheckManifests(p.Namespace+"/"+p.Name, b)
	if err != nil {
		warn("pod %s/%s: checks: %v", p.Namespace, p.Name, err)
	}
	for _, f := range fs {
		if len(out.Findings) >= maxPodFindings {
			break
		}
		ev := f.Location.KeyPath
		out.Findings = append(out.Findings, posture.Finding{ID: f.ID, Title: trim(f.Title), Severity: f.Severity,
			Controls: f.Controls, Evidence: trim(ev)})
	}
	return out
}
