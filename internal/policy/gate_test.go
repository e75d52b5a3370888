package policy

import (
	"os"
	"path/filepath"
	"testing"

	"mamori/internal/model"
)

func result() *model.Result {
	return &model.Result{
		Vulnerabilities: []model.Vulnerability{
			{ID: "CVE-A", Severity: model.SeverityCritical, FixedVersion: "1.1", Package: model.PackageRef{Name: "a"}},
			{ID: "CVE-B", Severity: model.SeverityHigh, Package: model.PackageRef{Name: "b"}},
			{ID: "CVE-C", Severity: model.SeverityLow, FixedVersion: "2", Package: model.PackageRef{Name: "c"}},
		},
		Findings: []model.Finding{{Kind: model.KindSecret, ID: "aws", Severity: model.SeverityCritical}},
	}
}

func TestGate(t *testing.T) {
	dir := t.TempDir()
	ignore := filepath.Join(dir, "ignore.yaml")
	if err := os.WriteFile(ignore, []byte("ignore:\n  - id: CVE-A\n    reason: not reachable in our build\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		opts      GateOptions
		wantVulns int
		wantFind  int
		failed    bool
	}{
		{"no gate", GateOptions{}, 3, 1, false},
		{"fail on critical", GateOptions{FailOn: "critical"}, 3, 1, true},
		{"severity filter", GateOptions{Severities: []string{"low"}, FailOn: "high"}, 1, 0, false},
		{"ignore unfixed", GateOptions{IgnoreUnfixed: true}, 2, 1, false},
		{"fail any", GateOptions{FailAny: true, Severities: []string{"medium"}}, 0, 0, false},
		{"ignore file", GateOptions{IgnoreFile: ignore, FailOn: "critical", Severities: []string{"critical", "high", "low"}}, 2, 1, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g, err := NewGate(tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			r := result()
			v, err := g.Apply(r)
			if err != nil {
				t.Fatal(err)
			}
			if len(r.Vulnerabilities) != tt.wantVulns || len(r.Findings) != tt.wantFind || v.Failed != tt.failed {
				t.Errorf("vulns %d findings %d failed %v (%v)", len(r.Vulnerabilities), len(r.Findings), v.Failed, v.Reasons)
			}
		})
	}
}

func TestGateBadInput(t *testing.T) {
	for _, o := range []GateOptions{{FailOn: "severe"}, {Severities: []string{"hi"}}, {IgnoreFile: "/nonexistent"}} {
		if _, err := NewGate(o); err == nil {
			t.Errorf("%+v accepted", o)
		}
	}
}
