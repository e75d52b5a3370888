package policy

import (
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"mamori/internal/model"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

// workload decodes a YAML manifest.
func workload(t testing.TB, manifest string) *Workload {
	t.Helper()
	js, err := yaml.YAMLToJSON([]byte(manifest))
	if err != nil {
		t.Fatal(err)
	}
	w, err := DecodeWorkload(js)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

const twoImages = `apiVersion: apps/v1
kind: Deployment
metadata: {name: shop, namespace: prod, labels: {team: shop}}
spec:
  selector: {matchLabels: {app: shop}}
  template:
    metadata: {labels: {app: shop, tier: web}}
    spec:
      containers:
      - name: web
        image: registry.example.com/shop/web:1.2
      - name: cache
        image: redis
`

func scanned(vulns []model.Vulnerability, findings []model.Finding, at time.Time) ImageScan {
	return ImageScan{Result: &model.Result{CreatedAt: at, Vulnerabilities: vulns, Findings: findings}}
}

func vulnsFixture() []model.Vulnerability {
	return []model.Vulnerability{
		{ID: "CVE-2024-0001", Severity: model.SeverityCritical, FixedVersion: "1.1", CVSS: []model.CVSS{{Version: "3.1", Score: 9.8}},
			Published: testNow.AddDate(0, 0, -90), Package: model.PackageRef{Name: "openssl"}},
		{ID: "GHSA-xxxx-0002", Aliases: []string{"CVE-2024-0002"}, Severity: model.SeverityCritical, CVSS: []model.CVSS{{Version: "3.1", Score: 9.1}},
			Published: testNow.AddDate(0, 0, -2), Package: model.PackageRef{Name: "zlib"},
			KEV: &model.KEV{CVE: "CVE-2024-0002", DateAdded: "2024-05-01"}},
		{ID: "CVE-2024-0003", Severity: model.SeverityHigh, FixedVersion: "2.0", CVSS: []model.CVSS{{Version: "3.1", Score: 7.5}, {Version: "4.0", Score: 8.7}},
			Package: model.PackageRef{Name: "curl"}},
		{ID: "CVE-2024-0004", Severity: model.SeverityLow, FixedVersion: "3", Package: model.PackageRef{Name: "tar"}},
	}
}

func findingsFixture() []model.Finding {
	return []model.Finding{
		{Kind: model.KindMalware, ID: "Eicar-Test-Signature", Severity: model.SeverityCritical},
		{Kind: model.KindSecret, ID: "aws-access-key-id", Severity: model.SeverityCritical},
		{Kind: model.KindSecret, ID: "generic-api-key", Severity: model.SeverityMedium},
		{Kind: model.KindMisconfig, ID: "MSC-IMG-001", Severity: model.SeverityHigh},
		{Kind: model.KindMisconfig, ID: "MSC-IMG-007", Severity: model.SeverityLow},
	}
}

// TestScanCriteria: each scan-result criterion, matching and not.
func TestScanCriteria(t *testing.T) {
	tests := []struct {
		rule  string
		count int    // matching findings in the web image (0: no violation)
		ids   string // their IDs
	}{
		{"vulnerabilities: {severity: critical}", 2, "CVE-2024-0001,GHSA-xxxx-0002"},
		{"vulnerabilities: {severity: high}", 3, "CVE-2024-0001,GHSA-xxxx-0002,CVE-2024-0003"},
		{"vulnerabilities: {}", 4, "CVE-2024-0001,GHSA-xxxx-0002,CVE-2024-0003,CVE-2024-0004"},
		{"vulnerabilities: {severity: critical, fixable: true}", 1, "CVE-2024-0001"},
		{"vulnerabilities: {cvss: 9.5}", 1, "CVE-2024-0001"},
		{"vulnerabilities: {cvss: 8.5}", 3, "CVE-2024-0001,GHSA-xxxx-0002,CVE-2024-0003"}, // the 4.0 score counts
		{"vulnerabilities: {severity: critical, publishedDaysAgo: 30}", 1, "CVE-2024-0001"},
		{"vulnerabilities: {severity: high, publishedDaysAgo: 30}", 2, "CVE-2024-0001,CVE-2024-0003"}, // no date counts as old
		{"vulnerabilities: {ids: [cve-2024-0002]}", 1, "GHSA-xxxx-0002"},                              // by alias, any case
		{"vulnerabilities: {severity: critical, knownExploited: true}", 1, "GHSA-xxxx-0002"},          // in CISA's catalogue
		{"vulnerabilities: {knownExploited: true}", 1, "GHSA-xxxx-0002"},
		{"vulnerabilities: {severity: critical, cvss: 9.9}", 0, ""},
		{"malware: {}", 1, "Eicar-Test-Signature"},
		{"secrets: {}", 2, "aws-access-key-id,generic-api-key"},
		{"secrets: {severity: high}", 1, "aws-access-key-id"},
		{"misconfigurations: {ids: ['MSC-IMG-00*']}", 2, "MSC-IMG-001,MSC-IMG-007"},
		{"misconfigurations: {severity: medium}", 1, "MSC-IMG-001"},
		{"misconfigurations: {ids: [MSC-K8S-001]}", 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.rule, func(t *testing.T) {
			ev := mustCompile(t, policyDoc("  - name: r\n    action: block\n    "+tt.rule+"\n"))
			w := workload(t, twoImages)
			w.Images = map[string]ImageScan{
				"registry.example.com/shop/web:1.2": scanned(vulnsFixture(), findingsFixture(), testNow.Add(-time.Hour)),
				"redis":                             scanned(nil, nil, testNow.Add(-time.Hour)),
			}
			d := ev.Evaluate(w, testNow)
			var got []Violation
			for _, v := range d.Violations {
				if v.Rule == "r" {
					got = append(got, v)
				}
			}
			if tt.count == 0 {
				if len(got) != 0 || d.Action != model.ActionAllow {
					t.Fatalf("violations %v, action %s", got, d.Action)
				}
				return
			}
			if len(got) != 1 {
				t.Fatalf("violations %v, want one", got)
			}
			v := got[0]
			if v.Count != tt.count || strings.Join(v.Findings, ",") != tt.ids || v.Image != "registry.example.com/shop/web:1.2" ||
				v.Field != "spec.template.spec.containers[0].image" || v.Container != "web" || d.Action != model.ActionBlock {
				t.Errorf("violation %+v action %s", v, d.Action)
			}
			// The same rule decides about the image alone (the CI gate's subject).
			d = ev.Evaluate(&Image{Ref: "registry.example.com/shop/web:1.2", Result: w.Images["registry.example.com/shop/web:1.2"].Result}, testNow)
			if len(d.Violations) != 1 || d.Violations[0].Count != tt.count || d.Violations[0].Field != "" {
				t.Errorf("image subject: %+v", d.Violations)
			}
		})
	}
}

func TestScanAgeAndNotScanned(t *testing.T) {
	ev := mustCompile(t, policyDoc("  - {name: stale, action: block, scanAge: {maxHours: 24}}\n  - {name: never, action: log, notScanned: {}}\n"))
	w := workload(t, twoImages)
	w.Images = map[string]ImageScan{"registry.example.com/shop/web:1.2": scanned(nil, nil, testNow.Add(-25*time.Hour))}
	d := ev.Evaluate(w, testNow)
	rules := map[string]string{}
	for _, v := range d.Violations {
		rules[v.Rule] = v.Image
	}
	if rules["stale"] != "registry.example.com/shop/web:1.2" || rules["never"] != "redis" || rules["unknownImages"] != "redis" || d.Action != model.ActionBlock {
		t.Errorf("violations %v action %s", d.Violations, d.Action)
	}
	w.Images["registry.example.com/shop/web:1.2"] = scanned(nil, nil, testNow.Add(-23*time.Hour))
	w.Images["redis"] = scanned(nil, nil, testNow)
	if d := ev.Evaluate(w, testNow); len(d.Violations) != 0 {
		t.Errorf("fresh scans violate: %v", d.Violations)
	}
}

// TestUnknownImages: scan inline, allow and scan afterwards, or block; and
// what happens when the inline scan fails.
func TestUnknownImages(t *testing.T) {
	doc := func(u string) string {
		return "apiVersion: mamori.dev/v1\nkind: Policy\nname: test\nunknownImages: " + u + "\nadmission:\n  - {name: crit, action: block, vulnerabilities: {severity: critical}}\n"
	}
	w := workload(t, twoImages)
	w.Images = map[string]ImageScan{"registry.example.com/shop/web:1.2": scanned(nil, nil, testNow)}

	scan := mustCompile(t, doc("{action: scan}"))
	d := scan.Evaluate(w, testNow)
	if !slices.Equal(d.NeedScan, []string{"redis"}) || len(d.Violations) != 0 || d.Action != model.ActionAllow {
		t.Errorf("scan: %+v", d)
	}
	// The caller scans, finds a critical vulnerability, and evaluates again.
	w2 := *w
	w2.Images = map[string]ImageScan{"registry.example.com/shop/web:1.2": scanned(nil, nil, testNow), "redis": scanned(vulnsFixture()[:1], nil, testNow)}
	if d := scan.Evaluate(&w2, testNow); len(d.NeedScan) != 0 || d.Action != model.ActionBlock {
		t.Errorf("after the inline scan: %+v", d)
	}
	// The inline scan failed: onScanFailure decides (allow by default).
	w2.Images = map[string]ImageScan{"registry.example.com/shop/web:1.2": scanned(nil, nil, testNow), "redis": {ScanError: "deadline exceeded"}}
	d = scan.Evaluate(&w2, testNow)
	if d.Action != model.ActionLog || !slices.Equal(d.ScanAfter, []string{"redis"}) || !strings.Contains(d.Message(), "could not be scanned: deadline exceeded") {
		t.Errorf("scan failed, allow: %+v", d)
	}
	strict := mustCompile(t, doc("{action: scan, onScanFailure: block}"))
	if d := strict.Evaluate(&w2, testNow); d.Action != model.ActionBlock || len(d.ScanAfter) != 0 {
		t.Errorf("scan failed, block: %+v", d)
	}

	allow := mustCompile(t, doc("{action: allow}"))
	d = allow.Evaluate(w, testNow)
	if d.Action != model.ActionLog || !slices.Equal(d.ScanAfter, []string{"redis"}) || len(d.NeedScan) != 0 ||
		d.Violations[0].Field != "spec.template.spec.containers[1].image" || d.Violations[0].Control != CtlUnknownImage {
		t.Errorf("allow: %+v", d)
	}
	block := mustCompile(t, doc("{action: block}"))
	if d := block.Evaluate(w, testNow); d.Action != model.ActionBlock || !strings.Contains(d.Message(), `"redis" was never scanned`) {
		t.Errorf("block: %+v", d)
	}
	// A running workload is never blocked for an unknown image: it is queued.
	run := *w
	run.Running = true
	if d := block.Evaluate(&run, testNow); d.Action != model.ActionAllow || !slices.Equal(d.ScanAfter, []string{"redis"}) {
		t.Errorf("running: %+v", d)
	}
}

// TestExceptions: in force, expired, and each scope.
func TestExceptions(t *testing.T) {
	base := `apiVersion: mamori.dev/v1
kind: Policy
name: test
admission:
  - {name: no-privileged, action: block, privileged: {}}
  - {name: crit, action: block, vulnerabilities: {severity: critical}}
exceptions:
`
	priv := `apiVersion: v1
kind: Pod
metadata: {name: p, namespace: legacy, labels: {app: old}}
spec:
  containers:
  - {name: a, image: registry.example.com/legacy/app:3, securityContext: {privileged: true}}
`
	w := workload(t, priv)
	w.Images = map[string]ImageScan{"registry.example.com/legacy/app:3": scanned(vulnsFixture(), nil, testNow)}
	tests := []struct {
		name      string
		exception string
		action    model.Action
		exempted  []string // rule names waived
		left      []string // rule names still violated
	}{
		{"none", "  - {name: other, reason: r, namespaces: [other]}\n", model.ActionBlock, nil, []string{"no-privileged", "crit"}},
		{"namespace", "  - {name: ns, reason: legacy app, namespaces: [leg*]}\n", model.ActionAllow, []string{"no-privileged", "crit"}, nil},
		{"namespace for one rule", "  - {name: ns, reason: r, namespaces: [legacy], rules: [no-privileged]}\n", model.ActionBlock, []string{"no-privileged"}, []string{"crit"}},
		{"selector", "  - {name: sel, reason: r, selector: {matchLabels: {app: old}}}\n", model.ActionAllow, []string{"no-privileged", "crit"}, nil},
		{"selector expression", "  - {name: sel, reason: r, selector: {matchExpressions: [{key: app, operator: In, values: [new]}]}}\n", model.ActionBlock, nil, []string{"no-privileged", "crit"}},
		{"image glob", "  - {name: img, reason: r, images: ['registry.example.com/legacy/*']}\n", model.ActionAllow, []string{"no-privileged", "crit"}, nil},
		{"other image", "  - {name: img, reason: r, images: ['registry.example.com/new/*']}\n", model.ActionBlock, nil, []string{"no-privileged", "crit"}},
		{"all vulnerabilities", "  - {name: v, reason: r, vulnerabilities: [CVE-2024-0001, CVE-2024-0002]}\n", model.ActionBlock, []string{"crit"}, []string{"no-privileged"}},
		{"one vulnerability", "  - {name: v, reason: r, vulnerabilities: [CVE-2024-0001]}\n", model.ActionBlock, []string{"crit"}, []string{"no-privileged", "crit"}},
		{"in force", "  - {name: t, reason: r, namespaces: [legacy], expires: '2026-11-01'}\n", model.ActionAllow, []string{"no-privileged", "crit"}, nil},
		{"expired", "  - {name: t, reason: r, namespaces: [legacy], expires: '2026-10-31'}\n", model.ActionBlock, nil, []string{"no-privileged", "crit"}},
		{"expired at a time", "  - {name: t, reason: r, namespaces: [legacy], expires: '2026-11-01T12:00:00Z'}\n", model.ActionBlock, nil, []string{"no-privileged", "crit"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev := mustCompile(t, base+tt.exception)
			d := ev.Evaluate(w, testNow)
			var ex, left []string
			for _, v := range d.Exempted {
				ex = append(ex, v.Rule)
				if v.Exception == "" || v.Reason == "" {
					t.Errorf("exempted violation without exception and reason: %+v", v)
				}
			}
			for _, v := range d.Violations {
				if v.Control != CtlUnknownImage {
					left = append(left, v.Rule)
				}
			}
			if d.Action != tt.action || !slices.Equal(ex, tt.exempted) || !slices.Equal(left, tt.left) {
				t.Errorf("action %s exempted %v left %v; want %s %v %v", d.Action, ex, left, tt.action, tt.exempted, tt.left)
			}
		})
	}
	// One exempted vulnerability leaves the other in the count.
	ev := mustCompile(t, base+"  - {name: v, reason: r, vulnerabilities: [CVE-2024-0001]}\n")
	d := ev.Evaluate(w, testNow)
	for _, v := range d.Violations {
		if v.Rule == "crit" && (v.Count != 1 || v.Findings[0] != "GHSA-xxxx-0002") {
			t.Errorf("partially exempted: %+v", v)
		}
	}
	if len(d.Exempted) != 1 || d.Exempted[0].Findings[0] != "CVE-2024-0001" || d.Exempted[0].Exception != "v" {
		t.Errorf("exempted %+v", d.Exempted)
	}
}

// TestWorkloadChecks: the non-PSS workload and image criteria.
func TestWorkloadChecks(t *testing.T) {
	pod := `apiVersion: v1
kind: Pod
metadata: {name: p, namespace: prod}
spec:
  initContainers:
  - {name: init, image: "busybox@sha256:1111111111111111111111111111111111111111111111111111111111111111", imagePullPolicy: IfNotPresent}
  containers:
  - name: a
    image: nginx
    securityContext: {readOnlyRootFilesystem: true}
    resources: {limits: {cpu: "1", memory: 1Gi}, requests: {cpu: 100m}}
  - name: b
    image: ghcr.io/acme/tool:latest
    imagePullPolicy: Always
  - name: c
    image: quay.io/evil/miner:1.0
    imagePullPolicy: Never
  - name: d
    image: localhost:5000/app:v2
`
	tests := []struct {
		rule   string
		fields []string
	}{
		{"readOnlyRootFilesystem: {}", []string{"spec.initContainers[0].securityContext.readOnlyRootFilesystem", "spec.containers[1].securityContext.readOnlyRootFilesystem",
			"spec.containers[2].securityContext.readOnlyRootFilesystem", "spec.containers[3].securityContext.readOnlyRootFilesystem"}},
		{"resources: {limits: [memory], requests: [memory]}", []string{"spec.initContainers[0].resources.limits.memory", "spec.initContainers[0].resources.requests.memory",
			"spec.containers[0].resources.requests.memory", "spec.containers[1].resources.limits.memory", "spec.containers[1].resources.requests.memory",
			"spec.containers[2].resources.limits.memory", "spec.containers[2].resources.requests.memory", "spec.containers[3].resources.limits.memory",
			"spec.containers[3].resources.requests.memory"}},
		{"registries: {allow: [docker.io, ghcr.io/acme/*, 'localhost:5000']}", []string{"spec.containers[2].image"}},
		{"registries: {deny: [quay.io]}", []string{"spec.containers[2].image"}},
		{"registries: {allow: ['*.io'], deny: [quay.io/evil/*]}", []string{"spec.containers[2].image", "spec.containers[3].image"}},
		{"latestTag: {}", []string{"spec.containers[0].image", "spec.containers[1].image"}},
		{"requireDigest: {}", []string{"spec.containers[0].image", "spec.containers[1].image", "spec.containers[2].image", "spec.containers[3].image"}},
		{"imagePullPolicy: {allowed: [Always]}", []string{"spec.initContainers[0].imagePullPolicy", "spec.containers[2].imagePullPolicy", "spec.containers[3].imagePullPolicy"}},
		{"automountServiceAccountToken: {}", []string{"spec.automountServiceAccountToken"}},
	}
	w := workload(t, pod)
	for _, tt := range tests {
		t.Run(tt.rule, func(t *testing.T) {
			ev := mustCompile(t, policyDoc("  - name: r\n    action: log\n    "+tt.rule+"\n"))
			d := ev.Evaluate(w, testNow)
			var got []string
			for _, v := range d.Violations {
				if v.Rule == "r" {
					got = append(got, v.Field)
				}
			}
			if !slices.Equal(got, tt.fields) {
				t.Errorf("fields\n %q\nwant\n %q", got, tt.fields)
			}
		})
	}
	off := false
	w.Spec.AutomountServiceAccountToken = &off
	ev := mustCompile(t, policyDoc("  - {name: r, action: log, automountServiceAccountToken: {}}\n"))
	if d := ev.Evaluate(w, testNow); len(fieldsOf(d, CtlAutomountToken)) != 0 {
		t.Errorf("opted-out pod violates: %v", d.Violations)
	}
}

func TestHostPathAllowed(t *testing.T) {
	ev := mustCompile(t, policyDoc("  - {name: r, action: block, hostPathVolumes: {allowedPaths: [/var/log]}}\n"))
	for path, ok := range map[string]bool{"/var/log": true, "/var/log/pods": true, "/var/logs": false, "/var/log/../../etc": false, "/": false, "var/log/x": true} {
		w := &Workload{Kind: "Pod", SpecPath: "spec", Spec: &corev1.PodSpec{Volumes: []corev1.Volume{{Name: "v", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: path}}}}}}
		if d := ev.Evaluate(w, testNow); (len(d.Violations) == 0) != ok {
			t.Errorf("%s: violations %v", path, d.Violations)
		}
	}
}

