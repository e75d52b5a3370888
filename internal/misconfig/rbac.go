package misconfig

import (
	"fmt"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"

	"mamori/internal/model"
)

// Check IDs of this file.
const (
	K8sRBACWildcard         = "MSC-K8S-028"
	K8sRBACAllResources     = "MSC-K8S-029"
	K8sRBACWildcardVerb     = "MSC-K8S-030"
	K8sRBACSecretsCluster   = "MSC-K8S-031"
	K8sRBACSecretsNamespace = "MSC-K8S-032"
	K8sRBACNodeProxy        = "MSC-K8S-033"
	K8sRBACWorkloads        = "MSC-K8S-034"
	K8sRBACConfigMaps       = "MSC-K8S-035"
	K8sRBACEscalate         = "MSC-K8S-036"
	K8sRBACExec             = "MSC-K8S-037"
	K8sRBACNetworking       = "MSC-K8S-038"
	K8sRBACAdminBinding     = "MSC-K8S-039"
	K8sRBACBroadSubject     = "MSC-K8S-040"
)

// rbacChecks are the RBAC checks of this file: metadata here, logic below, tests in rbac_test.go.
func rbacChecks() []CheckInfo {
	return []CheckInfo{
		rbac(K8sRBACWildcard, "Role grants every verb on every resource", crit,
			"A Role or ClusterRole rule has verbs [*] on resources [*]: whoever is bound to it is (namespace or cluster) admin, including every secret and the RBAC objects themselves.",
			"List the resources and verbs the subject needs; bind the default admin or edit roles explicitly if that is really meant.", nistOrchAdmin, "CIS-K8s-5.1.3").withPeers("KSV-0044", "KSV-0046"),
		rbac(K8sRBACAllResources, "Role grants access to every resource", crit,
			"A rule names resources [*] (with verbs other than *): read or write access to every resource type, secrets and custom resources included, present and future.",
			"List the resources the subject needs instead of *.", nistOrchAdmin, "CIS-K8s-5.1.3").withPeers("KSV-0046", "KSV-0112"),
		rbac(K8sRBACWildcardVerb, "Role grants every verb on sensitive resources", high,
			"A rule grants verbs [*] on secrets, pods, workload controllers, service accounts, users, groups or the RBAC objects: every current and future verb, escalate, bind and impersonate included.",
			"List the verbs the subject needs.", nistOrchAdmin, "CIS-K8s-5.1.3").withPeers("KSV-0045"),
		rbac(K8sRBACSecretsCluster, "ClusterRole grants access to secrets", crit,
			"A ClusterRole rule allows reading or changing secrets: bound cluster-wide, it reads every service account token, and some of those tokens are bound to cluster-admin.",
			"Remove secrets from the ClusterRole; grant access to named secrets (resourceNames) in a namespaced Role if needed.", nistOrchAdmin, nistOrchAccess, "CIS-K8s-5.1.2").withPeers("KSV-0041"),
		rbac(K8sRBACSecretsNamespace, "Role grants access to secrets in its namespace", med,
			"A Role rule allows reading or changing the secrets of its namespace: the tokens of more privileged service accounts there are within reach.",
			"Restrict the rule to the secrets needed (resourceNames) and the verbs needed.", nistOrchAccess, "CIS-K8s-5.1.2").withPeers("KSV-0113"),
		rbac(K8sRBACNodeProxy, "Role grants nodes/proxy", high,
			"A rule allows get or create on nodes/proxy: direct access to the kubelet API, which runs commands in any pod on the node and bypasses audit logging and admission.",
			"Remove nodes/proxy; monitoring that needs kubelet metrics can use nodes/metrics or nodes/stats.", nistOrchAdmin, "CIS-K8s-5.1.10").withPeers("KSV-0047"),
		rbac(K8sRBACWorkloads, "Role can create or change workloads", med,
			"A rule allows creating, changing or deleting pods or workload controllers: depending on admission policy, a subject can run privileged pods that escape to the node, mount any secret of the namespace, or run under a more privileged service account.",
			"Grant write access to workloads only to deployment tooling, and enforce Pod Security Admission in the namespace.", nistOrchAdmin, "CIS-K8s-5.1.4").withPeers("KSV-0048"),
		rbac(K8sRBACConfigMaps, "Role can change ConfigMaps", med,
			"A rule allows creating, changing or deleting ConfigMaps: workloads read configuration (and sometimes credentials) from them, so a change alters what they run or where they connect.",
			"Remove write verbs on configmaps, or restrict them to named ConfigMaps (resourceNames).", nistOrchAccess).withPeers("KSV-0049"),
		rbac(K8sRBACEscalate, "Role can escalate, bind or impersonate", crit,
			"A rule allows escalate or bind on roles and bindings, or impersonate on users, groups or service accounts: each lets the subject exceed its own permissions (RBAC's escalation prevention does not apply), up to cluster-admin.",
			"Remove escalate, bind and impersonate; grant them only to the controllers that manage RBAC.", nistOrchAdmin, "CIS-K8s-5.1.8").withPeers("KSV-0050", "KSV-0043"),
		rbac(K8sRBACExec, "Role can exec or attach into pods", high,
			"A rule allows create (or get) on pods/exec or pods/attach: a shell in any pod of the scope, with its service account, its secrets and, for privileged pods, the node.",
			"Remove pods/exec and pods/attach; use break-glass access for debugging.", nistOrchAdmin, nistRuntimeConfig).withPeers("KSV-0053", "KSV-0054"),
		rbac(K8sRBACNetworking, "Role can change Services or network policies", med,
			"A rule allows changing Services, Endpoints, EndpointSlices, Ingresses or NetworkPolicies: traffic meant for other pods can be redirected to the subject's pods, and network segmentation lifted.",
			"Grant write access to networking objects only to the controllers and tooling that own them.", nistOrchNetwork, nistOrchAdmin).withPeers("KSV-0056"),
		rbac(K8sRBACAdminBinding, "Binding to cluster-admin, admin or edit", med,
			"A RoleBinding or ClusterRoleBinding grants the default cluster-admin, admin or edit ClusterRole: full control of the cluster, or of a namespace's workloads and secrets.",
			"Bind a role with only the permissions the subject needs.", nistOrchAdmin, "CIS-K8s-5.1.1").withPeers("KSV-0111"),
		rbac(K8sRBACBroadSubject, "Binding to anonymous users, all authenticated users or system:masters", crit,
			"A binding names system:anonymous, system:unauthenticated or system:authenticated (every request, or every user and service account in the cluster), or system:masters (a group whose members bypass RBAC).",
			"Bind named users, groups or service accounts instead.", nistOrchAccess, nistOrchAdmin).withPeers("KSV-0122", "KSV-0123", "KSV-01011"),
	}
}

