package appcontrol

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"mamori/internal/model"
)

func sha(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }

func mustRead(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Skipf("%s: %v", p, err)
	}
	return b
}

func TestClassify(t *testing.T) {
	trueBin := mustRead(t, "/bin/true")
	libm := mustRead(t, "/lib/x86_64-linux-gnu/libm.so.6")
	elf32 := make([]byte, 52)
	copy(elf32, "\x7fELF\x01\x01\x01")
	elf32[16] = elfTypeExec
	for _, c := range []struct {
		name string
		b    []byte
		mode uint32
		kind Kind
		ok   bool
	}{
		{"true", trueBin, 0o755, KindExecutable, true},
		{"libm.so.6", libm, 0o644, KindLibrary, true},
		{"run", []byte("#!/bin/sh\necho\n"), 0o644, KindScript, true},
		{"mod.py", []byte("import os\n"), 0o644, KindScript, true},
		{"notes.txt", []byte("hello"), 0o644, "", false},
		{"tool", []byte("echo no shebang"), 0o700, KindExecutable, true},
		{"trunc", []byte("\x7fELF\x02"), 0o644, KindExecutable, true},
		{"elf32", elf32, 0o644, KindExecutable, true},
		{"empty", nil, 0o644, "", false},
	} {
		k, ok := Classify(bytes.NewReader(c.b), int64(len(c.b)), "/x/"+c.name, c.mode)
		if k != c.kind || ok != c.ok {
			t.Errorf("%s: %q %v, want %q %v", c.name, k, ok, c.kind, c.ok)
		}
	}
}

func TestInterpreterAndLoaderNames(t *testing.T) {
	for exe, want := range map[string]bool{"/usr/bin/dash": true, "/usr/bin/python3.11": true, "/usr/bin/perl": true,
		"/usr/bin/cat": false, "/usr/bin/bash (deleted)": true, "/usr/bin/node": true, "/usr/bin/shred": false} {
		if isInterpreter(exe) != want {
			t.Errorf("isInterpreter(%q) != %v", exe, want)
		}
	}
	for exe, want := range map[string]bool{"/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2": true, "/lib/ld-musl-x86_64.so.1": true,
		"/usr/bin/ld": false, "/usr/lib/libld.so": false} {
		if isLoader(exe) != want {
			t.Errorf("isLoader(%q) != %v", exe, want)
		}
	}
}

