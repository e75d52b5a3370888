package analyzer

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"mamori/internal/model"
)

// lineCounter is a test analyzer: for every *.txt file it reports one
// package named after the file with the content's first line as version.
type lineCounter struct{}

func (lineCounter) Name() string { return "test-lines" }
func (lineCounter) Version() int { return 1 }
func (lineCounter) Required(p string, _ fs.FileInfo) Need {
	if strings.HasSuffix(p, ".txt") {
		return Content
	}
	return Skip
}
func (lineCounter) Analyze(_ context.Context, in Input) (*Result, error) {
	b, err := io.ReadAll(io.LimitReader(in.Content, 64))
	if err != nil {
		return nil, err
	}
	if bytes.HasPrefix(b, []byte("fail")) {
		return nil, fmt.Errorf("malformed")
	}
	v, _, _ := strings.Cut(string(b), "\n")
	return &Result{Packages: []model.Package{{Name: in.Path, Version: v, Type: "test"}}}, nil
}

// modeWatcher wants metadata of setuid files.
type modeWatcher struct{}

func (modeWatcher) Name() string { return "test-setuid" }
func (modeWatcher) Version() int { return 1 }
func (modeWatcher) Required(_ string, info fs.FileInfo) Need {
	if info.Mode()&fs.ModeSetuid != 0 {
		return Metadata
	}
	return Skip
}
func (modeWatcher) Analyze(_ context.Context, in Input) (*Result, error) {
	if in.Content != nil {
		return nil, fmt.Errorf("metadata analyzer got content")
	}
	return &Result{Packages: []model.Package{{Name: "setuid:" + in.Path, Type: "test"}}}, nil
}

type entry struct {
	name     string
	body     string
	typ      byte
	mode     int64
	linkname string
}