// rbacKinds are the RBAC objects the Kubernetes checks read
// (rbac.authorization.k8s.io/v1).
var rbacKinds = map[string]bool{"Role": true, "ClusterRole": true, "RoleBinding": true, "ClusterRoleBinding": true}

// policyRule is one rule of a Role or ClusterRole.
type policyRule struct {
	APIGroups     []string `yaml:"apiGroups"`
	Resources     []string `yaml:"resources"`
	ResourceNames []string `yaml:"resourceNames"`
	Verbs         []string `yaml:"verbs"`
}

type roleRef struct {
	Kind string `yaml:"kind"`
	Name string `yaml:"name"`
}

type rbacSubject struct {
	Kind      string `yaml:"kind"`
	Name      string `yaml:"name"`
	Namespace string `yaml:"namespace"`
}

// rbacObject is a Role, ClusterRole, RoleBinding or ClusterRoleBinding.
type rbacObject struct {
	kind, namespace, name string
	path                  string
	line                  int
	labels                map[string]string
	rules                 []policyRule
	ruleLines             []int
	roleRef               roleRef
	subjects              []rbacSubject
	subjectsLine          int
}

func (o *rbacObject) object() string {
	if o.kind == "Role" || o.kind == "RoleBinding" {
		ns := o.namespace
		if ns == "" {
			ns = "default"
		}
		return o.kind + "/" + ns + "/" + o.name
	}
	return o.kind + "/" + o.name
}

// decodeRBAC decodes the parts of an RBAC object the checks read, keeping
// the line of every rule.
func decodeRBAC(path string, root *yaml.Node, kind string, md objectMeta) (rbacObject, error) {
	o := rbacObject{kind: kind, namespace: md.Namespace, name: md.Name, path: path, line: root.Line, labels: md.Labels}
	if rules := mapValue(root, "rules"); rules != nil && rules.Kind == yaml.SequenceNode {
		for i, rn := range rules.Content {
			var r policyRule
			if err := decodeNode(rn, &r); err != nil {
				return o, fmt.Errorf("%s %s rules[%d]: %w", kind, md.Name, i, err)
			}
			o.rules = append(o.rules, r)
			o.ruleLines = append(o.ruleLines, rn.Line)
		}
	}
	if rr := mapValue(root, "roleRef"); rr != nil {
		if err := decodeNode(rr, &o.roleRef); err != nil {
			return o, fmt.Errorf("%s %s roleRef: %w", kind, md.Name, err)
		}
	}
	if subs := mapValue(root, "subjects"); subs != nil {
		o.subjectsLine = subs.Line
		if err := decodeNode(subs, &o.subjects); err != nil {
			return o, fmt.Errorf("%s %s subjects: %w", kind, md.Name, err)
		}
	}
	return o, nil
}

