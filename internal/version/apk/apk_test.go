package apk

import (
	"testing"

	"mamori/internal/version/internal/versiontest"
)

// Cases follow apk-tools src/version.c and its test/version.data:
// pre-release suffixes (_alpha < _beta < _pre < _rc) sort before the
// release, post-release ones (_cvs < _svn < _git < _hg < _p) after it;
// a component with a leading zero compares as a string; a version with
// no -rN sorts before -r0; "~hash" sorts after no hash.
var ordered = []string{
	"0.1.0_alpha",
	"0.1.0_alpha2",
	"0.1.3_alpha",
	"1.0_alpha_pre2",
	"1.0_alpha",
	"1.0_alpha0",
	"1.0_alpha1",
	"1.0_beta",
	"1.0_pre1",
	"1.0_rc1",
	"1.0_rc1-r1",
	"1.0_rc2",
	"1.0",
	"1.0-r0",
	"1.0-r1",
	"1.0-r10",
	"1.0~1a2b",
	"1.0~1a2b-r0",
	"1.0~2b",
	"1.0_cvs",
	"1.0_svn",
	"1.0_git20230101",
	"1.0_hg",
	"1.0_p1",
	"1.0_p1-r1",
	"1.0_p9",
	"1.0_p10",
	"1.0a",
	"1.0b",
	"1.00",
	"1.01",
	"1.02",
	"1.1",
	"1.1.0",
	"1.2",
	"1.10",
	"2.2.39-r1",
	"7.83.1_rc1-r0",
	"7.83.1-r0",
	"20050718-r2",
	"99999999999999999998",
	"99999999999999999999",
	"100000000000000000000",
}

var equal = [][2]string{
	{"1.0", "1.0"},
	{"01.0", "1.0"}, // the first number always compares by value
	{"1.0-r01", "1.0-r1"},
}

var invalid = []string{
	"", "a1.0", "1.0bc", "1.0_foo", "1.0-1", "1.0-r", "1.0-r1-r2", "1.0.", "1.0_p1a",
	"1.0~", "1.0~xyz", "1.0-r1_p1", "1.0 ", "1.0A", "1..0", ".1", "1.0-r1.1",
}

func TestOrder(t *testing.T)   { versiontest.Ordered(t, Compare, ordered) }
func TestEqual(t *testing.T)   { versiontest.Equal(t, Compare, equal) }
func TestInvalid(t *testing.T) { versiontest.Invalid(t, Compare, "1.0", invalid) }

func TestZeroVersion(t *testing.T) {
	v, err := Parse("1.0")
	if err != nil {
		t.Fatal(err)
	}
	if c := (Version{}).Compare(v); c != -1 {
		t.Errorf("zero.Compare(1.0) = %d, want -1", c)
	}
	if c := (Version{}).Compare(Version{}); c != 0 {
		t.Errorf("zero.Compare(zero) = %d, want 0", c)
	}
}

func FuzzCompare(f *testing.F) {
	for i := 0; i+2 < len(ordered); i++ {
		f.Add(ordered[i], ordered[i+1], ordered[i+2])
	}
	for _, s := range invalid {
		f.Add(s, "1.0", "1.0_rc1")
	}
	f.Fuzz(func(t *testing.T, a, b, c string) {
		versiontest.Properties(t, Compare, a, b)
		versiontest.Transitive(t, Compare, a, b, c)
	})
}

func BenchmarkCompare(b *testing.B) {
	for b.Loop() {
		if _, err := Compare("7.83.1_rc1-r0", "7.83.1-r3"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParsedCompare(b *testing.B) {
	x, _ := Parse("7.83.1_rc1-r0")
	y, _ := Parse("7.83.1-r3")
	for b.Loop() {
		x.Compare(y)
	}
}
