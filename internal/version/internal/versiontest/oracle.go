package versiontest

import (
	"bytes"
	"context"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// oracleTimeout bounds one reference-implementation run.
const oracleTimeout = 60 * time.Second

// Oracle runs a reference implementation once over all pairs: it writes
// "a\tb\n" lines to the command's stdin and reads one result per line:
// -1, 0, 1, or "E" when the reference rejects either version. It then
// checks cmp against it. The test is skipped when the command is missing.
func Oracle(t *testing.T, cmp CompareFunc, pairs [][2]string, install string, name string, args ...string) {
	t.Helper()
	bin, err := exec.LookPath(name)
	if err != nil {
		t.Skipf("%s not installed (apt-get install %s): differential test skipped", name, install)
	}
	var in bytes.Buffer
	for _, p := range pairs {
		in.WriteString(p[0] + "\t" + p[1] + "\n")
	}
	ctx, cancel := context.WithTimeout(context.Background(), oracleTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Stdin = &in
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Skipf("%s failed (reference library missing? apt-get install %s): %v: %s", name, install, err, stderr.String())
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != len(pairs) {
		t.Fatalf("%s printed %d results for %d pairs", name, len(lines), len(pairs))
	}
	for i, p := range pairs {
		got, gerr := cmp(p[0], p[1])
		if lines[i] == "E" {
			if gerr == nil {
				t.Logf("Compare(%q, %q) = %d; the reference rejects it", p[0], p[1], got)
			}
			continue
		}
		want, err := strconv.Atoi(strings.TrimSpace(lines[i]))
		if err != nil {
			t.Fatalf("%s output %q: %v", name, lines[i], err)
		}
		if gerr != nil {
			t.Errorf("Compare(%q, %q): %v; the reference says %d", p[0], p[1], gerr, want)
			continue
		}
		if got != want {
			t.Errorf("Compare(%q, %q) = %d, the reference says %d", p[0], p[1], got, want)
		}
	}
}

// AllPairs returns every pair of vs (both orders are implied by Oracle's
// callers checking antisymmetry elsewhere).
func AllPairs(vs []string) [][2]string {
	var out [][2]string
	for i := range vs {
		for j := i + 1; j < len(vs); j++ {
			out = append(out, [2]string{vs[i], vs[j]})
		}
	}
	return out
}
