package rules

import (
	"errors"
	"strings"
	"testing"

	"mamori/internal/cel"
)

const goodRule = `
rules:
  - id: demo
    title: Demo
    severity: high
    tactic: TA0002
    technique: T1059.004
    kinds: [exec]
    condition: proc.name == "sh"
`

func TestLoadErrors(t *testing.T) {
	cases := []struct {
		name string
		yaml string
		want []string // exact error lines
		is   error
	}{
		{"unknown field", `
rules:
  - id: demo
    title: Demo
    sevrity: high
    severity: high
    tactic: TA0002
    technique: T1059.004
    kinds: [exec]
    condition: proc.name == "sh"
`, []string{`u.yaml:5:5: rule "demo": unknown field "sevrity" (want action, condition, description, id, kinds, output, severity, tactic, tags, technique, title)`}, ErrInvalid},
		{"unknown top-level field", "rule:\n  - id: x\n", []string{`u.yaml:1:1: file: unknown field "rule" (want lists, macros, rules, rulesets)`}, ErrInvalid},
		{"bad technique", strings.Replace(goodRule, "T1059.004", "T59", 1),
			[]string{`u.yaml:7:16: rule "demo": technique "T59" is not an ATT&CK technique ID (T1234 or T1234.567)`}, ErrInvalid},
		{"bad tactic", strings.Replace(goodRule, "TA0002", "TA0099", 1),
			[]string{`u.yaml:6:13: rule "demo": tactic "TA0099" is not an ATT&CK tactic ID (TA0001-TA0011, TA0040, TA0042, TA0043)`}, ErrInvalid},
		{"unknown event kind", strings.Replace(goodRule, "[exec]", "[exec, exce]", 1),
			[]string{`u.yaml:8:19: rule "demo": unknown event kind "exce"`}, ErrInvalid},
		{"unknown list", strings.Replace(goodRule, `proc.name == "sh"`, `proc.name in shell_binarys`, 1),
			[]string{`u.yaml:9:29: rule "demo": condition: unknown list or macro 'shell_binarys'`}, cel.ErrType},
		{"unknown field in condition", strings.Replace(goodRule, `proc.name == "sh"`, `proc.nmae == "sh"`, 1),
			[]string{`u.yaml:9:20: rule "demo": condition: unknown field 'proc.nmae' (did you mean 'proc.name'?)`}, cel.ErrType},
		{"CEL type error", strings.Replace(goodRule, `proc.name == "sh"`, `proc.exe.startsWith(1)`, 1),
			[]string{`u.yaml:9:35: rule "demo": condition: found no matching overload for 'startsWith' applied to 'string.(int)'`}, cel.ErrType},
		{"not a condition", strings.Replace(goodRule, `proc.name == "sh"`, `proc.name`, 1),
			[]string{`u.yaml:9:16: rule "demo": condition: expression must be a bool, not a string`}, cel.ErrType},
		{"too expensive", strings.Replace(goodRule, `proc.name == "sh"`, `proc.args.exists(a, proc.args.exists(b, a + b == proc.cmdline))`, 1),
			[]string{`u.yaml:9:16: rule "demo": condition: estimated cost 5067138 exceeds the limit of 50000`}, cel.ErrTooExpensive},
		{"field not set for the kind", strings.Replace(goodRule, `proc.name == "sh"`, `file.path == "/etc/shadow"`, 1),
			[]string{`u.yaml:9:16: rule "demo": condition reads file.path, which exec events do not have`}, ErrInvalid},
		{"output field", strings.Replace(goodRule, "    condition:", "    output: \"{proc.exe} read {file.path}\"\n    condition:", 1),
			[]string{`u.yaml:9:13: rule "demo": output: {file.path} is not set for exec events`}, ErrInvalid},
		{"missing fields", "rules:\n  - id: demo\n    title: Demo\n",
			[]string{
				`u.yaml:2:5: rule "demo": severity is required`,
				`u.yaml:2:5: rule "demo": tactic is required`,
				`u.yaml:2:5: rule "demo": technique is required`,
				`u.yaml:2:5: rule "demo": kinds is required`,
				`u.yaml:2:5: rule "demo": condition is required`,
			}, ErrInvalid},
		{"bad action", strings.Replace(goodRule, "    kinds:", "    action: kill\n    kinds:", 1),
			[]string{`u.yaml:8:13: rule "demo": unknown action "kill" (want log, isolate or terminate)`}, ErrInvalid},
		{"bad severity", strings.Replace(goodRule, "severity: high", "severity: urgent", 1),
			[]string{`u.yaml:5:15: rule "demo": unknown severity "urgent" (want critical, high, medium, low or negligible)`}, ErrInvalid},
		{"duplicate id", goodRule + strings.TrimPrefix(goodRule, "\nrules:\n"),
			[]string{`u.yaml:10:5: rule "demo": already defined at u.yaml:3:5`}, ErrInvalid},
		{"bad id", strings.Replace(goodRule, "id: demo", "id: Demo Rule", 1),
			[]string{`u.yaml:3:5: rule "Demo Rule": an id is lower-case letters, digits, '.', '_' and '-' (at most 64)`}, ErrInvalid},
		{"syntax error in YAML", "rules:\n  - id: [\n", []string{`u.yaml:2: YAML: did not find expected node content`}, ErrInvalid},
		{"CEL syntax error", strings.Replace(goodRule, `proc.name == "sh"`, `proc.name == `, 1),
			[]string{`u.yaml:9:28: rule "demo": condition: Syntax error: mismatched input '<EOF>' expecting {'[', '{', '(', '.', '-', '!', 'true', 'false', 'null', NUM_FLOAT, NUM_INT, NUM_UINT, STRING, BYTES, IDENTIFIER}`}, cel.ErrSyntax},
		{"append to unknown list", "lists:\n  - name: mine\n    append: true\n    items: [a]\n",
			[]string{`u.yaml:2:5: list "mine": append to a list that is not defined before`}, ErrInvalid},
		{"macro cycle", "macros:\n  - name: a\n    condition: b\n  - name: b\n    condition: a\n",
			[]string{`u.yaml:3:16: macro a is defined in terms of itself (a -> b -> a)`}, cel.ErrDeclaration},
		{"macro type error", "macros:\n  - name: m\n    condition: proc.uid == \"0\"\n",
			[]string{`u.yaml:3:25: macro m: found no matching overload for '_==_' applied to '(int, string)'`}, cel.ErrType},
		{"ruleset unknown rule", goodRule + "rulesets:\n  - name: rs\n    rules:\n      - id: nope\n",
			[]string{`u.yaml:13:9: ruleset "rs": unknown rule "nope"`}, ErrInvalid},
		{"ruleset bad selector", goodRule + "rulesets:\n  - name: rs\n    labels:\n      matchExpressions:\n        - {key: app, operator: Like, values: [x]}\n    rules:\n      - all: true\n",
			[]string{`u.yaml:13:7: ruleset "rs": labels: match expression on "app": unknown operator "Like" (want In, NotIn, Exists or DoesNotExist)`}, ErrInvalid},
		{"ruleset entry", goodRule + "rulesets:\n  - name: rs\n    rules:\n      - id: demo\n        tag: x\n",
			[]string{`u.yaml:13:9: ruleset "rs": a rule entry names exactly one of id, tag or all: true`}, ErrInvalid},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Load(Source{Name: "u.yaml", Data: []byte(c.yaml)})
			if err == nil {
				t.Fatal("loaded")
			}
			got := strings.Split(err.Error(), "\n")
			if strings.Join(got, "\n") != strings.Join(c.want, "\n") {
				t.Errorf("errors:\n%s\nwant:\n%s", err, strings.Join(c.want, "\n"))
			}
			if !errors.Is(err, c.is) {
				t.Errorf("error is not %v", c.is)
			}
		})
	}
}

