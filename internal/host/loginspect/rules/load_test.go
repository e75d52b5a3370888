package rules

import (
	"errors"
	"strings"
	"testing"

	"mamori/internal/cel"
)

// TestLoadErrors pins the message and position of every kind of error a rule file can have.
func TestLoadErrors(t *testing.T) {
	for _, tc := range []struct{ yaml, want string }{
		{"rules:\n  - id: demo\n    title: t\n    sevrity: low\n    condition: \"true\"\n",
			`u.yaml:4:5: rule "demo": unknown field "sevrity" (want condition, description, events, id, output, severity, sources, tactic, tags, technique, threshold, title)`},
		{"rules:\n  - id: demo\n    title: t\n    condition: \"true\"\n", `u.yaml:2:5: rule "demo": severity is required`},
		{"rules:\n  - id: Demo\n", `u.yaml:2:5: rule "Demo": an id is lower-case letters, digits, '.', '_' and '-' (at most 64)`},
		{"rules:\n  - id: demo\n    title: t\n    severity: low\n    tactic: TA0099\n    condition: \"true\"\n",
			`u.yaml:5:13: rule "demo": tactic "TA0099" is not an ATT&CK tactic ID (TA0001-TA0011, TA0040, TA0042, TA0043)`},
		{"rules:\n  - id: demo\n    title: t\n    severity: low\n    technique: T1110\n    condition: \"true\"\n",
			`u.yaml:5:16: rule "demo": a technique needs its tactic`},
		{"rules:\n  - id: demo\n    title: t\n    severity: low\n    sources: [sylog]\n    condition: \"true\"\n",
			`u.yaml:5:15: rule "demo": unknown source "sylog" (want syslog, journal, container, kubelet, k8s_audit, auditd, file)`},
		{"rules:\n  - id: demo\n    title: t\n    severity: low\n    events: [ssh_failed]\n    condition: \"true\"\n",
			`u.yaml:5:14: rule "demo": unknown event type "ssh_failed"`},
		{"rules:\n  - id: demo\n    title: t\n    severity: low\n    condition: user.nmae == 'x'\n",
			`u.yaml:5:20: rule "demo": condition: unknown field 'user.nmae' (did you mean 'user.name'?)`},
		{"rules:\n  - id: demo\n    title: t\n    severity: low\n    condition: event.type in ssh_types\n",
			`u.yaml:5:30: rule "demo": condition: unknown list or macro 'ssh_types'`},
		{"rules:\n  - id: demo\n    title: t\n    severity: low\n    condition: src.port.startsWith('2')\n",
			`u.yaml:5:35: rule "demo": condition: found no matching overload for 'startsWith' applied to 'int.(string)'`},
		{"rules:\n  - id: demo\n    title: t\n    severity: low\n    condition: log.message\n",
			`u.yaml:5:16: rule "demo": condition: expression must be a bool, not a string`},
		{"rules:\n  - id: demo\n    title: t\n    severity: low\n    sources: [syslog]\n    condition: audit.verb == 'get'\n",
			`u.yaml:6:16: rule "demo": condition reads audit.verb, which syslog records do not have (narrow the rule's sources)`},
		{"rules:\n  - id: demo\n    title: t\n    severity: low\n    condition: log.fields.all(k, log.fields.all(j, log.message.matches(k + j)))\n",
			`u.yaml:5:16: rule "demo": condition: estimated cost`},
		{"rules:\n  - id: demo\n    title: t\n    severity: low\n    condition: \"true\"\n    threshold: {count: 0, window: 1m}\n",
			`u.yaml:6:24: rule "demo": threshold count: want a number from 1 to 10000`},
		{"rules:\n  - id: demo\n    title: t\n    severity: low\n    condition: \"true\"\n    threshold: {count: 5, window: 2d}\n",
			`u.yaml:6:35: rule "demo": threshold window: want a duration from 1s to 24h ("90s", "10m")`},
		{"rules:\n  - id: demo\n    title: t\n    severity: low\n    condition: \"true\"\n    threshold: {count: 5}\n",
			`u.yaml:6:16: rule "demo": threshold: window is required`},
		{"rules:\n  - id: demo\n    title: t\n    severity: low\n    condition: \"true\"\n    threshold: {count: 5, window: 1m, key: [src.addr]}\n",
			`u.yaml:6:16: rule "demo": threshold key: unknown field "src.addr"`},
		{"rules:\n  - id: demo\n    title: t\n    severity: low\n    condition: \"true\"\n    threshold: {count: 5, window: 1m, key: [audit.groups]}\n",
			`u.yaml:6:16: rule "demo": threshold key: audit.groups is a list(string); a key is made of string and int fields`},
		{"rules:\n  - id: demo\n    title: t\n    severity: low\n    sources: [syslog]\n    condition: \"true\"\n    threshold: {count: 5, window: 1m, key: [container.pod]}\n",
			`u.yaml:7:16: rule "demo": threshold key: container.pod is not set for syslog records`},
		{"rules:\n  - id: demo\n    title: t\n    severity: low\n    condition: \"true\"\n    threshold: {count: 5, window: 1m, weight: user.name}\n",
			`u.yaml:6:47: rule "demo": threshold weight must be an int, not a string`},
		{"rules:\n  - id: demo\n    title: t\n    severity: low\n    condition: \"true\"\n    output: \"{count} from {src.ip}\"\n",
			`u.yaml:6:13: rule "demo": output: {count} needs a threshold`},
		{"rules:\n  - id: demo\n    title: t\n    severity: low\n    condition: \"true\"\n    output: \"from {src.addr}\"\n",
			`u.yaml:6:13: rule "demo": output: unknown field {src.addr}`},
		{"rules:\n  - id: demo\n    title: t\n    severity: low\n    condition: \"true\"\n  - id: demo\n    title: t\n    severity: low\n    condition: \"true\"\n",
			`u.yaml:6:5: rule "demo": already defined at u.yaml:2:5`},
		{"disabled: [nope]\n", `u.yaml:1:12: disabled: unknown rule "nope"`},
		{"lists:\n  - {name: a, items: [x]}\n  - {name: a, items: [y]}\n", `u.yaml:3:5: list "a": already defined at u.yaml:2:5 (use append: true to extend it)`},
		{"macros:\n  - {name: a, condition: b}\n  - {name: b, condition: a}\n", `macro a is defined in terms of itself (a -> b -> a)`},
		{"rules: [\n", `u.yaml:1: YAML: did not find expected node content`},
		{"rules: 5\n", `u.yaml:1:8: rules: want a list`},
		{"- 1\n", `u.yaml:1:1: want a mapping with lists, macros, rules and disabled`},
	} {
		_, err := Load(Source{Name: "u.yaml", Data: []byte(tc.yaml)})
		if err == nil {
			t.Errorf("%q: no error, want %s", tc.yaml, tc.want)
			continue
		}
		if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q:\n got  %s\n want %s", tc.yaml, err, tc.want)
		}
		var ce *cel.Error
		if !errors.As(err, &ce) {
			t.Errorf("%q: %T is not a positioned error", tc.yaml, err)
		}
	}
}

