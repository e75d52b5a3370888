package cel

import (
	"context"
	"errors"
	"path"
	"strings"
	"testing"
	"time"

	"cel.dev/cel-go/common/types"
)

// FuzzCompileEval compiles arbitrary expressions under the limits and evaluates the ones that
// compile, with the fenced and the bounded evaluator: neither may panic or run long, and the
// bounded one over Fields (the hot-path plan) must give what the fenced one gives.
func FuzzCompileEval(f *testing.F) {
	for _, seed := range []string{
		`proc.exe.startsWith("/tmp/")`,
		`proc.args.exists(a, a.contains("x"))`,
		`proc.args.all(a, proc.args.all(b, a == b))`,
		`path.match(proc.exe, "/usr/**/b?n/*")`,
		`ip.inCIDR(net.addr, ["10.0.0.0/8", "fd00::/8"])`,
		`container.labels["app"] == "web" && proc.uid > 0`,
		`obj.spec.containers.exists(c, c.image.endsWith(":latest"))`,
		`"a".repeat(100000) == proc.exe`,
		`[1,2,3].map(x, [x, x, x]).size() == 3`,
		`proc.exe.matches("(a+)+$")`,
		`shell_binaries.exists(s, proc.name == s)`,
		`((((((((((proc.uid))))))))))`,
	} {
		f.Add(seed)
	}
	e, err := NewEnv(testVars(), WithCostLimit(20_000),
		WithLists(List{Name: "shell_binaries", Values: []string{"sh", "bash"}}))
	if err != nil {
		f.Fatal(err)
	}
	act := MapActivation(map[string]any{
		"proc.exe": "/usr/bin/bash", "proc.name": "bash", "proc.uid": 0,
		"proc.args": []string{"bash", "-c", "id"}, "net.addr": "10.1.2.3",
		"container.labels": map[string]string{"app": "web"},
		"obj":              map[string]any{"spec": map[string]any{"containers": []any{map[string]any{"image": "nginx:latest"}}}},
	})
	vars := e.Vars()
	fields := e.NewFields(func(i int) Value {
		v, _ := act.ResolveName(vars[i].Name)
		return types.DefaultTypeAdapter.NativeToValue(v)
	})
	f.Fuzz(func(t *testing.T, expr string) {
		// A hang anywhere (parse, check, estimate, plan, evaluation) crashes the worker, which
		// makes the fuzzer keep the input.
		watchdog := time.AfterFunc(10*time.Second, func() { panic("hang on " + expr) })
		defer watchdog.Stop()
		prg, err := e.Compile(Text(expr))
		if err != nil {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		start := time.Now()
		want, werr := prg.Eval(ctx, act)
		_, _ = prg.EvalBounded(act)
		// The hot-path plan over Fields (variables by position, prepared constant lists) must
		// agree with the plain plan wherever the plain one succeeds.
		fields.Reset()
		got, gerr := prg.EvalBounded(fields)
		if d := time.Since(start); d > 2*time.Second {
			t.Fatalf("%q (estimated %+v) took %v", expr, prg.Cost(), d)
		}
		if werr != nil {
			return
		}
		if gerr != nil {
			t.Fatalf("%q: plain plan %v, hot path error %v", expr, want, gerr)
		}
		if d, ok := want.(types.Double); ok && d != d { // NaN
			return
		}
		if want.Equal(got) != types.True {
			t.Fatalf("%q: plain plan %v, hot path %v", expr, want, got)
		}
	})
}

// FuzzGlob checks Glob against a naive recursive matcher over segments, and that it never panics
// and reports a malformed pattern as ErrBadGlob.
func FuzzGlob(f *testing.F) {
	for _, s := range [][2]string{
		{"/etc/cron.d/**", "/etc/cron.d/a/b"}, {"**/docker.sock", "/run/docker.sock"},
		{"/home/*/.ssh/id_*", "/home/u/.ssh/id_rsa"}, {"/a/**/b/*", "/a/x/b/y"}, {"/a/[b", "/a/b"},
		{"**", ""}, {"/**/**/x", "/x"}, {`/a/\*`, "/a/*"}, {"/a/?", "/a/"},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, pattern, name string) {
		if len(pattern) > 200 || len(name) > 200 {
			return
		}
		got, err := Glob(pattern, name)
		psegs := strings.Split(pattern, "/")
		if len(psegs) > maxGlobSegments {
			return
		}
		want, werr := naiveGlob(psegs, strings.Split(name, "/"))
		if err != nil || werr != nil {
			// Glob may skip a malformed segment it never reaches; when it does report, it is
			// ErrBadGlob.
			if err != nil && !errors.Is(err, ErrBadGlob) {
				t.Fatalf("Glob(%q, %q): %v", pattern, name, err)
			}
			return
		}
		if got != want {
			t.Fatalf("Glob(%q, %q) = %v, want %v", pattern, name, got, want)
		}
	})
}

func naiveGlob(p, n []string) (bool, error) {
	if len(p) == 0 {
		return len(n) == 0, nil
	}
	if p[0] == "**" {
		for i := 0; i <= len(n); i++ {
			ok, err := naiveGlob(p[1:], n[i:])
			if err != nil || ok {
				return ok, err
			}
		}
		return false, nil
	}
	if len(n) == 0 {
		return false, nil
	}
	ok, err := path.Match(p[0], n[0])
	if err != nil || !ok {
		return false, err
	}
	return naiveGlob(p[1:], n[1:])
}
