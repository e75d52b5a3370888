package match

import (
	"testing"

	"mamori/internal/version"
	"mamori/internal/vulndb"
)

// Cases follow the OSV schema's "Evaluation" section and its examples
// (https://ossf.github.io/osv-schema/#evaluation).
func TestRangeEvaluation(t *testing.T) {
	ev := func(kind, v string) vulndb.Event {
		switch kind {
		case "i":
			return vulndb.Event{Introduced: v}
		case "f":
			return vulndb.Event{Fixed: v}
		case "l":
			return vulndb.Event{LastAffected: v}
		}
		return vulndb.Event{Limit: v}
	}
	tests := []struct {
		name   string
		events []vulndb.Event
		v      string
		hit    bool
		fix    string
	}{
		{"introduced 0, below fix", []vulndb.Event{ev("i", "0"), ev("f", "1.2.0")}, "1.1.9", true, "1.2.0"},
		{"introduced 0, at fix", []vulndb.Event{ev("i", "0"), ev("f", "1.2.0")}, "1.2.0", false, ""},
		{"below introduced", []vulndb.Event{ev("i", "1.0.0"), ev("f", "1.2.0")}, "0.9.0", false, ""},
		{"at introduced", []vulndb.Event{ev("i", "1.0.0"), ev("f", "1.2.0")}, "1.0.0", true, "1.2.0"},
		{"prerelease below introduced", []vulndb.Event{ev("i", "1.0.0"), ev("f", "1.2.0")}, "1.0.0-rc.1", false, ""},
		{"no fix", []vulndb.Event{ev("i", "0")}, "99.0.0", true, ""},
		{"last_affected at", []vulndb.Event{ev("i", "1.0.0"), ev("l", "1.4.0")}, "1.4.0", true, ""},
		{"last_affected above", []vulndb.Event{ev("i", "1.0.0"), ev("l", "1.4.0")}, "1.4.1", false, ""},
		{"two branches, second", []vulndb.Event{ev("i", "2.0.0"), ev("f", "2.1.0"), ev("i", "1.0.0"), ev("f", "1.1.0")}, "1.0.5", true, "1.1.0"},
		{"two branches, gap", []vulndb.Event{ev("i", "2.0.0"), ev("f", "2.1.0"), ev("i", "1.0.0"), ev("f", "1.1.0")}, "1.5.0", false, ""},
		{"two branches, first", []vulndb.Event{ev("i", "2.0.0"), ev("f", "2.1.0"), ev("i", "1.0.0"), ev("f", "1.1.0")}, "2.0.9", true, "2.1.0"},
		{"limit: below", []vulndb.Event{ev("i", "0"), ev("m", "2.0.0")}, "1.9.0", true, ""},
		{"limit: at", []vulndb.Event{ev("i", "0"), ev("m", "2.0.0")}, "2.0.0", false, ""},
		{"limit *", []vulndb.Event{ev("i", "0"), ev("m", "*")}, "9.0.0", true, ""},
		{"limit with fix", []vulndb.Event{ev("i", "1.0.0"), ev("f", "1.5.0"), ev("m", "1.3.0")}, "1.4.0", false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pr, ok := prepareRange(vulndb.Range{Type: vulndb.RangeSemver, Events: tt.events}, "npm")
			if !ok {
				t.Fatal("range not prepared")
			}
			s, _ := version.SchemeFor("npm")
			v, err := s.Parse(tt.v)
			if err != nil {
				t.Fatal(err)
			}
			hit, fix := pr.affected(v)
			fixS := ""
			if fix != nil {
				fixS = fix.raw
			}
			if hit != tt.hit || fixS != tt.fix {
				t.Errorf("affected(%s) = %v, %q; want %v, %q", tt.v, hit, fixS, tt.hit, tt.fix)
			}
		})
	}
}

func TestRangeNotPrepared(t *testing.T) {
	for _, r := range []struct {
		rg  vulndb.Range
		eco string
	}{
		{vulndb.Range{Type: vulndb.RangeGit, Events: []vulndb.Event{{Introduced: "0"}}}, "npm"},
		{vulndb.Range{Type: vulndb.RangeEcosystem, Events: []vulndb.Event{{Introduced: "0"}}}, "NoSuchEcosystem"},
		{vulndb.Range{Type: vulndb.RangeSemver, Events: []vulndb.Event{{Introduced: "0"}, {Fixed: "not semver"}}}, "npm"},
	} {
		if _, ok := prepareRange(r.rg, r.eco); ok {
			t.Errorf("range %+v in %s should not be evaluated", r.rg, r.eco)
		}
	}
}
