package decode

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func benchDecode(b *testing.B, d Decoder, path string, lines []string) {
	bs := make([][]byte, len(lines))
	total := 0
	for i, l := range lines {
		bs[i] = []byte(l)
		total += len(l)
	}
	var r Record
	b.SetBytes(int64(total / len(lines)))
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		r.Reset()
		_ = d.Decode(bs[i%len(bs)], path, &r)
		i++
	}
}

// BenchmarkSyslogISO: the real Debian 12 auth.log lines, round robin (sshd, sudo, PAM, shadow).
func BenchmarkSyslogISO(b *testing.B) {
	lines := readLinesB(b, filepath.Join("testdata", "debian12", "iso.log"))
	benchDecode(b, &Syslog{Location: time.UTC}, "/var/log/auth.log", lines)
}

func BenchmarkSyslogRFC3164(b *testing.B) {
	lines := readLinesB(b, filepath.Join("testdata", "debian12", "traditional.log"))
	benchDecode(b, &Syslog{Location: time.UTC}, "/var/log/auth.log", lines)
}

func BenchmarkSyslogSSHDFailed(b *testing.B) {
	benchDecode(b, &Syslog{Location: time.UTC}, "/var/log/auth.log", []string{
		"2026-12-06T08:08:38.736744+00:00 vm sshd[6540]: Failed password for invalid user admin from 203.0.113.50 port 56250 ssh2"})
}

func BenchmarkJournal(b *testing.B) {
	benchDecode(b, &Journal{}, "", readLinesB(b, filepath.Join("testdata", "debian12", "journal.json")))
}

func BenchmarkK8sAudit(b *testing.B) {
	benchDecode(b, &K8sAuditLog{}, "/var/log/kubernetes/audit.log", readLinesB(b, filepath.Join("testdata", "k8s", "audit.log")))
}

func BenchmarkCRI(b *testing.B) {
	benchDecode(b, &CRI{}, "/var/log/pods/ns_pod_uid/c/0.log", []string{"2024-05-01T12:00:00.123456789Z stdout F GET /healthz 200 0.3ms"})
}

func readLinesB(b *testing.B, path string) []string {
	data, err := os.ReadFile(path)
	if err != nil {
		b.Fatal(err)
	}
	var out []string
	for _, l := range strings.Split(string(data), "\n") {
		if l != "" {
			out = append(out, l)
		}
	}
	return out
}
