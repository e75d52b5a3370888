package secret

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"mamori/internal/analyzer"
)

type fileInfo struct {
	name string
	size int64
	mode fs.FileMode
}

func (f fileInfo) Name() string       { return f.name }
func (f fileInfo) Size() int64        { return f.size }
func (f fileInfo) Mode() fs.FileMode  { return f.mode }
func (f fileInfo) ModTime() time.Time { return time.Time{} }
func (f fileInfo) IsDir() bool        { return false }
func (f fileInfo) Sys() any           { return nil }

func input(path string, b []byte) analyzer.Input {
	return analyzer.Input{
		Path:    path,
		Info:    fileInfo{name: filepath.Base(path), size: int64(len(b)), mode: 0o644},
		Content: io.NewSectionReader(bytes.NewReader(b), 0, int64(len(b))),
	}
}

func TestRequired(t *testing.T) {
	a, err := New(WithMaxFileSize(1000))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		path string
		size int64
		want analyzer.Need
	}{
		{"app/.env", 10, analyzer.Content},
		{"root/.docker/config.json", 10, analyzer.Content},
		{"home/u/.ssh/id_rsa", 10, analyzer.Content},
		{"app/big.log", 1001, analyzer.Skip},
		{"app/empty", 0, analyzer.Skip},
		{"usr/share/doc/openssl/README", 10, analyzer.Skip},
		{"usr/share/locale/de/LC_MESSAGES/x.txt", 10, analyzer.Skip},
		{"var/lib/dpkg/info/bash.md5sums", 10, analyzer.Skip},
		{"usr/lib/x86_64-linux-gnu/libssl.so.3", 10, analyzer.Skip},
		{"app/logo.PNG", 10, analyzer.Skip},
		{"app/lib.jar", 10, analyzer.Skip},
	} {
		if got := a.Required(tc.path, fileInfo{size: tc.size, mode: 0o644}); got != tc.want {
			t.Errorf("Required(%s, %d) = %v, want %v", tc.path, tc.size, got, tc.want)
		}
	}
	if got := a.Required("app/x", fileInfo{size: 10, mode: fs.ModeSymlink}); got != analyzer.Skip {
		t.Errorf("symlink: %v", got)
	}
}

func TestAnalyze(t *testing.T) {
	a, err := New()
	if err != nil {
		t.Fatal(err)
	}
	g := newGen()
	key := "AK" + "IA" + g.s(upper32, 16)
	res, err := a.Analyze(context.Background(), input("app/settings.py", []byte("# settings\nAWS_KEY = '"+key+"'\n")))
	if err != nil {
		t.Fatal(err)
	}
	if res == nil || len(res.Findings) != 1 {
		t.Fatalf("result %+v", res)
	}
	f := res.Findings[0]
	if f.ID != "aws-access-key-id" || f.Location.Path != "app/settings.py" || f.Location.StartLine != 2 || f.Evidence != "AKIA****(20 chars)" {
		t.Errorf("finding %+v", f)
	}
	// Binary: NUL within the first 8 KiB.
	res, err = a.Analyze(context.Background(), input("app/bin", []byte("\x00ELF "+key)))
	if err != nil || res != nil {
		t.Errorf("binary: %+v, %v", res, err)
	}
	// Cancelled context.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := a.Analyze(ctx, input("app/x", []byte(key))); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
}

func TestAnalyzeConfig(t *testing.T) {
	a, err := New()
	if err != nil {
		t.Fatal(err)
	}
	g := newGen()
	npm := "np" + "m_" + g.s(alnum, 36)
	pw := g.s(alnum, 18)
	tok := "gh" + "p_" + g.s(alnum, 36)
	cfg := &v1.ConfigFile{
		Config: v1.Config{
			Env:    []string{"PATH=/usr/bin", "DB_PASSWORD=" + pw},
			Labels: map[string]string{"maintainer": "a@b.c", "ci.token": tok},
			Cmd:    []string{"app", "--password", "x"},
		},
		History: []v1.History{
			{CreatedBy: "/bin/sh -c #(nop) ADD file:abc in / "},
			{CreatedBy: "|1 NPM_TOKEN=" + npm + " /bin/sh -c npm ci"},
			{CreatedBy: "RUN |1 API_KEY=" + g.s(alnum, 32) + " /bin/sh -c make # buildkit"},
		},
	}
	fs, err := a.AnalyzeConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, f := range fs {
		got[f.Location.Config] = f.ID
		if !contains(f.Controls, "CIS-Docker-4.10") || !contains(f.Controls, "4.1.4") {
			t.Errorf("controls %v", f.Controls)
		}
	}
	want := map[string]string{
		"Env[1]":           "generic-password",
		"History[1]":       "npm-access-token",
		"History[2]":       "generic-api-token",
		"Labels[ci.token]": "github-pat",
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: got %q, want %q (all: %v)", k, got[k], v, got)
		}
	}
	if len(fs) != len(want) {
		t.Errorf("got %d findings %v, want %d", len(fs), got, len(want))
	}
	out, _ := json.Marshal(fs)
	for _, raw := range []string{npm, pw, tok} {
		if strings.Contains(string(out), raw) {
			t.Errorf("raw secret in %s", out)
		}
	}
}

