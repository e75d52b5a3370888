package rules

import (
	"os"
	"strings"
	"testing"
)

// TestDocumented keeps docs/host-loginspect.md in step with the fields, the event types and
// the built-in rules, and loads its YAML example after the built-in rules.
func TestDocumented(t *testing.T) {
	data, err := os.ReadFile("../../../../docs/host-loginspect.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(data)
	for _, f := range Fields() {
		if !strings.Contains(doc, "| `"+f.Name+"` | "+f.Type+" |") {
			t.Errorf("field %s is not in the field table", f.Name)
		}
	}
	for _, typ := range EventTypes() {
		if !strings.Contains(doc, "`"+typ+"`") {
			t.Errorf("event type %s is not documented", typ)
		}
	}
	cat, err := LoadBuiltin()
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range cat.Rules() {
		row := "| `" + r.ID + "` | " + r.Title + " | " + r.Tactic + " | " + r.Technique + " | " + strings.ToLower(r.Severity.String()) + " |"
		if !strings.Contains(doc, row) {
			t.Errorf("built-in rule %s is not in the rule table (%s)", r.ID, row)
		}
	}
	i := strings.Index(doc, "```yaml\n")
	if i < 0 {
		t.Fatal("no YAML example")
	}
	rest := doc[i+len("```yaml\n"):]
	example := rest[:strings.Index(rest, "```")]
	c, err := LoadBuiltin(Source{Name: "example.yaml", Data: []byte(example)})
	if err != nil {
		t.Fatal(err)
	}
	if c.Rule("ssh-spray") == nil || c.Rule("ssh-root-login") == nil || c.Rule("service-stopped") != nil {
		t.Fatal("example rules")
	}
}
