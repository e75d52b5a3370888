package archtest

import (
	"context"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// repoRoot is the module root: this file is internal/archtest/archtest_test.go.
func repoRoot(t *testing.T) string {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("no caller information")
	}
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// TestLayers is the dependency-direction test of the whole module.
func TestLayers(t *testing.T) {
	pkgs, err := List(context.Background(), repoRoot(t), "./...")
	if err != nil {
		t.Fatal(err)
	}
	if len(pkgs) < 50 {
		t.Fatalf("go list gave %d packages: the listing is broken", len(pkgs))
	}
	for _, v := range Check(pkgs, Rules) {
		t.Error(v)
	}
}

// TestLayersCatchABadImport runs the same check on a fixture module whose
// model imports its store: the check must fail, naming the rule and the
// chain, so TestLayers is known to be able to fail.
func TestLayersCatchABadImport(t *testing.T) {
	pkgs, err := List(context.Background(), filepath.Join("testdata", "badmod"), "./...")
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]Violation{}
	for _, v := range Check(pkgs, Rules) {
		got[v.Rule+"|"+v.From+"|"+v.To] = v
	}
	want := []struct{ rule, from, to, path string }{
		{"model is a leaf", "mamori/internal/model", "mamori/internal/store", "mamori/internal/model -> mamori/internal/store"},
		{"components never link the server side", "mamori/internal/agent", "mamori/internal/store",
			"mamori/internal/agent -> mamori/internal/model -> mamori/internal/store"},
	}
	for _, w := range want {
		v, ok := got[w.rule+"|"+w.from+"|"+w.to]
		if !ok {
			t.Errorf("no violation %q for %s -> %s; got %v", w.rule, w.from, w.to, got)
			continue
		}
		if p := strings.Join(v.Path, " -> "); p != w.path {
			t.Errorf("%s: path %q, want %q", w.rule, p, w.path)
		}
	}
	if len(got) != len(want) {
		t.Errorf("got %d violations, want %d: %v", len(got), len(want), got)
	}
}

func TestPatterns(t *testing.T) {
	for _, c := range []struct {
		pattern, path string
		want          bool
	}{
		{"mamori/internal/host/...", "mamori/internal/host", true},
		{"mamori/internal/host/...", "mamori/internal/host/firewall", true},
		{"mamori/internal/host/...", "mamori/internal/hostile", false},
		{"mamori/internal/model", "mamori/internal/model", true},
		{"mamori/internal/model", "mamori/internal/model/x", false},
		{"mamori/...", "mamori/web", true},
	} {
		if got := match(c.pattern, c.path); got != c.want {
			t.Errorf("match(%q, %q) = %v, want %v", c.pattern, c.path, got, c.want)
		}
	}
}
