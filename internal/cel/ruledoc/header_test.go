package ruledoc

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"mamori/internal/model"
)

// readRules reads the rules of one file with an own field "condition"
// (required), checking headers with attack; it returns the headers read
// and the errors as "file:line:col: msg" lines, in order.
func readRules(t *testing.T, attack Attack, doc string) ([]*Header, []string) {
	t.Helper()
	r := NewReader(errTest)
	f := File{Name: "r.yaml", Data: []byte(doc)}
	var hs []*Header
	if root := r.Root(f, 1<<20, "rules"); root != nil {
		r.Fields(f, root, "file", map[string]func(*yaml.Node){
			"rules": func(n *yaml.Node) {
				r.Seq(f, n, "rules", func(f File, n *yaml.Node) {
					var cond *yaml.Node
					h := r.Rule(f, n, map[string]func(*yaml.Node){"condition": func(v *yaml.Node) { cond = v }})
					if h == nil {
						return
					}
					r.CheckHeader(f, h, attack)
					r.Need(h, cond != nil, "condition")
					if r.Clean(h) {
						hs = append(hs, h)
					}
				})
			},
		})
	}
	var out []string
	for _, e := range r.Errors() {
		if !errors.Is(e, errTest) {
			t.Errorf("%v does not wrap the reader's error", e)
		}
		out = append(out, e.Error())
	}
	return hs, out
}

func TestRuleHeader(t *testing.T) {
	hs, errs := readRules(t, AttackRequired, `rules:
  - id: a.b_c-1
    title: T
    description: D
    severity: high
    tactic: TA0006
    technique: T1552.001
    tags: [x, y]
    condition: c
`)
	if len(errs) != 0 {
		t.Fatal(errs)
	}
	want := &Header{ID: "a.b_c-1", Title: "T", Description: "D", Severity: model.SeverityHigh, Tactic: "TA0006",
		Technique: "T1552.001", Tags: []string{"x", "y"}, Pos: Pos{File: "r.yaml", Line: 2, Column: 5}, Label: `rule "a.b_c-1"`}
	if len(hs) != 1 {
		t.Fatalf("%d headers", len(hs))
	}
	got := *hs[0]
	got.sev, got.tactic, got.technique, got.nerr = nil, nil, nil, 0
	if !reflect.DeepEqual(&got, want) {
		t.Errorf("header %+v\nwant %+v", got, *want)
	}
}

