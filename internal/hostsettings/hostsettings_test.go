package hostsettings

import (
	"errors"
	"strings"
	"testing"
	"time"

	"mamori/internal/api"
	"mamori/internal/host/antimalware"
	"mamori/internal/host/firewall"
	"mamori/internal/host/integrity"
)

func TestDefaults(t *testing.T) {
	c, err := Resolve(api.HostSettings{})
	if err != nil {
		t.Fatal(err)
	}
	am := c.Antimalware
	if !am.Enabled || am.Mode != antimalware.ModeLog || !am.OnAccess || len(am.Marks) != 1 || am.Marks[0].Path != "/" ||
		!am.Builtin || am.Schedule == nil || am.Schedule.At != DefaultScheduleAt || am.QuarantineDir != "/var/lib/mamori/agent/quarantine" ||
		am.BytesPerSecond != DefaultScanRate || am.Budget != antimalware.DefaultPerFileBudget {
		t.Errorf("antimalware defaults: %+v", am)
	}
	if !c.Integrity.Enabled || c.Integrity.Rules == nil || len(c.Integrity.Rules.Rules) < 5 || c.Integrity.Watch != integrity.WatchAuto ||
		c.Integrity.CompareInterval != time.Hour || c.Integrity.Root != "/" {
		t.Errorf("integrity defaults: %+v", c.Integrity)
	}
	if !c.LogInspect.Enabled || !c.LogInspect.DefaultSources || len(c.LogInspect.Sources) < 5 || c.LogInspect.Journal != "auto" || !c.LogInspect.StartAtEnd {
		t.Errorf("loginspect defaults: %+v", c.LogInspect)
	}
	if c.AppControl.Enabled {
		t.Error("application control is on by default: it needs its allow-list first")
	}
	if !c.Firewall.Enabled || c.Firewall.Mode != api.ModeLog || len(c.Firewall.Ruleset.Rules) != 0 || c.Firewall.ConfirmTimeout != 30*time.Second ||
		c.Firewall.LogGroup != firewall.DefaultLogGroup || c.Firewall.Ruleset.LogGroup != firewall.DefaultLogGroup || c.Firewall.Configured.LogGroup != firewall.DefaultLogGroup {
		t.Errorf("firewall defaults: %+v", c.Firewall)
	}
	if c.PollInterval != api.DefaultHostPollInterval {
		t.Errorf("poll interval %v", c.PollInterval)
	}
}

