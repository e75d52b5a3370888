package nuget

import (
	"testing"

	"mamori/internal/version/internal/versiontest"
)

// NuGet.Versioning's order: four numeric parts, then SemVer 2.0
// pre-release labels compared case-insensitively; metadata ignored.
var ordered = []string{
	"0.9",
	"1.0.0-alpha",
	"1.0.0-alpha.1",
	"1.0.0-alpha.2",
	"1.0.0-alpha.10",
	"1.0.0-alpha.beta",
	"1.0.0-BETA",
	"1.0.0-beta.2",
	"1.0.0-rc.1",
	"1.0.0",
	"1.0.0.1-alpha",
	"1.0.0.1",
	"1.0.1",
	"1.2",
	"1.10",
	"2.0.0.0",
	"4.0.0-preview1",
	"4.0.0-preview2",
	"4.0.0-rc1",
	"4.0.0",
}

var equal = [][2]string{
	{"1.0", "1.0.0"},
	{"1.0.0.0", "1.0.0"},
	{"1", "1.0.0.0"},
	{"1.0.0-BETA", "1.0.0-beta"},
	{"1.0.0-Alpha.RC", "1.0.0-alpha.rc"},
	{"1.0.0+build.1", "1.0.0+other"},
	{"1.0.0-rc.1+build", "1.0.0-RC.1"},
	{"01.002.0", "1.2.0"},
}

var invalid = []string{"", "a", "1.0.0.0.0", "1.0.0-", "1.0.0-a..b", "1.0.0+", "1..0", "1.0.0-a_b", "v1.0.0"}

func TestOrder(t *testing.T)   { versiontest.Ordered(t, Compare, ordered) }
func TestEqual(t *testing.T)   { versiontest.Equal(t, Compare, equal) }
func TestInvalid(t *testing.T) { versiontest.Invalid(t, Compare, "1.0.0", invalid) }

func FuzzCompare(f *testing.F) {
	for i := 0; i+2 < len(ordered); i++ {
		f.Add(ordered[i], ordered[i+1], ordered[i+2])
	}
	for _, s := range invalid {
		f.Add(s, "1.0.0", "1.0.0-Beta")
	}
	f.Fuzz(func(t *testing.T, a, b, c string) {
		versiontest.Properties(t, Compare, a, b)
		versiontest.Transitive(t, Compare, a, b, c)
	})
}

func BenchmarkCompare(b *testing.B) {
	for b.Loop() {
		if _, err := Compare("13.0.1", "13.0.2-beta1"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParsedCompare(b *testing.B) {
	x, _ := Parse("13.0.1")
	y, _ := Parse("13.0.2-beta1")
	for b.Loop() {
		x.Compare(y)
	}
}