func TestLoadLimitsAndBombs(t *testing.T) {
	if _, err := Load(Source{Name: "big.yaml", Data: make([]byte, MaxFileSize+1)}); err == nil || !strings.Contains(err.Error(), "more than the limit") {
		t.Fatal(err)
	}
	bomb := "a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]\ne: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]\nrules: [*e, *e, *e, *e, *e, *e, *e, *e, *e]\n"
	if _, err := Load(Source{Name: "bomb.yaml", Data: []byte(bomb)}); err == nil {
		t.Fatal("alias bomb loaded")
	}
}

func TestDisableAndExtend(t *testing.T) {
	cat, err := LoadBuiltin(Source{Name: "site.yaml", Data: []byte(`
disabled: [service-stopped]
lists:
  - {name: privileged_groups, append: true, items: [k8s-admins]}
rules:
  - id: my-ssh-accepted-root
    title: root logged in over SSH
    severity: medium
    tactic: TA0001
    technique: T1078.003
    sources: [syslog, journal]
    events: [ssh_accepted]
    condition: user.name == "root"
    output: "root login from {src.ip} ({auth.method})"
`)})
	if err != nil {
		t.Fatal(err)
	}
	if cat.Rule("service-stopped") != nil || len(cat.Disabled()) != 1 || cat.Rule("my-ssh-accepted-root") == nil {
		t.Fatalf("%v %v", cat.Disabled(), cat.Rule("my-ssh-accepted-root"))
	}
	e, _ := NewEngine(cat)
	for _, tc := range []struct{ line, rule string }{
		{"08:00:00.0+00:00 h usermod[5]: add 'eve' to group 'k8s-admins'", "privileged-group-member"},
		{"08:00:00.0+00:00 h sshd[5]: Accepted publickey for root from 192.0.2.4 port 2 ssh2: ED25519 SHA256:x", "my-ssh-accepted-root"},
	} {
		ds := process(t, e, syslogRec(t, tc.line))
		if len(ds) != 1 || ds[0].Rule.ID != tc.rule {
			t.Fatalf("%s: %v", tc.line, ids(ds))
		}
		if tc.rule == "my-ssh-accepted-root" && ds[0].Message != "root login from 192.0.2.4 (publickey)" {
			t.Fatalf("%q", ds[0].Message)
		}
	}
	if ds := process(t, e, syslogRec(t, "08:00:00.0+00:00 h systemd[1]: Stopped cron.service - Cron.")); len(ds) != 0 {
		t.Fatalf("disabled rule ran: %v", ids(ds))
	}
}

// TestBuiltinCosts keeps every built-in rule under half the cost limit, so lists can grow.
func TestBuiltinCosts(t *testing.T) {
	cat, err := LoadBuiltin()
	if err != nil {
		t.Fatal(err)
	}
	if len(cat.Rules()) < 20 {
		t.Fatalf("%d rules", len(cat.Rules()))
	}
	for _, r := range cat.Rules() {
		if c := r.Program().Cost(); c.Max > RuleCostLimit/2 {
			t.Errorf("%s: estimated cost %d", r.ID, c.Max)
		}
		if r.Description == "" && r.Output == "" {
			t.Errorf("%s: no description or output", r.ID)
		}
	}
}