// TestEveryBadSetting: each bad value is refused with a message naming
// its field, and a document with several problems reports all of them.
func TestEveryBadSetting(t *testing.T) {
	for _, tc := range []struct {
		doc, field string
	}{
		{"pollInterval: 10ms", "pollInterval"},
		{"pollInterval: soon", "pollInterval"},
		{"runtimeRulesets: [{ruleset: nope}]", "runtimeRulesets[0].ruleset"},
		{"runtimeRulesets: [{ruleset: default, action: block}]", "runtimeRulesets[0].action"},
		{"runtimeRulesets: [{ruleset: default, rules: {no-such-rule: log}}]", "runtimeRulesets[0].rules"},
		{"runtimeRulesets: [{ruleset: default}, {ruleset: default, rules: {terminal-shell-in-container: kill}}]", "runtimeRulesets[1].rules.terminal-shell-in-container"},
		{"runtimeRulesets: [{ruleset: default, rules: {terminal-shell-in-container: ''}}]", "runtimeRulesets[0].rules.terminal-shell-in-container"},
		{"antimalware: {mode: prevent}", "antimalware.mode"},
		{"antimalware: {onAccess: {paths: [relative]}}", "antimalware.onAccess.paths[0]"},
		{"antimalware: {onAccess: {paths: [/a/../b]}}", "antimalware.onAccess.paths[0]"},
		{"antimalware: {onAccess: {budget: 5s}}", "antimalware.onAccess.budget"},
		{"antimalware: {onAccess: {workers: 1000}}", "antimalware.onAccess.workers"},
		{"antimalware: {onAccess: {maxFileSize: -1}}", "antimalware.onAccess.maxFileSize"},
		{"antimalware: {engines: {clamd: /run/clamd.ctl}}", "antimalware.engines.clamd"},
		{"antimalware: {engines: {clamd: 'tcp://nohost'}}", "antimalware.engines.clamd"},
		{"antimalware: {engines: {builtin: false}}", "antimalware.engines"},
		{"antimalware: {engines: {yara: [rules]}}", "antimalware.engines.yara[0]"},
		{"antimalware: {exclusions: {paths: [relative/x]}}", "antimalware.exclusions"},
		{"antimalware: {exclusions: {magic: [zz]}}", "antimalware.exclusions"},
		{"antimalware: {exclusions: {allowSHA256: [abc]}}", "antimalware.exclusions"},
		{"antimalware: {scheduled: {at: '25:00'}}", "antimalware.scheduled"},
		{"antimalware: {scheduled: {every: 10s}}", "antimalware.scheduled.every"},
		{"antimalware: {scheduled: {off: true, at: '01:00'}}", "antimalware.scheduled"},
		{"antimalware: {scheduled: {paths: [tmp]}}", "antimalware.scheduled.paths[0]"},
		{"antimalware: {quarantineDir: /}", "antimalware.quarantineDir"},
		{"antimalware: {quarantineDir: q}", "antimalware.quarantineDir"},
		{"antimalware: {quarantineMaxBytes: -5}", "antimalware.quarantineMaxBytes"},
		{"integrity: {mode: block}", "integrity.mode"},
		{"integrity: {rules: [{name: 'Bad Name', paths: [/x]}]}", "integrity.rules"},
		{"integrity: {rules: [{name: x, paths: [rel]}]}", "integrity.rules"},
		{"integrity: {rules: [{name: x, paths: [/x], checks: [colour]}]}", "integrity.rules"},
		{"integrity: {rules: [{name: x, paths: [/x], severity: huge}]}", "integrity.rules"},
		{"integrity: {defaultRules: false}", "integrity.rules"},
		{"integrity: {watch: magic}", "integrity.watch"},
		{"integrity: {compareInterval: 1s}", "integrity.compareInterval"},
		{"integrity: {root: here}", "integrity.root"},
		{"integrity: {baselineFile: base.fim}", "integrity.baselineFile"},
		{"loginspect: {mode: block}", "loginspect.mode"},
		{"loginspect: {sources: [{name: auth, format: syslog, paths: [auth.log]}]}", "loginspect.sources[0].paths[0]"},
		{"loginspect: {sources: [{name: auth, format: xml, paths: [/var/log/x]}]}", "loginspect.sources[0].format"},
		{"loginspect: {sources: [{name: j, format: journal, paths: [/var/log/x]}]}", "loginspect.sources[0].format"},
		{"loginspect: {sources: [{name: a, format: syslog, paths: [/x]}, {name: a, format: syslog, paths: [/y]}]}", "loginspect.sources[1].name"},
		{"loginspect: {sources: [{name: a, format: syslog}]}", "loginspect.sources[0].paths"},
		{"loginspect: {sources: [{name: a, format: syslog, paths: ['/var/log/[x']}]}", "loginspect.sources[0].paths[0]"},
		{"loginspect: {sources: [{format: syslog, paths: [/x]}]}", "loginspect.sources[0].name"},
		{"loginspect: {journal: maybe}", "loginspect.journal"},
		{"loginspect: {journal: 'off', journalDirectory: /run/log/journal}", "loginspect.journalDirectory"},
		{"loginspect: {forward: {address: collector}}", "loginspect.forward.address"},
		{"loginspect: {forward: {address: 'c:514', protocol: dtls}}", "loginspect.forward.protocol"},
		{"loginspect: {forward: {protocol: tcp}}", "loginspect.forward"},
		{"loginspect: {forward: {address: 'c:514', caFile: /ca.pem}}", "loginspect.forward.caFile"},
		{"loginspect: {stateDir: state}", "loginspect.stateDir"},
		{"loginspect: {rules: [my.yaml]}", "loginspect.rules[0]"},
		{"appcontrol: {mode: deny}", "appcontrol.mode"},
		{"appcontrol: {paths: [usr]}", "appcontrol.paths[0]"},
		{"appcontrol: {learn: [apt]}", "appcontrol.learn[0]"},
		{"appcontrol: {learn: [dpkg, dpkg]}", "appcontrol.learn[1]"},
		{"appcontrol: {excludeExe: [backup]}", "appcontrol.excludeExe[0]"},
		{"appcontrol: {allowListFile: list.json}", "appcontrol.allowListFile"},
		{"firewall: {mode: drop}", "firewall.mode"},
		{"firewall: {ruleset: {inputPolicy: reject}}", "firewall.ruleset"},
		{"firewall: {ruleset: {rules: [{name: a, direction: in, action: drop, sources: [10.1.2.3/8]}]}}", "firewall.ruleset"},
		{"firewall: {ruleset: {rules: [{name: a, direction: sideways, action: drop}]}}", "firewall.ruleset"},
		{"firewall: {ruleset: {rules: [{name: a, direction: in, action: drop, destinationPorts: ['22']}]}}", "firewall.ruleset"},
		{"firewall: {confirmTimeout: 1h}", "firewall.confirmTimeout"},
		{"firewall: {stateFile: fw.state}", "firewall.stateFile"},
		{"firewall: {logGroup: 65536}", "firewall.logGroup"},
		{"firewall: {logGroup: -1}", "firewall.logGroup"},
	} {
		_, err := Parse("group.yaml", []byte(tc.doc))
		var se *Error
		if !errors.As(err, &se) || !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: want a settings error, got %v", tc.doc, err)
			continue
		}
		found := false
		for _, p := range se.Problems {
			found = found || strings.HasPrefix(p, tc.field+": ")
		}
		if !found {
			t.Errorf("%s: no problem about %s in %q", tc.doc, tc.field, se.Problems)
		}
	}
	// Several problems at once.
	_, err := Parse("g", []byte("antimalware: {mode: x}\nfirewall: {mode: y}\nintegrity: {watch: z}\n"))
	var se *Error
	if !errors.As(err, &se) || len(se.Problems) != 3 {
		t.Errorf("three problems: %v", err)
	}
}