// Verb sets of the RBAC checks.
var (
	// rbacAnyAccess: reading a secret is as bad as writing one.
	rbacAnyAccess = []string{"get", "list", "watch", "create", "update", "patch", "delete", "deletecollection"}
	// rbacWrite: verbs that change objects.
	rbacWrite = []string{"create", "update", "patch", "delete", "deletecollection"}
	// rbacEscalate: verbs that let a subject grant itself more (RBAC's own
	// escalation checks do not apply to them).
	rbacEscalate = []string{"escalate", "bind", "impersonate"}
)

// Resource sets of the RBAC checks.
var (
	// rbacWildcardSensitive: a wildcard verb on these is called out
	// (trivy KSV-0045's list, plus service accounts and their tokens).
	rbacWildcardSensitive = []string{"secrets", "pods", "deployments", "daemonsets", "statefulsets", "replicationcontrollers",
		"replicasets", "cronjobs", "jobs", "roles", "clusterroles", "rolebindings", "clusterrolebindings", "users", "groups",
		"serviceaccounts", "serviceaccounts/token"}
	rbacWorkloads  = []string{"pods", "deployments", "jobs", "cronjobs", "statefulsets", "daemonsets", "replicasets", "replicationcontrollers"}
	rbacRoles      = []string{"roles", "clusterroles", "rolebindings", "clusterrolebindings"}
	rbacIdentities = []string{"users", "groups", "serviceaccounts", "uids", "userextras/scopes"}
	rbacNetworking = []string{"services", "endpoints", "endpointslices", "networkpolicies", "ingresses"}
	rbacExec       = []string{"pods/exec", "pods/attach"}
	// rbacAdminRoles are the default roles that grant (namespace) admin.
	rbacAdminRoles = map[string]bool{"cluster-admin": true, "admin": true, "edit": true}
	// rbacBroadGroups are subjects that mean everyone, or bypass RBAC.
	rbacBroadGroups = map[string]string{
		"system:anonymous":       "every unauthenticated request",
		"system:unauthenticated": "every unauthenticated request",
		"system:authenticated":   "every authenticated user and service account",
		"system:masters":         "a group that bypasses RBAC entirely",
	}
)

// ruleView is a rule with lower-cased verbs and resources, for matching.
type ruleView struct {
	verbs, resources map[string]bool
}

func viewOf(r policyRule) ruleView {
	v := ruleView{verbs: map[string]bool{}, resources: map[string]bool{}}
	for _, x := range r.Verbs {
		v.verbs[strings.ToLower(strings.TrimSpace(x))] = true
	}
	for _, x := range r.Resources {
		v.resources[strings.ToLower(strings.TrimSpace(x))] = true
	}
	return v
}

// verbsOf returns which of verbs the rule grants ("*" grants all).
func (v ruleView) verbsOf(verbs []string) []string {
	if v.verbs["*"] {
		return []string{"*"}
	}
	var out []string
	for _, x := range verbs {
		if v.verbs[x] {
			out = append(out, x)
		}
	}
	return out
}

// resourcesOf returns which of resources the rule names, explicitly or
// through a subresource wildcard ("pods/*" names "pods/exec"). A bare "*" is
// left to the wildcard checks, so that one wildcard rule is one finding.
func (v ruleView) resourcesOf(resources []string) []string {
	var out []string
	for _, want := range resources {
		if v.resources[want] {
			out = append(out, want)
			continue
		}
		if parent, _, ok := strings.Cut(want, "/"); ok && v.resources[parent+"/*"] {
			out = append(out, want)
		}
	}
	return out
}

