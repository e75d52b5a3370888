package deb

import (
	"fmt"
	"math/rand/v2"
	"os/exec"
	"testing"

	"mamori/internal/version/internal/versiontest"
)

// Debian Policy §5.6.12: "~~" < "~~a" < "~" < "" < "a"; letters sort before
// non-letters; digit runs compare numerically; epochs dominate; a missing
// revision equals "0".
var ordered = []string{
	"0.9",
	"1.0~~",
	"1.0~~a",
	"1.0~",
	"1.0~beta1",
	"1.0~rc1",
	"1.0",
	"1.0-0.1",
	"1.0-1~bpo11+1",
	"1.0-1",
	"1.0-1ubuntu0.22.04.1",
	"1.0-1ubuntu1",
	"1.0-1+deb12u1",
	"1.0-1.1",
	"1.0-2",
	"1.0a",
	"1.0+",
	"1.0+dfsg",
	"1.0+dfsg1",
	"1.0.0",
	"1.0.1",
	"1.2",
	"1.10",
	"1.99999999999999999998",
	"1.99999999999999999999",
	"1.100000000000000000000",
	"2.0",
	"1:0.1",
	"1:0.1-1",
	"2:0",
	"10:0",
}

var equal = [][2]string{
	{"1.0", "0:1.0"},
	{"1.0", "00:1.0"},
	{"1.0", "1.0-0"},
	{"1.01", "1.1"},
	{"1.0-01", "1.0-1"},
	{" 1.0 ", "1.0"},
}

var invalid = []string{
	"", "   ", ":1.0", "a:1.0", "-1:1.0", "1:", "1.0-", "1.0 1", "1.0!", "1.0-1:2", "1.0-a-", "99999999999:1.0", "1.0\x00",
}

func TestOrder(t *testing.T)   { versiontest.Ordered(t, Compare, ordered) }
func TestEqual(t *testing.T)   { versiontest.Equal(t, Compare, equal) }
func TestInvalid(t *testing.T) { versiontest.Invalid(t, Compare, "1.0", invalid) }

func TestString(t *testing.T) {
	v, err := Parse("01:1.2-3")
	if err != nil {
		t.Fatal(err)
	}
	if got := v.String(); got != "1:1.2-3" {
		t.Errorf("String() = %q", got)
	}
}

// TestAgainstDpkg compares with dpkg itself, the reference, on the chain and
// on random versions built from the characters that matter.
func TestAgainstDpkg(t *testing.T) {
	dpkg, err := exec.LookPath("dpkg")
	if err != nil {
		t.Skip("dpkg not installed (apt-get install dpkg): differential test skipped")
	}
	// Neighbours in the chain, then random pairs: about 200 dpkg runs.
	var pairs [][2]string
	for i := 0; i+1 < len(ordered); i++ {
		pairs = append(pairs, [2]string{ordered[i], ordered[i+1]})
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 150 {
		pairs = append(pairs, [2]string{randomVersion(r), randomVersion(r)})
	}
	for _, p := range pairs {
		a, b := p[0], p[1]
		{
			got, err := Compare(a, b)
			if err != nil {
				t.Fatalf("Compare(%q, %q): %v", a, b, err)
			}
			want := 0
			for _, op := range []struct {
				name string
				c    int
			}{{"lt", -1}, {"gt", 1}} {
				if exec.Command(dpkg, "--compare-versions", a, op.name, b).Run() == nil {
					want = op.c
				}
			}
			if got != want {
				t.Errorf("Compare(%q, %q) = %d, dpkg says %d", a, b, got, want)
			}
		}
	}
}

func randomVersion(r *rand.Rand) string {
	const alphabet = "0123456789~+.ab"
	s := fmt.Sprint(r.IntN(3))
	for range r.IntN(6) {
		s += string(alphabet[r.IntN(len(alphabet))])
	}
	if r.IntN(2) == 0 {
		s += "-" + fmt.Sprint(r.IntN(3))
		for range r.IntN(3) {
			s += string(alphabet[r.IntN(len(alphabet))])
		}
	}
	if r.IntN(4) == 0 {
		s = fmt.Sprint(r.IntN(2)) + ":" + s
	}
	return s
}

func FuzzCompare(f *testing.F) {
	for i := 0; i+2 < len(ordered); i++ {
		f.Add(ordered[i], ordered[i+1], ordered[i+2])
	}
	for _, s := range invalid {
		f.Add(s, "1.0", "1:1.0~")
	}
	f.Fuzz(func(t *testing.T, a, b, c string) {
		versiontest.Properties(t, Compare, a, b)
		versiontest.Transitive(t, Compare, a, b, c)
	})
}

func BenchmarkCompare(b *testing.B) {
	for b.Loop() {
		if _, err := Compare("1:2.36.1-8+deb11u1", "1:2.36.1-8+deb11u2~bpo1"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParsedCompare(b *testing.B) {
	x, _ := Parse("1:2.36.1-8+deb11u1")
	y, _ := Parse("1:2.36.1-8+deb11u2~bpo1")
	for b.Loop() {
		x.Compare(y)
	}
}
