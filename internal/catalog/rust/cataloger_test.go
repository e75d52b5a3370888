package rust

import (
	"bytes"
	"compress/zlib"
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"mamori/internal/analyzer"
	"mamori/internal/model"
)

type fileInfo struct {
	size int64
	mode fs.FileMode
}

func (f fileInfo) Name() string       { return "f" }
func (f fileInfo) Size() int64        { return f.size }
func (f fileInfo) Mode() fs.FileMode  { return f.mode }
func (f fileInfo) ModTime() time.Time { return time.Time{} }
func (f fileInfo) IsDir() bool        { return false }
func (f fileInfo) Sys() any           { return nil }

func analyze(t testing.TB, path string, r io.ReaderAt, size int64, mode fs.FileMode) (*analyzer.Result, error) {
	t.Helper()
	c := New()
	info := fileInfo{size: size, mode: mode}
	if got := c.Required(path, info); got != analyzer.Content {
		t.Fatalf("Required(%s) = %v, want Content", path, got)
	}
	return c.Analyze(context.Background(), analyzer.Input{Path: path, Info: info, Content: io.NewSectionReader(r, 0, size)})
}

func summary(t testing.TB, pkgs []model.Package, cataloger, loc string) []string {
	t.Helper()
	var out []string
	for _, p := range pkgs {
		out = append(out, p.Name+"@"+p.Version+" "+p.PURL)
		if p.Type != model.TypeCargo || p.Ecosystem != model.EcosystemCratesIO || p.Cataloger != cataloger ||
			len(p.Locations) != 1 || p.Locations[0].Path != loc {
			t.Errorf("bad package fields: %+v", p)
		}
	}
	slices.Sort(out)
	return out
}

func TestCargoLock(t *testing.T) {
	for _, tc := range []struct {
		dir  string
		want []string
	}{
		{"v1", []string{"cfg-if@0.1.10 pkg:cargo/cfg-if@0.1.10", "hello@0.1.0 pkg:cargo/hello@0.1.0", "log@0.4.8 pkg:cargo/log@0.4.8"}},
		{"v3", []string{"memchr@2.5.0 pkg:cargo/memchr@2.5.0", "regex-syntax@0.6.28 pkg:cargo/regex-syntax@0.6.28", "regex@1.7.0 pkg:cargo/regex@1.7.0", "time@0.1.45 pkg:cargo/time@0.1.45", "tool@0.2.0 pkg:cargo/tool@0.2.0"}},
		{"v4", []string{"libc@0.2.155 pkg:cargo/libc@0.2.155", "rand@0.8.5 pkg:cargo/rand@0.8.5", "smallvec@0.6.14 pkg:cargo/smallvec@0.6.14", "smallvec@1.13.2 pkg:cargo/smallvec@1.13.2"}},
	} {
		t.Run(tc.dir, func(t *testing.T) {
			b, err := os.ReadFile(filepath.Join("testdata", tc.dir, "Cargo.lock"))
			if err != nil {
				t.Fatal(err)
			}
			loc := "src/" + tc.dir + "/Cargo.lock"
			res, err := analyze(t, loc, bytes.NewReader(b), int64(len(b)), 0o644)
			if err != nil {
				t.Fatal(err)
			}
			if got := summary(t, res.Packages, CatalogerLock, loc); !slices.Equal(got, tc.want) {
				t.Errorf("got %q\nwant %q", got, tc.want)
			}
		})
	}
}

// zeroReaderAt is an io.ReaderAt of n bytes of '#' (a TOML comment) that
// holds nothing in memory.
type zeroReaderAt int64

func (z zeroReaderAt) ReadAt(p []byte, off int64) (int, error) {
	if off >= int64(z) {
		return 0, io.EOF
	}
	n := min(int64(len(p)), int64(z)-off)
	for i := int64(0); i < n; {
		i += int64(copy(p[i:n], comments))
	}
	if n < int64(len(p)) {
		return int(n), io.EOF
	}
	return int(n), nil
}

