package semver

import (
	"testing"

	"mamori/internal/version/internal/versiontest"
)

// semver.org §11: 1.0.0-alpha < 1.0.0-alpha.1 < 1.0.0-alpha.beta <
// 1.0.0-beta < 1.0.0-beta.2 < 1.0.0-beta.11 < 1.0.0-rc.1 < 1.0.0, and
// major/minor/patch compare numerically.
var ordered = []string{
	"0.0.0-20210101000000-abcdef123456", // a Go pseudo-version
	"0.9.9",
	"1.0.0-alpha",
	"1.0.0-alpha.1",
	"1.0.0-alpha.beta",
	"1.0.0-beta",
	"1.0.0-beta.2",
	"1.0.0-beta.11",
	"1.0.0-rc.1",
	"1.0.0",
	"1.9.0",
	"1.10.0",
	"1.11.0",
	"2.0.0",
	"2.1.0",
	"2.1.1",
}

// §10: build metadata is ignored; Go's "v" prefix is tolerated.
var equal = [][2]string{
	{"1.0.0+20130313144700", "1.0.0"},
	{"1.0.0-beta+exp.sha.5114f85", "1.0.0-beta"},
	{"v1.2.3", "1.2.3"},
	{"1.2", "1.2.0"},
}

var invalid = []string{"", "junk", "1.0.0-", "1.0.0+", "1.0.0-alpha..1", "1.0.0.0.0", "1.a.0", "99999999999999999999.0.0"}

func TestOrder(t *testing.T)   { versiontest.Ordered(t, Compare, ordered) }
func TestEqual(t *testing.T)   { versiontest.Equal(t, Compare, equal) }
func TestInvalid(t *testing.T) { versiontest.Invalid(t, Compare, "1.0.0", invalid) }

func FuzzCompare(f *testing.F) {
	for i := 0; i+2 < len(ordered); i++ {
		f.Add(ordered[i], ordered[i+1], ordered[i+2])
	}
	for _, s := range invalid {
		f.Add(s, "1.0.0", "v1.0.0-rc.1")
	}
	f.Fuzz(func(t *testing.T, a, b, c string) {
		versiontest.Properties(t, Compare, a, b)
		versiontest.Transitive(t, Compare, a, b, c)
	})
}

func BenchmarkCompare(b *testing.B) {
	for b.Loop() {
		if _, err := Compare("4.17.20", "4.17.21-beta.1"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParsedCompare(b *testing.B) {
	x, _ := Parse("4.17.20")
	y, _ := Parse("4.17.21-beta.1")
	for b.Loop() {
		x.Compare(y)
	}
}