// TestRuntimeRulesets: a group's runtime rulesets as the agent resolves
// them: a ruleset of the built-in rules, actions log, isolate, terminate.
func TestRuntimeRulesets(t *testing.T) {
	s, err := Parse("g", []byte("runtimeRulesets:\n  - ruleset: default\n    action: log\n    host: false\n    rules: {terminal-shell-in-container: terminate, package-manager-in-container: isolate}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(s.RuntimeRulesets) != 1 || s.RuntimeRulesets[0].Rules["terminal-shell-in-container"] != "terminate" || *s.RuntimeRulesets[0].Host {
		t.Fatalf("parsed: %+v", s.RuntimeRulesets)
	}
	b, err := Format(s)
	if err != nil {
		t.Fatal(err)
	}
	back, err := Parse("g", b)
	if err != nil || !Equal(back, s) {
		t.Fatalf("round trip: %v\n%s", err, b)
	}
	many := "runtimeRulesets: ["
	for i := 0; i <= MaxRuntimeRulesets; i++ {
		many += "{ruleset: default},"
	}
	if _, err := Parse("g", []byte(many+"]")); err == nil || !strings.Contains(err.Error(), "at most 32") {
		t.Errorf("too many rulesets: %v", err)
	}
}

func TestParseRefusesUnknownAndMalformed(t *testing.T) {
	for _, doc := range []string{
		"antimalware: {mod: block}",
		"antivirus: {}",
		"antimalware: [1, 2]",
		"{",
		"a: 1\n---\nb: 2\n",
		"firewall: {ruleset: {rules: [{name: a, direction: in, action: drop, colour: red}]}}",
		strings.Repeat("#", MaxDocument+1),
	} {
		if _, err := Parse("doc", []byte(doc)); !errors.Is(err, ErrInvalid) {
			t.Errorf("%.60q: %v", doc, err)
		}
	}
	// JSON is YAML.
	s, err := Parse("doc.json", []byte(`{"antimalware": {"mode": "block"}, "appcontrol": {"enabled": true}}`))
	if err != nil || s.Antimalware.Mode != "block" || s.AppControl.Enabled == nil || !*s.AppControl.Enabled {
		t.Fatalf("json: %+v %v", s, err)
	}
}

func TestFormatRoundTrip(t *testing.T) {
	doc := `pollInterval: 2s
antimalware:
  mode: block
  onAccess: {paths: [/srv], filesystem: true}
  exclusions: {paths: [/var/lib/docker], allowSHA256: ["275a021bbfb6489e54d471899f7db9d1663fc695ec2fe2a2c4538aabf651fd0f"]}
  scheduled: {every: 6h, paths: [/srv], containers: true}
integrity:
  rules: [{name: app, severity: critical, paths: [/srv/app]}]
appcontrol: {enabled: true, mode: block, maintenanceUntil: 2026-12-06T10:00:00Z}
firewall:
  mode: block
  ruleset:
    inputPolicy: drop
    established: true
    rules: [{name: ssh, direction: in, action: accept, protocol: tcp, destinationPorts: ["22"]}]
`
	s, err := Parse("doc", []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	out, err := Format(s)
	if err != nil {
		t.Fatal(err)
	}
	s2, err := Parse("formatted", out)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if !Equal(s, s2) {
		t.Errorf("round trip differs:\n%s", out)
	}
	c, err := Resolve(s2)
	if err != nil {
		t.Fatal(err)
	}
	if c.PollInterval != 2*time.Second || c.Antimalware.Schedule.Every != 6*time.Hour || !c.Antimalware.ScanContainers ||
		c.Antimalware.Marks[0].Path != "/srv" || c.AppControl.Mode != "block" || c.AppControl.MaintenanceUntil.IsZero() {
		t.Errorf("resolved: %+v", c)
	}
	// The custom integrity rule is added to the defaults.
	var app *integrity.Rule
	for i := range c.Integrity.Rules.Rules {
		if c.Integrity.Rules.Rules[i].Name == "app" {
			app = &c.Integrity.Rules.Rules[i]
		}
	}
	if app == nil || app.Severity != integrity.SeverityCritical || len(c.Integrity.Rules.Rules) < 6 {
		t.Errorf("integrity rules: %+v", c.Integrity.Rules.Rules)
	}
	empty, err := Format(api.HostSettings{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Parse("empty", empty); err != nil {
		t.Errorf("empty document %q: %v", empty, err)
	}
}

func TestIntegrityRuleReplacesDefault(t *testing.T) {
	c, err := Resolve(api.HostSettings{Integrity: api.IntegritySettings{Rules: []api.IntegrityRule{{Name: "etc", Severity: "low", Paths: []string{"/etc/app"}}}}})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, r := range c.Integrity.Rules.Rules {
		if r.Name == "etc" {
			n++
			if r.Severity != integrity.SeverityLow || len(r.Paths) != 1 {
				t.Errorf("etc rule: %+v", r)
			}
		}
	}
	if n != 1 {
		t.Errorf("%d etc rules", n)
	}
	// Only custom rules.
	off := false
	c, err = Resolve(api.HostSettings{Integrity: api.IntegritySettings{DefaultRules: &off, Rules: []api.IntegrityRule{{Name: "x", Paths: []string{"/x"}}}}})
	if err != nil || len(c.Integrity.Rules.Rules) != 1 {
		t.Fatalf("custom only: %+v %v", c.Integrity.Rules, err)
	}
}

func TestLogOnly(t *testing.T) {
	rs := firewall.Ruleset{InputPolicy: firewall.Drop, Established: true, Rules: []firewall.Rule{
		{Name: "ssh", Direction: firewall.In, Action: firewall.Accept, Protocol: "tcp", DestinationPorts: []string{"22"}},
		{Name: "web", Direction: firewall.In, Action: firewall.Reject, Protocol: "tcp", DestinationPorts: []string{"80"}},
		{Name: "policy-in", Direction: firewall.Out, Action: firewall.Drop, Destinations: []string{"192.0.2.1"}},
	}}
	lo := LogOnly(rs)
	if err := firewall.Validate(lo); err != nil {
		t.Fatal(err)
	}
	if lo.InputPolicy != firewall.Accept || lo.OutputPolicy != firewall.Accept || !lo.Established {
		t.Errorf("policies: %+v", lo)
	}
	for _, r := range lo.Rules {
		if r.Action != firewall.Accept {
			t.Errorf("rule %s keeps action %s", r.Name, r.Action)
		}
	}
	if lo.Rules[0].Log || !lo.Rules[1].Log || !lo.Rules[2].Log {
		t.Errorf("logging: %+v", lo.Rules[:3])
	}
	// The drop policy: loopback accepted unlogged, then everything else logged.
	n := len(lo.Rules)
	if n != 5 || lo.Rules[3].Interface != "lo" || lo.Rules[3].Log || !lo.Rules[4].Log || lo.Rules[4].Direction != firewall.In ||
		lo.Rules[4].Name == "policy-in" {
		t.Errorf("policy rules: %+v", lo.Rules[3:])
	}
	// The original is untouched.
	if rs.Rules[1].Action != firewall.Reject || rs.InputPolicy != firewall.Drop {
		t.Error("LogOnly changed its input")
	}
	c, err := Resolve(api.HostSettings{Firewall: api.FirewallSettings{Ruleset: api.FirewallRuleset{InputPolicy: "drop", BlockLoopback: true}}})
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Firewall.Ruleset.Rules) != 1 || c.Firewall.Configured.InputPolicy != firewall.Drop {
		t.Errorf("blockLoopback log form: %+v", c.Firewall)
	}
	// A group of the settings' goes to both forms of the ruleset.
	c, err = Resolve(api.HostSettings{Firewall: api.FirewallSettings{Mode: "block", LogGroup: 77, Ruleset: api.FirewallRuleset{Rules: []api.FirewallRule{
		{Name: "a", Direction: "in", Action: "drop", Log: true}}}}})
	if err != nil || c.Firewall.LogGroup != 77 || c.Firewall.Ruleset.LogGroup != 77 || c.Firewall.Configured.LogGroup != 77 || !c.Firewall.Ruleset.Rules[0].Log {
		t.Errorf("logGroup 77: %+v %v", c.Firewall, err)
	}
}
