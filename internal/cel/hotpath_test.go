package cel

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"cel.dev/cel-go/common/types"
)

// TestHotPathSameResults evaluates expressions through the hot-path plan (EvalBounded: fields by
// position, prepared constant lists) and the plain one (Eval) over the same inputs: the results
// must be the same, errors included, with Fields and with another Activation.
func TestHotPathSameResults(t *testing.T) {
	e := mustEnv(t, WithLists(
		List{Name: "globs", Values: []string{"/etc/shadow", "/root/.ssh/id_*", "/home/*/.ssh/**", "**/docker.sock", "/etc/cron.*/**", `/a/\*`, "rel/*"}},
		List{Name: "prefixes", Values: []string{"kworker", "rcu_", "k", "[x"}},
		List{Name: "with_empty", Values: []string{"", "zz"}},
	))
	exprs := []string{
		`path.match(proc.exe, globs)`,
		`path.match(proc.exe, ["/tmp/*", "/dev/shm/**", "/usr/bin/x"])`,
		`path.match(proc.exe, "/tmp/**")`,
		`path.match(proc.exe, "/tmp/x")`,
		`path.match(proc.exe, [])`,
		`path.match(proc.exe, [proc.name, "/tmp/*"])`, // not a constant: the plain call
		`proc.exe.startsWithAny([proc.name, "/a"])`,
		`proc.name.startsWithAny(prefixes)`,
		`proc.name.endsWithAny(["sh", "h", "d"])`,
		`proc.name.startsWithAny(with_empty)`,
		`proc.name.endsWithAny(with_empty)`,
		`proc.name.startsWithAny([])`,
		`proc.name.containsAny(prefixes)`,
		`proc.args.exists(a, a.startsWithAny(["-c", "--"]))`,
		`proc.args.exists(a, path.match(a, globs))`,
		`proc.args.exists(proc, proc == "x")`, // a local variable named like a field's namespace
		`[1, 2].exists(x, x == proc.uid)`,
		`proc.exe == "/bin/sh" && proc.uid == 0`,
		`proc.uid > 10 || proc.name in ["sh", "bash"]`,
		`has(obj.a) && obj.a == 1`,
		`container.labels["app"] == "web"`,
	}
	inputs := []map[string]any{
		{"proc.exe": "/etc/shadow", "proc.name": "kworker/0:1", "proc.args": []string{"-c", "/etc/cron.d/x"}, "proc.uid": int64(0)},
		{"proc.exe": "/home/u/.ssh/a/b", "proc.name": "bash", "proc.args": []string{"x"}, "proc.uid": int64(1)},
		{"proc.exe": "/var/run/docker.sock", "proc.name": "", "proc.args": []string{}, "proc.uid": int64(2)},
		{"proc.exe": "/a/*", "proc.name": "zsh", "proc.args": []string{"--x", "/tmp/**"}, "proc.uid": int64(11)},
		{"proc.exe": "/a/b", "proc.name": "[x", "proc.args": []string{"/root/.ssh/id_rsa"}, "proc.uid": int64(0)},
		{"proc.exe": "rel/x", "proc.name": "rcu_sched", "proc.args": []string{"/tmp/*"}, "proc.uid": int64(0)},
		{"proc.exe": "", "proc.name": "d", "proc.args": []string{""}, "proc.uid": int64(3)},
		{"proc.exe": "/tmp/x", "proc.name": "zz", "proc.args": []string{"[", "a/\\"}, "proc.uid": int64(0)},
	}
	for _, in := range inputs {
		in["net.addr"] = "10.0.0.1"
		in["container.labels"] = map[string]string{"app": "web"}
		in["obj"] = map[string]any{"a": int64(1)}
	}
	for _, x := range exprs {
		prg, err := e.CompileBool(Text(x))
		if err != nil {
			t.Fatalf("%s: %v", x, err)
		}
		for k, in := range inputs {
			want, werr := prg.EvalBool(context.Background(), MapActivation(in))
			f := e.NewFields(fieldsOf(e, in))
			for round := 0; round < 2; round++ { // the second round reads cached values
				f.Reset()
				got, gerr := prg.EvalBoundedBool(f)
				if got != want || (gerr == nil) != (werr == nil) {
					t.Errorf("%s, input %d, round %d: hot path %v, %v; plain %v, %v", x, k, round, got, gerr, want, werr)
				}
			}
			got, gerr := prg.EvalBoundedBool(MapActivation(in))
			if got != want || (gerr == nil) != (werr == nil) {
				t.Errorf("%s, input %d, map activation: hot path %v, %v; plain %v, %v", x, k, got, gerr, want, werr)
			}
		}
	}
}

