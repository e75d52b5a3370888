package misconfig

import (
	"testing"

	"mamori/internal/finding"
)

func idSet(fs []finding.Finding) map[string]int {
	m := map[string]int{}
	for _, f := range fs {
		m[f.ID]++
	}
	return m
}

// expect asserts that every id in want is present and none in not is.
func expect(t *testing.T, name string, fs []finding.Finding, want, not []string) {
	t.Helper()
	got := idSet(fs)
	for _, id := range want {
		if got[id] == 0 {
			t.Errorf("%s: want %s, got %v", name, id, got)
		}
	}
	for _, id := range not {
		if got[id] != 0 {
			t.Errorf("%s: unexpected %s (got %v)", name, id, got)
		}
	}
	for _, f := range fs {
		if f.Kind != finding.KindMisconfig || f.Title == "" || f.Severity == finding.SeverityUnknown || len(f.Controls) == 0 || f.Remediation == "" {
			t.Errorf("%s: incomplete finding %+v", name, f)
		}
	}
}