func TestConfigFile(t *testing.T) {
	g := newGen()
	dir := t.TempDir()
	path := filepath.Join(dir, "secret.yaml")
	yml := `
disable-rules: [jwt]
rules:
  - id: acme-token
    title: ACME token
    category: ACME
    severity: critical
    regex: 'acme_(?P<secret>[0-9a-f]{32})'
    secret-group: secret
    keywords: [ACME_]
  - id: only-in-etc
    regex: 'internal-[0-9]{6}'
    keywords: [internal-]
    path: '^etc/'
allow-rules:
  - id: fixtures
    path: '^test/'
  - id: known-key
    regex: '^AKIA` + "AAAABBBBCCCCDDDD" + `$'
`
	if err := os.WriteFile(path, []byte(yml), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := NewScanner(WithConfigFile(path), WithShowSecrets(true))
	if err != nil {
		t.Fatal(err)
	}
	hex := g.s(hexd, 32)
	enc := "eyJ" + g.s(alnum, 20) + ".eyJ" + g.s(alnum, 20) + "." + g.s(alnum, 30)
	fs := s.Scan("app/x", []byte("k = acme_"+hex+"\nt = "+enc+"\nid internal-123456\nA = AK"+"IA"+"AAAABBBBCCCCDDDD\n"))
	if len(fs) != 1 || fs[0].ID != "acme-token" || fs[0].Evidence != hex || fs[0].Severity.String() != "CRITICAL" || fs[0].Category != "ACME" {
		t.Fatalf("findings %+v", fs)
	}
	if fs := s.Scan("etc/x", []byte("id internal-123456")); len(fs) != 1 || fs[0].ID != "only-in-etc" {
		t.Errorf("path rule: %+v", fs)
	}
	if fs := s.Scan("test/x", []byte("k = acme_"+hex)); len(fs) != 0 {
		t.Errorf("allowed path: %+v", fs)
	}

	// Disable all built-ins.
	c, err := ParseConfig([]byte("disable-builtin-rules: true\n"))
	if err != nil {
		t.Fatal(err)
	}
	s2, err := NewScanner(WithConfig(c))
	if err != nil {
		t.Fatal(err)
	}
	if len(s2.Rules()) != 0 || len(s2.Scan("x", []byte("AK"+"IA"+g.s(upper32, 16)))) != 0 {
		t.Errorf("built-ins not disabled")
	}

	for _, bad := range []string{
		"rules: [{id: x, regex: '('}]",
		"rules: [{id: x, regex: 'a', keywords: [a]}]",
		"rules: [{id: x, regex: 'a', severity: extreme}]",
		"disable-rules: [no-such-rule]",
		"allow-rules: [{id: x}]",
		"unknown-key: 1",
		"rules: [{id: jwt, regex: 'x'}]",
	} {
		c, err := ParseConfig([]byte(bad))
		if err == nil {
			_, err = NewScanner(WithConfig(c))
		}
		if err == nil {
			t.Errorf("config %q: no error", bad)
		}
	}
	if _, err := LoadConfig(filepath.Join(dir, "missing.yaml")); !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("missing file: %v", err)
	}
}

func TestOptionsDigest(t *testing.T) {
	a, _ := New()
	b, _ := New(WithShowSecrets(true))
	c, _ := New()
	if a.OptionsDigest() == b.OptionsDigest() || a.OptionsDigest() != c.OptionsDigest() {
		t.Errorf("digest does not follow options")
	}
}

func TestConcurrentScan(t *testing.T) {
	a, err := New()
	if err != nil {
		t.Fatal(err)
	}
	cases := ruleCases()
	done := make(chan error, 8)
	for w := 0; w < 8; w++ {
		go func(w int) {
			for i := w; i < len(cases); i += 8 {
				res, err := a.Analyze(context.Background(), input("app/.env", []byte(cases[i].text)))
				if err != nil || res == nil || len(res.Findings) == 0 {
					done <- errors.New(cases[i].rule + ": no finding")
					return
				}
			}
			done <- nil
		}(w)
	}
	for w := 0; w < 8; w++ {
		if err := <-done; err != nil {
			t.Error(err)
		}
	}
}
