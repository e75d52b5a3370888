package cel

import (
	"context"
	"testing"

	"cel.dev/cel-go/common/types"
)

const benchRule = `proc.name in shell_binaries && proc.uid == 0 &&
	(path.under(proc.exe, ["/tmp", "/dev/shm"]) || proc.args.exists(a, a.startsWithAny(["-c", "-i"])))`

func benchEnv(b *testing.B) *Env {
	e, err := NewEnv(testVars(),
		WithCostLimit(20000),
		WithLists(List{Name: "shell_binaries", Values: []string{"sh", "bash", "dash", "zsh", "ksh", "ash", "busybox"}}))
	if err != nil {
		b.Fatal(err)
	}
	return e
}

func BenchmarkCompile(b *testing.B) {
	e := benchEnv(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := e.CompileBool(Text(benchRule)); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEval(b *testing.B) {
	e := benchEnv(b)
	prg, err := e.CompileBool(Text(benchRule))
	if err != nil {
		b.Fatal(err)
	}
	exe := types.String("/tmp/bash")
	name := types.String("bash")
	args := types.NewStringList(types.DefaultTypeAdapter, []string{"bash", "-i"})
	idx := map[string]int{}
	for i, v := range e.Vars() {
		idx[v.Name] = i
	}
	f := e.NewFields(func(i int) Value {
		switch i {
		case idx["proc.exe"]:
			return exe
		case idx["proc.name"]:
			return name
		case idx["proc.args"]:
			return args
		case idx["proc.uid"]:
			return types.IntZero
		}
		return types.NullValue
	})
	b.Run("fields", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			f.Reset()
			ok, err := prg.EvalBool(context.Background(), f)
			if err != nil || !ok {
				b.Fatal(ok, err)
			}
		}
	})
	b.Run("fields-bounded", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			f.Reset()
			ok, err := prg.EvalBoundedBool(f)
			if err != nil || !ok {
				b.Fatal(ok, err)
			}
		}
	})
	b.Run("fields-ctx", func(b *testing.B) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		b.ReportAllocs()
		for b.Loop() {
			f.Reset()
			ok, err := prg.EvalBool(ctx, f)
			if err != nil || !ok {
				b.Fatal(ok, err)
			}
		}
	})
	m := MapActivation(map[string]any{"proc.exe": "/tmp/bash", "proc.name": "bash", "proc.uid": 0, "proc.args": []string{"bash", "-i"}})
	b.Run("map", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			ok, err := prg.EvalBool(context.Background(), m)
			if err != nil || !ok {
				b.Fatal(ok, err)
			}
		}
	})
}
