package cel

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"cel.dev/cel-go/common/types"
	"go.yaml.in/yaml/v3"
)

func testVars() []Var {
	return []Var{
		{Name: "proc.exe", Type: String, MaxSize: 4096},
		{Name: "proc.name", Type: String, MaxSize: 16},
		{Name: "proc.args", Type: ListOf(String), MaxSize: 64, ElemSize: 256},
		{Name: "proc.uid", Type: Int},
		{Name: "net.addr", Type: String, MaxSize: 64},
		{Name: "container.labels", Type: MapOf(String, String), MaxSize: 64, KeySize: 253, ElemSize: 63},
		{Name: "obj", Type: MapOf(String, Dyn), MaxSize: 100, ElemSize: 1000},
	}
}

func mustEnv(t testing.TB, opts ...Option) *Env {
	t.Helper()
	e, err := NewEnv(testVars(), opts...)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func TestTypeErrors(t *testing.T) {
	e := mustEnv(t)
	cases := []struct {
		expr string
		want string
		is   error
	}{
		{`proc.exe.startsWith(1)`, `1:20: found no matching overload for 'startsWith' applied to 'string.(int)'`, ErrType},
		{`proc.exee == "x"`, `1:5: undeclared reference to 'proc.exee' (did you mean 'proc.exe'?)`, ErrType},
		{`proc.exe`, `1:1: expression must be a bool, not a string`, ErrType},
		{`proc.exe ==`, `1:12: Syntax error`, ErrSyntax},
		{`path.match(proc.exe, "[")`, `path.match: bad glob pattern`, ErrType},
		{`ip.inCIDR(net.addr, ["10.0.0.0/8", "300.0.0.0/8"])`, `1:36: ip.inCIDR: netip.ParsePrefix("300.0.0.0/8")`, ErrType},
	}
	for _, c := range cases {
		_, err := e.CompileBool(Source{File: "r.yaml", Expr: c.expr, Line: 1, Column: 1})
		if err == nil {
			t.Errorf("%s: compiled, want error", c.expr)
			continue
		}
		if !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %q, want it to contain %q", c.expr, err, c.want)
		}
		if !errors.Is(err, c.is) {
			t.Errorf("%s: error %v is not %v", c.expr, err, c.is)
		}
	}
}

func TestCostLimitAtLoad(t *testing.T) {
	e := mustEnv(t, WithCostLimit(1000))
	// Cheap: a few comparisons.
	if _, err := e.CompileBool(Text(`proc.name == "sh" && proc.uid == 0`)); err != nil {
		t.Fatal(err)
	}
	// Nested comprehensions over the argument list: 64*64 iterations, each scanning strings.
	_, err := e.CompileBool(Source{File: "r.yaml", Line: 7, Column: 16,
		Expr: `proc.args.exists(a, proc.args.exists(b, a + b == "xx"))`})
	if !errors.Is(err, ErrTooExpensive) {
		t.Fatalf("err = %v, want ErrTooExpensive", err)
	}
	if !strings.HasPrefix(err.Error(), "r.yaml:7:16: estimated cost ") || !strings.HasSuffix(err.Error(), "exceeds the limit of 1000") {
		t.Fatalf("error %q", err)
	}
	// A dyn map read deeply is bounded by the declared sizes, not unbounded.
	p, err := NewEnv(testVars())
	if err != nil {
		t.Fatal(err)
	}
	prg, err := p.CompileBool(Text(`obj.spec.containers.exists(c, c.image.endsWith(":latest"))`))
	if err != nil {
		t.Fatal(err)
	}
	if c := prg.Cost(); c.Max == 0 || c.Max > DefaultCostLimit {
		t.Fatalf("cost %+v", c)
	}
}

func TestRuntimeFences(t *testing.T) {
	// The runtime limit below the static limit: the second fence trips during evaluation.
	e := mustEnv(t, WithCostLimit(1_000_000), WithRuntimeCostLimit(50))
	prg, err := e.CompileBool(Text(`proc.args.exists(a, a == "never")`))
	if err != nil {
		t.Fatal(err)
	}
	args := make([]string, 60)
	for i := range args {
		args[i] = "x"
	}
	act := MapActivation(map[string]any{"proc.args": args})
	_, err = prg.EvalBool(context.Background(), act)
	if !errors.Is(err, ErrEval) || !strings.Contains(err.Error(), "cost limit exceeded") {
		t.Fatalf("err = %v", err)
	}

	// Interrupt: a cancelled context stops a comprehension.
	e = mustEnv(t, WithCostLimit(10_000_000), WithInterruptCheckFrequency(1))
	prg, err = e.CompileBool(Text(`proc.args.all(a, proc.args.all(b, a == b))`))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = prg.EvalBool(ctx, act)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	ctx, cancel2 := context.WithTimeout(context.Background(), time.Minute)
	defer cancel2()
	ok, err := prg.EvalBool(ctx, act)
	if err != nil || !ok {
		t.Fatalf("ok=%v err=%v", ok, err)
	}
}