func fieldsOf(e *Env, in map[string]any) func(int) Value {
	vars := e.Vars()
	return func(i int) Value { return types.DefaultTypeAdapter.NativeToValue(in[vars[i].Name]) }
}

// TestHotPathOtherEnvFields: a program evaluated with the Fields of another Env (its variables
// at other positions) resolves them by name, not by its own positions.
func TestHotPathOtherEnvFields(t *testing.T) {
	a := mustEnv(t)
	vars := testVars()
	for i, j := 0, len(vars)-1; i < j; i, j = i+1, j-1 {
		vars[i], vars[j] = vars[j], vars[i]
	}
	b, err := NewEnv(vars)
	if err != nil {
		t.Fatal(err)
	}
	prg, err := a.CompileBool(Text(`proc.exe == "/bin/sh" && proc.uid == 7`))
	if err != nil {
		t.Fatal(err)
	}
	in := map[string]any{"proc.exe": "/bin/sh", "proc.uid": int64(7)}
	f := b.NewFields(fieldsOf(b, in))
	if ok, err := prg.EvalBoundedBool(f); !ok || err != nil {
		t.Fatalf("= %v, %v", ok, err)
	}
}

func TestGlobSet(t *testing.T) {
	s, err := CompileGlobs([]string{"/etc/shadow", "/home/*/.ssh/id_*", "**/docker.sock", "/etc/cron.d/**", "/*/x", `/\e/y`})
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]bool{
		"/etc/shadow": true, "/etc/shadow-": false, "/home/u/.ssh/id_rsa": true, "/home/u/.ssh/x": false,
		"/run/docker.sock": true, "docker.sock": true, "/etc/cron.d": true, "/etc/cron.d/a/b": true,
		"/etc/cron.dx/a": false, "/a/x": true, "/e/y": true, "/": false, "": false, "/etc": false,
	} {
		if got := s.Match(name); got != want {
			t.Errorf("Match(%q) = %v, want %v", name, got, want)
		}
	}
	if s.Len() != 6 {
		t.Fatalf("Len = %d", s.Len())
	}
	for _, bad := range []string{"/a/[b", strings.Repeat("*/", 70)} {
		if _, err := CompileGlobs([]string{"/ok", bad}); !errors.Is(err, ErrBadGlob) || !strings.Contains(err.Error(), fmt.Sprintf("%q", bad)) {
			t.Errorf("CompileGlobs(%q): %v", bad, err)
		}
	}
}

func TestGlobAllocs(t *testing.T) {
	s, err := CompileGlobs([]string{"/home/*/.ssh/id_*", "/etc/cron.d/**", "**/docker.sock"})
	if err != nil {
		t.Fatal(err)
	}
	if n := testing.AllocsPerRun(100, func() {
		_, _ = Glob("/home/*/.ssh/**/id_*", "/home/u/.ssh/a/b/id_rsa")
		s.Match("/home/u/.ssh/id_rsa")
		s.Match("/var/run/docker.sock")
	}); n != 0 {
		t.Fatalf("%v allocations per run", n)
	}
}

// FuzzGlobSet checks a GlobSet against Glob over each of its patterns.
func FuzzGlobSet(f *testing.F) {
	f.Add("/etc/shadow\n/home/*/.ssh/id_*\n**/docker.sock", "/home/u/.ssh/id_rsa")
	f.Add("/etc/cron.d/**\n/*/x\nrel/*", "rel/a")
	f.Add(`/\e/y`+"\n/a/[bc]", "/e/y")
	f.Fuzz(func(t *testing.T, patterns, name string) {
		if len(patterns) > 400 || len(name) > 200 {
			return
		}
		list := strings.Split(patterns, "\n")
		s, err := CompileGlobs(list)
		if err != nil {
			if !errors.Is(err, ErrBadGlob) {
				t.Fatalf("CompileGlobs: %v", err)
			}
			return
		}
		want := false
		for _, p := range list {
			ok, err := Glob(p, name)
			if err != nil {
				t.Fatalf("Glob(%q, %q) after CompileGlobs accepted it: %v", p, name, err)
			}
			want = want || ok
		}
		if got := s.Match(name); got != want {
			t.Fatalf("Match(%q) = %v, Glob says %v (patterns %q)", name, got, want, list)
		}
	})
}
