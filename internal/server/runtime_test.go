package server

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"mamori/internal/api"
	"mamori/internal/auth"
	"mamori/internal/model"
)

const runtimeTestPolicy = `apiVersion: mamori.dev/v1
kind: Policy
name: runtime
runtime:
  - ruleset: default
    rules: {crypto-miner-binary: terminate}
  - ruleset: pci
    match: {namespaces: [payments]}
    action: isolate
`

// TestRuntimeAPI: the ATT&CK counts of events an agent delivered (with
// the listing's filters, bad values answered 400), the rule catalogue, and
// the rules each policy enables, on both engines, for a viewer.
func TestRuntimeAPI(t *testing.T) {
	engines(t, func(t *testing.T, dsn string) {
		e := newEnv(t, dsn)
		if code, body := e.do("POST", api.PathClusters, e.admin, map[string]any{"name": "prod"}); code != http.StatusCreated {
			t.Fatalf("cluster: %d %s", code, body)
		}
		agentTok, _ := e.clusterToken(auth.RoleAgent, "prod")
		viewer, _ := e.token(auth.RoleViewer)
		now := time.Now().UTC()
		mk := func(i int, tac, tech, ns string, ago time.Duration) model.Event {
			return model.Event{ID: fmt.Sprintf("rt-%d", i), Time: now.Add(-ago), Source: model.SourceRuntime, Module: "sensor",
				Node: "node-1", Namespace: ns, Pod: "web-1", Rule: model.RuleRef{ID: "terminal-shell-in-container"},
				Tactic: tac, Technique: tech, Severity: model.SeverityHigh, Action: model.ActionLog, Message: "m"}
		}
		batch := api.EventBatch{Events: []model.Event{
			mk(1, "TA0002", "T1059.004", "shop", time.Minute), mk(2, "TA0002", "T1059.004", "payments", time.Minute),
			mk(3, "TA0040", "T1496", "shop", 2*time.Hour), mk(4, "", "", "shop", time.Minute),
		}}
		if code, body := e.do("POST", api.PathEvents, agentTok, batch); code != http.StatusOK || !strings.Contains(string(body), `"accepted":4`) {
			t.Fatalf("ingest: %d %s", code, body)
		}
		attack := func(q string) (int, api.AttackMatrix, string) {
			t.Helper()
			code, body := e.do("GET", api.PathEventsAttack+"?"+q, viewer, nil)
			var m api.AttackMatrix
			if code == http.StatusOK {
				if err := json.Unmarshal(body, &m); err != nil {
					t.Fatal(err)
				}
			}
			return code, m, string(body)
		}
		count := func(m api.AttackMatrix, tac, tech string) int64 {
			for _, c := range m.Tactics {
				for _, x := range c.Techniques {
					if x.Tactic == tac && x.Technique == tech {
						return x.Events
					}
				}
			}
			return -1
		}
		code, m, body := attack("")
		if code != http.StatusOK || m.Events != 3 || count(m, "TA0002", "T1059.004") != 2 || count(m, "TA0003", "T1525") != 0 ||
			m.Tactics[0].ID != "TA0001" || m.Covered < 40 || m.Since != nil {
			t.Fatalf("all: %d %s", code, body)
		}
		since := url.QueryEscape(now.Add(-time.Hour).Format(time.RFC3339))
		code, m, body = attack("since=" + since + "&cluster=prod&namespace=shop&tactic=ta0002")
		if code != http.StatusOK || m.Events != 1 || count(m, "TA0002", "T1059.004") != 1 || m.Since == nil {
			t.Fatalf("filtered: %d %s", code, body)
		}
		for _, q := range []string{"technique=T59", "tactic=%3Cscript%3E", "since=yesterday", "cursor=x", "limit=10", "severity=bad"} {
			if code, _, body := attack(q); code != http.StatusBadRequest || !strings.Contains(body, "error") {
				t.Errorf("%s: %d %s, want 400 with the error", q, code, body)
			}
		}

		var rl api.RuntimeRuleList
		code, raw := e.do("GET", api.PathRuntimeRules, viewer, nil)
		if err := json.Unmarshal(raw, &rl); code != http.StatusOK || err != nil || len(rl.Rules) < 40 {
			t.Fatalf("rules: %d %v", code, err)
		}
		var shell *api.RuntimeRule
		for i := range rl.Rules {
			if rl.Rules[i].ID == "terminal-shell-in-container" {
				shell = &rl.Rules[i]
			}
		}
		if shell == nil || shell.Technique != "T1059.004" || shell.TacticName != "Execution" || shell.Action != model.ActionLog ||
			!strings.Contains(shell.Condition, "proc.tty") || shell.Kinds[0] != "exec" || !strings.HasPrefix(shell.File, "builtin/") {
			t.Fatalf("terminal shell rule: %+v", shell)
		}

		if code, body := e.do("POST", api.PathPolicies, e.admin, api.PolicyApply{File: "runtime.yaml", Document: runtimeTestPolicy}); code != http.StatusCreated {
			t.Fatalf("apply: %d %s", code, body)
		}
		var rs api.RuntimeRulesetList
		code, raw = e.do("GET", api.PathRuntimeRulesets, viewer, nil)
		if err := json.Unmarshal(raw, &rs); code != http.StatusOK || err != nil || len(rs.Policies) != 1 {
			t.Fatalf("rulesets: %d %s", code, raw)
		}
		p := rs.Policies[0]
		if p.Policy != "runtime" || len(p.Rulesets) != 2 || !p.Rulesets[0].Known || p.Rulesets[0].Rules["crypto-miner-binary"] != model.ActionTerminate ||
			p.Rulesets[0].Rules["exec-from-tmp"] != model.ActionLog || p.Rulesets[1].Known || p.Rulesets[1].Host ||
			p.Rulesets[1].Scope != "namespaces payments" || p.Rulesets[1].Action != model.ActionIsolate {
			t.Fatalf("rulesets: %s", raw)
		}
		// The default host group (no agent registered).
		if len(rs.HostGroups) != 1 || !rs.HostGroups[0].Default || rs.HostGroups[0].Members != 0 || rs.HostGroups[0].Policies == nil {
			t.Errorf("host groups: %s", raw)
		}
	})
}
