package cel

import (
	"context"
	"testing"
	"time"
)

// FuzzCompileEval compiles arbitrary expressions under the limits and evaluates the ones that
// compile, with the fenced and the bounded evaluator: neither may panic or run long.
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
		_, _ = prg.Eval(ctx, act)
		_, _ = prg.EvalBounded(act)
		if d := time.Since(start); d > 2*time.Second {
			t.Fatalf("%q (estimated %+v) took %v", expr, prg.Cost(), d)
		}
	})
}
