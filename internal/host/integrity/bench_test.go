package integrity

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// benchTree makes dirs×files files of size bytes under a temp root's /usr.
func benchTree(b *testing.B, dirs, files, size int) string {
	b.Helper()
	root := b.TempDir()
	data := bytes.Repeat([]byte("mamori\n"), size/7+1)[:size]
	for d := range dirs {
		dir := filepath.Join(root, "usr", fmt.Sprintf("d%03d", d))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			b.Fatal(err)
		}
		for f := range files {
			if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("f%04d", f)), data, 0o644); err != nil {
				b.Fatal(err)
			}
		}
	}
	return root
}

func benchRules(b *testing.B) *RuleSet {
	rs, err := ParseRules([]byte("rules:\n  - name: usr\n    paths: [/usr]\n"))
	if err != nil {
		b.Fatal(err)
	}
	return rs
}

// BenchmarkScanBaseline: the full baseline walk, every file hashed.
func BenchmarkScanBaseline(b *testing.B) {
	root := benchTree(b, 20, 100, 16<<10)
	s, err := NewScanner(benchRules(b), WithRoot(root), WithCollectors())
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(20 * 100 * 16 << 10)
	b.ResetTimer()
	for b.Loop() {
		if _, _, err := s.Scan(context.Background(), nil); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkScanCompare: the compare walk of an unchanged tree (no file is
// read: size, times and inode match the baseline).
func BenchmarkScanCompare(b *testing.B) {
	root := benchTree(b, 20, 100, 16<<10)
	s, _ := NewScanner(benchRules(b), WithRoot(root), WithCollectors())
	prev, _, err := s.Scan(context.Background(), nil)
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		cur, st, err := s.Scan(context.Background(), prev)
		if err != nil || st.Hashed != 0 || len(cur) != len(prev) {
			b.Fatal(st, err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(prev)), "ns/file")
}

func syntheticBaseline(n int) *Baseline {
	bl := &Baseline{Root: "/", Key: make([]byte, 32), Rules: []RuleRef{{"usr", SeverityHigh}}, Created: time.Now()}
	for i := range n {
		bl.Files = append(bl.Files, File{Path: fmt.Sprintf("/usr/lib/x86_64-linux-gnu/pkg%04d/file%05d.so", i/100, i), Type: TypeRegular,
			Mode: 0o644, Size: int64(i * 37), Mtime: int64(i) * 1e9, Ctime: int64(i) * 1e9, Inode: uint64(i + 1000), Nlink: 1, Hashed: true,
			SHA256: [32]byte{byte(i), byte(i >> 8)}})
	}
	return bl
}

func BenchmarkEncode(b *testing.B) {
	bl := syntheticBaseline(100_000)
	var buf bytes.Buffer
	for b.Loop() {
		buf.Reset()
		if err := bl.Encode(&buf); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(buf.Len())/100_000, "bytes/file")
}

func BenchmarkDecode(b *testing.B) {
	bl := syntheticBaseline(100_000)
	var buf bytes.Buffer
	if err := bl.Encode(&buf); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := Decode(bytes.NewReader(buf.Bytes())); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCompare: the pure merge of two 100,000-file baselines with 1%
// of the files changed.
func BenchmarkCompare(b *testing.B) {
	old, cur := syntheticBaseline(100_000), syntheticBaseline(100_000)
	for i := 0; i < len(cur.Files); i += 100 {
		cur.Files[i].SHA256[5] = 1
	}
	rs := benchRules(b)
	for b.Loop() {
		if ev := Compare(old, cur, rs, nil, SourceCompare, time.Time{}); len(ev) != 1000 {
			b.Fatal(len(ev))
		}
	}
}
