package secret

import (
	"bytes"
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestFalsePositiveCorpus scans this machine's /usr/share and
// /usr/lib/python3* (documentation, data files and Python sources that hold
// no credentials) and reports every finding. It is slow, so it runs only
// with MAMORI_SECRET_FP_CORPUS=1:
//
//	MAMORI_SECRET_FP_CORPUS=1 go test -run FalsePositiveCorpus -v ./internal/secret/
//
// Roots can be overridden with MAMORI_SECRET_FP_ROOTS (colon-separated).
// The test fails above MAMORI_SECRET_FP_MAX findings (default 0).
func TestFalsePositiveCorpus(t *testing.T) {
	if os.Getenv("MAMORI_SECRET_FP_CORPUS") == "" {
		t.Skip("set MAMORI_SECRET_FP_CORPUS=1 to scan /usr/share and /usr/lib/python3* for false positives")
	}
	roots := []string{"/usr/share"}
	py, _ := filepath.Glob("/usr/lib/python3*")
	roots = append(roots, py...)
	if r := os.Getenv("MAMORI_SECRET_FP_ROOTS"); r != "" {
		roots = strings.Split(r, ":")
	}
	a, err := New()
	if err != nil {
		t.Fatal(err)
	}
	var files, scanned, bytesScanned int64
	byRule := map[string]int{}
	var lines []string
	for _, root := range roots {
		err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil || !d.Type().IsRegular() {
				return nil
			}
			info, err := d.Info()
			if err != nil {
				return nil
			}
			files++
			rel := strings.TrimPrefix(p, "/")
			if a.Required(rel, info) == 0 {
				return nil
			}
			b, err := os.ReadFile(p)
			if err != nil || IsBinary(b) {
				return nil
			}
			scanned++
			bytesScanned += int64(len(b))
			res, err := a.Analyze(context.Background(), input(rel, b))
			if err != nil || res == nil {
				return nil
			}
			for _, f := range res.Findings {
				byRule[f.ID]++
				lines = append(lines, f.ID+"\t"+rel+":"+itoa(f.Location.StartLine)+"\t"+f.Evidence)
			}
			return nil
		})
		if err != nil {
			t.Logf("walk %s: %v", root, err)
		}
	}
	sort.Strings(lines)
	for _, l := range lines {
		t.Log(l)
	}
	t.Logf("files %d, scanned %d (%.1f MiB), findings %d, by rule %v", files, scanned, float64(bytesScanned)/(1<<20), len(lines), byRule)
	max := 0
	if m := os.Getenv("MAMORI_SECRET_FP_MAX"); m != "" {
		for _, c := range m {
			max = max*10 + int(c-'0')
		}
	}
	if len(lines) > max {
		t.Errorf("%d findings on the false-positive corpus, want at most %d", len(lines), max)
	}
}

func itoa(i int) string {
	if i == 0 {
		return "0"
	}
	var b []byte
	for ; i > 0; i /= 10 {
		b = append([]byte{byte('0' + i%10)}, b...)
	}
	return string(b)
}

// mixedCorpus builds about n bytes of text typical of an image: shell,
// Python, YAML, JSON and prose, with the usual keywords (password, token,
// key, secret) in non-secret contexts and one real-looking secret per MiB.
func mixedCorpus(n int) []byte {
	g := newGen()
	chunks := []string{
		"#!/bin/sh\nset -e\nif [ -z \"$PASSWORD\" ]; then echo 'ask for the task password'; fi\nexport PATH=/usr/local/bin:$PATH\n",
		"def get_token(self, request):\n    token = request.headers.get('Authorization')\n    return self.verify(token, key=self.secret_key)\n",
		"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app\ndata:\n  LOG_LEVEL: info\n  url: https://example.org/path\n",
		`{"name": "pkg", "version": "1.2.3", "dependencies": {"lodash": "^4.17.21"}, "integrity": "sha512-abcdefghijklmnop"}` + "\n",
		"The quick brown fox jumps over the lazy dog. Secrets management is done with a vault; keys rotate daily.\n",
		"server {\n  listen 443 ssl;\n  ssl_certificate_key /etc/ssl/private/key.pem;\n  location / { proxy_pass http://app:8080; }\n}\n",
	}
	var b bytes.Buffer
	next := 1 << 20
	for i := 0; b.Len() < n; i++ {
		b.WriteString(chunks[i%len(chunks)])
		if b.Len() > next {
			b.WriteString("GITHUB_TOKEN=gh" + "p_" + g.s(alnum, 36) + "\n")
			next += 1 << 20
		}
	}
	return b.Bytes()
}

// BenchmarkScan10MiB measures scanning throughput on a 10 MiB mixed text
// file, with the decoding stage (the default) and without it.
func BenchmarkScan10MiB(b *testing.B) {
	b.Run("decode", func(b *testing.B) { benchScan(b) })
	b.Run("plain", func(b *testing.B) { benchScan(b, WithDecoding(false)) })
}

func benchScan(b *testing.B, opts ...Option) {
	s, err := NewScanner(opts...)
	if err != nil {
		b.Fatal(err)
	}
	data := mixedCorpus(10 << 20)
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	cpu0 := cpuTime()
	for i := 0; i < b.N; i++ {
		if fs := s.Scan("app/data.txt", data); len(fs) < 9 {
			b.Fatalf("got %d findings", len(fs))
		}
	}
	// Wall-clock MB/s suffers on a shared machine; CPU-time MB/s does not.
	if d := cpuTime() - cpu0; d > 0 {
		b.ReportMetric(float64(len(data))*float64(b.N)/d.Seconds()/1e6, "cpu-MB/s")
	}
}

// cpuTime is the process's user+system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkKeywordScan compares the one-pass bigram keyword index with a
// bytes.Contains per keyword over a lower-cased copy.
func BenchmarkKeywordScan(b *testing.B) {
	s, err := NewScanner()
	if err != nil {
		b.Fatal(err)
	}
	data := mixedCorpus(10 << 20)
	b.Run("bigram-index", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		for i := 0; i < b.N; i++ {
			n := 0
			s.index.scan(data, func(kw, off int) { n++ })
		}
	})
	b.Run("lower+contains", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		for i := 0; i < b.N; i++ {
			lower := bytes.ToLower(data)
			n := 0
			for _, k := range s.index.kws {
				if bytes.Contains(lower, k) {
					n++
				}
			}
		}
	})
}
