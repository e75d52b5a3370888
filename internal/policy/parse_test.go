package policy

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"mamori/internal/model"

	"go.yaml.in/yaml/v3"
)

// TestParseErrors: every problem is reported with the file and its line.
func TestParseErrors(t *testing.T) {
	tests := []struct {
		name string
		doc  string
		want []string // substrings, one per expected error, in order
	}{
		{"syntax", "apiVersion: mamori.dev/v1\nkind: [\n", []string{"p.yaml:2: did not find expected node content"}},
		{"empty", "", []string{"p.yaml: empty policy"}},
		{"two documents", "apiVersion: mamori.dev/v1\nkind: Policy\nname: a\n---\nname: b\n", []string{"p.yaml:5: more than one document"}},
		{"not a mapping", "- a\n- b\n", []string{"p.yaml:1:1: a policy is a mapping"}},
		{"unknown field", "apiVersion: mamori.dev/v1\nkind: Policy\nname: p\nadmission:\n  - name: r\n    action: block\n    privilegd: {}\n",
			[]string{`p.yaml:7: unknown field "privilegd"`}},
		{"wrong type", "apiVersion: mamori.dev/v1\nkind: Policy\nname: p\nadmission:\n  - name: r\n    action: block\n    hostPorts: {allowed: [http]}\n",
			[]string{"p.yaml:7: cannot unmarshal !!str `http` into int32"}},
		{"header", "apiVersion: v1\nkind: Pod\nname: Bad_Name\n", []string{
			`p.yaml:1:13: apiVersion: apiVersion "v1": want "mamori.dev/v1"`,
			`p.yaml:2:7: kind: kind "Pod": want "Policy"`,
			`p.yaml:3:7: name: name: "Bad_Name": use lower-case letters`}},
		{"rule problems", `apiVersion: mamori.dev/v1
kind: Policy
name: p
unknownImages: {action: maybe}
admission:
  - name: a
    action: terminate
    privileged: {}
  - name: a
    action: block
  - name: c
    action: block
    privileged: {}
    hostNamespaces: {}
  - name: d
    action: block
    vulnerabilities: {severity: severe, cvss: 11}
  - name: e
    action: log
    podSecurity: {level: restricted, exclude: [hostpath]}
  - name: f
    action: log
    match: {selector: {matchExpressions: [{key: a, operator: Has}]}, kinds: [Service]}
    privileged: {}
compliance:
  - name: a
    action: block
    podAccess: {}
runtime:
  - ruleset: ""
    action: block
    rules: {x: kill}
exceptions:
  - name: e1
  - name: e1
    reason: because
    expires: next week
    namespaces: [a]
`, []string{
			`p.yaml:4:25: unknownImages.action: unknown action "maybe"`,
			`p.yaml:7:13: admission[0].action: action "terminate": a admission rule's action is one of log, block`,
			`p.yaml:9:11: admission[1].name: rule name "a" used twice in admission`,
			`p.yaml:9:5: admission[1]: the rule has no criterion`,
			`p.yaml:11:5: admission[2]: one criterion per rule, this one has hostNamespaces, privileged`,
			`p.yaml:17:33: admission[3].vulnerabilities.severity: severity "severe"`,
			`p.yaml:17:47: admission[3].vulnerabilities.cvss: cvss 11 out of range 0-10`,
			`p.yaml:20:48: admission[4].podSecurity.exclude[0]: "hostpath" is not a control of level restricted`,
			`p.yaml:23:23: admission[5].match.selector: matchExpressions[0]: unknown operator "Has"`,
			`p.yaml:23:78: admission[5].match.kinds[0]: kind "Service" is not a workload kind`,
			`p.yaml:27:13: compliance[0].action: action "block": a compliance rule's action is one of log, isolate, terminate`,
			`p.yaml:28:16: compliance[0].podAccess: podAccess is an admission rule`,
			`p.yaml:30:5: runtime[0]: ruleset: name the runtime ruleset`,
			`p.yaml:31:13: runtime[0].action: action "block"`,
			`p.yaml:32:16: runtime[0].rules.x: rule "x": action "kill"`,
			`p.yaml:34:5: exceptions[0]: reason: every exception says why`,
			`p.yaml:34:5: exceptions[0]: an exception needs a scope`,
			`p.yaml:35:11: exceptions[1].name: exception name "e1" used twice`,
			`p.yaml:37:14: exceptions[1].expires: expires "next week"`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("p.yaml", []byte(tt.doc))
			if err == nil {
				t.Fatal("accepted")
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("%v does not wrap ErrInvalid", err)
			}
			lines := strings.Split(err.Error(), "\n")
			if len(lines) != len(tt.want) {
				t.Fatalf("%d errors, want %d:\n%s", len(lines), len(tt.want), err)
			}
			for i, w := range tt.want {
				if !strings.Contains(lines[i], w) {
					t.Errorf("error %d\n %s\nwant it to contain\n %s", i, lines[i], w)
				}
			}
		})
	}
}

