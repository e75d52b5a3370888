package gobinary

import (
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strings"
	"testing"
	"time"

	"mamori/internal/analyzer"
	"mamori/internal/model"
)

// fixtureModule is a small main module with three dependencies, vendored so
// that building needs no network: one plain, one replaced by another module
// version (=> example.com/new v1.2.0) and one replaced by a local directory.
// vendor/modules.txt follows the format cmd/go writes with "go mod vendor".
var fixtureModule = map[string]string{
	"go.mod": `module example.com/app

go 1.21

require (
	example.com/local v0.0.0
	example.com/old v1.0.0
	example.com/plain v1.4.2
)

replace example.com/local => ../local

replace example.com/old => example.com/new v1.2.0
`,
	"vendor/modules.txt": `# example.com/local v0.0.0 => ../local
## explicit
example.com/local
# example.com/old v1.0.0 => example.com/new v1.2.0
## explicit; go 1.21
example.com/old
# example.com/plain v1.4.2
## explicit; go 1.21
example.com/plain
# example.com/local => ../local
# example.com/old => example.com/new v1.2.0
`,
	"vendor/example.com/local/local.go": "package local\n\nfunc Hello() string { return \"local\" }\n",
	"vendor/example.com/old/old.go":     "package old\n\nfunc V() string { return \"new\" }\n",
	"vendor/example.com/plain/plain.go": "package plain\n\nfunc V() string { return \"plain\" }\n",
	"main.go": `package main

import (
	"fmt"

	"example.com/local"
	"example.com/old"
	"example.com/plain"
)

func main() { fmt.Println(local.Hello(), old.V(), plain.V()) }
`,
}

// goTool returns the go command, or skips the test.
func goTool(t testing.TB) string {
	t.Helper()
	p, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("go toolchain not on PATH (%v): cannot build Go binary fixtures", err)
	}
	return p
}

