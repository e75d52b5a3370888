package policy

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// TestDocExamples: every example in docs/examples/policies parses and
// compiles, and the documented default is the embedded one.
func TestDocExamples(t *testing.T) {
	files, err := filepath.Glob("../../docs/examples/policies/*.yaml")
	if err != nil || len(files) < 4 {
		t.Fatalf("examples: %v %v", files, err)
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		p, err := Parse(filepath.Base(f), data)
		if err != nil {
			t.Errorf("%v", err)
			continue
		}
		if _, err := Compile(p); err != nil {
			t.Errorf("%v", err)
		}
		if filepath.Base(f) == "default.yaml" && !bytes.Equal(data, DefaultPolicyYAML()) {
			t.Errorf("%s differs from internal/policy/default.yaml", f)
		}
	}
}