func TestMatch(t *testing.T) {
	ev := mustCompile(t, policyDoc(`  - name: r
    action: block
    match:
      namespaces: [prod*]
      excludeNamespaces: [prod-sandbox]
      selector: {matchExpressions: [{key: tier, operator: Exists}]}
      namespaceSelector: {matchLabels: {env: production}}
      kinds: [Deployment, StatefulSet]
    hostNamespaces: {}
`))
	mk := func(ns string, labels map[string]string, nsLabels map[string]string, kind string) *Workload {
		return &Workload{Kind: kind, Namespace: ns, PodLabels: labels, NamespaceLabels: nsLabels, SpecPath: "spec.template.spec",
			Spec: &corev1.PodSpec{HostNetwork: true}}
	}
	prodNS := map[string]string{"env": "production"}
	tier := map[string]string{"tier": "web"}
	for _, tc := range []struct {
		w    *Workload
		want bool
	}{
		{mk("prod", tier, prodNS, "Deployment"), true},
		{mk("prod-eu", tier, prodNS, "StatefulSet"), true},
		{mk("prod-sandbox", tier, prodNS, "Deployment"), false},
		{mk("dev", tier, prodNS, "Deployment"), false},
		{mk("prod", nil, prodNS, "Deployment"), false},
		{mk("prod", tier, nil, "Deployment"), false},
		{mk("prod", tier, prodNS, "DaemonSet"), false},
	} {
		if d := ev.Evaluate(tc.w, testNow); (d.Action == model.ActionBlock) != tc.want {
			t.Errorf("%s %s %v %v: %s", tc.w.Kind, tc.w.Namespace, tc.w.PodLabels, tc.w.NamespaceLabels, d.Action)
		}
	}
}