func TestListExportImport(t *testing.T) {
	l := NewList()
	h1, h2 := sha([]byte("a")), sha([]byte("b"))
	for _, e := range []Entry{
		{SHA256: strings.ToUpper(h1), Path: "/usr/bin/a", Kind: KindExecutable, Source: SourceInventory},
		{SHA256: h1, Path: "/usr/bin/a-copy", Kind: KindExecutable, Source: SourceInventory},
		{SHA256: h2, Path: "/usr/bin/b", Kind: KindScript, Source: SourceDpkg, Package: "pkg-b"},
		{SHA256: h2, Path: "/usr/bin/b", Kind: KindScript, Source: SourceDpkg, Package: "pkg-b"}, // replaced, not added
	} {
		if err := l.Add(e); err != nil {
			t.Fatal(err)
		}
	}
	if l.Len() != 3 || l.Digests() != 2 {
		t.Fatalf("len %d digests %d", l.Len(), l.Digests())
	}
	var buf bytes.Buffer
	if err := l.Export(&buf, "node-1"); err != nil {
		t.Fatal(err)
	}
	l2, err := Import(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(l2.Entries()) != fmt.Sprint(l.Entries()) {
		t.Errorf("round trip:\n%v\n%v", l2.Entries(), l.Entries())
	}
	var sum [32]byte
	copy(sum[:], mustHex(t, h1))
	if !l2.Allowed(sum) || len(l2.Lookup(sum)) != 2 {
		t.Error("imported list lost an entry")
	}
	if ok, err := l2.Remove(h1); !ok || err != nil || l2.Allowed(sum) || l2.Len() != 1 {
		t.Errorf("remove: %v %v", ok, err)
	}
	p := filepath.Join(t.TempDir(), "list.json")
	if err := l.Save(p, "node-1"); err != nil {
		t.Fatal(err)
	}
	if st, _ := os.Stat(p); st.Mode().Perm() != 0o600 {
		t.Errorf("saved mode %v", st.Mode())
	}
	if l3, err := Load(p); err != nil || l3.Len() != 3 {
		t.Errorf("load: %v", err)
	}
	good := func(entries string) string {
		return `{"format":"mamori-appcontrol-allowlist","version":1,"generated":"2026-01-01T00:00:00Z","entries":[` + entries + `]}`
	}
	for name, doc := range map[string]string{
		"not json":      "{",
		"other format":  `{"format":"x","version":1,"generated":"2026-01-01T00:00:00Z","entries":[]}`,
		"other version": `{"format":"mamori-appcontrol-allowlist","version":2,"generated":"2026-01-01T00:00:00Z","entries":[]}`,
		"unknown field": `{"format":"mamori-appcontrol-allowlist","version":1,"extra":1,"entries":[]}`,
		"bad hash":      good(`{"sha256":"abc","source":"manual","added":"2026-01-01T00:00:00Z"}`),
		"bad source":    good(`{"sha256":"` + h1 + `","source":"web","added":"2026-01-01T00:00:00Z"}`),
		"bad kind":      good(`{"sha256":"` + h1 + `","source":"manual","kind":"driver","added":"2026-01-01T00:00:00Z"}`),
		"nul in path":   good(`{"sha256":"` + h1 + `","source":"manual","path":"/a\u0000b","added":"2026-01-01T00:00:00Z"}`),
		"trailing":      good("") + "{}",
	} {
		if _, err := Import(strings.NewReader(doc)); !errors.Is(err, ErrFormat) {
			t.Errorf("%s: want ErrFormat, got %v", name, err)
		}
	}
}

func mustHex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseMD5Sums(t *testing.T) {
	in := "7a4179e324c784b99e98fedee05260f7  bin/cat\n\ndb0817401cfd9c5a818ae919d10ba7c5  usr/share/doc/a b.txt\n"
	got, err := ParseMD5Sums(strings.NewReader(in))
	if err != nil || len(got) != 2 || got[0].Path != "bin/cat" || got[1].Path != "usr/share/doc/a b.txt" || hex.EncodeToString(got[0].MD5[:]) != "7a4179e324c784b99e98fedee05260f7" {
		t.Fatalf("%+v %v", got, err)
	}
	for _, bad := range []string{
		"7a4179e324c784b99e98fedee05260f7 /etc/passwd\n",
		"7a4179e324c784b99e98fedee05260f7  ../../etc/passwd\n",
		"7a4179e324c784b99e98fedee05260fz  bin/cat\n",
		"short\n",
		"7a4179e324c784b99e98fedee05260f7\n",
		"7a4179e324c784b99e98fedee05260f7  " + strings.Repeat("a", 5000) + "\n",
	} {
		if _, err := ParseMD5Sums(strings.NewReader(bad)); !errors.Is(err, ErrPackageDB) {
			t.Errorf("%q: want ErrPackageDB, got %v", truncate(bad), err)
		}
	}
}

func TestParseRPMFiles(t *testing.T) {
	h := sha([]byte("x"))
	in := "bash-5.2-1.x86_64\t8\t" + h + "\t33261\t/usr/bin/bash\n" +
		"bash-5.2-1.x86_64\t8\t\t16877\t/usr/share/doc/bash\n" +
		"old-1-1.noarch\t(none)\t0cc175b9c0f1b6a831c399e269772661\t33188\t/usr/lib/old.so\n"
	var got []RPMFile
	if err := ParseRPMFiles(strings.NewReader(in), func(f RPMFile) error { got = append(got, f); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got[0].Algo != 8 || got[0].Mode != 0o100755 || got[2].Algo != 1 || got[1].Digest != "" {
		t.Errorf("%+v", got)
	}
	if k, ok := rpmKind(got[0]); !ok || k != KindExecutable {
		t.Error("rpm executable kind")
	}
	if _, ok := rpmKind(got[1]); ok {
		t.Error("directory is not executable content")
	}
	if k, ok := rpmKind(got[2]); !ok || k != KindLibrary {
		t.Error("rpm library kind")
	}
	for _, bad := range []string{"a\tb\n", "p\tx\t" + h + "\t1\t/a\n", "p\t8\tzz\t1\t/a\n", "p\t8\t" + h + "\tm\t/a\n", "p\t8\t" + h + "\t1\trel/a\n", "p\t8\t" + h + "\t1\t/a/../b\n"} {
		if err := ParseRPMFiles(strings.NewReader(bad), func(RPMFile) error { return nil }); !errors.Is(err, ErrPackageDB) {
			t.Errorf("%q: %v", bad, err)
		}
	}
}

// fakeRoot builds a root with a dpkg database of one package.
func fakeRoot(t *testing.T) (string, map[string][]byte) {
	t.Helper()
	root := t.TempDir()
	files := map[string][]byte{
		"usr/bin/tool":          []byte("#!/bin/sh\necho tool\n"),
		"usr/bin/changed":       []byte("#!/bin/sh\necho changed\n"),
		"usr/share/doc/README":  []byte("docs"),
		"usr/lib/tool/mod.py":   []byte("print(1)\n"),
		"usr/lib/tool/data.bin": []byte("\x00\x01"),
	}
	var md5s strings.Builder
	for p, b := range files {
		if err := os.MkdirAll(filepath.Join(root, filepath.Dir(p)), 0o755); err != nil {
			t.Fatal(err)
		}
		mode := os.FileMode(0o644)
		if strings.HasPrefix(p, "usr/bin/") {
			mode = 0o755
		}
		if err := os.WriteFile(filepath.Join(root, p), b, mode); err != nil {
			t.Fatal(err)
		}
		s := md5.Sum(b)
		fmt.Fprintf(&md5s, "%x  %s\n", s, p)
	}
	fmt.Fprintf(&md5s, "%x  usr/bin/gone\n", md5.Sum([]byte("gone")))
	// changed after install
	if err := os.WriteFile(filepath.Join(root, "usr/bin/changed"), []byte("#!/bin/sh\nevil\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	info := filepath.Join(root, DpkgInfoDir)
	if err := os.MkdirAll(info, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(info, "tool:amd64.md5sums"), []byte(md5s.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(info, "evil.md5sums"), []byte("7a4179e324c784b99e98fedee05260f7  ../../../etc/passwd\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return root, files
}

func TestLearnDpkg(t *testing.T) {
	root, files := fakeRoot(t)
	l := NewList()
	sum, err := LearnDpkg(context.Background(), l, LearnOptions{Root: root})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%+v", sum)
	if sum.Added != 2 || sum.Mismatched != 1 || sum.Missing != 1 || sum.Skipped != 2 || sum.Errors != 1 {
		t.Errorf("summary %+v", sum)
	}
	var want [32]byte
	copy(want[:], mustHex(t, sha(files["usr/bin/tool"])))
	es := l.Lookup(want)
	if len(es) != 1 || es[0].Package != "tool:amd64" || es[0].Source != SourceDpkg || es[0].Path != "/usr/bin/tool" || es[0].Kind != KindScript {
		t.Errorf("entry %+v", es)
	}
	if len(sum.Mismatches) != 1 || !strings.Contains(sum.Mismatches[0], "/usr/bin/changed") {
		t.Errorf("mismatches %v", sum.Mismatches)
	}
}

func TestInventory(t *testing.T) {
	root := t.TempDir()
	for _, d := range []string{"usr/bin", "usr/lib/x", "opt"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("usr/bin", filepath.Join(root, "bin")); err != nil {
		t.Fatal(err)
	}
	trueBin := mustRead(t, "/bin/true")
	for p, c := range map[string]struct {
		b    []byte
		mode os.FileMode
	}{
		"usr/bin/true":      {trueBin, 0o755},
		"usr/bin/script":    {[]byte("#!/bin/sh\n"), 0o755},
		"usr/lib/x/libx.so": {mustRead(t, "/lib/x86_64-linux-gnu/libm.so.6"), 0o644},
		"usr/lib/x/doc.txt": {[]byte("doc"), 0o644},
		"usr/lib/x/big":     {make([]byte, 2048), 0o755},
	} {
		if err := os.WriteFile(filepath.Join(root, p), c.b, c.mode); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Link(filepath.Join(root, "usr/bin/true"), filepath.Join(root, "usr/lib/x/true-link")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/bin/ls", filepath.Join(root, "usr/bin/host-ls")); err != nil {
		t.Fatal(err)
	}
	l := NewList()
	sum, err := Inventory(context.Background(), l, InventoryOptions{LearnOptions: LearnOptions{Root: root, MaxFileSize: 1024 * 1024, BytesPerSecond: -1},
		Dirs: []string{"/usr/bin", "/bin", "/usr/lib", "/missing", "/opt"}})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Added != 4 || sum.Skipped != 1 || sum.Files != 5 {
		t.Errorf("summary %+v; entries %+v", sum, l.Entries())
	}
	var k [32]byte
	copy(k[:], mustHex(t, sha(trueBin)))
	if es := l.Lookup(k); len(es) != 1 || es[0].Path != "/usr/bin/true" || es[0].Kind != KindExecutable || es[0].Source != SourceInventory {
		t.Errorf("true: %+v", es)
	}
	// Size cap.
	l = NewList()
	sum, err = Inventory(context.Background(), l, InventoryOptions{LearnOptions: LearnOptions{Root: root, MaxFileSize: 1024}, Dirs: []string{"/usr/lib"}})
	if err != nil || sum.TooLarge != 3 {
		t.Errorf("size cap: %+v %v", sum, err)
	}
}

// TestLearnRPM builds a real rpm package with rpmbuild, installs it into a
// temp root with its own database, and learns from rpm's SHA-256 digests.
func TestLearnRPM(t *testing.T) {
	rpmbuild, err := exec.LookPath("rpmbuild")
	if err != nil {
		t.Skip("rpmbuild not installed (Debian package rpm)")
	}
	base := t.TempDir()
	top := filepath.Join(base, "top")
	for _, d := range []string{"SPECS", "SOURCES", "BUILD", "RPMS", "SRPMS", "BUILDROOT"} {
		if err := os.MkdirAll(filepath.Join(top, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	tool := []byte("#!/bin/sh\necho from-rpm\n")
	lib := mustRead(t, "/lib/x86_64-linux-gnu/libm.so.6")
	if err := os.WriteFile(filepath.Join(top, "SOURCES", "tool"), tool, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(top, "SOURCES", "libdemo.so.1"), lib, 0o644); err != nil {
		t.Fatal(err)
	}
	spec := `Name: mamori-demo
Version: 1.0
Release: 1
Summary: demo
License: MIT
BuildArch: noarch
%description
demo
%install
mkdir -p %{buildroot}/usr/bin %{buildroot}/usr/lib %{buildroot}/usr/share/doc/demo
install -m 0755 %{_sourcedir}/tool %{buildroot}/usr/bin/tool
install -m 0644 %{_sourcedir}/libdemo.so.1 %{buildroot}/usr/lib/libdemo.so.1
echo readme > %{buildroot}/usr/share/doc/demo/README
%files
/usr/bin/tool
/usr/lib/libdemo.so.1
/usr/share/doc/demo/README
`
	specPath := filepath.Join(top, "SPECS", "demo.spec")
	if err := os.WriteFile(specPath, []byte(spec), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, rpmbuild, "--define", "_topdir "+top, "--define", "__strip /bin/true",
		"--define", "_build_id_links none", "--nodeps", "-bb", specPath).CombinedOutput()
	if err != nil {
		t.Fatalf("rpmbuild: %v\n%s", err, out)
	}
	pkgs, _ := filepath.Glob(filepath.Join(top, "RPMS", "noarch", "*.rpm"))
	if len(pkgs) != 1 {
		t.Fatalf("rpms: %v", pkgs)
	}
	root := filepath.Join(base, "root")
	if err := os.MkdirAll(root, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.CommandContext(ctx, "rpm", "--root", root, "--dbpath", "/var/lib/rpm", "--initdb").CombinedOutput(); err != nil {
		t.Fatalf("rpm --initdb: %v\n%s", err, out)
	}
	if out, err := exec.CommandContext(ctx, "rpm", "--root", root, "--dbpath", "/var/lib/rpm", "-i", "--nodeps", "--noscripts", "--notriggers", pkgs[0]).CombinedOutput(); err != nil {
		t.Fatalf("rpm -i: %v\n%s", err, out)
	}
	l := NewList()
	sum, err := LearnRPM(ctx, l, LearnOptions{Root: root}, RPMOptions{DBPath: "/var/lib/rpm"})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%+v", sum)
	if sum.Added != 2 || sum.BytesRead != 0 {
		t.Errorf("summary %+v (SHA-256 digests come from the database, no file read)", sum)
	}
	for p, b := range map[string][]byte{"/usr/bin/tool": tool, "/usr/lib/libdemo.so.1": lib} {
		var k [32]byte
		copy(k[:], mustHex(t, sha(b)))
		es := l.Lookup(k)
		if len(es) != 1 || es[0].Path != p || es[0].Source != SourceRPM || !strings.HasPrefix(es[0].Package, "mamori-demo-1.0-1") {
			t.Errorf("%s: %+v", p, es)
		}
	}
	if _, err := LearnRPM(ctx, NewList(), LearnOptions{Root: root}, RPMOptions{Binary: "/nonexistent/rpm"}); !errors.Is(err, ErrNoRPM) {
		t.Errorf("missing rpm: %v", err)
	}
}

func TestDecisionEvent(t *testing.T) {
	d := Decision{Time: time.Now().UTC(), Access: "exec", Path: "/tmp/x", SHA256: sha([]byte("x")), Kind: KindExecutable,
		Size: 1, PID: 7, Exe: "/usr/bin/dash", Action: ActionDenied, Reason: "not on the allow-list"}
	for action, want := range map[string]model.Action{ActionDenied: model.ActionBlock, ActionLogged: model.ActionLog, ActionLearned: model.ActionLog} {
		d.Action = action
		e := d.Event()
		if err := e.Validate(); err != nil || e.Action != want || e.Module != Module || e.Process.PID != 7 {
			t.Errorf("%s: %+v %v", action, e, err)
		}
	}
}