func mkTar(t testing.TB, entries []entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		typ := e.typ
		if typ == 0 {
			typ = tar.TypeReg
		}
		mode := e.mode
		if mode == 0 {
			mode = 0o644
		}
		h := &tar.Header{Name: e.name, Typeflag: typ, Mode: mode, Linkname: e.linkname, Format: tar.FormatPAX}
		if typ == tar.TypeReg {
			h.Size = int64(len(e.body))
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if typ == tar.TypeReg {
			if _, err := tw.Write([]byte(e.body)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func names(lr *LayerResult) []string {
	var out []string
	for p := range lr.Files {
		out = append(out, p)
	}
	return sortStrings(out)
}

func sortStrings(s []string) []string {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
	return s
}

func newTestSet(t testing.TB, opts ...Option) *Set {
	t.Helper()
	s, err := NewSet([]Analyzer{lineCounter{}, modeWatcher{}}, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestWalkLayerHostileEntries(t *testing.T) {
	data := mkTar(t, []entry{
		{name: "etc/a.txt", body: "1.0\n"},
		{name: "../../etc/evil.txt", body: "9\n"},
		{name: "/abs/b.txt", body: "2.0\n"},
		{name: "./c/./d.txt", body: "3.0\n"},
		{name: "dev/null.txt", typ: tar.TypeChar},
		{name: "fifo.txt", typ: tar.TypeFifo},
		{name: "link.txt", typ: tar.TypeSymlink, linkname: "/etc/shadow"},
		{name: "hard.txt", typ: tar.TypeLink, linkname: "../../../etc/passwd"},
		{name: "bad.txt", body: "fail\n"},
		{name: "bin/su", body: "x", mode: 0o4755},
		{name: "weird\nname\xff.txt", body: "4.0"},
		{name: "etc/.wh.gone", typ: tar.TypeReg},
		{name: "opt/.wh..wh..opq", typ: tar.TypeReg},
	})
	lr, err := newTestSet(t).WalkLayer(context.Background(), "sha256:aa", bytes.NewReader(data), nil)
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Join(names(lr), ",")
	want := "abs/b.txt,bin/su,c/d.txt,etc/a.txt,weird\nname\xff.txt"
	if got != want {
		t.Errorf("files = %q, want %q", got, want)
	}
	if len(lr.Whiteouts) != 1 || lr.Whiteouts[0] != "etc/gone" {
		t.Errorf("whiteouts = %q", lr.Whiteouts)
	}
	if len(lr.OpaqueDirs) != 1 || lr.OpaqueDirs[0] != "opt" {
		t.Errorf("opaque = %q", lr.OpaqueDirs)
	}
	warn := strings.Join(lr.Warnings, "\n")
	for _, w := range []string{`".." element`, "bad.txt: test-lines: malformed"} {
		if !strings.Contains(warn, w) {
			t.Errorf("warnings %q lack %q", warn, w)
		}
	}
	if p := lr.Files["etc/a.txt"].Packages[0]; p.Locations[0].LayerDiffID != "sha256:aa" || p.Locations[0].Path != "etc/a.txt" {
		t.Errorf("location = %+v", p.Locations)
	}
}

func TestWalkLayerTruncated(t *testing.T) {
	data := mkTar(t, []entry{{name: "a.txt", body: strings.Repeat("x", 10000)}})
	_, err := newTestSet(t).WalkLayer(context.Background(), "sha256:bb", bytes.NewReader(data[:3000]), nil)
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("truncated layer: err = %v, want io.ErrUnexpectedEOF", err)
	}
}

func TestWalkLayerSpillsLargeFiles(t *testing.T) {
	tmp := t.TempDir()
	body := "7.7\n" + strings.Repeat("y", 1<<20)
	data := mkTar(t, []entry{{name: "big.txt", body: body}, {name: "small.txt", body: "1\n"}})
	s := newTestSet(t, WithMemoryThreshold(1024), WithTempDir(tmp))
	lr, err := s.WalkLayer(context.Background(), "sha256:cc", bytes.NewReader(data), nil)
	if err != nil {
		t.Fatal(err)
	}
	if v := lr.Files["big.txt"].Packages[0].Version; v != "7.7" {
		t.Errorf("big.txt version = %q", v)
	}
	left, _ := os.ReadDir(tmp)
	if len(left) != 0 {
		t.Errorf("spill files left behind: %v", left)
	}
}

func TestWalkLayerMaxFileSize(t *testing.T) {
	data := mkTar(t, []entry{{name: "big.txt", body: strings.Repeat("z", 5000)}})
	lr, err := newTestSet(t, WithMaxFileSize(100)).WalkLayer(context.Background(), "sha256:dd", bytes.NewReader(data), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(lr.Files) != 0 || len(lr.Warnings) != 1 {
		t.Errorf("files=%v warnings=%q", lr.Files, lr.Warnings)
	}
}

func TestWalkLayerMaxEntries(t *testing.T) {
	var es []entry
	for i := 0; i < 20; i++ {
		es = append(es, entry{name: fmt.Sprintf("f%d", i), body: "x"})
	}
	_, err := newTestSet(t, WithMaxEntries(10)).WalkLayer(context.Background(), "sha256:ee", bytes.NewReader(mkTar(t, es)), nil)
	if err == nil || !strings.Contains(err.Error(), "too many entries") {
		t.Fatalf("err = %v", err)
	}
}

func TestWalkLayerCanceled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := newTestSet(t).WalkLayer(ctx, "sha256:ff", bytes.NewReader(mkTar(t, []entry{{name: "a.txt", body: "1"}})), nil)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}

func TestWalkDirStaysInRoot(t *testing.T) {
	root := t.TempDir()
	outside := t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.WriteFile(filepath.Join(outside, "secret.txt"), []byte("outside\n"), 0o644))
	must(os.MkdirAll(filepath.Join(root, "etc"), 0o755))
	must(os.WriteFile(filepath.Join(root, "etc", "in.txt"), []byte("inside\n"), 0o644))
	must(os.Symlink(filepath.Join(outside, "secret.txt"), filepath.Join(root, "etc", "link.txt")))
	must(os.Symlink(outside, filepath.Join(root, "linkdir")))
	must(os.MkdirAll(filepath.Join(root, "proc"), 0o755))
	must(os.WriteFile(filepath.Join(root, "proc", "x.txt"), []byte("proc\n"), 0o644))
	lr, err := newTestSet(t, WithSkipDirs("proc")).WalkDir(context.Background(), root, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(names(lr), ","); got != "etc/in.txt" {
		t.Errorf("files = %q, want only etc/in.txt", got)
	}
}

func BenchmarkWalkLayer(b *testing.B) {
	var es []entry
	for i := 0; i < 20000; i++ {
		name := fmt.Sprintf("usr/share/f%d", i)
		if i%10 == 0 {
			name += ".txt"
		}
		es = append(es, entry{name: name, body: strings.Repeat("a", 512)})
	}
	data := mkTar(b, es)
	s := newTestSet(b)
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := s.WalkLayer(context.Background(), "sha256:bench", bytes.NewReader(data), nil); err != nil {
			b.Fatal(err)
		}
	}
}

func TestWalkHardLinks(t *testing.T) {
	data := mkTar(t, []entry{
		{name: "store/blob", body: "5.5\n"},
		{name: "pkgs/a.txt", typ: tar.TypeLink, linkname: "store/blob"},
		{name: "pkgs/b.txt", typ: tar.TypeLink, linkname: "store/blob"},
		{name: "pkgs/out.txt", typ: tar.TypeLink, linkname: "../../etc/passwd"},
		{name: "pkgs/missing.txt", typ: tar.TypeLink, linkname: "nowhere"},
		{name: "bin/ignored", typ: tar.TypeLink, linkname: "store/blob"},
	})
	s := newTestSet(t)
	lr, err := s.WalkLayer(context.Background(), "sha256:hl", bytes.NewReader(data), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(lr.HardLinks) != 2 {
		t.Fatalf("pending links = %v", lr.HardLinks)
	}
	if err := s.WalkHardLinks(context.Background(), lr, bytes.NewReader(data), nil); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(names(lr), ","); got != "pkgs/a.txt,pkgs/b.txt" {
		t.Errorf("files = %q", got)
	}
	if v := lr.Files["pkgs/b.txt"].Packages[0].Version; v != "5.5" {
		t.Errorf("version through link = %q", v)
	}
	warn := strings.Join(lr.Warnings, "\n")
	if !strings.Contains(warn, "../../etc/passwd") || !strings.Contains(warn, "nowhere") {
		t.Errorf("warnings = %q", warn)
	}
}

// TestWalkLayerRepeatedEntries: of several entries for one path in a
// layer, the last one is the file (what `tar -x` and container runtimes
// leave), whatever its type.
func TestWalkLayerRepeatedEntries(t *testing.T) {
	var entries []entry
	for i := 0; i < 1000; i++ {
		entries = append(entries, entry{name: "pkgs/dup.txt", body: fmt.Sprintf("%d\n", i)})
	}
	entries = append(entries,
		entry{name: "pkgs/gone.txt", body: "1\n"},
		entry{name: "pkgs/gone.txt", typ: tar.TypeSymlink, linkname: "elsewhere"},
		entry{name: "./pkgs/dir.txt", body: "2\n"},
		entry{name: "pkgs/dir.txt/", typ: tar.TypeDir, mode: 0o755},
		entry{name: "pkgs/back.txt", typ: tar.TypeSymlink, linkname: "x"},
		entry{name: "pkgs/back.txt", body: "3\n"},
		// A whiteout hides lower layers only, not an entry of its own layer.
		entry{name: "pkgs/kept.txt", body: "4\n"},
		entry{name: "pkgs/.wh.kept.txt"},
	)
	lr, err := newTestSet(t).WalkLayer(context.Background(), "sha256:dup", bytes.NewReader(mkTar(t, entries)), nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(names(lr), ","); got != "pkgs/back.txt,pkgs/dup.txt,pkgs/kept.txt" {
		t.Fatalf("files = %q", got)
	}
	for p, want := range map[string]string{"pkgs/dup.txt": "999", "pkgs/back.txt": "3", "pkgs/kept.txt": "4"} {
		pkgs := lr.Files[p].Packages
		if len(pkgs) != 1 || pkgs[0].Version != want {
			t.Errorf("%s: packages %+v, want one of version %s", p, pkgs, want)
		}
	}
}

// TestWalkHardLinksRepeatedTarget: a hard link is to its target as the
// stream left it at the link's entry, not to a later rewrite; a link
// replaced by a later entry is not analysed at all.
func TestWalkHardLinksRepeatedTarget(t *testing.T) {
	data := mkTar(t, []entry{
		{name: "store/blob", body: "1.0\n"},
		{name: "store/blob", body: "2.0\n"},
		{name: "pkgs/a.txt", typ: tar.TypeLink, linkname: "store/blob"},
		{name: "store/blob", body: "3.0\n"},
		{name: "pkgs/b.txt", typ: tar.TypeLink, linkname: "store/blob"},
		{name: "pkgs/c.txt", typ: tar.TypeLink, linkname: "store/blob"},
		{name: "pkgs/c.txt", body: "9.9\n"},
		{name: "pkgs/d.txt", typ: tar.TypeLink, linkname: "store/blob"},
		{name: "pkgs/d.txt", typ: tar.TypeSymlink, linkname: "x"},
	})
	s := newTestSet(t)
	lr, err := s.WalkLayer(context.Background(), "sha256:hl2", bytes.NewReader(data), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.WalkHardLinks(context.Background(), lr, bytes.NewReader(data), nil); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(names(lr), ","); got != "pkgs/a.txt,pkgs/b.txt,pkgs/c.txt" {
		t.Fatalf("files = %q", got)
	}
	for p, want := range map[string]string{"pkgs/a.txt": "2.0", "pkgs/b.txt": "3.0", "pkgs/c.txt": "9.9"} {
		pkgs := lr.Files[p].Packages
		if len(pkgs) != 1 || pkgs[0].Version != want {
			t.Errorf("%s: packages %+v, want one of version %s", p, pkgs, want)
		}
	}
	if len(lr.Warnings) != 0 {
		t.Errorf("warnings %q", lr.Warnings)
	}
}

// BenchmarkWalkLayerRepeatedEntries: 10,000 copies of one manifest in a
// layer cost about what 10,000 distinct files cost, and keep one result.
func BenchmarkWalkLayerRepeatedEntries(b *testing.B) {
	var entries []entry
	for i := 0; i < 10000; i++ {
		entries = append(entries, entry{name: "pkgs/dup.txt", body: fmt.Sprintf("%d\n", i)})
	}
	data := mkTar(b, entries)
	s := newTestSet(b)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		lr, err := s.WalkLayer(context.Background(), "sha256:dup", bytes.NewReader(data), nil)
		if err != nil || len(lr.Files) != 1 {
			b.Fatalf("%v %d", err, len(lr.Files))
		}
	}
}
