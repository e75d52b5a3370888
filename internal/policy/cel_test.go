package policy

import (
	"errors"
	"strings"
	"testing"
	"time"

	"mamori/internal/model"
)

// TestCELRules: custom rules over the object, its namespace and its images.
func TestCELRules(t *testing.T) {
	w := workload(t, twoImages)
	w.NamespaceLabels = map[string]string{"env": "production"}
	w.Images = map[string]ImageScan{
		"registry.example.com/shop/web:1.2": scanned(vulnsFixture(), findingsFixture(), testNow.Add(-time.Hour)),
	}
	tests := []struct {
		expr      string
		violation bool
	}{
		{`!has(object.spec.replicas)`, true},
		{`object.kind == "Deployment" && object.metadata.labels.team == "shop"`, true},
		{`object.spec.template.spec.containers.exists(c, c.image.endsWith(":latest"))`, false},
		{`object.spec.template.spec.containers.size() == 2`, true},
		{`namespaceObject.metadata.labels.env == "production" && !("owner" in object.metadata.labels)`, true},
		{`namespaceObject.metadata.name == "prod"`, true},
		{`images.exists(i, i.counts.critical > 1)`, true},
		{`images.exists(i, !i.scanned && i.registry == "docker.io" && i.repository == "library/redis")`, true},
		{`vulnerabilities.exists(v, v.severityLevel >= 5 && v.fixable && v.cvss >= 9.5)`, true},
		{`vulnerabilities.exists(v, has(v.published) && v.published > timestamp("2026-10-01T00:00:00Z"))`, true},
		{`findings.exists(f, f.kind == "malware")`, true},
		{`findings.filter(f, f.kind == "secret").size() > 5`, false},
		{`path.under("/var/log/pods", "/var/log")`, true}, // internal/cel's shared library
	}
	for _, tt := range tests {
		t.Run(tt.expr, func(t *testing.T) {
			doc := policyDoc("  - name: custom\n    description: custom says no\n    action: block\n    cel: '" + strings.ReplaceAll(tt.expr, "'", "''") + "'\n")
			ev := mustCompile(t, doc)
			d := ev.Evaluate(w, testNow)
			got := false
			for _, v := range d.Violations {
				if v.Rule == "custom" {
					got = true
					if v.Message != "custom says no" || v.Control != CtlCEL {
						t.Errorf("violation %+v", v)
					}
				}
			}
			if got != tt.violation {
				t.Errorf("violation %v, want %v (%v)", got, tt.violation, d.Violations)
			}
		})
	}
}

// TestCELEvalErrorFailsClosed: an expression that cannot be decided counts
// as a violation and says why.
func TestCELEvalErrorFailsClosed(t *testing.T) {
	ev := mustCompile(t, policyDoc("  - {name: c, action: block, cel: 'object.spec.nothing.here == 1'}\n"))
	d := ev.Evaluate(workload(t, twoImages), testNow)
	if d.Action != model.ActionBlock || !strings.Contains(d.Message(), "could not be evaluated") || !strings.Contains(d.Message(), "no such key") {
		t.Errorf("decision %s %s", d.Action, d.Message())
	}
}

// TestCELImageOnly: a rule that reads only images, vulnerabilities and
// findings also judges an image alone (the CI gate); one that reads the
// object does not.
func TestCELImageOnly(t *testing.T) {
	ev := mustCompile(t, policyDoc("  - {name: v, action: block, cel: 'vulnerabilities.exists(v, v.severity == \"CRITICAL\")'}\n  - {name: o, action: block, cel: 'object.kind == \"Pod\"'}\n"))
	d := ev.Evaluate(&Image{Ref: "x", Result: &model.Result{Vulnerabilities: vulnsFixture()}}, testNow)
	if len(d.Violations) != 1 || d.Violations[0].Rule != "v" {
		t.Errorf("violations %v", d.Violations)
	}
}

// TestCELLoadErrors: type errors and expensive expressions are refused at
// load, with the file, line and column of the expression.
func TestCELLoadErrors(t *testing.T) {
	tests := []struct {
		name, rule, want string
	}{
		{"syntax", "    cel: 'object.kind ==' \n", "p.yaml:7:"},
		{"type", "    cel: 'images.size() == \"two\"'\n", "p.yaml:7:"},
		{"not bool", "    cel: 'images.size()'\n", "expression must be a bool"},
		{"undeclared", "    cel: 'request.user == \"x\"'\n", "undeclared reference to 'request'"},
		{"too expensive", "    cel: >-\n      object.spec.containers.all(a,\n        object.spec.containers.all(b,\n          object.spec.containers.all(c, a.name != b.name || b.name != c.name)))\n",
			"p.yaml:7:10: admission[0].cel: too expensive: estimated cost"},
		{"too expensive vulnerabilities", "    cel: 'vulnerabilities.all(a, vulnerabilities.exists(b, a.id == b.id))'\n", "too expensive"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc := "apiVersion: mamori.dev/v1\nkind: Policy\nname: p\nadmission:\n  - name: r\n    action: block\n" + tt.rule
			p, err := Parse("p.yaml", []byte(doc))
			if err != nil {
				t.Fatal(err)
			}
			_, err = Compile(p)
			if err == nil {
				t.Fatal("compiled")
			}
			if !strings.Contains(err.Error(), tt.want) || !errors.Is(err, ErrInvalid) {
				t.Errorf("error %q, want %q", err, tt.want)
			}
		})
	}
}
