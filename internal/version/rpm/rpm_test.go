package rpm

import (
	"fmt"
	"math/rand/v2"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"mamori/internal/version/internal/versiontest"
)

// Cases from rpm's documentation of version comparison
// (rpm.org/docs "Package version comparison" and rpm's tests/rpmvercmp.at):
// '~' sorts before everything including the end, '^' sorts after the end but
// before any further segment, numbers sort after letters, the epoch
// dominates, the release is compared only when versions are equal.
var ordered = []string{
	"0.9",
	"1.0~~",
	"1.0~rc1",
	"1.0~rc1^git1",
	"1.0~rc2",
	"1.0",
	"1.0-1~rc1",
	"1.0-1",
	"1.0-1.el8",
	"1.0-1.el9",
	"1.0-1.el9_2",
	"1.0-2",
	"1.0^",
	"1.0^git1",
	"1.0^git1^2",
	"1.0^git2",
	"1.0a",
	"1.0.0",
	"1.0.1",
	"1.2",
	"1.10",
	"1.99999999999999999999",
	"1.100000000000000000000",
	"2.0",
	"1:0.1",
	"1:0.1-1",
	"2:0",
}

var equal = [][2]string{
	{"1.0", "0:1.0"},
	{"1.0_1", "1.0.1"}, // separators other than ~ and ^ only split
	{"1.0", "1_0"},
	{"0001", "1"},
	{"1.0-1", "1.0-01"},
}

var invalid = []string{"", " ", "x:1.0", ":1.0", "1:", "1:-1", "-1", "99999999999:1.0"}

func TestOrder(t *testing.T)   { versiontest.Ordered(t, Compare, ordered) }
func TestEqual(t *testing.T)   { versiontest.Equal(t, Compare, equal) }
func TestInvalid(t *testing.T) { versiontest.Invalid(t, Compare, "1.0", invalid) }

// TestAgainstRPM compares with rpm's own rpm.vercmp (rpm ≥ 4.14 Lua API),
// on the chain and on random versions, in one rpm run.
func TestAgainstRPM(t *testing.T) {
	rpmBin, err := exec.LookPath("rpm")
	if err != nil {
		t.Skip("rpm not installed (apt-get install rpm): differential test skipped")
	}
	var pairs [][2]string
	for i := 0; i+1 < len(ordered); i++ {
		pairs = append(pairs, [2]string{ordered[i], ordered[i+1]})
	}
	r := rand.New(rand.NewPCG(3, 4))
	for range 400 {
		pairs = append(pairs, [2]string{randomVersion(r), randomVersion(r)})
	}
	var lua strings.Builder
	lua.WriteString("%{lua:\n")
	for _, p := range pairs {
		fmt.Fprintf(&lua, "print(rpm.vercmp(%q, %q)..\"\\n\")\n", p[0], p[1])
	}
	lua.WriteString("}")
	out, err := exec.Command(rpmBin, "--eval", lua.String()).Output()
	if err != nil {
		t.Skipf("rpm --eval with Lua failed (rpm too old?): %v", err)
	}
	lines := strings.Fields(string(out))
	if len(lines) != len(pairs) {
		t.Fatalf("rpm printed %d results for %d pairs", len(lines), len(pairs))
	}
	for i, p := range pairs {
		want, err := strconv.Atoi(lines[i])
		if err != nil {
			t.Fatalf("rpm output %q: %v", lines[i], err)
		}
		got, err := Compare(p[0], p[1])
		if err != nil {
			t.Errorf("Compare(%q, %q): %v", p[0], p[1], err)
			continue
		}
		if got != want {
			t.Errorf("Compare(%q, %q) = %d, rpm says %d", p[0], p[1], got, want)
		}
	}
}

func randomVersion(r *rand.Rand) string {
	const alphabet = "0123456789~^._ab"
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
		f.Add(s, "1.0", "1.0^1")
	}
	f.Fuzz(func(t *testing.T, a, b, c string) {
		versiontest.Properties(t, Compare, a, b)
		versiontest.Transitive(t, Compare, a, b, c)
	})
}

func BenchmarkCompare(b *testing.B) {
	for b.Loop() {
		if _, err := Compare("1:2.36.1-8.el9_2", "1:2.36.1-10.el9"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParsedCompare(b *testing.B) {
	x, _ := Parse("1:2.36.1-8.el9_2")
	y, _ := Parse("1:2.36.1-10.el9")
	for b.Loop() {
		x.Compare(y)
	}
}
