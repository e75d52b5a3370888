package policy

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"mamori/internal/model"
)

// FuzzParse: the loader never panics, and what it accepts compiles or is
// refused with an error (never a panic), and evaluates.
func FuzzParse(f *testing.F) {
	f.Add(DefaultPolicyYAML())
	f.Add([]byte(bench20))
	f.Add([]byte(policyDoc("  - {name: c, action: block, cel: 'object.spec.containers.exists(c, c.image == \"x\")'}\n")))
	f.Add([]byte(`{"apiVersion":"mamori.dev/v1","kind":"Policy","name":"j","admission":[{"name":"r","action":"block","privileged":true}]}`))
	f.Add([]byte("apiVersion: mamori.dev/v1\nkind: Policy\nname: p\nexceptions:\n  - {name: e, reason: r, expires: '2026-01-01', images: ['*']}\nruntime:\n  - {ruleset: x, rules: {a: terminate}}\n"))
	f.Add([]byte("a: &a [*a]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := Parse("fuzz.yaml", data)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty error")
			}
			return
		}
		ev, err := Compile(p)
		if err != nil {
			return
		}
		w := &Workload{Kind: "Pod", SpecPath: "spec"}
		ev.Evaluate(w, time.Time{})
		ev.Evaluate(&Image{}, time.Time{})
		ev.Evaluate(&Access{Operation: OpExec}, time.Time{})
		ev.Evaluate(&RuntimeHit{Ruleset: "x", Rule: "a"}, time.Time{})
	})
}

// fuzzPolicy has every criterion, CEL over every variable, and exceptions.
func fuzzPolicy(t testing.TB) *Evaluator {
	var rules strings.Builder
	for _, c := range append(append([]string{}, BaselineControls...), RestrictedControls...) {
		fmt.Fprintf(&rules, "  - {name: %s, action: block, %s: {}}\n", strings.ToLower(c), c)
	}
	rules.WriteString(`  - {name: ro, action: log, readOnlyRootFilesystem: {}}
  - {name: res, action: log, resources: {limits: [cpu, memory]}}
  - {name: reg, action: block, registries: {allow: ['*.example.com', docker.io/library/*]}}
  - {name: latest, action: log, latestTag: {}}
  - {name: digest, action: log, requireDigest: {}}
  - {name: pull, action: log, imagePullPolicy: {allowed: [Always]}}
  - {name: token, action: log, automountServiceAccountToken: {}}
  - {name: vulns, action: block, vulnerabilities: {severity: high, cvss: 7, fixable: true, publishedDaysAgo: 3}}
  - {name: mal, action: block, malware: {}}
  - {name: sec, action: block, secrets: {ids: ['aws-*']}}
  - {name: mis, action: log, misconfigurations: {severity: high}}
  - {name: never, action: log, notScanned: {}}
  - {name: age, action: log, scanAge: {maxHours: 24}}
  - {name: cel1, action: log, cel: 'has(object.metadata) && has(object.metadata.labels) && "team" in object.metadata.labels'}
  - {name: cel2, action: log, cel: 'images.exists(i, i.counts.critical > 0) || vulnerabilities.exists(v, v.cvss > 9.0) || findings.size() > 3'}
  - {name: cel3, action: log, cel: 'namespaceObject.metadata.name.startsWith("prod")'}
  - {name: access, action: block, podAccess: {}}
`)
	doc := "apiVersion: mamori.dev/v1\nkind: Policy\nname: fuzz\nunknownImages: {action: scan, onScanFailure: block}\nadmission:\n" + rules.String() +
		"exceptions:\n  - {name: e1, reason: r, namespaces: [kube-*], expires: '2030-01-01'}\n  - {name: e2, reason: r, vulnerabilities: [CVE-1]}\n  - {name: e3, reason: r, images: ['*redis*'], selector: {matchLabels: {a: b}}}\n"
	return mustCompile(t, doc)
}

// FuzzEvaluate: any object that decodes evaluates without a panic, however
// nested, large or odd.
func FuzzEvaluate(f *testing.F) {
	for _, s := range []string{
		`{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p","annotations":{"container.apparmor.security.beta.kubernetes.io/a":"unconfined"}},"spec":{"containers":[{"name":"a","image":"nginx","securityContext":{"privileged":true,"capabilities":{"add":["SYS_ADMIN"]}}}]}}`,
		`{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"d"},"spec":{"template":{"spec":{"hostPID":true,"volumes":[{"name":"v","hostPath":{"path":"/"}}],"containers":[{"name":"a","image":"a@sha256:0","ports":[{"hostPort":1}]}]}}}}`,
		`{"apiVersion":"batch/v1","kind":"CronJob","metadata":{"name":"c"},"spec":{"jobTemplate":{"spec":{"template":{"spec":{"securityContext":{"sysctls":[{"name":"kernel.x"}],"seLinuxOptions":{"type":"spc_t"}},"containers":[{"name":"a","image":":::"}]}}}}}}`,
		`{"kind":"ReplicationController","spec":{}}`,
		`{"kind":"Pod","spec":{"ephemeralContainers":[{"name":"e","image":"@","livenessProbe":{"httpGet":{"host":"h","port":1}}}]}}`,
		`{"kind":"Pod","metadata":{"labels":{"a":"b"}},"spec":{"containers":[{"name":"a","image":"redis","resources":{"limits":{"cpu":"1"}}}]}}`,
	} {
		f.Add([]byte(s), "prod", uint8(3))
	}
	ev := fuzzPolicy(f)
	f.Fuzz(func(t *testing.T, data []byte, ns string, vulns uint8) {
		w, err := DecodeWorkload(data)
		if err != nil {
			return
		}
		w.Namespace = ns
		res := &model.Result{CreatedAt: testNow.Add(-time.Duration(vulns) * time.Hour)}
		for i := 0; i < int(vulns%8); i++ {
			res.Vulnerabilities = append(res.Vulnerabilities, model.Vulnerability{ID: fmt.Sprintf("CVE-%d", i), Severity: model.Severity(i % 7),
				CVSS: []model.CVSS{{Score: float64(i) * 1.7}}, FixedVersion: strings.Repeat("1", i%2)})
			res.Findings = append(res.Findings, model.Finding{Kind: []model.FindingKind{model.KindMalware, model.KindSecret, model.KindMisconfig}[i%3], ID: "aws-x", Severity: model.Severity(i % 6)})
		}
		w.Images = map[string]ImageScan{}
		if w.Spec != nil {
			for i, c := range w.Spec.Containers {
				switch i % 3 {
				case 0:
					w.Images[c.Image] = ImageScan{Result: res}
				case 1:
					w.Images[c.Image] = ImageScan{ScanError: "failed"}
				}
			}
		}
		d := ev.Evaluate(w, testNow)
		for _, v := range d.Violations {
			if v.Policy != "fuzz" || v.Rule == "" || v.Action == "" || v.Message == "" {
				t.Fatalf("incomplete violation %+v", v)
			}
		}
		w.Running = true
		ev.Evaluate(w, testNow)
	})
}