func TestPodAccess(t *testing.T) {
	ev := mustCompile(t, policyDoc(`  - name: no-exec
    action: block
    match: {namespaces: [prod]}
    podAccess: {operations: [exec, attach], allowGroups: [sre]}
  - {name: log-forward, action: log, podAccess: {operations: [portforward]}}
`))
	tests := []struct {
		a    Access
		want model.Action
	}{
		{Access{Operation: OpExec, Namespace: "prod", Pod: "web-1", Container: "web", Command: []string{"sh", "-c", "id"}, User: "alice"}, model.ActionBlock},
		{Access{Operation: OpAttach, Namespace: "prod", Pod: "web-1", User: "alice"}, model.ActionBlock},
		{Access{Operation: OpExec, Namespace: "prod", Pod: "web-1", User: "bob", Groups: []string{"sre"}}, model.ActionAllow},
		{Access{Operation: OpExec, Namespace: "dev", Pod: "web-1", User: "alice"}, model.ActionAllow},
		{Access{Operation: OpPortForward, Namespace: "prod", Pod: "web-1", User: "alice"}, model.ActionLog},
	}
	for _, tt := range tests {
		d := ev.Evaluate(&tt.a, testNow)
		if d.Action != tt.want {
			t.Errorf("%+v: %s %v", tt.a, d.Action, d.Violations)
		}
	}
	d := ev.Evaluate(&tests[0].a, testNow)
	if msg := d.Message(); msg != `policy "test" rule "no-exec": podAccess: exec into pod prod/web-1 container "web" ("sh -c id") by alice` {
		t.Errorf("message %q", msg)
	}
}

