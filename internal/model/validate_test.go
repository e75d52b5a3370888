package model

import (
	"errors"
	"math"
	"strings"
	"testing"
	"time"
)

var vt0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func validResult() *Result {
	return &Result{
		SchemaVersion: SchemaVersion,
		Tool:          Tool{Name: "mamori", Version: "test"},
		ScanID:        "scan-1",
		CreatedAt:     vt0,
		Target: Target{Name: "app:1", Type: TargetImage, Digest: "sha256:" + strings.Repeat("ab", 32),
			Layers: []Layer{{DiffID: "sha256:l1"}}},
		Inventory: Inventory{OS: &OS{ID: "debian"}, Packages: []Package{{Name: "a", Version: "1.0",
			Locations: []PackageLocation{{Path: "var/lib/dpkg/status"}}}}},
		Vulnerabilities: []Vulnerability{{ID: "CVE-1", Package: PackageRef{Name: "a"}, Severity: SeverityHigh,
			CVSS: []CVSS{{Version: "3.1", Score: 7}}}},
		Findings: []Finding{{Kind: KindSecret, ID: "k", Severity: SeverityHigh, Evidence: "AKIA****"}},
	}
}

// TestResultValidate is the one validation of a result: every rule the
// server's ingest and the store used to check each in its own way.
func TestResultValidate(t *testing.T) {
	if err := validResult().Validate(vt0); err != nil {
		t.Fatalf("valid result: %v", err)
	}
	cases := []struct {
		name   string
		mutate func(r *Result) *Result
		want   string
	}{
		{"nil", func(*Result) *Result { return nil }, "nil scan result"},
		{"schema 0", func(r *Result) *Result { r.SchemaVersion = 0; return r }, "schemaVersion 0 is not supported"},
		{"future schema", func(r *Result) *Result { r.SchemaVersion = SchemaVersion + 1; return r }, "schemaVersion"},
		{"no scan ID", func(r *Result) *Result { r.ScanID = ""; return r }, "scanID is empty"},
		{"huge scan ID", func(r *Result) *Result { r.ScanID = strings.Repeat("x", MaxScanIDLen+1); return r }, "longer than 128"},
		{"scan ID chars", func(r *Result) *Result { r.ScanID = "a b"; return r }, "scanID must be"},
		{"no time", func(r *Result) *Result { r.CreatedAt = time.Time{}; return r }, "createdAt is missing"},
		{"future", func(r *Result) *Result { r.CreatedAt = vt0.Add(MaxClockSkew + time.Minute); return r }, "in the future"},
		{"no target name", func(r *Result) *Result { r.Target.Name = "  "; return r }, "target.name is empty"},
		{"no target type", func(r *Result) *Result { r.Target.Type = ""; return r }, "target.type is empty"},
		{"bad target type", func(r *Result) *Result { r.Target.Type = "vm"; return r }, `target.type "vm"`},
		{"image without digest", func(r *Result) *Result { r.Target.Digest = ""; return r }, "manifest digest"},
		{"bad digest", func(r *Result) *Result { r.Target.Digest = "sha256:nothex"; return r }, "manifest digest"},
		{"fs bad digest", func(r *Result) *Result { r.Target.Type, r.Target.Digest = TargetFS, "md5:x"; return r }, "not a sha256 digest"},
		{"vuln severity", func(r *Result) *Result { r.Vulnerabilities[0].Severity = 9; return r }, "unknown severity 9"},
		{"negative severity", func(r *Result) *Result { r.Vulnerabilities[0].Severity = -1; return r }, "unknown severity -1"},
		{"finding severity", func(r *Result) *Result { r.Findings[0].Severity = 6; return r }, "findings[0].severity"},
		{"finding kind", func(r *Result) *Result { r.Findings[0].Kind = "virus"; return r }, `unknown kind "virus"`},
		{"finding without ID", func(r *Result) *Result { r.Findings[0].ID = ""; return r }, "findings[0].id is empty"},
		{"vuln without ID", func(r *Result) *Result { r.Vulnerabilities[0].ID = ""; return r }, "vulnerabilities[0].id is empty"},
		{"vuln without package", func(r *Result) *Result { r.Vulnerabilities[0].Package.Name = ""; return r }, "package.name is empty"},
		{"package without name", func(r *Result) *Result { r.Inventory.Packages[0].Name = ""; return r }, "inventory.packages[0].name is empty"},
		{"NUL byte", func(r *Result) *Result { r.Findings[0].Evidence = "a\x00b"; return r }, "NUL byte"},
		{"invalid UTF-8", func(r *Result) *Result { r.Inventory.Packages[0].Version = "\xff\xfe"; return r }, "not valid UTF-8"},
		{"invalid UTF-8 warning", func(r *Result) *Result { r.Warnings = []string{"\xff"}; return r }, "warnings[0] is not valid UTF-8"},
		{"CVSS out of range", func(r *Result) *Result { r.Vulnerabilities[0].CVSS[0].Score = 11; return r }, "outside 0..10"},
		{"CVSS NaN", func(r *Result) *Result { r.Vulnerabilities[0].CVSS[0].Score = math.NaN(); return r }, "outside 0..10"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := c.mutate(validResult()).Validate(vt0)
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want ErrInvalid containing %q", err, c.want)
			}
		})
	}
	// The zero clock skips only the clock check.
	r := validResult()
	r.CreatedAt = vt0.Add(100 * MaxClockSkew)
	if err := r.Validate(time.Time{}); err != nil {
		t.Errorf("zero clock: %v", err)
	}
	// Other target kinds need no digest.
	r = validResult()
	r.Target.Type, r.Target.Digest = TargetRootFS, ""
	if err := r.Validate(vt0); err != nil {
		t.Errorf("rootfs without digest: %v", err)
	}
}

// TestResultUpgrade: every schema version mamori has written is read
// (today only version 1, which needs no upgrade); versions it never wrote
// are refused with the version in the message.
func TestResultUpgrade(t *testing.T) {
	if len(resultUpgrades) != SchemaVersion-1 {
		t.Fatalf("%d upgrade steps for schema version %d: every older version needs one", len(resultUpgrades), SchemaVersion)
	}
	r := validResult()
	if err := r.Upgrade(); err != nil || r.SchemaVersion != SchemaVersion {
		t.Fatalf("current version: %v (version %d)", err, r.SchemaVersion)
	}
	for _, v := range []int{0, -1, SchemaVersion + 1, 1 << 30} {
		r := validResult()
		r.SchemaVersion = v
		err := r.Upgrade()
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "schemaVersion") {
			t.Errorf("version %d: %v, want refused", v, err)
		}
	}
	var nilRes *Result
	if err := nilRes.Upgrade(); !errors.Is(err, ErrInvalid) {
		t.Errorf("nil: %v", err)
	}
}