func TestLibrary(t *testing.T) {
	e := mustEnv(t)
	cases := []struct {
		expr string
		want bool
	}{
		{`path.base("/usr/bin/curl") == "curl"`, true},
		{`path.base("") == ""`, true},
		{`path.dir("/usr/bin/curl") == "/usr/bin"`, true},
		{`path.ext("/tmp/x.tar.gz") == ".gz"`, true},
		{`path.match("/etc/cron.d/job", "/etc/cron.*/*")`, true},
		{`path.match("/etc/cron.d/sub/job", "/etc/cron.*/*")`, false},
		{`path.match("/etc/cron.d/sub/job", "/etc/**")`, true},
		{`path.match("/etc", "/etc/**")`, true},
		{`path.match("/home/u/.ssh/authorized_keys", "/home/*/.ssh/authorized_keys*")`, true},
		{`path.match("/root/.ssh/authorized_keys2", ["/home/*/.ssh/*", "/root/.ssh/authorized_keys*"])`, true},
		{`path.match("/a/b/c/d", "/**/c/*")`, true},
		{`path.match("/a/b/c/d/e", "/**/c/*")`, false},
		{`path.under("/etc/shadow", "/etc")`, true},
		{`path.under("/etcx/shadow", "/etc")`, false},
		{`path.under("/etc", "/etc/")`, true},
		{`path.under("/anything", "/")`, true},
		{`path.under("/var/run/docker.sock", ["/run", "/var/run"])`, true},
		{`ip.inCIDR("169.254.169.254", "169.254.0.0/16")`, true},
		{`ip.inCIDR("::ffff:169.254.169.254", "169.254.169.254/32")`, true},
		{`ip.inCIDR("fd00:ec2::254", ["169.254.169.254/32", "fd00:ec2::254/128"])`, true},
		{`ip.inCIDR("not an address", "0.0.0.0/0")`, false},
		{`ip.isPrivate("10.1.2.3") && !ip.isPrivate("8.8.8.8")`, true},
		{`ip.isLoopback("::1") && ip.isLinkLocal("169.254.1.1")`, true},
		{`"/usr/bin/apt-get".startsWithAny(["/bin/", "/usr/bin/"])`, true},
		{`"xmrig.tar".endsWithAny([".gz", ".zip"])`, false},
		{`"stratum+tcp://pool".containsAny(["stratum+", "nicehash"])`, true},
		{`sets.intersects(["a", "-e"], ["-e", "-c"])`, true},
		{`"bash" in ["sh", "bash"]`, true},
	}
	for _, c := range cases {
		prg, err := e.CompileBool(Text(c.expr))
		if err != nil {
			t.Errorf("%s: %v", c.expr, err)
			continue
		}
		got, err := prg.EvalBool(context.Background(), MapActivation(nil))
		if err != nil {
			t.Errorf("%s: %v", c.expr, err)
			continue
		}
		if got != c.want {
			t.Errorf("%s = %v, want %v", c.expr, got, c.want)
		}
	}
	// A glob only known at evaluation that is malformed is an evaluation error, not a panic.
	prg, err := e.CompileBool(Text(`path.match("/x", proc.exe)`))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := prg.EvalBool(context.Background(), MapActivation(map[string]any{"proc.exe": "["})); !errors.Is(err, ErrEval) {
		t.Fatalf("err = %v", err)
	}
}

func TestListsAndMacros(t *testing.T) {
	e, err := NewEnv(testVars(),
		WithLists(List{Name: "shell_binaries", Values: []string{"sh", "bash", "dash"}}),
		WithMacros(
			Macro{Name: "spawned_shell", Source: Text(`proc.name in shell_binaries`)},
			Macro{Name: "root_shell", Source: Text(`spawned_shell && proc.uid == 0`)},
		))
	if err != nil {
		t.Fatal(err)
	}
	prg, err := e.CompileBool(Text(`root_shell && !spawned_shell || proc.name == "zsh" && root_shell == false`))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(prg.Vars(), ","); got != "proc.name,proc.uid" {
		t.Fatalf("vars %s", got)
	}
	prg, err = e.CompileBool(Text(`root_shell`))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		uid  int
		want bool
	}{{"bash", 0, true}, {"bash", 1000, false}, {"python", 0, false}} {
		got, err := prg.EvalBool(context.Background(), MapActivation(map[string]any{"proc.name": c.name, "proc.uid": c.uid}))
		if err != nil || got != c.want {
			t.Errorf("%+v: got %v err %v", c, got, err)
		}
	}

	// Cycles and bad macros are reported with the macro's position.
	_, err = NewEnv(testVars(), WithMacros(
		Macro{Name: "a", Source: Source{File: "m.yaml", Line: 3, Column: 12, Expr: `b`}},
		Macro{Name: "b", Source: Source{File: "m.yaml", Line: 5, Column: 12, Expr: `a || proc.uid == 0`}},
	))
	if err == nil || !strings.Contains(err.Error(), "is defined in terms of itself") || !strings.HasPrefix(err.Error(), "m.yaml:") {
		t.Fatalf("err = %v", err)
	}
	_, err = NewEnv(testVars(), WithMacros(Macro{Name: "bad", Source: Source{File: "m.yaml", Line: 9, Column: 10, Expr: `proc.uid == "0"`}}))
	if err == nil || !strings.HasPrefix(err.Error(), "m.yaml:9:19: macro bad: found no matching overload for '_==_'") {
		t.Fatalf("err = %v", err)
	}
	_, err = NewEnv(testVars(), WithLists(List{Name: "proc.exe", Values: nil}))
	if !errors.Is(err, ErrDeclaration) {
		t.Fatalf("err = %v", err)
	}
}

