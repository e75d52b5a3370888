package dotnet

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"mamori/internal/analyzer"
	"mamori/internal/model"
)

type fileInfo struct{ size int64 }

func (f fileInfo) Name() string       { return "f" }
func (f fileInfo) Size() int64        { return f.size }
func (f fileInfo) Mode() fs.FileMode  { return 0o644 }
func (f fileInfo) ModTime() time.Time { return time.Time{} }
func (f fileInfo) IsDir() bool        { return false }
func (f fileInfo) Sys() any           { return nil }

func analyze(t testing.TB, path string, r io.ReaderAt, size int64) (*analyzer.Result, error) {
	t.Helper()
	c := New()
	if got := c.Required(path, fileInfo{size}); got != analyzer.Content {
		t.Fatalf("Required(%s) = %v, want Content", path, got)
	}
	return c.Analyze(context.Background(), analyzer.Input{Path: path, Info: fileInfo{size}, Content: io.NewSectionReader(r, 0, size)})
}

func TestDepsJSON(t *testing.T) {
	b, err := os.ReadFile("testdata/app/webapp.deps.json")
	if err != nil {
		t.Fatal(err)
	}
	const loc = "app/webapp.deps.json"
	res, err := analyze(t, loc, bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, p := range res.Packages {
		got = append(got, p.Name+"@"+p.Version+" "+p.PURL)
		if p.Type != model.TypeNuGet || p.Ecosystem != model.EcosystemNuGet || p.Cataloger != Name ||
			len(p.Locations) != 1 || p.Locations[0].Path != loc {
			t.Errorf("bad fields %+v", p)
		}
	}
	want := []string{
		"Newtonsoft.Json@13.0.1 pkg:nuget/Newtonsoft.Json@13.0.1",
		"Serilog@3.1.1 pkg:nuget/Serilog@3.1.1",
		"System.Text.Encodings.Web@4.5.0 pkg:nuget/System.Text.Encodings.Web@4.5.0",
	}
	if !slices.Equal(got, want) {
		t.Errorf("got %q\nwant %q", got, want)
	}
}

// patternReaderAt is n bytes repeating pattern, without holding them.
type patternReaderAt struct {
	pattern string
	n       int64
}

func (p patternReaderAt) ReadAt(b []byte, off int64) (int, error) {
	if off >= p.n {
		return 0, io.EOF
	}
	n := min(int64(len(b)), p.n-off)
	for i := int64(0); i < n; {
		k := (off + i) % int64(len(p.pattern))
		i += int64(copy(b[i:n], p.pattern[k:]))
	}
	if n < int64(len(b)) {
		return int(n), io.EOF
	}
	return int(n), nil
}

func TestHostile(t *testing.T) {
	for name, data := range map[string]string{
		"garbage":          "\x00\xffnot json",
		"truncated":        `{"libraries": {"A/1.0": {"type": "package"`,
		"wrong type":       `{"libraries": ["A/1.0"]}`,
		"no libraries":     `{"runtimeTarget": {}}`,
		"array":            `[1,2,3]`,
		"deep":             strings.Repeat("[", 100000) + strings.Repeat("]", 100000),
		"libraries is str": `{"libraries": "x"}`,
	} {
		t.Run(name, func(t *testing.T) {
			res, err := analyze(t, "a.deps.json", strings.NewReader(data), int64(len(data)))
			if !errors.Is(err, ErrMalformed) || res != nil {
				t.Errorf("%v, %v; want ErrMalformed", res, err)
			}
		})
	}
	t.Run("odd keys", func(t *testing.T) {
		data := `{"libraries": {"NoVersion": {"type": "package"}, "/1.0": {"type": "package"}, "A/": {"type": "package"},
			"A/1.0/x": {"type": "package"}, "B/2.0": {"type": "Package"}, "C/3.0": {"type": 7}}}`
		res, err := analyze(t, "a.deps.json", strings.NewReader(data), int64(len(data)))
		if err == nil {
			t.Fatalf("want an error for a non-string type, got %v", res)
		}
		data = strings.Replace(data, `"type": 7`, `"type": "project"`, 1)
		res, err = analyze(t, "a.deps.json", strings.NewReader(data), int64(len(data)))
		if err != nil || len(res.Packages) != 1 || res.Packages[0].Name != "B" {
			t.Errorf("%v, %v; want only B 2.0", res, err)
		}
	})
	t.Run("giant", func(t *testing.T) {
		r := patternReaderAt{pattern: `{"libraries":{"A/1.0":{"type":"package"}},"x":"` + strings.Repeat("a", 1000), n: 8 << 30}
		start := time.Now()
		_, err := analyze(t, "a.deps.json", r, r.n)
		if !errors.Is(err, ErrTooLarge) {
			t.Errorf("err = %v; want ErrTooLarge", err)
		}
		if d := time.Since(start); d > boundedTime {
			t.Errorf("took %v", d)
		}
	})
}

func TestRequired(t *testing.T) {
	c := New()
	for path, want := range map[string]analyzer.Need{
		"app/webapp.deps.json":     analyzer.Content,
		"deps.json":                analyzer.Skip,
		".deps.json":               analyzer.Skip,
		"app/webapp.json":          analyzer.Skip,
		"app/x.runtimeconfig.json": analyzer.Skip,
	} {
		if got := c.Required(path, fileInfo{10}); got != want {
			t.Errorf("Required(%s) = %v, want %v", path, got, want)
		}
	}
}

func BenchmarkDepsJSON(b *testing.B) {
	var sb strings.Builder
	sb.WriteString(`{"runtimeTarget":{"name":".NETCoreApp,Version=v8.0"},"libraries":{`)
	for i := range 500 {
		if i > 0 {
			sb.WriteByte(',')
		}
		fmt.Fprintf(&sb, `"Package.Number%d/1.%d.0":{"type":"package","serviceable":true,"sha512":"sha512-ppPFpBcvxdsfUonNcvITKqLl3bqxWbDCZIzDWHzjpdAHRFfZe0Dw9HmA0+za13IdyrgJwpkDTDA9fHaxOrt20A==","path":"p/1.0","hashPath":"p.1.0.nupkg.sha512"}`, i, i)
	}
	sb.WriteString("}}")
	data := []byte(sb.String())
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if pkgs, err := parseDepsJSON(data, "x"); err != nil || len(pkgs) != 500 {
			b.Fatal(err)
		}
	}
}

// boundedTime is how long a hostile input may take before a test calls it
// unbounded: generous, because tests run under -race and on loaded CI
// machines; the inputs would take minutes or forever without the caps.
const boundedTime = 30 * time.Second
