package tail

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

type countSink struct{ n int }

func (s *countSink) Line(Line)     { s.n++ }
func (s *countSink) Notice(Notice) {}

// BenchmarkFollow reads a 100,000-line auth log from its start: the tailer's cost per line.
func BenchmarkFollow(b *testing.B) {
	dir := b.TempDir()
	path := filepath.Join(dir, "auth.log")
	var sb strings.Builder
	const lines = 100_000
	for i := range lines {
		fmt.Fprintf(&sb, "2024-05-01T12:00:%02d.123456+00:00 host sshd[%d]: Failed password for invalid user admin from 203.0.113.%d port %d ssh2\n", i%60, 1000+i%5000, i%250, 40000+i%20000)
	}
	if err := os.WriteFile(path, []byte(sb.String()), 0o644); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(sb.Len()))
	b.ReportAllocs()
	for b.Loop() {
		f, err := New([]Spec{{Pattern: path}})
		if err != nil {
			b.Fatal(err)
		}
		f.Start()
		s := &countSink{}
		f.Poll(s)
		f.closeAll()
		if s.n != lines {
			b.Fatalf("%d lines", s.n)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*lines), "ns/line")
}
