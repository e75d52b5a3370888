package agent

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"mamori/internal/model"
	"mamori/internal/policy"
	"mamori/internal/runtime/event"
	"mamori/internal/runtime/rules"
)

const testPolicy = `apiVersion: mamori.dev/v1
kind: Policy
name: prod
runtime:
  - ruleset: default
    match: {namespaces: [payments]}
    action: isolate
    rules: {crypto-miner-binary: terminate}
  - ruleset: default
    match: {selector: {matchLabels: {tier: web}}}
exceptions:
  - name: miner-test
    reason: the load test runs a miner binary on purpose
    rules: [crypto-miner-binary]
    namespaces: [loadtest]
`

func writeFile(t *testing.T, name, data string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func minerExec(ns string, labels map[string]string) *event.Event {
	e := &event.Event{Kind: event.KindExec}
	e.Process.PID, e.Process.Exe, e.Process.Comm = 10, "/usr/bin/xmrig", "xmrig"
	e.Process.Args = []string{"xmrig"}
	e.Container = event.Container{ID: "c-" + ns, Name: "app", Namespace: ns, Pod: "p", Labels: labels, Runtime: "cri"}
	return e
}

func TestRulesetsFromPolicy(t *testing.T) {
	rc, err := LoadRuleConfig(nil, writeFile(t, "p.yaml", testPolicy))
	if err != nil {
		t.Fatal(err)
	}
	st, err := buildRules(rc)
	if err != nil {
		t.Fatal(err)
	}
	evr := st.engine.NewEvaluator()
	action := func(e *event.Event) model.Action {
		ms, err := evr.Eval(&rules.Input{Event: e})
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range ms {
			if m.Rule.ID == "crypto-miner-binary" {
				return m.Action
			}
		}
		return ""
	}
	if a := action(minerExec("payments", nil)); a != model.ActionTerminate {
		t.Errorf("miner in payments: %q, want terminate (the rule's own action in the reference)", a)
	}
	if a := action(minerExec("web", map[string]string{"tier": "web"})); a != model.ActionLog {
		t.Errorf("miner in a tier=web pod: %q, want log (each rule's own action)", a)
	}
	if a := action(minerExec("other", nil)); a != "" {
		t.Errorf("miner in a namespace no reference selects: %q, want no match", a)
	}
	// Other rules of the payments reference take its action.
	sh := minerExec("payments", nil)
	sh.Process.Exe, sh.Process.Comm, sh.Process.Args, sh.Process.TTY = "/bin/bash", "bash", []string{"bash"}, true
	ms, _ := evr.Eval(&rules.Input{Event: sh})
	if len(ms) != 1 || ms[0].Rule.ID != "terminal-shell-in-container" || ms[0].Action != model.ActionIsolate {
		t.Errorf("terminal shell in payments: %+v", ms)
	}
	// The policy's exception waives the miner rule in loadtest (a match
	// there is dropped by the module, counted as exempted).
	d := st.policy.Evaluate(&policy.RuntimeHit{Ruleset: "default", Rule: "crypto-miner-binary", Action: model.ActionTerminate,
		Namespace: "loadtest"}, timeNow())
	if len(d.Exempted) != 1 || len(d.Violations) != 0 {
		t.Errorf("exception not applied: %+v", d)
	}
}

func TestRulesetsFromPolicyErrors(t *testing.T) {
	cat, err := rules.LoadBuiltin()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		ref  policy.RulesetRef
		want string
	}{
		{policy.RulesetRef{Ruleset: "nope"}, `no ruleset "nope"`},
		{policy.RulesetRef{Ruleset: "default", Rules: map[string]model.Action{"no-such-rule": "log"}}, `unknown rule "no-such-rule"`},
		{policy.RulesetRef{Ruleset: "default", Match: &policy.Match{Kinds: []string{"Pod"}}}, "match takes namespaces and selector only"},
	} {
		_, err := RulesetsFromPolicy(cat, []policy.RulesetRef{c.ref})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: error %v, want %q", c.ref, err, c.want)
		}
	}
	// A named ruleset from a rule file, and a rule outside it.
	cat, err = rules.LoadBuiltin(rules.Source{Name: "r.yaml", Data: []byte(`
rulesets:
  - name: miners
    rules: [{tag: miner}]
`)})
	if err != nil {
		t.Fatal(err)
	}
	sets, err := RulesetsFromPolicy(cat, []policy.RulesetRef{{Ruleset: "miners", Action: model.ActionTerminate}})
	if err != nil || len(sets) != 1 || len(sets[0].Entries) != 3 {
		t.Fatalf("miners ruleset: %v %+v", err, sets)
	}
	_, err = RulesetsFromPolicy(cat, []policy.RulesetRef{{Ruleset: "miners", Rules: map[string]model.Action{"ptrace-attach": "log"}}})
	if err == nil || !strings.Contains(err.Error(), `rule "ptrace-attach" is not in ruleset "miners"`) {
		t.Fatalf("rule outside the ruleset: %v", err)
	}
}

// TestBadRuleFiles: a rule file with errors or a too-expensive condition
// stops the agent at start with the file, line and reason.
func TestBadRuleFiles(t *testing.T) {
	bad := writeFile(t, "bad.yaml", `rules:
  - id: demo
    title: Demo
    severity: high
    tactic: TA0002
    technique: T1059
    kinds: [exec]
    condition: proc.nmae == "x"
`)
	expensive := writeFile(t, "cost.yaml", `rules:
  - id: costly
    title: Costly
    severity: low
    tactic: TA0002
    technique: T1059
    kinds: [exec]
    condition: proc.args.exists(a, proc.args.exists(b, a + b == proc.cmdline))
`)
	for _, c := range []struct{ file, want string }{
		{bad, "bad.yaml:8:20: rule \"demo\": condition: unknown field 'proc.nmae' (did you mean 'proc.name'?)"},
		{expensive, "cost.yaml:8:16: rule \"costly\": condition: estimated cost"},
	} {
		cfg := Defaults()
		cfg.Modules.Runtime.Rules = []string{c.file}
		_, err := New(cfg)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("agent with %s: error %v, want %q", filepath.Base(c.file), err, c.want)
		}
	}
	cfg := Defaults()
	cfg.Modules.Runtime.Rules = []string{writeFile(t, "huge.yaml", strings.Repeat("#", rules.MaxFileSize+1))}
	if _, err := New(cfg); err == nil || !strings.Contains(err.Error(), "over the limit") {
		t.Errorf("oversized rule file: %v", err)
	}
}