func TestRuntimeRulesets(t *testing.T) {
	ev := mustCompile(t, `apiVersion: mamori.dev/v1
kind: Policy
name: rt
runtime:
  - ruleset: default
    rules: {crypto-miner: terminate, shell-in-container: isolate}
  - ruleset: strict
    match: {namespaces: [payments], selector: {matchLabels: {pci: "true"}}}
    host: false
    action: terminate
exceptions:
  - {name: debug-shells, reason: break-glass namespace, namespaces: [debug], rules: [shell-in-container]}
  - {name: old-miner-image, reason: benchmark image mines on purpose, expires: '2026-10-01', images: ['*/bench/*']}
`)
	refs := ev.Runtime()
	if len(refs) != 2 || refs[0].Ruleset != "default" || refs[0].Action != "" || refs[0].Rules["crypto-miner"] != model.ActionTerminate ||
		refs[1].Match.Namespaces[0] != "payments" || refs[1].Match.Selector.MatchLabels["pci"] != "true" || *refs[1].Host || refs[1].Action != model.ActionTerminate {
		t.Errorf("runtime %+v", refs)
	}
	refs[0].Rules["crypto-miner"] = model.ActionLog // a copy: the evaluator is not changed
	if ev.Runtime()[0].Rules["crypto-miner"] != model.ActionTerminate {
		t.Error("Runtime returned the evaluator's own map")
	}
	tests := []struct {
		hit      RuntimeHit
		want     model.Action
		exempted string
	}{
		{RuntimeHit{Ruleset: "default", Rule: "crypto-miner", Action: model.ActionTerminate, Namespace: "shop"}, model.ActionTerminate, ""},
		{RuntimeHit{Ruleset: "default", Rule: "read-shadow", Namespace: "shop"}, model.ActionLog, ""},
		{RuntimeHit{Ruleset: "default", Rule: "shell-in-container", Action: model.ActionIsolate, Namespace: "debug"}, model.ActionAllow, "debug-shells"},
		{RuntimeHit{Ruleset: "default", Rule: "shell-in-container", Action: model.ActionIsolate, Namespace: "shop"}, model.ActionIsolate, ""},
		// The exception expired a month before.
		{RuntimeHit{Ruleset: "default", Rule: "crypto-miner", Action: model.ActionTerminate, Image: "registry.example.com/bench/miner:1"}, model.ActionTerminate, ""},
	}
	for _, tt := range tests {
		d := ev.Evaluate(&tt.hit, testNow)
		if d.Action != tt.want {
			t.Errorf("%+v: %s %+v", tt.hit, d.Action, d)
		}
		if tt.exempted != "" && (len(d.Exempted) != 1 || d.Exempted[0].Exception != tt.exempted) {
			t.Errorf("%+v: exempted %+v", tt.hit, d.Exempted)
		}
		if tt.exempted == "" && (len(d.Violations) != 1 || d.Violations[0].Rule != tt.hit.Rule || d.Violations[0].Control != CtlRuntime) {
			t.Errorf("%+v: violations %+v", tt.hit, d.Violations)
		}
	}
	// Runtime rulesets are selected as the engine selects containers.
	_, err := Parse("p.yaml", []byte("apiVersion: mamori.dev/v1\nkind: Policy\nname: p\nruntime:\n  - ruleset: r\n    match: {namespaces: [prod-*], kinds: [Pod]}\n"))
	if err == nil || !strings.Contains(err.Error(), "p.yaml:6:12: runtime[0].match: a runtime ruleset is selected by namespaces and selector only") ||
		!strings.Contains(err.Error(), `p.yaml:6:26: runtime[0].match.namespaces[0]: namespace "prod-*"`) {
		t.Errorf("error %v", err)
	}
}

