package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"mamori/internal/model"
)

func TestGateOptionsFlags(t *testing.T) {
	dir := t.TempDir()
	ignore := filepath.Join(dir, "ignore.yaml")
	if err := os.WriteFile(ignore, []byte("ignore:\n  - id: CVE-A\n    reason: not reachable\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	g, err := gateOptions(&scanOptions{severities: []string{"critical,high", "low"}, failOn: "high", ignoreFile: ignore})
	if err != nil {
		t.Fatal(err)
	}
	if len(g.Severities) != 3 || g.FailOn == nil || *g.FailOn != model.SeverityHigh || g.Suppress == nil || len(g.Suppress.Ignores) != 1 {
		t.Errorf("options %+v", g)
	}
	if g, err := gateOptions(&scanOptions{exitCode: 3}); err != nil || !g.FailAny || g.Suppress != nil {
		t.Errorf("exit code without threshold: %+v %v", g, err)
	}
	for _, tc := range []struct {
		o    scanOptions
		want string
	}{
		{scanOptions{failOn: "severe"}, "--fail-on: "},
		{scanOptions{severities: []string{"hi"}}, "--severity: "},
		{scanOptions{ignoreFile: filepath.Join(dir, "missing.yaml")}, "--ignorefile: "},
		{scanOptions{vexFiles: []string{filepath.Join(dir, "missing.json")}}, "--vex "},
	} {
		if _, err := gateOptions(&tc.o); err == nil || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("%+v: error %v, want prefix %q", tc.o, err, tc.want)
		}
	}
}

func TestLoadPolicyErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "p.yaml")
	if err := os.WriteFile(bad, []byte("apiVersion: mamori.dev/v1\nkind: Policy\nname: p\nadmission:\n  - name: r\n    action: deny\n    privileged: {}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := loadPolicy(bad)
	if err == nil || !strings.Contains(err.Error(), bad+":6:") {
		t.Errorf("error %v does not name the file and line 6", err)
	}
	if _, err := loadPolicy(filepath.Join(dir, "none.yaml")); err == nil {
		t.Error("missing file accepted")
	}
}
