package misconfig

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// restrictedPod passes every Kubernetes check.
const restrictedPod = `apiVersion: v1
kind: Pod
metadata:
  name: web
  namespace: prod
spec:
  automountServiceAccountToken: false
  securityContext:
    runAsNonRoot: true
    runAsUser: 10001
    seccompProfile:
      type: RuntimeDefault
    sysctls:
    - name: net.ipv4.ip_unprivileged_port_start
      value: "0"
  containers:
  - name: app
    image: ghcr.io/acme/web:1.2.3@sha256:0000000000000000000000000000000000000000000000000000000000000000
    ports:
    - containerPort: 8080
    securityContext:
      allowPrivilegeEscalation: false
      readOnlyRootFilesystem: true
      capabilities:
        drop: [ALL]
        add: [NET_BIND_SERVICE]
    resources:
      limits: {cpu: 500m, memory: 256Mi}
      requests: {cpu: 100m, memory: 128Mi}
  volumes:
  - name: cache
    emptyDir: {}
  - name: cfg
    configMap: {name: web}
`

func TestManifestRestrictedClean(t *testing.T) {
	fs, err := CheckManifests("pod.yaml", []byte(restrictedPod))
	if err != nil {
		t.Fatal(err)
	}
	if len(fs) != 0 {
		t.Errorf("restricted pod: %d findings: %+v", len(fs), fs)
	}
}

// mutate returns restrictedPod with old replaced by new (which must occur).
func mutate(t *testing.T, old, new string) string {
	t.Helper()
	if !strings.Contains(restrictedPod, old) {
		t.Fatalf("fixture lacks %q", old)
	}
	return strings.Replace(restrictedPod, old, new, 1)
}

