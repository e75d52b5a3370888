package cvss

import (
	"testing"
)

func FuzzScore(f *testing.F) {
	for _, tc := range published {
		f.Add(tc.vector)
	}
	f.Add("CVSS:4.0/AV:L/AC:L/AT:N/PR:L/UI:P/VC:N/VI:H/VA:H/SC:N/SI:L/SA:L/E:P/CR:H/IR:M/AR:H/MAV:A/MAT:P/MPR:N/MVI:H/MVA:N/MSI:H/MSA:N/S:N/V:C/U:Amber")
	f.Add("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H/E:H/RL:O/RC:C/CR:H/IR:H/AR:H/MAV:N/MAC:L/MPR:N/MUI:N/MS:U/MC:H/MI:H/MA:H")
	f.Add("AV:N/AC:L/Au:N/C:P/I:P/A:P/E:F/RL:OF/RC:C/CDP:H/TD:H/CR:H/IR:H/AR:H")
	f.Fuzz(func(t *testing.T, vector string) {
		version, score, err := Score(vector)
		if err != nil {
			return
		}
		if score < 0 || score > 10 {
			t.Fatalf("Score(%q) = %v out of range", vector, score)
		}
		if SeverityFromScore(version, score) == 0 {
			t.Fatalf("Score(%q) = %s %v has no severity", vector, version, score)
		}
		sev, scored := SeverityFromVectors([]string{vector})
		if sev != scored[0].Severity {
			t.Fatalf("SeverityFromVectors(%q) = %v, scored %v", vector, sev, scored[0].Severity)
		}
	})
}
