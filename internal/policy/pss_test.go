package policy

import (
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/yaml"
)

var testNow = time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)

// manifest is a testdata manifest with its expectations, read from its
// leading comments (# control: X, # kind: X, # expect: field).
type manifest struct {
	file    string
	control string
	kind    string
	expect  []string
	w       *Workload
}

func loadManifests(t testing.TB, dir string) []manifest {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", dir, "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests in testdata/%s: %v", dir, err)
	}
	var out []manifest
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		m := manifest{file: filepath.Base(f)}
		for _, line := range strings.Split(string(data), "\n") {
			k, v, ok := strings.Cut(strings.TrimPrefix(line, "# "), ": ")
			if !strings.HasPrefix(line, "# ") || !ok {
				continue
			}
			switch k {
			case "control":
				m.control = v
			case "kind":
				m.kind = v
			case "expect":
				m.expect = append(m.expect, v)
			}
		}
		js, err := yaml.YAMLToJSON(data)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if m.w, err = DecodeWorkload(js); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		out = append(out, m)
	}
	return out
}

func mustCompile(t testing.TB, doc string) *Evaluator {
	t.Helper()
	p, err := Parse("test.yaml", []byte(doc))
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	ev, err := Compile(p)
	if err != nil {
		t.Fatalf("compile: %v", err)
	}
	return ev
}

func policyDoc(rules string) string {
	return "apiVersion: mamori.dev/v1\nkind: Policy\nname: test\nadmission:\n" + rules
}

// fieldsOf lists the fields of the violations of the given controls.
func fieldsOf(d Decision, controls ...string) []string {
	var out []string
	for _, v := range d.Violations {
		if slices.Contains(controls, v.Control) {
			out = append(out, v.Field)
		}
	}
	sort.Strings(out)
	return out
}

func sorted(ss []string) []string {
	out := slices.Clone(ss)
	sort.Strings(out)
	return out
}

// TestPSSControls: every Pod Security Standards control, violated and
// satisfied, one manifest each (testdata/pss), checked three ways: the
// control alone, the level it belongs to, and the level above.
func TestPSSControls(t *testing.T) {
	baseline := mustCompile(t, policyDoc("  - {name: baseline, action: block, podSecurity: {level: baseline}}\n"))
	restricted := mustCompile(t, policyDoc("  - {name: restricted, action: block, podSecurity: {level: restricted}}\n"))
	seen := map[string][2]int{} // control -> failing, passing manifests
	for _, m := range loadManifests(t, "pss") {
		t.Run(m.file, func(t *testing.T) {
			if m.control == "restricted" {
				d := restricted.Evaluate(m.w, testNow)
				if got := fieldsOf(d, append(slices.Clone(BaselineControls), RestrictedControls...)...); len(got) != 0 || d.Action != "log" {
					t.Errorf("restricted pod violates: %v", d.Violations)
				}
				return
			}
			n := seen[m.control]
			if len(m.expect) > 0 {
				n[0]++
			} else {
				n[1]++
			}
			seen[m.control] = n
			alone := mustCompile(t, policyDoc("  - {name: r, action: block, "+m.control+": {}}\n"))
			d := alone.Evaluate(m.w, testNow)
			if got := fieldsOf(d, m.control); !slices.Equal(got, sorted(m.expect)) {
				t.Errorf("%s alone: fields %q, want %q", m.control, got, sorted(m.expect))
			}
			if len(m.expect) > 0 && d.Action != "block" {
				t.Errorf("action %q, want block", d.Action)
			}
			for _, v := range d.Violations {
				if v.Control == CtlUnknownImage {
					continue // these images were never scanned: logged
				}
				if v.Policy != "test" || v.Rule != "r" || v.Message == "" {
					t.Errorf("violation without policy, rule or message: %+v", v)
				}
			}
			isBaseline := slices.Contains(BaselineControls, m.control)
			if isBaseline {
				d := baseline.Evaluate(m.w, testNow)
				if got := fieldsOf(d, m.control); !slices.Equal(got, sorted(m.expect)) {
					t.Errorf("baseline level: fields %q, want %q", got, sorted(m.expect))
				}
			}
			// The restricted level includes baseline; a field flagged by a
			// baseline and a restricted control of one family is reported once.
			d = restricted.Evaluate(m.w, testNow)
			fam := family(m.control)
			var got []string
			for _, v := range d.Violations {
				if family(v.Control) == fam {
					got = append(got, v.Field)
				}
			}
			sort.Strings(got)
			for _, want := range m.expect {
				if _, ok := slices.BinarySearch(got, want); !ok {
					t.Errorf("restricted level: %s not reported (got %q)", want, got)
				}
			}
			if len(got) != len(slices.Compact(slices.Clone(got))) {
				t.Errorf("restricted level reports a field twice: %q", got)
			}
		})
	}
	for _, c := range append(slices.Clone(BaselineControls), RestrictedControls...) {
		if n := seen[c]; n[0] == 0 || n[1] == 0 {
			t.Errorf("control %s has %d violating and %d satisfying manifests; want at least one each", c, n[0], n[1])
		}
	}
}

// TestWorkloadKinds: every pod controller kind, with the field paths of its
// pod template.
func TestWorkloadKinds(t *testing.T) {
	ev := mustCompile(t, policyDoc("  - {name: baseline, action: block, podSecurity: {level: baseline}}\n"))
	kinds := map[string]bool{}
	for _, m := range loadManifests(t, "kinds") {
		t.Run(m.file, func(t *testing.T) {
			if m.w.Kind != m.kind || m.w.Name != "web" || m.w.Namespace != "shop" || m.w.PodLabels["app"] != "web" || m.w.Labels["team"] != "shop" {
				t.Errorf("workload %s %s/%s pod labels %v labels %v", m.w.Kind, m.w.Namespace, m.w.Name, m.w.PodLabels, m.w.Labels)
			}
			kinds[m.w.Kind] = true
			d := ev.Evaluate(m.w, testNow)
			var got []string
			for _, v := range d.Violations {
				if v.Control != CtlUnknownImage {
					got = append(got, v.Field)
				}
			}
			sort.Strings(got)
			if !slices.Equal(got, sorted(m.expect)) {
				t.Errorf("fields %q, want %q", got, sorted(m.expect))
			}
			if d.Action != "block" || !strings.Contains(d.Message(), `policy "test" rule "baseline": privileged at `) {
				t.Errorf("decision %s: %s", d.Action, d.Message())
			}
		})
	}
	for _, k := range WorkloadKinds {
		if k != "Pod" && !kinds[k] {
			t.Errorf("kind %s has no manifest", k)
		}
	}
}
