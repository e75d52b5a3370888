package policy

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"mamori/internal/model"

	"sigs.k8s.io/yaml"
)

// bench20 is a 20-rule admission policy: every baseline control as its own
// rule, five restricted ones, and image and scan-result rules.
const bench20 = `apiVersion: mamori.dev/v1
kind: Policy
name: bench
unknownImages: {action: scan}
admission:
  - {name: host-process, action: block, hostProcess: {}}
  - {name: host-namespaces, action: block, hostNamespaces: {}}
  - {name: privileged, action: block, privileged: {}}
  - {name: capabilities, action: block, capabilities: {}}
  - {name: host-path, action: block, hostPathVolumes: {}}
  - {name: host-ports, action: block, hostPorts: {}}
  - {name: host-probes, action: block, hostProbes: {}}
  - {name: apparmor, action: block, appArmor: {}}
  - {name: selinux, action: block, seLinux: {}}
  - {name: proc-mount, action: block, procMount: {}}
  - {name: seccomp, action: block, seccomp: {}}
  - {name: sysctls, action: block, sysctls: {}}
  - {name: privilege-escalation, action: log, privilegeEscalation: {}}
  - {name: run-as-non-root, action: log, runAsNonRoot: {}}
  - {name: seccomp-restricted, action: log, seccompRestricted: {}}
  - {name: drop-all, action: log, capabilitiesRestricted: {}}
  - {name: registries, action: block, registries: {allow: [registry.example.com, ghcr.io/acme/*]}}
  - {name: no-latest, action: log, latestTag: {}}
  - {name: resources, action: log, resources: {limits: [memory], requests: [cpu, memory]}}
  - {name: critical, action: block, vulnerabilities: {severity: critical, fixable: true}}
`

// benchPod is a typical pod: an app and a sidecar, restricted settings, a
// config map and a projected token.
const benchPod = `apiVersion: v1
kind: Pod
metadata:
  name: shop-web-7d9f8b6c5-x2x9k
  namespace: shop
  labels: {app: shop-web, pod-template-hash: 7d9f8b6c5, team: shop}
  annotations: {kubectl.kubernetes.io/default-container: web}
spec:
  serviceAccountName: shop-web
  securityContext: {runAsNonRoot: true, runAsUser: 10001, fsGroup: 10001, seccompProfile: {type: RuntimeDefault}}
  containers:
  - name: web
    image: registry.example.com/shop/web:1.2.3
    imagePullPolicy: IfNotPresent
    ports: [{containerPort: 8080, name: http}]
    env: [{name: LOG_LEVEL, value: info}, {name: DB_HOST, value: db.shop.svc}]
    resources: {limits: {cpu: "1", memory: 512Mi}, requests: {cpu: 200m, memory: 256Mi}}
    securityContext: {allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: {drop: [ALL]}}
    livenessProbe: {httpGet: {path: /healthz, port: 8080}}
    readinessProbe: {httpGet: {path: /ready, port: 8080}}
    volumeMounts: [{name: config, mountPath: /etc/shop}, {name: tmp, mountPath: /tmp}]
  - name: proxy
    image: ghcr.io/acme/proxy:2.0.1
    ports: [{containerPort: 9901}]
    resources: {limits: {cpu: 500m, memory: 128Mi}, requests: {cpu: 50m, memory: 64Mi}}
    securityContext: {allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: {drop: [ALL]}}
  volumes:
  - {name: config, configMap: {name: shop-web}}
  - {name: tmp, emptyDir: {}}
  - name: kube-api-access
    projected: {sources: [{serviceAccountToken: {path: token, expirationSeconds: 3607}}, {configMap: {name: kube-root-ca.crt}}]}
`

func benchVulns(n int) []model.Vulnerability {
	out := make([]model.Vulnerability, n)
	for i := range out {
		out[i] = model.Vulnerability{ID: fmt.Sprintf("CVE-2024-%05d", i), Severity: model.Severity(i % 6),
			Package: model.PackageRef{Name: fmt.Sprintf("pkg%d", i%40)}, CVSS: []model.CVSS{{Version: "3.1", Score: float64(i%10) + 0.5}}}
	}
	return out
}

