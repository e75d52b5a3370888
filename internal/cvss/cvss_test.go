package cvss

import (
	"errors"
	"math"
	"testing"

	"mamori/internal/model"
)

// Published scores: NVD for the CVEs, FIRST's v4.0 calculator and
// specification examples for v4.0.
var published = []struct {
	name    string
	vector  string
	version string
	score   float64
	sev     model.Severity
}{
	{"CVE-2021-44228 log4shell v3.1 (NVD)", "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H", V31, 10.0, model.SeverityCritical},
	{"CVE-2021-44228 log4shell v2 (NVD)", "AV:N/AC:M/Au:N/C:C/I:C/A:C", V2, 9.3, model.SeverityHigh},
	{"CVE-2014-0160 heartbleed v3.1 (NVD)", "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N", V31, 7.5, model.SeverityHigh},
	{"CVE-2014-0160 heartbleed v2 (NVD)", "AV:N/AC:L/Au:N/C:P/I:N/A:N", V2, 5.0, model.SeverityMedium},
	{"CVE-2014-6271 shellshock v2 (NVD)", "(AV:N/AC:L/Au:N/C:C/I:C/A:C)", V2, 10.0, model.SeverityHigh},
	{"CVE-2017-5638 struts v3.0 (NVD)", "CVSS:3.0/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", V30, 9.8, model.SeverityCritical},
	{"CVE-2016-5195 dirty cow v3.1 (NVD)", "CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:H", V31, 7.8, model.SeverityHigh},
	{"CVE-2018-3646 L1TF v3.0 (NVD)", "CVSS:3.0/AV:L/AC:H/PR:L/UI:N/S:C/C:H/I:N/A:N", V30, 5.6, model.SeverityMedium},
	{"v3.1 low", "CVSS:3.1/AV:L/AC:H/PR:H/UI:R/S:U/C:L/I:N/A:N", V31, 1.8, model.SeverityLow},
	{"v3.1 no impact", "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:N", V31, 0.0, model.SeverityNegligible},
	{"v3.1 with temporal metrics keeps the base score", "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H/E:U/RL:O/RC:U", V31, 10.0, model.SeverityCritical},
	{"v2 with CVSS:2.0 prefix", "CVSS:2.0/AV:N/AC:L/Au:N/C:P/I:N/A:N", V2, 5.0, model.SeverityMedium},
	{"v4.0 FIRST calculator default", "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N", V40, 9.3, model.SeverityCritical},
	{"v4.0 full impact", "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:H/SI:H/SA:H", V40, 10.0, model.SeverityCritical},
	{"v4.0 subsequent system only", "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:N/VI:N/VA:N/SC:H/SI:H/SA:H", V40, 7.9, model.SeverityHigh},
	{"v4.0 no impact", "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:N/VI:N/VA:N/SC:N/SI:N/SA:N", V40, 0.0, model.SeverityNegligible},
	{"v4.0 with threat E:U", "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:H/SI:H/SA:H/E:U", V40, 9.1, model.SeverityCritical},
	{"v4.0 physical, minimal", "CVSS:4.0/AV:P/AC:H/AT:P/PR:H/UI:A/VC:L/VI:N/VA:N/SC:N/SI:N/SA:N", V40, 1.0, model.SeverityLow},
}

func TestScorePublished(t *testing.T) {
	for _, tc := range published {
		version, score, err := Score(tc.vector)
		if err != nil {
			t.Errorf("%s: Score(%q): %v", tc.name, tc.vector, err)
			continue
		}
		if version != tc.version || math.Abs(score-tc.score) > 1e-9 {
			t.Errorf("%s: Score = %s %v, want %s %v", tc.name, version, score, tc.version, tc.score)
		}
		if sev := SeverityFromScore(version, score); sev != tc.sev {
			t.Errorf("%s: severity %v, want %v", tc.name, sev, tc.sev)
		}
	}
}

