package pep440

import (
	"testing"

	"mamori/internal/version/internal/versiontest"
)

// The ordering example of PEP 440 ("Summary of permitted suffixes and
// relative ordering"), then epochs.
var ordered = []string{
	"0.9",
	"1.0.dev456",
	"1.0a1",
	"1.0a2.dev456",
	"1.0a12.dev456",
	"1.0a12",
	"1.0b1.dev456",
	"1.0b2",
	"1.0b2.post345.dev456",
	"1.0b2.post345",
	"1.0rc1.dev456",
	"1.0rc1",
	"1.0",
	"1.0+abc.5",
	"1.0+abc.7",
	"1.0+5",
	"1.0.post456.dev34",
	"1.0.post456",
	"1.0.15",
	"1.1.dev1",
	"2.0",
	"1!0.1",
	"1!1.0",
}

// PEP 440 normalisation: these spell the same version.
var equal = [][2]string{
	{"1.0", "1.0.0"},
	{"1.0RC1", "1.0rc1"},
	{"1.0c1", "1.0rc1"},
	{"1.0-alpha.1", "1.0a1"},
	{"1.0-1", "1.0.post1"},
	{"1.0-r1", "1.0.post1"},
	{"v1.0", "1.0"},
	{"0!1.0", "1.0"},
	{"1.0.dev", "1.0.dev0"},
	{" 1.0 ", "1.0"},
}

var invalid = []string{"", "foo", "1.0foo", "1.0+", "1..0", "1.0 + local", "!1.0"}

func TestOrder(t *testing.T)   { versiontest.Ordered(t, Compare, ordered) }
func TestEqual(t *testing.T)   { versiontest.Equal(t, Compare, equal) }
func TestInvalid(t *testing.T) { versiontest.Invalid(t, Compare, "1.0", invalid) }

// TestAgainstPackaging compares with pypa/packaging, the reference
// implementation pip uses.
func TestAgainstPackaging(t *testing.T) {
	vs := append(append([]string{}, ordered...), "1.0a", "1.0.a.1", "1.0_post_2", "1.0-dev-3", "1.0+ubuntu-1", "1.0+Ubuntu.1", "01.0", "1.0.0.0.1")
	for _, p := range equal {
		vs = append(vs, p[0], p[1])
	}
	const script = `
import sys
from packaging.version import Version, InvalidVersion
for line in sys.stdin:
    a, b = line.rstrip("\n").split("\t")
    try:
        x, y = Version(a), Version(b)
    except InvalidVersion:
        print("E"); continue
    print((x > y) - (x < y))
`
	versiontest.Oracle(t, Compare, versiontest.AllPairs(vs), "python3-packaging", "/usr/bin/python3", "-c", script)
}

func FuzzCompare(f *testing.F) {
	for i := 0; i+2 < len(ordered); i++ {
		f.Add(ordered[i], ordered[i+1], ordered[i+2])
	}
	for _, s := range invalid {
		f.Add(s, "1.0", "1.0.post1")
	}
	f.Fuzz(func(t *testing.T, a, b, c string) {
		versiontest.Properties(t, Compare, a, b)
		versiontest.Transitive(t, Compare, a, b, c)
	})
}

func BenchmarkCompare(b *testing.B) {
	for b.Loop() {
		if _, err := Compare("2.31.0", "2.32.0rc1"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParsedCompare(b *testing.B) {
	x, _ := Parse("2.31.0")
	y, _ := Parse("2.32.0rc1")
	for b.Loop() {
		x.Compare(y)
	}
}