func benchWorkload(b *testing.B, manifest string) *Workload {
	js, err := yaml.YAMLToJSON([]byte(manifest))
	if err != nil {
		b.Fatal(err)
	}
	w, err := DecodeWorkload(js)
	if err != nil {
		b.Fatal(err)
	}
	at := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	w.Images = map[string]ImageScan{
		"registry.example.com/shop/web:1.2.3": {Result: &model.Result{CreatedAt: at, Vulnerabilities: benchVulns(150)}},
		"ghcr.io/acme/proxy:2.0.1":            {Result: &model.Result{CreatedAt: at, Vulnerabilities: benchVulns(30)}},
	}
	return w
}

func benchEval(b *testing.B, doc string, w *Workload, wantViolations bool) {
	p, err := Parse("bench.yaml", []byte(doc))
	if err != nil {
		b.Fatal(err)
	}
	ev, err := Compile(p)
	if err != nil {
		b.Fatal(err)
	}
	at := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	if d := ev.Evaluate(w, at); (len(d.Violations) > 0) != wantViolations {
		b.Fatalf("violations: %v", d.Violations)
	}
	b.ReportAllocs()
	b.ResetTimer()
	reportCPU(b, func() {
		for b.Loop() {
			ev.Evaluate(w, at)
		}
	})
}

// BenchmarkEvaluate: the admission hot path, a compiled policy over a
// decoded workload (the webhook decodes once per request: see
// BenchmarkDecodeWorkload).
func BenchmarkEvaluate(b *testing.B) {
	// critical vulnerabilities without a fix only: the compliant pod passes.
	compliant := strings.Replace(bench20, "{severity: critical, fixable: true}", "{severity: critical, cvss: 11}", 1)
	compliant = strings.Replace(compliant, "cvss: 11", "cvss: 10, fixable: true", 1)
	b.Run("20-rules-compliant-pod", func(b *testing.B) {
		benchEval(b, compliant, benchWorkload(b, benchPod), false)
	})
	b.Run("20-rules-violating-pod", func(b *testing.B) {
		bad := strings.NewReplacer("allowPrivilegeEscalation: false, ", "privileged: true, ", "runAsNonRoot: true, ", "",
			"registry.example.com/shop/web:1.2.3", "docker.io/shop/web:latest").Replace(benchPod)
		w := benchWorkload(b, bad)
		w.Images["docker.io/shop/web:latest"] = w.Images["registry.example.com/shop/web:1.2.3"]
		benchEval(b, bench20, w, true)
	})
	b.Run("default-policy", func(b *testing.B) {
		benchEval(b, string(DefaultPolicyYAML()), benchWorkload(b, benchPod), false)
	})
	b.Run("20-rules-plus-cel", func(b *testing.B) {
		doc := compliant + "  - name: team-label\n    action: block\n    cel: '!has(object.metadata.labels.team) || object.spec.containers.exists(c, c.image.startsWith(\"docker.io/\"))'\n"
		benchEval(b, doc, benchWorkload(b, benchPod), false)
	})
}

// BenchmarkDecodeWorkload: the per-request decode of the object.
func BenchmarkDecodeWorkload(b *testing.B) {
	js, err := yaml.YAMLToJSON([]byte(benchPod))
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(js)))
	b.ReportAllocs()
	reportCPU(b, func() {
		for b.Loop() {
			if _, err := DecodeWorkload(js); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkCompile: loading a policy (done once per policy version).
func BenchmarkCompile(b *testing.B) {
	doc := []byte(bench20 + "  - {name: c, action: log, cel: 'object.spec.containers.exists(c, c.name == \"x\")'}\n")
	b.ReportAllocs()
	reportCPU(b, func() {
		for b.Loop() {
			p, err := Parse("bench.yaml", doc)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := Compile(p); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func benchResult(n int) *model.Result {
	return &model.Result{CreatedAt: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC), Vulnerabilities: benchVulns(n)}
}
