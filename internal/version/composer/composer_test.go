package composer

import (
	"errors"
	"testing"

	"mamori/internal/version/internal/versiontest"
)

// composer/semver's order: dev < alpha < beta < RC < stable < patch, on
// versions normalised to four numbers; "v" prefixes, missing parts, "a",
// "b", "pl" and "p" abbreviations are normalised away.
var ordered = []string{
	"0.9",
	"1.0.0-dev",
	"1.0.0-alpha1",
	"1.0.0-alpha2",
	"1.0.0-beta",
	"1.0.0-beta.2",
	"1.0.0-beta10",
	"1.0.0-RC1",
	"1.0.0-rc2",
	"1.0.0",
	"1.0.0-patch1",
	"1.0.0-p2",
	"1.0.0.1",
	"1.0.1",
	"1.0.x-dev",
	"1.2",
	"1.10",
	"2.0",
	"2010-01-02",
	"2010.01.03",
}

var equal = [][2]string{
	{"1.0", "1.0.0.0"},
	{"v1.0.0", "1.0.0"},
	{"1.0.0-a1", "1.0.0-alpha1"},
	{"1.0.0-b2", "1.0.0-beta2"},
	{"1.0.0-pl1", "1.0.0-patch1"},
	{"1.0.0-stable", "1.0.0"},
	{"1.0.0+build.5", "1.0.0"},
	{"1.0.0@stable", "1.0.0"},
	{"1.0.0 as 2.0.0", "1.0.0"},
	{"1.0.0.RC1", "1.0.0-rc1"},
}

var invalid = []string{"", "foo", "1.0.0-foo", "1.0.0.0.0", "1.0 .0", "dev-master", "master", "dev-feature/x", "feature-dev"}

func TestOrder(t *testing.T)   { versiontest.Ordered(t, Compare, ordered) }
func TestEqual(t *testing.T)   { versiontest.Equal(t, Compare, equal) }
func TestInvalid(t *testing.T) { versiontest.Invalid(t, Compare, "1.0", invalid) }

func TestBranch(t *testing.T) {
	if _, err := Parse("dev-main"); !errors.Is(err, ErrBranch) {
		t.Errorf("Parse(dev-main) error %v, want ErrBranch", err)
	}
}

func TestNormalize(t *testing.T) {
	for in, want := range map[string]string{
		"1":           "1.0.0.0",
		"v1.2.3":      "1.2.3.0",
		"1.0-beta2":   "1.0.0.0-beta2",
		"1.0.0-RC.1":  "1.0.0.0-RC1",
		"1.x-dev":     "1.9999999.9999999.9999999-dev",
		"2010-01-02":  "2010.01.02",
		"1.0.0-p1":    "1.0.0.0-patch1",
		"1.0.0-alpha": "1.0.0.0-alpha",
	} {
		got, err := Normalize(in)
		if err != nil || got != want {
			t.Errorf("Normalize(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}

// TestAgainstComposer compares with composer/semver itself (Debian's
// php-composer-semver): VersionParser::normalize then Comparator::compare.
func TestAgainstComposer(t *testing.T) {
	vs := append(append([]string{}, ordered...), "1.0.0-alpha", "1.0.0-beta.1", "1.0.0-RC", "1.0.0-p", "v2.3", "2.3-dev", "1.0.0.0-beta1-dev", "20100102")
	for _, p := range equal {
		vs = append(vs, p[0], p[1])
	}
	const script = `
require "/usr/share/php/Composer/Semver/autoload.php";
$p = new Composer\Semver\VersionParser();
while (($line = fgets(STDIN)) !== false) {
  [$a, $b] = explode("\t", rtrim($line, "\n"));
  try { $x = $p->normalize($a); $y = $p->normalize($b); }
  catch (Exception $e) { echo "E\n"; continue; }
  if (str_starts_with($x, "dev-") || str_starts_with($y, "dev-")) { echo "E\n"; continue; }
  echo Composer\Semver\Comparator::lessThan($x, $y) ? -1 : (Composer\Semver\Comparator::equalTo($x, $y) ? 0 : 1), "\n";
}
`
	versiontest.Oracle(t, Compare, versiontest.AllPairs(vs), "php-cli php-composer-semver", "php", "-r", script)
}

func FuzzCompare(f *testing.F) {
	for i := 0; i+2 < len(ordered); i++ {
		f.Add(ordered[i], ordered[i+1], ordered[i+2])
	}
	for _, s := range invalid {
		f.Add(s, "1.0", "1.0-RC1")
	}
	f.Fuzz(func(t *testing.T, a, b, c string) {
		versiontest.Properties(t, Compare, a, b)
		versiontest.Transitive(t, Compare, a, b, c)
	})
}

func BenchmarkCompare(b *testing.B) {
	for b.Loop() {
		if _, err := Compare("v5.4.21", "5.4.22-RC1"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParsedCompare(b *testing.B) {
	x, _ := Parse("v5.4.21")
	y, _ := Parse("5.4.22-RC1")
	for b.Loop() {
		x.Compare(y)
	}
}