// buildFixture builds fixtureModule for goos/amd64 with extra linker flags
// and returns the binary's bytes.
func buildFixture(t testing.TB, goos, ldflags string) []byte {
	t.Helper()
	gocmd := goTool(t)
	dir := t.TempDir()
	src := filepath.Join(dir, "app")
	for name, body := range fixtureModule {
		p := filepath.Join(src, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	out := filepath.Join(dir, "app.bin")
	args := []string{"build", "-trimpath", "-o", out}
	if ldflags != "" {
		args = append(args, "-ldflags="+ldflags)
	}
	cmd := exec.Command(gocmd, append(args, ".")...)
	cmd.Dir = src
	cmd.Env = append(os.Environ(),
		"GOFLAGS=-mod=vendor -buildvcs=false", "GOPROXY=off", "GOTOOLCHAIN=local",
		"CGO_ENABLED=0", "GOOS="+goos, "GOARCH=amd64", "GOWORK=off")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, b)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// toolchainStdlib is the stdlib version the local toolchain records.
func toolchainStdlib(t testing.TB) string {
	t.Helper()
	out, err := exec.Command(goTool(t), "env", "GOVERSION").Output()
	if err != nil {
		t.Fatalf("go env GOVERSION: %v", err)
	}
	v, ok := StdlibVersion(strings.TrimSpace(string(out)))
	if !ok {
		t.Skipf("toolchain version %q is not a release", out)
	}
	return v
}

type fileInfo struct {
	name string
	size int64
	mode fs.FileMode
}

func (f fileInfo) Name() string       { return f.name }
func (f fileInfo) Size() int64        { return f.size }
func (f fileInfo) Mode() fs.FileMode  { return f.mode }
func (f fileInfo) ModTime() time.Time { return time.Time{} }
func (f fileInfo) IsDir() bool        { return f.mode.IsDir() }
func (f fileInfo) Sys() any           { return nil }

func analyze(t testing.TB, path string, b []byte) (*analyzer.Result, error) {
	t.Helper()
	c := New()
	info := fileInfo{name: filepath.Base(path), size: int64(len(b)), mode: 0o755}
	if got := c.Required(path, info); got != analyzer.Content {
		t.Fatalf("Required(%s) = %v, want Content", path, got)
	}
	return c.Analyze(context.Background(), analyzer.Input{
		Path: path, Info: info, Content: io.NewSectionReader(bytes.NewReader(b), 0, int64(len(b))),
	})
}

func summary(pkgs []model.Package) []string {
	var out []string
	for _, p := range pkgs {
		out = append(out, p.Name+"@"+p.Version+" "+p.PURL)
		if p.Type != model.TypeGolang || p.Ecosystem != model.EcosystemGo || p.Cataloger != Name {
			out = append(out, "BAD TYPE/ECOSYSTEM/CATALOGER: "+p.Type+" "+p.Ecosystem+" "+p.Cataloger)
		}
		if len(p.Locations) != 1 || p.Locations[0].Path != "usr/local/bin/app" {
			out = append(out, "BAD LOCATION")
		}
	}
	slices.Sort(out)
	return out
}

func TestBuiltBinaries(t *testing.T) {
	if testing.Short() {
		t.Skip("builds Go programs")
	}
	std := toolchainStdlib(t)
	want := []string{
		"example.com/app@(devel) pkg:golang/example.com/app@%28devel%29",
		"example.com/local@(devel) pkg:golang/example.com/local@%28devel%29",
		"example.com/new@v1.2.0 pkg:golang/example.com/new@v1.2.0",
		"example.com/plain@v1.4.2 pkg:golang/example.com/plain@v1.4.2",
		"stdlib@" + std + " pkg:golang/stdlib@" + std,
	}
	for _, tc := range []struct{ name, goos, ldflags string }{
		{"elf", "linux", ""},
		{"elf-stripped", "linux", "-s -w"},
		{"pe", "windows", ""},
		{"macho-stripped", "darwin", "-s -w"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := buildFixture(t, tc.goos, tc.ldflags)
			res, err := analyze(t, "usr/local/bin/app", b)
			if err != nil {
				t.Fatal(err)
			}
			if got := summary(res.Packages); !slices.Equal(got, want) {
				t.Errorf("packages:\n got %q\nwant %q", got, want)
			}
		})
	}
}

// TestTruncated cuts a real Go binary at many points: every cut must give an
// empty result or an error, never a panic or a hang.
func TestTruncated(t *testing.T) {
	if testing.Short() {
		t.Skip("builds Go programs")
	}
	b := buildFixture(t, "linux", "-s -w")
	for _, n := range []int{0, 3, 4, 64, 4096, len(b) / 3, len(b) / 2, len(b) - 1} {
		pkgs, err := parseBinary(bytes.NewReader(b[:n]), "x")
		if err == nil && len(pkgs) > 0 && n < len(b)/2 {
			// The build info blob sits in the data segment, past the text;
			// a binary cut before it cannot yield packages.
			t.Errorf("cut at %d: got %d packages from a truncated binary", n, len(pkgs))
		}
	}
}

func TestNotGo(t *testing.T) {
	for _, tc := range []struct {
		name string
		data []byte
		want error
	}{
		{"script", []byte("#!/bin/sh\necho hi\n"), ErrNotExecutable},
		{"empty", nil, ErrNotExecutable},
		{"elf-garbage", append([]byte("\x7fELF"), bytes.Repeat([]byte{0xff}, 100)...), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pkgs, err := parseBinary(bytes.NewReader(tc.data), "x")
			if len(pkgs) != 0 {
				t.Errorf("got packages %v", pkgs)
			}
			if tc.want != nil && !errors.Is(err, tc.want) {
				t.Errorf("err = %v, want %v", err, tc.want)
			}
			if tc.want == nil && err == nil {
				t.Errorf("garbage ELF: want an error")
			}
		})
	}
	// A real non-Go executable from the host, when there is one.
	for _, p := range []string{"/bin/true", "/usr/bin/true"} {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		if b, _ := os.ReadFile(p); bytes.Contains(b, []byte("\xff Go buildinf:")) {
			continue // a Go build of true: not the case we test
		}
		pkgs, err := parseBinary(bytes.NewReader(b), p)
		if !errors.Is(err, ErrNoBuildInfo) || len(pkgs) != 0 {
			t.Errorf("%s: got %v, %v; want ErrNoBuildInfo", p, pkgs, err)
		}
		res, err := New().Analyze(context.Background(), analyzer.Input{Path: p, Content: io.NewSectionReader(bytes.NewReader(b), 0, int64(len(b)))})
		if err != nil || !res.Empty() {
			t.Errorf("Analyze(%s) = %v, %v; want empty and no error", p, res, err)
		}
		break
	}
}

