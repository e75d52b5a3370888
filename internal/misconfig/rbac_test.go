package misconfig

import (
	"strconv"
	"strings"
	"testing"
)

// rbacBad is a manifest with one of every RBAC problem, as kubectl and
// Helm charts write them.
const rbacBad = `apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: too-powerful
rules:
  - apiGroups: ["*"]
    resources: ["*"]
    verbs: ["*"]
  - apiGroups: ["*"]
    resources: ["*"]
    verbs: ["get", "list", "watch"]
  - apiGroups: [""]
    resources: ["secrets"]
    verbs: ["get", "list", "watch"]
  - apiGroups: [""]
    resources: ["nodes/proxy"]
    verbs: ["get"]
  - apiGroups: ["rbac.authorization.k8s.io"]
    resources: ["clusterroles", "clusterrolebindings"]
    verbs: ["bind", "escalate"]
  - apiGroups: [""]
    resources: ["users", "groups", "serviceaccounts"]
    verbs: ["impersonate"]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata:
  name: deployer
  namespace: prod
rules:
- apiGroups: ["", "apps", "batch"]
  resources: ["pods", "deployments", "jobs"]
  verbs: ["*"]
- apiGroups: [""]
  resources: ["secrets", "configmaps"]
  verbs: ["create", "update", "patch"]
- apiGroups: [""]
  resources: ["pods/*"]
  verbs: ["create"]
- apiGroups: ["", "networking.k8s.io"]
  resources: ["services", "networkpolicies"]
  verbs: ["patch", "delete"]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: default-admin
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: cluster-admin
subjects:
  - kind: ServiceAccount
    name: default
    namespace: default
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata:
  name: everyone-views
  namespace: prod
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: view
subjects:
- apiGroup: rbac.authorization.k8s.io
  kind: Group
  name: system:authenticated
`

// rbacGood is least-privilege RBAC, plus Kubernetes' own default roles as
// "kubectl get clusterrole cluster-admin -o yaml" prints them.
const rbacGood = `apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata:
  name: leader-election
  namespace: prod
rules:
- apiGroups: ["coordination.k8s.io"]
  resources: ["leases"]
  verbs: ["get", "create", "update"]
- apiGroups: [""]
  resources: ["events"]
  verbs: ["create", "patch"]
- apiGroups: [""]
  resources: ["pods", "configmaps", "services"]
  verbs: ["get", "list", "watch"]
- apiGroups: [""]
  resources: ["pods/log"]
  verbs: ["get"]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  annotations:
    rbac.authorization.kubernetes.io/autoupdate: "true"
  labels:
    kubernetes.io/bootstrapping: rbac-defaults
  name: cluster-admin
rules:
- apiGroups: ["*"]
  resources: ["*"]
  verbs: ["*"]
- nonResourceURLs: ["*"]
  verbs: ["*"]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  labels:
    kubernetes.io/bootstrapping: rbac-defaults
  name: cluster-admin
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: cluster-admin
subjects:
- apiGroup: rbac.authorization.k8s.io
  kind: Group
  name: system:masters
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata:
  name: app-leader
  namespace: prod
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: Role
  name: leader-election
subjects:
- kind: ServiceAccount
  name: app
  namespace: prod
---
# Not RBAC: a CRD-defined kind with the same name in another group.
apiVersion: example.com/v1
kind: Role
metadata:
  name: not-rbac
rules:
- resources: ["*"]
  verbs: ["*"]
`

func TestRBAC(t *testing.T) {
	fs, err := CheckManifests("rbac.yaml", []byte(rbacBad))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string][]string{}
	for _, f := range fs {
		got[f.ID] = append(got[f.ID], f.Location.Config+"@"+strconv.Itoa(f.Location.StartLine))
	}
	want := map[string]string{
		K8sRBACWildcard:         "ClusterRole/too-powerful@6",
		K8sRBACAllResources:     "ClusterRole/too-powerful@9",
		K8sRBACSecretsCluster:   "ClusterRole/too-powerful@12",
		K8sRBACNodeProxy:        "ClusterRole/too-powerful@15",
		K8sRBACEscalate:         "ClusterRole/too-powerful@18,ClusterRole/too-powerful@21",
		K8sRBACWildcardVerb:     "Role/prod/deployer@31",
		K8sRBACWorkloads:        "Role/prod/deployer@31",
		K8sRBACSecretsNamespace: "Role/prod/deployer@34",
		K8sRBACConfigMaps:       "Role/prod/deployer@34",
		K8sRBACExec:             "Role/prod/deployer@37",
		K8sRBACNetworking:       "Role/prod/deployer@40",
		K8sRBACAdminBinding:     "ClusterRoleBinding/default-admin@44",
		K8sRBACBroadSubject:     "RoleBinding/prod/everyone-views@67",
	}
	for id, w := range want {
		if g := strings.Join(got[id], ","); g != w {
			t.Errorf("%s at %s, want %s", id, g, w)
		}
	}
	if len(got) != len(want) {
		t.Errorf("fired %v", got)
	}
	expect(t, "rbac bad", fs, nil, nil)
	for _, f := range fs {
		if f.ID == K8sRBACAdminBinding && !strings.Contains(f.Evidence, "ServiceAccount default/default") {
			t.Errorf("evidence %q", f.Evidence)
		}
	}

	fs, err = CheckManifests("rbac.yaml", []byte(rbacGood))
	if err != nil {
		t.Fatal(err)
	}
	if len(fs) != 0 {
		t.Errorf("least-privilege and default RBAC: %+v", fs)
	}
}

func TestRBACHostile(t *testing.T) {
	for name, doc := range map[string]string{
		"rules not a list":  "apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata: {name: x}\nrules: {a: b}\n",
		"rule not a map":    "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nrules: [1, [2], null]\n",
		"verbs not strings": "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nrules: [{resources: {a: 1}, verbs: 3}]\n",
		"subjects scalar":   "apiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nroleRef: x\nsubjects: 7\n",
		"alias bomb":        "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nrules: &r [{resources: [\"*\"], verbs: [\"*\"]}]\nx: *r\n",
	} {
		fs, _ := CheckManifests("r.yaml", []byte(doc))
		for _, f := range fs {
			if f.ID == "" || f.Location.Path != "r.yaml" {
				t.Errorf("%s: bad finding %+v", name, f)
			}
		}
	}
}
