package rules

import (
	"testing"
)

// FuzzLoad: any rule file is loaded or refused with an error, never a crash or a hang; a loaded
// catalog builds an engine that evaluates a record.
func FuzzLoad(f *testing.F) {
	srcs, err := Builtin()
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range srcs {
		f.Add(s.Data)
	}
	f.Add([]byte("rules:\n  - {id: a, title: t, severity: low, condition: 'true', threshold: {count: 2, window: 1s, key: [src.ip], weight: 'log.count * 2', distinct: user.name}, output: '{count} {key} {distinct} {first} {window} {log.fields}'}\n"))
	f.Add([]byte("disabled: [a]\nrules: [{id: a, title: t, severity: low, condition: 'true'}]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		cat, err := Load(Source{Name: "f.yaml", Data: data})
		if err != nil {
			return
		}
		e, err := NewEngine(cat)
		if err != nil {
			t.Fatal(err)
		}
		r := syslogRec(t, "08:00:00.0+00:00 h sshd[1]: Failed password for root from 192.0.2.1 port 22 ssh2")
		for range 3 {
			ds, _ := e.Process(r)
			for i := range ds {
				ev := ds[i].Event("h")
				if err := ev.Validate(); err != nil {
					t.Fatalf("event: %v", err)
				}
			}
		}
	})
}