func TestYAMLSourcePositions(t *testing.T) {
	doc := "rules:\n" +
		"  - id: a\n" +
		"    condition: proc.exe.startsWith(1)\n" +
		"  - id: b\n" +
		"    condition: >\n" +
		"      proc.name == \"sh\" &&\n" +
		"      proc.uid == \"0\"\n" +
		"  - id: c\n" +
		"    condition: |\n" +
		"      proc.name == \"sh\"\n" +
		"        && proc.uid == \"0\"\n" +
		"  - id: d\n" +
		"    condition: \"proc.name == 'sh' &&\n" +
		"      proc.exee == ''\"\n" +
		"  - id: e\n" +
		"    condition: proc.name == \"sh\" &&\n" +
		"      proc.uid == \"0\"\n"
	var root yaml.Node
	if err := yaml.Unmarshal([]byte(doc), &root); err != nil {
		t.Fatal(err)
	}
	rules := root.Content[0].Content[1].Content
	want := []string{
		"f.yaml:3:35: found no matching overload for 'startsWith'",
		"f.yaml:7:16: found no matching overload for '_==_'",
		"f.yaml:11:21: found no matching overload for '_==_'",
		"f.yaml:14:11: undeclared reference to 'proc.exee'",
		"f.yaml:17:16: found no matching overload for '_==_'",
	}
	e := mustEnv(t)
	for i, r := range rules {
		cond := r.Content[3]
		_, err := e.CompileBool(YAMLSource("f.yaml", []byte(doc), cond))
		if err == nil || !strings.HasPrefix(err.Error(), want[i]) {
			t.Errorf("rule %d: err = %v, want prefix %q", i, err, want[i])
		}
	}
}

func TestFields(t *testing.T) {
	e := mustEnv(t)
	calls := 0
	name := "bash"
	f := e.NewFields(func(i int) Value {
		calls++
		switch e.Vars()[i].Name {
		case "proc.name":
			return types.String(name)
		case "proc.uid":
			return types.Int(0)
		}
		return nil
	})
	prg, err := e.CompileBool(Text(`proc.name == "bash" && proc.uid == 0 && proc.name.size() == 4`))
	if err != nil {
		t.Fatal(err)
	}
	for round, want := range []bool{true, false} {
		f.Reset()
		if round == 1 {
			name = "zsh"
		}
		got, err := prg.EvalBool(context.Background(), f)
		if err != nil || got != want {
			t.Fatalf("round %d: %v %v", round, got, err)
		}
	}
	if calls != 3 { // proc.name twice (once per round), proc.uid once (short circuit in round 2)
		t.Fatalf("getter called %d times", calls)
	}
}

func TestGlob(t *testing.T) {
	cases := []struct {
		pat, name string
		want      bool
	}{
		{"", "", true},
		{"**", "/a/b", true},
		{"/**", "/", true},
		{"/a/**/b", "/a/b", true},
		{"/a/**/b", "/a/x/y/b", true},
		{"/a/**/b", "/a/x/y/c", false},
		{"/a/*", "/a/", true},
		{"/a/?", "/a/bc", false},
		{"/a/[bc]", "/a/c", true},
		{`/a/\*`, "/a/*", true},
		{"/**/**/x", "/x", true},
		{"/etc/cron.d/**", "/etc/cron.d", true},
		{"/etc/cron.d/**", "/etc/cron.d/a/b/c", true},
		{"/etc/cron.d/**", "/etc/cron.dx/a", false},
		{"/etc/cron.*/**", "/etc/cron.daily/x", true},
		{"**/docker.sock", "/var/run/docker.sock", true},
		{"**/docker.sock", "/var/run/docker.sock/x", false},
		{"/home/*/.ssh/id_*", "/home/u/.ssh/id_rsa", true},
		{"/home/*/.ssh/id_*", "/home/u/v/.ssh/id_rsa", false},
	}
	for _, c := range cases {
		got, err := Glob(c.pat, c.name)
		if err != nil || got != c.want {
			t.Errorf("Glob(%q, %q) = %v, %v", c.pat, c.name, got, err)
		}
	}
	if err := ValidateGlob("/a/[b"); !errors.Is(err, ErrBadGlob) {
		t.Fatal(err)
	}
	if _, err := Glob(strings.Repeat("*/", 70), "a"); !errors.Is(err, ErrBadGlob) {
		t.Fatal(err)
	}
}