func TestScoreInvalid(t *testing.T) {
	for _, v := range []string{
		"",
		"garbage",
		"CVSS:3.1/",
		"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H",      // missing A
		"CVSS:3.1/AV:X/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H",  // bad value
		"CVSS:3.1/AV:N/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H", // repeated metric
		"CVSS:3.2/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H",
		"CVSS:5.0/AV:N",
		"CVSS:4.0/AV:N/AC:L",
		"AV:N/AC:L/Au:N/C:P/I:N",
		"AV:N/AC:L/Au:N/C:P/I:N/A:Z",
		string(make([]byte, 4096)),
	} {
		if version, score, err := Score(v); !errors.Is(err, ErrInvalid) {
			t.Errorf("Score(%.40q) = %s %v, %v; want ErrInvalid", v, version, score, err)
		}
	}
}

func TestSeverityFromScore(t *testing.T) {
	for _, tc := range []struct {
		version string
		score   float64
		want    model.Severity
	}{
		{V31, 0, model.SeverityNegligible},
		{V31, 0.1, model.SeverityLow},
		{V31, 3.9, model.SeverityLow},
		{V31, 4.0, model.SeverityMedium},
		{V31, 6.9, model.SeverityMedium},
		{V31, 7.0, model.SeverityHigh},
		{V31, 8.9, model.SeverityHigh},
		{V31, 9.0, model.SeverityCritical},
		{V40, 10, model.SeverityCritical},
		{V30, 9.8, model.SeverityCritical},
		{V2, 9.3, model.SeverityHigh},
		{V2, 10, model.SeverityHigh},
		{V2, 4.0, model.SeverityMedium},
		{V2, 0, model.SeverityNegligible},
		{V31, -1, model.SeverityUnknown},
		{V31, 10.1, model.SeverityUnknown},
		{V31, math.NaN(), model.SeverityUnknown},
		{"5.0", 5, model.SeverityUnknown},
	} {
		if got := SeverityFromScore(tc.version, tc.score); got != tc.want {
			t.Errorf("SeverityFromScore(%s, %v) = %v, want %v", tc.version, tc.score, got, tc.want)
		}
	}
}

func TestSeverityFromVectors(t *testing.T) {
	// log4shell as OSV lists it: v2 is High, v3.1 is Critical; v3.1 wins.
	sev, scored := SeverityFromVectors([]string{
		"AV:N/AC:M/Au:N/C:C/I:C/A:C",
		"not a vector",
		"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H",
		"CVSS:3.0/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:N",
	})
	if sev != model.SeverityCritical {
		t.Errorf("severity %v, want CRITICAL", sev)
	}
	if len(scored) != 4 {
		t.Fatalf("got %d scored, want 4", len(scored))
	}
	if scored[1].Err == nil || !errors.Is(scored[1].Err, ErrInvalid) {
		t.Errorf("scored[1].Err = %v, want ErrInvalid", scored[1].Err)
	}
	if scored[0].Version != V2 || scored[0].Score != 9.3 || scored[0].Severity != model.SeverityHigh {
		t.Errorf("scored[0] = %+v", scored[0])
	}

	// v4.0 beats v3.1 even when lower.
	sev, _ = SeverityFromVectors([]string{
		"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H",
		"CVSS:4.0/AV:P/AC:H/AT:P/PR:H/UI:A/VC:L/VI:N/VA:N/SC:N/SI:N/SA:N",
	})
	if sev != model.SeverityLow {
		t.Errorf("v4.0 preferred: severity %v, want LOW", sev)
	}

	// Same version: the first one wins.
	sev, _ = SeverityFromVectors([]string{
		"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N",
		"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H",
	})
	if sev != model.SeverityHigh {
		t.Errorf("first of a version: severity %v, want HIGH", sev)
	}

	if sev, scored := SeverityFromVectors(nil); sev != model.SeverityUnknown || len(scored) != 0 {
		t.Errorf("nil: %v %v", sev, scored)
	}
	if sev, _ := SeverityFromVectors([]string{"junk"}); sev != model.SeverityUnknown {
		t.Errorf("junk: %v, want UNKNOWN", sev)
	}
}

func BenchmarkScore(b *testing.B) {
	for _, v := range []string{
		"AV:N/AC:M/Au:N/C:C/I:C/A:C",
		"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H",
		"CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N",
	} {
		b.Run(v[:8], func(b *testing.B) {
			for b.Loop() {
				if _, _, err := Score(v); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
