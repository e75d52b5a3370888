package gem

import (
	"testing"

	"mamori/internal/version/internal/versiontest"
)

// Gem::Version's documented order: a version with a letter segment is a
// pre-release and sorts before its release ("1.0.a" < "1.0"); trailing
// zeros are ignored; "-" is ".pre.".
var ordered = []string{
	"0",
	"0.9",
	"1.0.a",
	"1.0.a1",
	"1.0.a2",
	"1.0.a10",
	"1.0.b1",
	"1.0.0.pre1",
	"1.0.rc1",
	"1.0",
	"1.0.0.1",
	"1.0.1",
	"1.1.a",
	"1.1",
	"1.10",
	"2.0.0-rc1",
	"2.0.0.rc2",
	"2.0.0",
	"6.1.7.1",
	"99999999999999999999",
	"100000000000000000000",
}

var equal = [][2]string{
	{"1.0", "1"},
	{"1.0", "1.0.0.0"},
	{"1.0.a", "1.0.0.a"},
	{"1.0.a.0", "1.0.a"},
	{"01.0", "1.0"},
	{"", "0"},
	{" 1.0 ", "1.0"},
	{"1.0.0-rc1", "1.0.0.pre.rc1"},
}

var invalid = []string{"junk", "1.0..1", "1.0.", ".1", "1.0-", "1 0", "1.0_1", "v1.0", "-1"}

func TestOrder(t *testing.T)   { versiontest.Ordered(t, Compare, ordered) }
func TestEqual(t *testing.T)   { versiontest.Equal(t, Compare, equal) }
func TestInvalid(t *testing.T) { versiontest.Invalid(t, Compare, "1.0", invalid) }

// TestAgainstRuby compares with RubyGems' own Gem::Version.
func TestAgainstRuby(t *testing.T) {
	vs := append(append([]string{}, ordered...), "1.0.0-x-y.z", "1.13.10-arm64-darwin", "2.a", "1.0.B1", "1.0.b1", "1.A", "1.0.a.1", "1.0.0.a.0.1", "3.2.10", "1.0-1")
	for _, p := range equal {
		vs = append(vs, p[0], p[1])
	}
	const script = `
STDIN.each_line do |line|
  a, b = line.chomp("\n").split("\t", -1)
  if Gem::Version.correct?(a) && Gem::Version.correct?(b)
    puts(Gem::Version.new(a) <=> Gem::Version.new(b))
  else
    puts "E"
  end
end
`
	versiontest.Oracle(t, Compare, versiontest.AllPairs(vs), "ruby", "ruby", "-e", script)
}

func FuzzCompare(f *testing.F) {
	for i := 0; i+2 < len(ordered); i++ {
		f.Add(ordered[i], ordered[i+1], ordered[i+2])
	}
	for _, s := range invalid {
		f.Add(s, "1.0", "1.0.a")
	}
	f.Fuzz(func(t *testing.T, a, b, c string) {
		versiontest.Properties(t, Compare, a, b)
		versiontest.Transitive(t, Compare, a, b, c)
	})
}

func BenchmarkCompare(b *testing.B) {
	for b.Loop() {
		if _, err := Compare("7.0.8.1", "7.1.0.rc1"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParsedCompare(b *testing.B) {
	x, _ := Parse("7.0.8.1")
	y, _ := Parse("7.1.0.rc1")
	for b.Loop() {
		x.Compare(y)
	}
}
