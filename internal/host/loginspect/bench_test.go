package loginspect

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"mamori/internal/model"
)

// BenchmarkInspectorOnce: a 100,000-line auth.log (sessions, sudo, accepted and failed SSH
// logins from 200 addresses) through the whole pipeline: follower, syslog and program
// decoders, every built-in rule, events. Reports ns per line.
func BenchmarkInspectorOnce(b *testing.B) {
	dir := b.TempDir()
	path := filepath.Join(dir, "auth.log")
	var sb strings.Builder
	const lines = 100_000
	t0 := time.Date(2026, 12, 6, 8, 0, 0, 0, time.UTC)
	for i := range lines {
		ts := t0.Add(time.Duration(i) * 3 * time.Millisecond).Format("2006-01-02T15:04:05.000000-07:00")
		switch i % 10 {
		case 0, 1, 2, 3:
			fmt.Fprintf(&sb, "%s node1 CRON[%d]: pam_unix(cron:session): session opened for user root(uid=0) by (uid=0)\n", ts, 1000+i)
		case 4, 5:
			fmt.Fprintf(&sb, "%s node1 sudo:   alice : TTY=pts/0 ; PWD=/home/alice ; USER=root ; COMMAND=/usr/bin/apt update\n", ts)
		case 6, 7:
			fmt.Fprintf(&sb, "%s node1 sshd[%d]: Accepted publickey for alice from 10.0.%d.%d port %d ssh2: ED25519 SHA256:abc\n", ts, 2000+i, i%200, i%250+1, 40000+i%20000)
		default:
			fmt.Fprintf(&sb, "%s node1 sshd[%d]: Failed password for invalid user admin from 203.0.%d.%d port %d ssh2\n", ts, 3000+i, (i/10)%200, 7, 40000+i%20000)
		}
	}
	if err := os.WriteFile(path, []byte(sb.String()), 0o644); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(sb.Len()))
	b.ReportAllocs()
	for b.Loop() {
		n := 0
		in, err := New(WithSources(SourceConfig{Name: "auth", Format: "syslog", Paths: []string{path}}), WithJournal(nil), WithOnce(true),
			WithHandler(func(context.Context, model.Event) error { n++; return nil }))
		if err != nil {
			b.Fatal(err)
		}
		if err := in.Run(context.Background()); err != nil {
			b.Fatal(err)
		}
		if s := in.Stats(); s.Lines != lines || n == 0 {
			b.Fatalf("%d lines, %d events", s.Lines, n)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*lines), "ns/line")
}
