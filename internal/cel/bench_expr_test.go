package cel

import (
	"testing"

	"cel.dev/cel-go/common/types"
)

func BenchmarkEvalExpr(b *testing.B) {
	e := benchEnv(b)
	for _, expr := range []string{`true`, `proc.uid == 0`, `proc.name == "bash"`, `proc.name in shell_binaries`, `proc.exe.startsWith("/tmp/")`, `path.base(proc.exe) in shell_binaries`, `proc.args.exists(a, a == "x")`} {
		prg, err := e.CompileBool(Text(expr))
		if err != nil {
			b.Fatal(err)
		}
		vars := e.Vars()
		args := types.NewStringList(types.DefaultTypeAdapter, []string{"a", "b", "c"})
		f := e.NewFields(func(i int) Value {
			switch vars[i].Name {
			case "proc.uid":
				return types.IntZero
			case "proc.args":
				return args
			}
			return types.String("/usr/bin/bash")
		})
		b.Run(expr, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				f.Reset()
				if _, err := prg.EvalBoundedBool(f); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