func TestParseLimits(t *testing.T) {
	big := make([]byte, MaxPolicySize+1)
	if _, err := Parse("big.yaml", big); err == nil || !strings.Contains(err.Error(), "exceeds") {
		t.Errorf("oversized policy: %v", err)
	}
	// An alias bomb is refused by the YAML decoder, not expanded.
	bomb := "apiVersion: mamori.dev/v1\nkind: Policy\nname: p\na: &a [x,x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d,*d]\nf: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e,*e]\ng: [*f,*f,*f,*f,*f,*f,*f,*f,*f,*f]\n"
	if _, err := Parse("bomb.yaml", []byte(bomb)); err == nil {
		t.Error("alias bomb accepted")
	}
}

// TestRoundTrip: a policy written as JSON (the API) or re-marshalled YAML
// parses to the same thing.
func TestRoundTrip(t *testing.T) {
	p, err := Parse("default.yaml", DefaultPolicyYAML())
	if err != nil {
		t.Fatal(err)
	}
	p.Admission = append(p.Admission, Rule{Name: "no-priv", Action: model.ActionBlock, Criteria: Criteria{Privileged: &Flag{}}})
	js, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	fromJSON, err := Parse("p.json", js)
	if err != nil {
		t.Fatalf("%v\n%s", err, js)
	}
	y, err := yaml.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	fromYAML, err := Parse("p.yaml", y)
	if err != nil {
		t.Fatalf("%v\n%s", err, y)
	}
	for _, q := range []*Policy{fromJSON, fromYAML} {
		if len(q.Admission) != 3 || q.Admission[2].Privileged == nil || q.Admission[0].PodSecurity.Level != "baseline" || q.UnknownImages.Action != UnknownScan {
			t.Errorf("round trip lost something: %+v", q)
		}
	}
	if !strings.Contains(string(y), "privileged: true") {
		t.Errorf("flag written as %s", y)
	}
}

func TestFlagForms(t *testing.T) {
	for _, form := range []string{"true", "{}", "True"} {
		if _, err := Parse("p.yaml", []byte(policyDoc("  - name: r\n    action: block\n    privileged: "+form+"\n"))); err != nil {
			t.Errorf("privileged: %s: %v", form, err)
		}
	}
	for _, form := range []string{"false", "{x: 1}", "yes please", ""} {
		_, err := Parse("p.yaml", []byte(policyDoc("  - name: r\n    action: block\n    privileged: "+form+"\n")))
		if err == nil || !strings.Contains(err.Error(), "p.yaml:7") {
			t.Errorf("privileged: %s: %v", form, err)
		}
	}
}

func TestDefaultPolicy(t *testing.T) {
	ev, err := Default()
	if err != nil {
		t.Fatal(err)
	}
	if a, f := ev.UnknownImages(); a != UnknownScan || f != UnknownAllow || ev.Name() != "default" {
		t.Errorf("default policy: %s %s %s", ev.Name(), a, f)
	}
	w := workload(t, `apiVersion: v1
kind: Pod
metadata: {name: p, namespace: default}
spec:
  containers:
  - {name: a, image: nginx:1.27, securityContext: {privileged: true}}
`)
	d := ev.Evaluate(w, testNow)
	if d.Action != model.ActionBlock || !strings.Contains(d.Message(), `policy "default" rule "pss-baseline": privileged at spec.containers[0].securityContext.privileged`) {
		t.Errorf("privileged pod: %s\n%s", d.Action, d.Message())
	}
	// The restricted controls only warn; the baseline field is reported once.
	warn := strings.Join(d.Warnings(), "\n")
	if !strings.Contains(warn, `rule "pss-restricted": runAsNonRoot`) || strings.Contains(warn, "privileged at") {
		t.Errorf("warnings:\n%s", warn)
	}
}