// TestEvaluateDoesNotModify: evaluation leaves the subject as it was.
func TestEvaluateDoesNotModify(t *testing.T) {
	p, err := Parse("default.yaml", DefaultPolicyYAML())
	if err != nil {
		t.Fatal(err)
	}
	p.Admission = append(p.Admission, Rule{Name: "cel", Action: model.ActionLog, Criteria: Criteria{CEL: `object.metadata.name == "shop" && images.exists(i, i.counts.critical > 0)`}})
	ev, err := Compile(p)
	if err != nil {
		t.Fatal(err)
	}
	w := workload(t, twoImages)
	w.Images = map[string]ImageScan{"registry.example.com/shop/web:1.2": scanned(vulnsFixture(), findingsFixture(), testNow)}
	before := workload(t, twoImages)
	before.Images = map[string]ImageScan{"registry.example.com/shop/web:1.2": scanned(vulnsFixture(), findingsFixture(), testNow)}
	d := ev.Evaluate(w, testNow)
	if d.Action != model.ActionLog || len(d.Violations) < 9 || !slices.Equal(d.NeedScan, []string{"redis"}) {
		t.Fatalf("decision %+v", d)
	}
	if !reflect.DeepEqual(w, before) {
		t.Error("Evaluate modified the workload")
	}
}

// TestConcurrentEvaluate: one Evaluator, many goroutines, CEL included;
// every decision is the one a lone evaluation gives (run with -race).
func TestConcurrentEvaluate(t *testing.T) {
	p, err := Parse("default.yaml", DefaultPolicyYAML())
	if err != nil {
		t.Fatal(err)
	}
	p.Admission = append(p.Admission, Rule{Name: "cel", Action: model.ActionLog, Criteria: Criteria{CEL: `object.metadata.name == "shop" && images.exists(i, i.counts.critical > 0)`}})
	ev, err := Compile(p)
	if err != nil {
		t.Fatal(err)
	}
	w := workload(t, twoImages)
	w.Images = map[string]ImageScan{"registry.example.com/shop/web:1.2": scanned(vulnsFixture(), findingsFixture(), testNow)}
	want := ev.Evaluate(w, testNow)
	done := make(chan Decision, 8)
	for range 8 {
		go func() {
			var d Decision
			for range 200 {
				d = ev.Evaluate(w, testNow)
			}
			done <- d
		}()
	}
	for range 8 {
		if d := <-done; !reflect.DeepEqual(d, want) {
			t.Fatalf("concurrent decision differs:\n%+v\nwant\n%+v", d, want)
		}
	}
}