// checkRBAC runs the RBAC checks on one object. Kubernetes' own default
// roles and bindings (label kubernetes.io/bootstrapping=rbac-defaults:
// cluster-admin, system:*) are skipped: they are not the manifest author's
// to change, and a dump of a cluster's RBAC would otherwise drown in them.
func checkRBAC(o *rbacObject) []model.Finding {
	if o.labels["kubernetes.io/bootstrapping"] == "rbac-defaults" {
		return nil
	}
	var out []model.Finding
	obj := o.object()
	add := func(id string, line int, ev string) {
		out = append(out, newFinding(id, model.Location{Path: o.path, Config: obj, StartLine: line}, ev))
	}
	switch o.kind {
	case "Role", "ClusterRole":
		for i, r := range o.rules {
			checkRule(o.kind, i, r, func(id, ev string) { add(id, o.ruleLines[i], ev) })
		}
	case "RoleBinding", "ClusterRoleBinding":
		if o.roleRef.Kind == "ClusterRole" && rbacAdminRoles[o.roleRef.Name] {
			var subs []string
			for _, s := range o.subjects {
				subs = append(subs, subjectString(s))
			}
			add(K8sRBACAdminBinding, o.line, fmt.Sprintf("binds ClusterRole %s to %s", o.roleRef.Name, strings.Join(subs, ", ")))
		}
		for _, s := range o.subjects {
			if why, ok := rbacBroadGroups[s.Name]; ok && (s.Kind == "Group" || s.Kind == "User") {
				add(K8sRBACBroadSubject, o.subjectsLine, fmt.Sprintf("binds %s %s to %s (%s)", o.roleRef.Kind, o.roleRef.Name, subjectString(s), why))
			}
		}
	}
	return out
}

func subjectString(s rbacSubject) string {
	if s.Kind == "ServiceAccount" {
		ns := s.Namespace
		if ns == "" {
			ns = "default"
		}
		return "ServiceAccount " + ns + "/" + s.Name
	}
	return s.Kind + " " + s.Name
}

// checkRule runs the rule checks on rule i of a Role or ClusterRole.
func checkRule(kind string, i int, r policyRule, add func(id, ev string)) {
	v := viewOf(r)
	where := fmt.Sprintf("rules[%d]: ", i)
	grant := func(verbs, resources []string) string {
		s := where + "verbs [" + strings.Join(verbs, " ") + "] on " + strings.Join(resources, ", ")
		if len(r.ResourceNames) > 0 {
			s += " (resourceNames " + strings.Join(r.ResourceNames, ", ") + ")"
		}
		return s
	}
	if v.resources["*"] {
		if v.verbs["*"] {
			add(K8sRBACWildcard, where+"verbs [*] on resources [*] in apiGroups ["+strings.Join(r.APIGroups, " ")+"]")
		} else if len(v.verbs) > 0 {
			verbs := make([]string, 0, len(v.verbs))
			for x := range v.verbs {
				verbs = append(verbs, x)
			}
			sort.Strings(verbs)
			add(K8sRBACAllResources, grant(verbs, []string{"*"}))
		}
	}
	if v.verbs["*"] {
		if res := v.resourcesOf(rbacWildcardSensitive); len(res) > 0 {
			add(K8sRBACWildcardVerb, grant([]string{"*"}, res))
		}
	}
	if res := v.resourcesOf([]string{"secrets"}); len(res) > 0 {
		if verbs := v.verbsOf(rbacAnyAccess); len(verbs) > 0 {
			if kind == "ClusterRole" {
				add(K8sRBACSecretsCluster, grant(verbs, res))
			} else {
				add(K8sRBACSecretsNamespace, grant(verbs, res))
			}
		}
	}
	if res := v.resourcesOf([]string{"nodes/proxy"}); len(res) > 0 {
		if verbs := v.verbsOf([]string{"get", "create"}); len(verbs) > 0 {
			add(K8sRBACNodeProxy, grant(verbs, res))
		}
	}
	if res := v.resourcesOf(rbacWorkloads); len(res) > 0 {
		if verbs := v.verbsOf(rbacWrite); len(verbs) > 0 {
			add(K8sRBACWorkloads, grant(verbs, res))
		}
	}
	if res := v.resourcesOf([]string{"configmaps"}); len(res) > 0 {
		if verbs := v.verbsOf(rbacWrite); len(verbs) > 0 {
			add(K8sRBACConfigMaps, grant(verbs, res))
		}
	}
	if res := v.resourcesOf(rbacRoles); len(res) > 0 {
		if verbs := v.verbsOf(rbacEscalate); len(verbs) > 0 {
			add(K8sRBACEscalate, grant(verbs, res))
		}
	}
	if res := v.resourcesOf(rbacIdentities); len(res) > 0 {
		if verbs := v.verbsOf([]string{"impersonate"}); len(verbs) > 0 {
			add(K8sRBACEscalate, grant(verbs, res))
		}
	}
	if res := v.resourcesOf(rbacExec); len(res) > 0 {
		if verbs := v.verbsOf([]string{"create", "get"}); len(verbs) > 0 {
			add(K8sRBACExec, grant(verbs, res))
		}
	}
	if res := v.resourcesOf(rbacNetworking); len(res) > 0 {
		if verbs := v.verbsOf(rbacWrite); len(verbs) > 0 {
			add(K8sRBACNetworking, grant(verbs, res))
		}
	}
}