func TestRuleHeaderErrors(t *testing.T) {
	const good = "    title: t\n    severity: low\n    tactic: TA0002\n    technique: T1059\n    condition: c\n"
	for _, tc := range []struct {
		name   string
		attack Attack
		doc    string
		want   []string // errors (prefixes), in order
	}{
		{"no id", AttackRequired, "rules:\n  - title: t\n", []string{"r.yaml:2:5: rule: id is required"}},
		{"id not a string", AttackRequired, "rules:\n  - id: [x]\n", []string{"r.yaml:2:5: rule: id is required", "r.yaml:2:9: rule: id: want a string"}},
		{"bad id", AttackRequired, "rules:\n  - id: Demo\n", []string{`r.yaml:2:5: rule "Demo": an id is lower-case letters, digits, '.', '_' and '-' (at most 64)`}},
		{"long id", AttackRequired, "rules:\n  - id: " + strings.Repeat("a", 65) + "\n", []string{`r.yaml:2:5: rule "` + strings.Repeat("a", 65) + `": an id is lower-case letters`}},
		{"twice", AttackRequired, "rules:\n  - id: d\n" + good + "  - id: d\n" + good, []string{`r.yaml:8:5: rule "d": already defined at r.yaml:2:5`}},
		{"unknown field names both sets", AttackOptional, "rules:\n  - sevrity: low\n    id: d\n", []string{
			// the same place as the rule: the unknown field is said first
			`r.yaml:2:5: rule "d": unknown field "sevrity" (want condition, description, id, severity, tactic, tags, technique, title)`,
			`r.yaml:2:5: rule "d": title is required`, `r.yaml:2:5: rule "d": severity is required`, `r.yaml:2:5: rule "d": condition is required`}},
		{"required, in order", AttackRequired, "rules:\n  - id: d\n", []string{
			`r.yaml:2:5: rule "d": title is required`, `r.yaml:2:5: rule "d": severity is required`,
			`r.yaml:2:5: rule "d": tactic is required`, `r.yaml:2:5: rule "d": technique is required`,
			`r.yaml:2:5: rule "d": condition is required`}},
		{"optional attack", AttackOptional, "rules:\n  - id: d\n", []string{
			`r.yaml:2:5: rule "d": title is required`, `r.yaml:2:5: rule "d": severity is required`,
			`r.yaml:2:5: rule "d": condition is required`}},
		{"severity", AttackOptional, "rules:\n  - id: d\n    title: t\n    severity: severe\n    condition: c\n",
			[]string{`r.yaml:4:15: rule "d": unknown severity "severe" (want critical, high, medium, low or negligible)`}},
		{"severity unknown", AttackOptional, "rules:\n  - id: d\n    title: t\n    severity: unknown\n    condition: c\n",
			[]string{`r.yaml:4:15: rule "d": unknown severity "unknown"`}},
		{"severity not a string", AttackOptional, "rules:\n  - id: d\n    title: t\n    severity: [x]\n    condition: c\n",
			[]string{`r.yaml:4:15: rule "d": severity: want a string`}},
		{"tactic", AttackOptional, "rules:\n  - id: d\n    title: t\n    severity: low\n    tactic: TA0099\n    condition: c\n",
			[]string{`r.yaml:5:13: rule "d": tactic "TA0099" is not an ATT&CK tactic ID (TA0001-TA0011, TA0040, TA0042, TA0043)`}},
		{"technique", AttackRequired, "rules:\n  - id: d\n    title: t\n    severity: low\n    tactic: TA0002\n    technique: T12\n    condition: c\n",
			[]string{`r.yaml:6:16: rule "d": technique "T12" is not an ATT&CK technique ID (T1234 or T1234.567)`}},
		{"technique without tactic", AttackOptional, "rules:\n  - id: d\n    title: t\n    severity: low\n    technique: T12\n    condition: c\n",
			[]string{`r.yaml:5:16: rule "d": technique "T12" is not an ATT&CK technique ID (T1234 or T1234.567)`,
				`r.yaml:5:16: rule "d": a technique needs its tactic`}},
		{"tags", AttackOptional, "rules:\n  - id: d\n    title: t\n    severity: low\n    tags: x\n    condition: c\n",
			[]string{`r.yaml:5:11: rule "d": tags: want a list of strings`}},
		{"not a mapping", AttackOptional, "rules:\n  - x\n", []string{"r.yaml:2:5: rule: want a mapping", "r.yaml:2:5: rule: id is required"}},
		{"optional, complete", AttackOptional, "rules:\n  - id: d\n    title: t\n    severity: low\n    condition: c\n", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hs, got := readRules(t, tc.attack, tc.doc)
			if len(got) != len(tc.want) {
				t.Fatalf("errors %q\nwant %q", got, tc.want)
			}
			for i, w := range tc.want {
				if !strings.HasPrefix(got[i], w) {
					t.Errorf("error %d %q does not start with %q", i, got[i], w)
				}
			}
			// headers read without an error: the first of "twice", the complete one
			clean := map[string]int{"twice": 1, "optional, complete": 1}[tc.name]
			if len(hs) != clean {
				t.Errorf("%d clean headers, want %d", len(hs), clean)
			}
		})
	}
}

func TestRuleLimitAndHasRule(t *testing.T) {
	var b strings.Builder
	b.WriteString("rules:\n")
	for i := range MaxRules + 3 {
		fmt.Fprintf(&b, "  - {id: r%d, title: t, severity: low, condition: c}\n", i)
	}
	r := NewReader(errTest)
	f := File{Name: "many.yaml", Data: []byte(b.String())}
	root := r.Root(f, 1<<30, "rules")
	n := 0
	r.Fields(f, root, "file", map[string]func(*yaml.Node){
		"rules": func(v *yaml.Node) {
			r.Seq(f, v, "rules", func(f File, v *yaml.Node) {
				if h := r.Rule(f, v, map[string]func(*yaml.Node){"condition": func(*yaml.Node) {}}); h != nil {
					n++
				}
			})
		},
	})
	errs := r.Errors()
	if n != MaxRules || len(errs) != 1 || errs[0].Error() != fmt.Sprintf("many.yaml:%d:5: more than %d rules", MaxRules+2, MaxRules) {
		t.Fatalf("%d rules read, errors %v", n, errs)
	}
	if !r.HasRule("r0") || !r.HasRule(fmt.Sprintf("r%d", MaxRules-1)) || r.HasRule(fmt.Sprintf("r%d", MaxRules)) {
		t.Error("HasRule does not match the rules read")
	}
}

func TestTactics(t *testing.T) {
	ts := Tactics()
	if len(ts) != 14 || ts["TA0006"] != "Credential Access" {
		t.Fatalf("tactics %v", ts)
	}
	ts["TA0006"] = "changed"
	delete(ts, "TA0001")
	if again := Tactics(); again["TA0006"] != "Credential Access" || len(again) != 14 {
		t.Error("Tactics returns the package's own map")
	}
}