func TestCargoLockHostile(t *testing.T) {
	t.Run("giant", func(t *testing.T) {
		const size = 4 << 30
		start := time.Now()
		_, err := analyze(t, "Cargo.lock", zeroReaderAt(size), size, 0o644)
		if !errors.Is(err, ErrTooLarge) {
			t.Errorf("err = %v, want ErrTooLarge", err)
		}
		if d := time.Since(start); d > boundedTime {
			t.Errorf("took %v", d)
		}
	})
	for name, data := range map[string]string{
		"garbage":       "\x00\xff[[[package",
		"wrong types":   "[[package]]\nname = 1\nversion = [2]\n",
		"package table": "package = 3\n",
	} {
		t.Run(name, func(t *testing.T) {
			res, err := analyze(t, "Cargo.lock", strings.NewReader(data), int64(len(data)), 0o644)
			if !errors.Is(err, ErrMalformed) || res != nil {
				t.Errorf("%v, %v; want ErrMalformed", res, err)
			}
		})
	}
	t.Run("deep nesting", func(t *testing.T) {
		// Some TOML decoders are super-linear in inline-table depth; this
		// one must stay fast on a few hundred KiB of nesting.
		const n = 50_000
		data := "a = " + strings.Repeat("{b=", n) + "1" + strings.Repeat("}", n) + "\n[[package]]\nname=\"x\"\nversion=\"1\"\n"
		start := time.Now()
		if _, err := analyze(t, "Cargo.lock", strings.NewReader(data), int64(len(data)), 0o644); err != nil {
			t.Logf("err = %v", err)
		}
		if d := time.Since(start); d > boundedTime {
			t.Errorf("took %v", d)
		}
	})
	t.Run("empty", func(t *testing.T) {
		res, err := analyze(t, "Cargo.lock", strings.NewReader(""), 0, 0o644)
		if err != nil || len(res.Packages) != 0 {
			t.Errorf("%v, %v", res, err)
		}
	})
}

// auditJSON is cargo-auditable's format as in its README.
const auditJSON = `{"packages":[` +
	`{"name":"adler","version":"1.0.2","source":"crates.io"},` +
	`{"name":"cc","version":"1.0.79","source":"crates.io","kind":"build"},` +
	`{"name":"miniz_oxide","version":"0.7.1","source":"crates.io","dependencies":[0]},` +
	`{"name":"hello","version":"0.1.0","source":"local","dependencies":[1,2],"root":true}]}`

