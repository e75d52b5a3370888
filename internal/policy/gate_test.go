package policy

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"mamori/internal/model"
	"mamori/internal/vex"
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

func sev(s model.Severity) *model.Severity { return &s }

var gateNow = time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)

func TestGate(t *testing.T) {
	ignore, err := vex.ParseIgnore([]byte("ignore:\n  - id: CVE-A\n    reason: not reachable in our build\n"))
	if err != nil {
		t.Fatal(err)
	}
	crit, high := model.SeverityCritical, model.SeverityHigh
	tests := []struct {
		name       string
		opts       GateOptions
		wantVulns  int
		wantFind   int
		failed     bool
		reasons    string
		suppressed int
	}{
		{"no gate", GateOptions{}, 3, 1, false, "", 0},
		{"fail on critical", GateOptions{FailOn: sev(crit)}, 3, 1, true, "1 vulnerabilities at or above CRITICAL; 1 secret at or above CRITICAL", 0},
		{"fail on high", GateOptions{FailOn: sev(high)}, 3, 1, true, "2 vulnerabilities at or above HIGH; 1 secret at or above HIGH", 0},
		{"severity filter", GateOptions{Severities: []model.Severity{model.SeverityLow}, FailOn: sev(high)}, 1, 0, false, "", 0},
		{"ignore unfixed", GateOptions{IgnoreUnfixed: true}, 2, 1, false, "", 0},
		{"fail any", GateOptions{FailAny: true, Severities: []model.Severity{model.SeverityMedium}}, 0, 0, false, "", 0},
		{"fail any low", GateOptions{FailAny: true, Severities: []model.Severity{model.SeverityLow}}, 1, 0, true, "1 vulnerabilities", 0},
		{"ignore file", GateOptions{Suppress: &vex.Rules{Ignores: ignore}, FailOn: sev(crit),
			Severities: []model.Severity{crit, high, model.SeverityLow}}, 2, 1, true, "1 secret at or above CRITICAL", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g, err := NewGate(tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			in := result()
			before := result()
			v := g.Check(in, gateNow)
			r := v.Result
			if len(r.Vulnerabilities) != tt.wantVulns || len(r.Findings) != tt.wantFind || v.Failed != tt.failed {
				t.Errorf("vulns %d findings %d failed %v (%v)", len(r.Vulnerabilities), len(r.Findings), v.Failed, v.Reasons)
			}
			if got := strings.Join(v.Reasons, "; "); got != tt.reasons {
				t.Errorf("reasons %q, want %q", got, tt.reasons)
			}
			if v.Suppressed != tt.suppressed {
				t.Errorf("suppressed %d, want %d", v.Suppressed, tt.suppressed)
			}
			if !reflect.DeepEqual(in, before) {
				t.Error("Check modified its input")
			}
		})
	}
}

// TestGateNilSlices: the report must not change, and JSON writes a nil
// slice as null and an empty one as [].
func TestGateNilSlices(t *testing.T) {
	g, err := NewGate(GateOptions{Severities: []model.Severity{model.SeverityMedium}})
	if err != nil {
		t.Fatal(err)
	}
	v := g.Check(&model.Result{}, gateNow)
	if v.Result.Vulnerabilities != nil || v.Result.Findings != nil {
		t.Errorf("nil slices became %#v %#v", v.Result.Vulnerabilities, v.Result.Findings)
	}
	v = g.Check(result(), gateNow)
	if v.Result.Vulnerabilities == nil || v.Result.Findings == nil {
		t.Errorf("filtered-out slices became nil")
	}
}

// TestGateExpiredIgnore: expiry is judged at the time given to Check.
func TestGateExpiredIgnore(t *testing.T) {
	ignore, err := vex.ParseIgnore([]byte("ignore:\n  - id: CVE-A\n    reason: r\n    expires: 2026-06-30\n"))
	if err != nil {
		t.Fatal(err)
	}
	g, err := NewGate(GateOptions{Suppress: &vex.Rules{Ignores: ignore}, FailOn: sev(model.SeverityCritical)})
	if err != nil {
		t.Fatal(err)
	}
	before := g.Check(result(), time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC))
	after := g.Check(result(), gateNow)
	if before.Suppressed != 1 || len(before.Warnings) != 0 {
		t.Errorf("before expiry: suppressed %d warnings %v", before.Suppressed, before.Warnings)
	}
	if after.Suppressed != 0 || len(after.Warnings) != 1 || !strings.Contains(after.Warnings[0], "expired") {
		t.Errorf("after expiry: suppressed %d warnings %v", after.Suppressed, after.Warnings)
	}
}