func TestLoadListsAppendAndMacros(t *testing.T) {
	user := `
lists:
  - name: shell_binaries
    append: true
    items: [myshell]
rules:
  - id: my-shell
    title: My shell
    severity: low
    tactic: TA0002
    technique: T1059
    kinds: [exec]
    condition: in_container && shell_proc && proc.uid == 0
    output: "{proc.name} as root in {container.name} labels {container.labels}"
    tags: [custom]
`
	cat, err := LoadBuiltin(Source{Name: "user.yaml", Data: []byte(user)})
	if err != nil {
		t.Fatal(err)
	}
	e, err := NewEngine(cat, &Ruleset{Name: "only-mine", Entries: []Entry{{ID: "my-shell", Action: "terminate"}}})
	if err != nil {
		t.Fatal(err)
	}
	ev := e.NewEvaluator()
	in := mk("exec", ctr, proc("/opt/myshell"), uid(0))
	ms, err := ev.Eval(in)
	if err != nil || len(ms) != 1 || ms[0].Rule.ID != "my-shell" || ms[0].Action != "terminate" || ms[0].Ruleset != "only-mine" {
		t.Fatalf("matches %+v err %v", ms, err)
	}
	if got, want := ms[0].Message(in), `"myshell" as root in "web" labels {"app": "web"}`; got != want {
		t.Errorf("message %s, want %s", got, want)
	}
}

func TestEmptyAndHostileFiles(t *testing.T) {
	if _, err := Load(Source{Name: "empty.yaml"}); err != nil {
		t.Fatal(err)
	}
	big := make([]byte, MaxFileSize+1)
	if _, err := Load(Source{Name: "big.yaml", Data: big}); err == nil || !strings.Contains(err.Error(), "more than the limit") {
		t.Fatalf("err = %v", err)
	}
	// A billion-laughs alias bomb is refused by the YAML decoder, not expanded.
	bomb := "a: &a [x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\n" +
		"d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\nf: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]\n" +
		"g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]\nh: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]\nrules: [*h,*h,*h,*h,*h,*h,*h,*h,*h]\n"
	if _, err := Load(Source{Name: "bomb.yaml", Data: []byte(bomb)}); err == nil {
		t.Fatal("alias bomb loaded")
	}
	// Non-string scalars and wrong shapes are errors, not panics.
	for _, doc := range []string{"rules: 3\n", "rules: [3]\n", "rules:\n  - id: {a: b}\n", "lists: [{name: x, items: 3}]\n",
		"macros: [{name: m, condition: [a]}]\n", "rulesets: [{name: r, rules: [{id: [x]}]}]\n", "[1, 2]\n", "rules:\n  - ~\n"} {
		if _, err := Load(Source{Name: "x.yaml", Data: []byte(doc)}); err == nil {
			t.Errorf("%q loaded", doc)
		}
	}
}