// TestReplaceRules runs the replace and devel rules over build information
// in the text form cmd/go writes (runtime/debug.BuildInfo.String).
func TestReplaceRules(t *testing.T) {
	bi, err := debug.ParseBuildInfo(
		"path\tgithub.com/acme/tool/cmd/tool\n" +
			"mod\tgithub.com/acme/tool\tv1.2.3\th1:abc=\n" +
			"dep\tgolang.org/x/text\tv0.3.7\th1:def=\n" +
			"=>\tgithub.com/fork/text\tv0.3.8-fix\th1:ghi=\n" +
			"dep\tgithub.com/pkg/errors\tv0.9.1\th1:jkl=\n" +
			"dep\texample.com/local\tv0.0.0\n" +
			"=>\t./third_party/local\t(devel)\t\n")
	if err != nil {
		t.Fatal(err)
	}
	bi.GoVersion = "go1.20" // ParseBuildInfo leaves it empty; debug/buildinfo.Read sets it
	var got []string
	for _, p := range packagesFromBuildInfo(bi, "app") {
		got = append(got, p.Name+"@"+p.Version)
	}
	want := []string{
		"github.com/acme/tool@v1.2.3",
		"github.com/fork/text@v0.3.8-fix",
		"github.com/pkg/errors@v0.9.1",
		"example.com/local@(devel)",
		"stdlib@1.20.0",
	}
	if !slices.Equal(got, want) {
		t.Errorf("got %q\nwant %q", got, want)
	}
}

func TestStdlibVersion(t *testing.T) {
	for in, want := range map[string]string{
		"go1.21.3":                "1.21.3",
		"go1.20":                  "1.20.0",
		"go1":                     "1.0.0",
		"go1.22rc1":               "1.22.0-rc.1",
		"go1.18beta2":             "1.18.0-beta.2",
		"go1.21.3 X:boringcrypto": "1.21.3",
		"go1.26.8":                "1.26.8",
		"go1.21.3-bigcorp":        "1.21.3",
		"devel go1.23-abcdef Tue": "",
		"":                        "",
		"go":                      "",
		"gox":                     "",
		"go1.2x":                  "",
		"go1.22rc":                "",
		"go99999999999.1":         "",
	} {
		got, ok := StdlibVersion(in)
		if got != want || ok != (want != "") {
			t.Errorf("StdlibVersion(%q) = %q, %v; want %q", in, got, ok, want)
		}
	}
}

func TestRequired(t *testing.T) {
	c := New()
	for _, tc := range []struct {
		path string
		size int64
		mode fs.FileMode
		want analyzer.Need
	}{
		{"usr/bin/app", 2 << 20, 0o755, analyzer.Content},
		{"usr/bin/app", 2 << 20, 0o700, analyzer.Content},
		{"usr/bin/app", 2 << 20, 0o644, analyzer.Skip},
		{"usr/bin/tiny", 100, 0o755, analyzer.Skip},
		{"Windows/app.EXE", 2 << 20, 0o644, analyzer.Content},
		{"usr/bin/link", 2 << 20, fs.ModeSymlink | 0o777, analyzer.Skip},
		{"usr/bin", 2 << 20, fs.ModeDir | 0o755, analyzer.Skip},
	} {
		if got := c.Required(tc.path, fileInfo{name: filepath.Base(tc.path), size: tc.size, mode: tc.mode}); got != tc.want {
			t.Errorf("Required(%s, %v, %d) = %v, want %v", tc.path, tc.mode, tc.size, got, tc.want)
		}
	}
}

func BenchmarkAnalyze(b *testing.B) {
	bin := buildFixture(b, "linux", "")
	c := New()
	info := fileInfo{name: "app", size: int64(len(bin)), mode: 0o755}
	b.SetBytes(int64(len(bin)))
	b.ReportAllocs()
	for b.Loop() {
		res, err := c.Analyze(context.Background(), analyzer.Input{Path: "app", Info: info, Content: io.NewSectionReader(bytes.NewReader(bin), 0, int64(len(bin)))})
		if err != nil || len(res.Packages) != 5 {
			b.Fatalf("%v %v", res, err)
		}
	}
}

// BenchmarkNotGo is the common case: an executable that is not Go.
func BenchmarkNotGo(b *testing.B) {
	bin, err := os.ReadFile("/bin/true")
	if err != nil {
		b.Skip("no /bin/true")
	}
	c := New()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Analyze(context.Background(), analyzer.Input{Path: "true", Content: io.NewSectionReader(bytes.NewReader(bin), 0, int64(len(bin)))}); err != nil {
			b.Fatal(err)
		}
	}
}