func zlibBytes(t testing.TB, b []byte) []byte {
	var buf bytes.Buffer
	zw, err := zlib.NewWriterLevel(&buf, zlib.BestCompression)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// auditableELF builds a real ELF executable with gcc and adds a .dep-v0
// section holding section with objcopy, as cargo-auditable's linker step
// would. It skips when the tools are absent (apt packages gcc, binutils).
func auditableELF(t testing.TB, section []byte) []byte {
	t.Helper()
	gcc, err1 := exec.LookPath("gcc")
	objcopy, err2 := exec.LookPath("objcopy")
	if err1 != nil || err2 != nil {
		t.Skip("gcc and objcopy (Debian: gcc, binutils) are needed to build an ELF fixture")
	}
	dir := t.TempDir()
	src := filepath.Join(dir, "hello.c")
	if err := os.WriteFile(src, []byte("int main(void) { return 0; }\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "hello")
	if out, err := exec.Command(gcc, "-O2", "-o", bin, src).CombinedOutput(); err != nil {
		t.Fatalf("gcc: %v\n%s", err, out)
	}
	sec := filepath.Join(dir, "dep-v0")
	if err := os.WriteFile(sec, section, 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(objcopy, "--add-section", ".dep-v0="+sec, "--set-section-flags", ".dep-v0=noload,readonly", bin).CombinedOutput(); err != nil {
		t.Fatalf("objcopy: %v\n%s", err, out)
	}
	b, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	return padded(b)
}

// padded makes tiny gcc outputs reach minBinarySize, as real binaries do,
// by appending bytes after the ELF's last section (ignored by loaders).
func padded(b []byte) []byte {
	if len(b) < minBinarySize {
		b = append(b, make([]byte, minBinarySize-len(b))...)
	}
	return b
}

func TestAuditableBinary(t *testing.T) {
	bin := auditableELF(t, zlibBytes(t, []byte(auditJSON)))
	res, err := analyze(t, "usr/bin/hello", bytes.NewReader(bin), int64(len(bin)), 0o755)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"adler@1.0.2 pkg:cargo/adler@1.0.2", "hello@0.1.0 pkg:cargo/hello@0.1.0", "miniz_oxide@0.7.1 pkg:cargo/miniz_oxide@0.7.1"}
	if got := summary(t, res.Packages, CatalogerAuditable, "usr/bin/hello"); !slices.Equal(got, want) {
		t.Errorf("got %q\nwant %q", got, want)
	}
}

func TestAuditableHostile(t *testing.T) {
	t.Run("zlib bomb", func(t *testing.T) {
		bomb := zlibBytes(t, make([]byte, maxAuditJSONBytes+8<<20)) // 40 MiB of zeros, ~40 KiB compressed
		bin := auditableELF(t, bomb)
		start := time.Now()
		_, err := analyze(t, "usr/bin/bomb", bytes.NewReader(bin), int64(len(bin)), 0o755)
		if !errors.Is(err, ErrTooLarge) {
			t.Errorf("err = %v, want ErrTooLarge", err)
		}
		if d := time.Since(start); d > boundedTime {
			t.Errorf("took %v", d)
		}
	})
	t.Run("not zlib", func(t *testing.T) {
		bin := auditableELF(t, []byte(auditJSON))
		_, err := analyze(t, "usr/bin/x", bytes.NewReader(bin), int64(len(bin)), 0o755)
		if !errors.Is(err, ErrMalformed) {
			t.Errorf("err = %v, want ErrMalformed", err)
		}
	})
	t.Run("garbage json", func(t *testing.T) {
		bin := auditableELF(t, zlibBytes(t, []byte(`{"packages":{"name":1}}`)))
		_, err := analyze(t, "usr/bin/x", bytes.NewReader(bin), int64(len(bin)), 0o755)
		if !errors.Is(err, ErrMalformed) {
			t.Errorf("err = %v, want ErrMalformed", err)
		}
	})
	t.Run("no section", func(t *testing.T) {
		for _, p := range []string{"/bin/true", "/usr/bin/true"} {
			b, err := os.ReadFile(p)
			if err != nil {
				continue
			}
			res, err := analyze(t, "bin/true", bytes.NewReader(padded(b)), int64(len(padded(b))), 0o755)
			if err != nil || !res.Empty() {
				t.Errorf("%v, %v; want empty", res, err)
			}
			return
		}
		t.Skip("no /bin/true")
	})
	t.Run("script", func(t *testing.T) {
		b := padded([]byte("#!/bin/sh\nexit 0\n"))
		res, err := analyze(t, "bin/s", bytes.NewReader(b), int64(len(b)), 0o755)
		if err != nil || !res.Empty() {
			t.Errorf("%v, %v; want empty", res, err)
		}
	})
	t.Run("truncated elf", func(t *testing.T) {
		bin := auditableELF(t, zlibBytes(t, []byte(auditJSON)))
		for _, n := range []int{4, 64, len(bin) / 2} {
			_, _ = parseAuditableBinary(bytes.NewReader(bin[:n]), "x") // must not panic
		}
	})
}

func TestRequired(t *testing.T) {
	c := New()
	for _, tc := range []struct {
		path string
		size int64
		mode fs.FileMode
		want analyzer.Need
	}{
		{"src/Cargo.lock", 10, 0o644, analyzer.Content},
		{"src/cargo.lock", 10, 0o644, analyzer.Skip},
		{"usr/bin/rg", 5 << 20, 0o755, analyzer.Content},
		{"usr/bin/rg", 5 << 20, 0o644, analyzer.Skip},
		{"usr/bin/tiny", 10, 0o755, analyzer.Skip},
		{"C/rg.exe", 5 << 20, 0o644, analyzer.Content},
	} {
		if got := c.Required(tc.path, fileInfo{size: tc.size, mode: tc.mode}); got != tc.want {
			t.Errorf("Required(%s) = %v, want %v", tc.path, got, tc.want)
		}
	}
}

func BenchmarkCargoLock(b *testing.B) {
	var sb strings.Builder
	sb.WriteString("version = 4\n")
	for i := range 1500 {
		sb.WriteString("\n[[package]]\nname = \"crate" + strings.Repeat("x", i%7) + string(rune('a'+i%26)) + "\"\nversion = \"1.0." + string(rune('0'+i%10)) + "\"\nsource = \"registry+https://github.com/rust-lang/crates.io-index\"\nchecksum = \"2dffe52ecf27772e601905b7522cb4ef790d2cc203488bbd0e2fe85fcb74566d\"\ndependencies = [\n \"libc\",\n \"memchr\",\n]\n")
	}
	data := []byte(sb.String())
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := parseCargoLock(data, "Cargo.lock"); err != nil {
			b.Fatal(err)
		}
	}
}

func lookTools() (string, error) {
	if _, err := exec.LookPath("gcc"); err != nil {
		return "", err
	}
	return exec.LookPath("objcopy")
}

// boundedTime is how long a hostile input may take before a test calls it
// unbounded: generous, because tests run under -race and on loaded CI
// machines; the inputs would take minutes or forever without the caps.
const boundedTime = 30 * time.Second

var comments = strings.Repeat("#", 4096)