func TestManifestChecks(t *testing.T) {
	sc := "    securityContext:\n      allowPrivilegeEscalation: false\n"
	for _, tc := range []struct {
		name      string
		old, new  string
		want      string
		wantCount int
	}{
		{"privileged", sc, sc + "      privileged: true\n", K8sPrivileged, 1},
		{"hostPID", "  automountServiceAccountToken: false\n", "  automountServiceAccountToken: false\n  hostPID: true\n", K8sHostPID, 1},
		{"hostIPC", "  automountServiceAccountToken: false\n", "  automountServiceAccountToken: false\n  hostIPC: true\n", K8sHostIPC, 1},
		{"hostNetwork", "  automountServiceAccountToken: false\n", "  automountServiceAccountToken: false\n  hostNetwork: true\n", K8sHostNetwork, 1},
		{"hostProcess", "    runAsNonRoot: true\n", "    runAsNonRoot: true\n    windowsOptions: {hostProcess: true}\n", K8sHostProcess, 1},
		{"cap sys_admin", "add: [NET_BIND_SERVICE]", "add: [NET_BIND_SERVICE, SYS_ADMIN]", K8sCapsBaseline, 1},
		{"cap chown restricted", "add: [NET_BIND_SERVICE]", "add: [CHOWN]", K8sCapsAddRestrict, 1},
		{"hostPath", "    emptyDir: {}\n", "    hostPath: {path: /data/cache}\n", K8sHostPath, 1},
		{"hostPath docker.sock", "    emptyDir: {}\n", "    hostPath:\n      path: /var/run/docker.sock\n", K8sHostPathSens, 1},
		{"hostPath root", "    emptyDir: {}\n", "    hostPath: {path: /}\n", K8sHostPathSens, 1},
		{"hostPath /etc", "    emptyDir: {}\n", "    hostPath: {path: /etc/}\n", K8sHostPathSens, 1},
		{"hostPath kubelet", "    emptyDir: {}\n", "    hostPath: {path: /var/lib/kubelet/pods}\n", K8sHostPathSens, 1},
		{"hostPort", "    - containerPort: 8080\n", "    - containerPort: 8080\n      hostPort: 80\n", K8sHostPort, 1},
		{"apparmor annotation", "  namespace: prod\n", "  namespace: prod\n  annotations:\n    container.apparmor.security.beta.kubernetes.io/app: unconfined\n", K8sAppArmor, 1},
		{"apparmor field", sc, sc + "      appArmorProfile: {type: Unconfined}\n", K8sAppArmor, 1},
		{"selinux type", sc, sc + "      seLinuxOptions: {type: spc_t}\n", K8sSELinux, 1},
		{"selinux user", "    runAsNonRoot: true\n", "    runAsNonRoot: true\n    seLinuxOptions: {user: system_u}\n", K8sSELinux, 1},
		{"procMount", sc, sc + "      procMount: Unmasked\n", K8sProcMount, 1},
		{"seccomp unconfined", sc, sc + "      seccompProfile: {type: Unconfined}\n", K8sSeccompBaseline, 1},
		{"unsafe sysctl", "net.ipv4.ip_unprivileged_port_start", "kernel.msgmax", K8sSysctls, 1},
		{"volume nfs", "    emptyDir: {}\n", "    nfs: {server: nfs, path: /x}\n", K8sVolumeTypes, 1},
		{"priv escalation", "allowPrivilegeEscalation: false", "allowPrivilegeEscalation: true", K8sPrivEscalation, 1},
		{"runAsNonRoot", "    runAsNonRoot: true\n", "", K8sRunAsNonRoot, 1},
		{"runAsUser 0", "    runAsUser: 10001\n", "    runAsUser: 0\n", K8sRunAsUserRoot, 1},
		{"seccomp missing", "    seccompProfile:\n      type: RuntimeDefault\n", "", K8sSeccompRestrict, 1},
		{"drop all missing", "        drop: [ALL]\n", "        drop: [NET_RAW]\n", K8sCapsDropAll, 1},
		{"rw root fs", "      readOnlyRootFilesystem: true\n", "", K8sReadOnlyRootFS, 1},
		{"no limits", "      limits: {cpu: 500m, memory: 256Mi}\n", "      limits: {cpu: 500m}\n", K8sNoLimits, 1},
		{"no requests", "      requests: {cpu: 100m, memory: 128Mi}\n", "", K8sNoRequests, 1},
		{"latest", "ghcr.io/acme/web:1.2.3@sha256:0000000000000000000000000000000000000000000000000000000000000000", "ghcr.io/acme/web:latest", K8sImageTag, 1},
		{"untagged", "ghcr.io/acme/web:1.2.3@sha256:0000000000000000000000000000000000000000000000000000000000000000", "localhost:5000/web", K8sImageTag, 1},
		{"automount", "  automountServiceAccountToken: false\n", "", K8sAutomountSAToken, 1},
		{"pull policy", "ghcr.io/acme/web:1.2.3@sha256:0000000000000000000000000000000000000000000000000000000000000000", "ghcr.io/acme/web:1.2.3", K8sPullPolicy, 1},
	} {
		doc := mutate(t, tc.old, tc.new)
		fs, err := CheckManifests("pod.yaml", []byte(doc))
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		got := idSet(fs)
		if got[tc.want] != tc.wantCount {
			t.Errorf("%s: %s count %d, want %d (all %v)", tc.name, tc.want, got[tc.want], tc.wantCount, got)
		}
		expect(t, tc.name, fs, []string{tc.want}, nil)
		for _, f := range fs {
			if !strings.HasPrefix(f.Location.Config, "Pod/prod/web") || f.Location.StartLine == 0 || f.Location.Path != "pod.yaml" {
				t.Errorf("%s: location %+v", tc.name, f.Location)
			}
		}
	}
	// Pull policy Always on a tag is fine.
	doc := mutate(t, "ghcr.io/acme/web:1.2.3@sha256:0000000000000000000000000000000000000000000000000000000000000000", "ghcr.io/acme/web:1.2.3\n    imagePullPolicy: Always")
	fs, err := CheckManifests("pod.yaml", []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	expect(t, "pull always", fs, nil, []string{K8sPullPolicy, K8sImageTag})
}

const multiDoc = `# Source: chart/templates/sa.yaml
apiVersion: v1
kind: ServiceAccount
metadata:
  name: app
---
# Source: chart/templates/deploy.yaml
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  template:
    metadata:
      annotations:
        container.apparmor.security.beta.kubernetes.io/app: unconfined
    spec:
      containers:
      - name: sidecar
        image: busybox:1.36
      - name: app
        image: nginx
        securityContext:
          privileged: true
---
---
apiVersion: batch/v1
kind: CronJob
metadata: {name: nightly, namespace: ops}
spec:
  schedule: "0 3 * * *"
  jobTemplate:
    spec:
      template:
        spec:
          hostNetwork: true
          containers: [{name: job, image: "alpine:3.20"}]
---
{"apiVersion": "v1", "kind": "List", "items": [
  {"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "agent"},
   "spec": {"template": {"spec": {"hostPID": true, "containers": [{"name": "a", "image": "agent:1"}]}}}},
  {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}}
]}
`

func TestManifestMultiDocument(t *testing.T) {
	fs, err := CheckManifests("rendered.yaml", []byte(multiDoc))
	if err != nil {
		t.Fatal(err)
	}
	type key struct{ id, obj string }
	got := map[key]int{}
	for _, f := range fs {
		got[key{f.ID, f.Location.Config}] = f.Location.StartLine
	}
	for k, line := range map[key]int{
		{K8sPrivileged, "Deployment/default/web/containers/app"}:       21,
		{K8sAppArmor, "Deployment/default/web/containers/app"}:         21,
		{K8sImageTag, "Deployment/default/web/containers/app"}:         21,
		{K8sHostNetwork, "CronJob/ops/nightly"}:                        36,
		{K8sHostPID, "DaemonSet/default/agent"}:                        41,
		{K8sRunAsNonRoot, "Deployment/default/web/containers/sidecar"}: 19,
	} {
		l, ok := got[k]
		if !ok {
			t.Errorf("missing %v", k)
		} else if l != line {
			t.Errorf("%v at line %d, want %d", k, l, line)
		}
	}
	for k := range got {
		if k.id == K8sAppArmor && strings.HasSuffix(k.obj, "sidecar") {
			t.Errorf("AppArmor annotation for app applied to sidecar")
		}
	}
}

func TestManifestErrors(t *testing.T) {
	// A broken document after a good one: findings of the first, an error.
	doc := restrictedPod + "---\napiVersion: v1\nkind: Pod\nmetadata: {name: x\n"
	fs, err := CheckManifests("p.yaml", []byte(doc))
	if !errors.Is(err, ErrParse) {
		t.Errorf("err = %v, want ErrParse", err)
	}
	_ = fs
	// Type error in a pod spec.
	_, err = CheckManifests("p.yaml", []byte("apiVersion: v1\nkind: Pod\nmetadata: {name: x}\nspec:\n  hostPID: [1, 2]\n"))
	if !errors.Is(err, ErrParse) {
		t.Errorf("type error: %v", err)
	}
	if _, err := CheckManifests("p.yaml", make([]byte, MaxManifestSize+1)); !errors.Is(err, ErrTooLarge) {
		t.Errorf("too large: %v", err)
	}
	// Not Kubernetes at all.
	fs, err = CheckManifests("ci.yaml", []byte("jobs:\n  build:\n    runs-on: ubuntu-latest\n"))
	if err != nil || len(fs) != 0 {
		t.Errorf("non-k8s: %v %v", fs, err)
	}
	// Too many documents.
	_, err = CheckManifests("many.yaml", []byte(strings.Repeat("---\na: 1\n", MaxManifestDocuments+5)))
	if !errors.Is(err, ErrTooLarge) {
		t.Errorf("documents cap: %v", err)
	}
}

// TestBillionLaughs: an alias bomb must end fast, with an error or bounded output.
func TestBillionLaughs(t *testing.T) {
	bomb := `apiVersion: v1
kind: Pod
metadata:
  name: lol
  annotations: &a0 {x: "lol"}
a1: &a1 [*a0, *a0, *a0, *a0, *a0, *a0, *a0, *a0, *a0, *a0]
a2: &a2 [*a1, *a1, *a1, *a1, *a1, *a1, *a1, *a1, *a1, *a1]
a3: &a3 [*a2, *a2, *a2, *a2, *a2, *a2, *a2, *a2, *a2, *a2]
a4: &a4 [*a3, *a3, *a3, *a3, *a3, *a3, *a3, *a3, *a3, *a3]
a5: &a5 [*a4, *a4, *a4, *a4, *a4, *a4, *a4, *a4, *a4, *a4]
a6: &a6 [*a5, *a5, *a5, *a5, *a5, *a5, *a5, *a5, *a5, *a5]
a7: &a7 [*a6, *a6, *a6, *a6, *a6, *a6, *a6, *a6, *a6, *a6]
a8: &a8 [*a7, *a7, *a7, *a7, *a7, *a7, *a7, *a7, *a7, *a7]
a9: &a9 [*a8, *a8, *a8, *a8, *a8, *a8, *a8, *a8, *a8, *a8]
spec:
  containers: *a9
`
	start := time.Now()
	fs, err := CheckManifests("bomb.yaml", []byte(bomb))
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("took %v", d)
	}
	if err == nil && len(fs) > 1000 {
		t.Fatalf("unbounded output: %d findings", len(fs))
	}
	t.Logf("billion laughs (sequence): %d findings, err=%v, %v", len(fs), err != nil, time.Since(start))

	// The same with maps, decoded into a map[string]any field (resources.limits).
	var b strings.Builder
	b.WriteString("apiVersion: v1\nkind: Pod\nmetadata: {name: lol}\nx0: &a0 {x: lol}\n")
	for i := 1; i <= 9; i++ {
		b.WriteString("x" + string(rune('0'+i)) + ": &a" + string(rune('0'+i)) + " {")
		for j := 0; j < 10; j++ {
			if j > 0 {
				b.WriteString(", ")
			}
			b.WriteString("k" + string(rune('0'+j)) + ": *a" + string(rune('0'+i-1)))
		}
		b.WriteString("}\n")
	}
	b.WriteString("spec:\n  containers:\n  - name: c\n    image: x:1\n    resources: {limits: *a9}\n")
	start = time.Now()
	fs, err = CheckManifests("bomb2.yaml", []byte(b.String()))
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("map bomb took %v", d)
	}
	if err == nil {
		t.Fatalf("map bomb: no error (%d findings)", len(fs))
	}
	t.Logf("billion laughs (map): err=%v, %v", err, time.Since(start))
}
