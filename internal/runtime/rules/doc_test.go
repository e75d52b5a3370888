package rules

import (
	"os"
	"strings"
	"testing"
)

// TestDocumented keeps docs/runtime-rules.md in step with the fields and the built-in rules.
func TestDocumented(t *testing.T) {
	data, err := os.ReadFile("../../../docs/runtime-rules.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(data)
	for _, f := range fields() {
		if !strings.Contains(doc, "| `"+f.name+"` |") {
			t.Errorf("field %s is not in the field table of docs/runtime-rules.md", f.name)
		}
	}
	cat, err := LoadBuiltin()
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range cat.Rules() {
		if !strings.Contains(doc, "| `"+r.ID+"` | "+r.Title+" | "+r.Tactic) {
			t.Errorf("built-in rule %s is not in the rule table of docs/runtime-rules.md", r.ID)
		}
	}
}

// TestDocExamples loads the YAML examples of docs/runtime-rules.md: the first on its own, the
// second after the built-in rules.
func TestDocExamples(t *testing.T) {
	data, err := os.ReadFile("../../../docs/runtime-rules.md")
	if err != nil {
		t.Fatal(err)
	}
	var blocks []string
	for rest := string(data); ; {
		i := strings.Index(rest, "```yaml\n")
		if i < 0 {
			break
		}
		rest = rest[i+len("```yaml\n"):]
		j := strings.Index(rest, "```")
		blocks = append(blocks, rest[:j])
		rest = rest[j:]
	}
	if len(blocks) < 2 {
		t.Fatalf("%d YAML examples", len(blocks))
	}
	cat, err := Load(Source{Name: "example1.yaml", Data: []byte(blocks[0])})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := NewEngine(cat, cat.Rulesets()...); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadBuiltin(Source{Name: "example2.yaml", Data: []byte(blocks[1])}); err != nil {
		t.Fatal(err)
	}
}
