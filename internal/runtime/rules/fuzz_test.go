package rules

import (
	"testing"
	"time"
)

// FuzzLoad feeds arbitrary rule files to the loader: it returns a catalog or positioned errors,
// never panics or hangs, and a rule that loads evaluates and renders its output.
func FuzzLoad(f *testing.F) {
	f.Add([]byte(goodRule))
	f.Add([]byte(rulesetsYAML))
	f.Add([]byte("lists:\n  - name: sh\n    items: [x]\n  - name: sh\n    append: true\n    items: [y]\n"))
	f.Add([]byte("macros:\n  - name: m\n    condition: '!container.host'\n  - name: n\n    condition: m && proc.tty\n"))
	f.Add([]byte("rules:\n  - id: x\n    title: x\n    severity: low\n    tactic: TA0002\n    technique: T1059\n    kinds: [open]\n    condition: path.match(file.path, \"/a/**/b*\")\n    output: \"{file.path} {{x}}\"\n"))
	in := mk("open", ctr, proc("/bin/cat"), file("/etc/shadow", 0))
	f.Fuzz(func(t *testing.T, data []byte) {
		watchdog := time.AfterFunc(20*time.Second, func() { panic("hang") })
		defer watchdog.Stop()
		cat, err := Load(Source{Name: "fuzz.yaml", Data: data})
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty error")
			}
			return
		}
		e, err := NewEngine(cat)
		if err != nil {
			return
		}
		ev := e.NewEvaluator()
		for _, r := range cat.Rules() {
			if len(r.Kinds) > 0 {
				in.Event.Kind = r.Kinds[0]
				_, _ = ev.Eval(in)
				for _, m := range []Match{{Rule: r}} {
					_ = m.Message(in)
				}
			}
		}
	})
}
