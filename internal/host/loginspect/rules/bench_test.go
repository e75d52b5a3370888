package rules

import (
	"fmt"
	"testing"

	"mamori/internal/host/loginspect/decode"
)

// BenchmarkProcess: one record through every built-in rule that applies, by kind of line.
func BenchmarkProcess(b *testing.B) {
	for _, tc := range []struct{ name, line string }{
		{"ssh-failed", "08:00:00.0+00:00 h sshd[1]: Failed password for root from %s port 22 ssh2"},
		{"noise", "08:00:00.0+00:00 h CRON[1]: pam_unix(cron:session): session opened for user root(uid=0) by (uid=0)"},
		{"sudo-command", "08:00:00.0+00:00 h sudo:   bob : TTY=pts/1 ; PWD=/home/bob ; USER=root ; COMMAND=/usr/bin/apt update"},
	} {
		b.Run(tc.name, func(b *testing.B) {
			e := builtinEngine(b)
			recs := make([]*decode.Record, 256)
			for i := range recs {
				line := tc.line
				if tc.name == "ssh-failed" {
					line = fmt.Sprintf(line, fmt.Sprintf("198.51.%d.%d", i/256, i%256))
				}
				recs[i] = syslogRec(b, line)
			}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if _, err := e.Process(recs[i%len(recs)]); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
}

func BenchmarkProcessK8sAudit(b *testing.B) {
	e := builtinEngine(b)
	r := auditRec("get", "mallory", "configmaps", "", "prod", "x", 200, "allow", "")(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := e.Process(r); err != nil {
			b.Fatal(err)
		}
	}
}
