package ruby

import (
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"strings"
	"testing"
	"time"

	"mamori/internal/analyzer"
	"mamori/internal/model"
)

func TestInstalled(t *testing.T) {
	got := catalogTree(t, "testdata/rootfs", NewInstalled())
	const (
		c  = " " + CatalogerInstalled
		sp = "usr/lib/ruby/gems/3.1.0/specifications/"
	)
	diffLines(t, summary(got), []string{
		"json@2.6.1 " + sp + "default/json-2.6.1.gemspec" + c,
		"minitest@5.15.0 " + sp + "minitest-5.15.0.gemspec" + c,
		"nokogiri@1.15.4 usr/local/bundle/specifications/nokogiri-1.15.4-x86_64-linux.gemspec" + c,
		"openssl@3.0.1 " + sp + "default/openssl-3.0.1.gemspec" + c,
		"rack@1.1.0 var/lib/gems/1.8/specifications/rack-1.1.0.gemspec" + c,
		"rake@13.0.6 " + sp + "rake-13.0.6.gemspec" + c,
		"webrick@1.8.1 usr/share/rubygems-integration/all/specifications/webrick-1.8.1.gemspec" + c,
	})
	want := map[string]struct{ purl, licenses, arch string }{
		"json":     {"pkg:gem/json@2.6.1", "Ruby", ""},
		"minitest": {"pkg:gem/minitest@5.15.0", "MIT", ""},
		"nokogiri": {"pkg:gem/nokogiri@1.15.4?platform=x86_64-linux", "MIT", "x86_64-linux"},
		"openssl":  {"pkg:gem/openssl@3.0.1", "Ruby", ""},
		"rack":     {"pkg:gem/rack@1.1.0", "", ""},
		"rake":     {"pkg:gem/rake@13.0.6", "MIT", ""},
		"webrick":  {"pkg:gem/webrick@1.8.1", "Ruby|BSD-2-Clause", ""},
	}
	for _, p := range got {
		w := want[p.Name]
		if p.PURL != w.purl || strings.Join(p.Licenses, "|") != w.licenses || p.Arch != w.arch {
			t.Errorf("%s: purl %q licenses %q arch %q, want %+v", p.Name, p.PURL, p.Licenses, p.Arch, w)
		}
		if p.Type != model.TypeGem || p.Ecosystem != model.EcosystemRubyGems {
			t.Errorf("%s: type %q ecosystem %q", p.Name, p.Type, p.Ecosystem)
		}
	}
}

func TestGemfileLock(t *testing.T) {
	const (
		app = " src/app/Gemfile.lock " + CatalogerGemfileLock
		pl  = " src/platforms/Gemfile.lock " + CatalogerGemfileLock
	)
	diffLines(t, summary(catalogTree(t, "testdata", NewLock())), []string{
		// Written by Bundler 2.3.7 (bundle lock --local).
		"digest@3.1.0" + app, "io-wait@0.2.1" + app, "minitest@5.15.0" + app, "net-imap@0.2.3" + app,
		"net-protocol@0.1.2" + app, "power_assert@2.0.1" + app, "rake@13.0.6" + app, "strscan@3.0.1" + app,
		"timeout@0.2.0" + app, "webrick@1.8.1" + app,
		// Platform variants merged, GIT and PATH gems skipped.
		"concurrent-ruby@1.2.2" + pl, "ffi@1.16.3" + pl, "google-protobuf@3.25.1" + pl,
		"jruby-openssl@0.14.2" + pl, "mini_portile2@2.8.5" + pl, "nokogiri@1.15.4" + pl, "racc@1.7.3" + pl,
		"rails-html-sanitizer@1.6.0.rc2" + pl, "sqlite3@1.6.9" + pl, "tzinfo@2.0.6" + pl,
	})
}

func TestSplitPlatform(t *testing.T) {
	for in, want := range map[string]string{
		"1.15.4-x86_64-linux":     "1.15.4 x86_64-linux",
		"1.15.4-x86_64-linux-gnu": "1.15.4 x86_64-linux-gnu",
		"1.16.3-x64-mingw-ucrt":   "1.16.3 x64-mingw-ucrt",
		"1.15.4-arm64-darwin":     "1.15.4 arm64-darwin",
		"0.14.2-java":             "0.14.2 java",
		"1.0.0-universal-darwin":  "1.0.0 universal-darwin",
		"1.0.0-rc1":               "1.0.0-rc1 ",
		"1.0.0-beta.2":            "1.0.0-beta.2 ",
		"2.0":                     "2.0 ",
	} {
		v, p := splitPlatform(in)
		if got := v + " " + p; got != want {
			t.Errorf("splitPlatform(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestGemspecVariants(t *testing.T) {
	for _, tc := range []struct{ src, want string }{
		{"Gem::Specification.new do |s|\n  s.name = \"a\".freeze\n  s.version = \"1.0\"\nend\n", "pkg:gem/a@1.0"},
		{"Gem::Specification.new { |spec| spec.name = 'b'\n spec.version = Gem::Version.new('2.0') }\n", "pkg:gem/b@2.0"},
		{"Gem::Specification.new do |gem|\n  gem.name = %q{c}\n  gem.version = %q(3.0.pre)\nend\n", "pkg:gem/c@3.0.pre"},
		// Not literals: fall back to the stub line.
		{"# stub: d 4.0 ruby lib\nGem::Specification.new do |s|\n  s.name = NAME\n  s.version = D::VERSION\nend\n", "pkg:gem/d@4.0"},
		// An equality test is not an assignment; a comment is not a value.
		{"Gem::Specification.new do |s|\n  s.name == \"x\"\n  s.name = \"e\" # \"y\"\n  s.version = \"5\"\nend\n", "pkg:gem/e@5"},
	} {
		pkgs, err := parseGemspec("x.gemspec", []byte(tc.src))
		if err != nil || len(pkgs) != 1 || pkgs[0].PURL != tc.want {
			t.Errorf("parseGemspec(%q) = %+v, %v; want %s", tc.src, pkgs, err, tc.want)
		}
	}
	for _, src := range []string{
		"",
		"Gem::Specification.new do |s|\n  s.name = NAME\n  s.version = VERSION\nend\n",
		"Gem::Specification.new do |s|\n  s.name = \"a b\"\n  s.version = \"1\"\nend\n",
		"Gem::Specification.new do |s|\n  s.name = \"a\"\n  s.version = \"1.0; rm -rf /\"\nend\n",
	} {
		if _, err := parseGemspec("x.gemspec", []byte(src)); !errors.Is(err, ErrNoGem) {
			t.Errorf("parseGemspec(%q): %v, want ErrNoGem", src, err)
		}
	}
}

func TestRequiredPaths(t *testing.T) {
	inst, lock := NewInstalled()[0], NewLock()[0]
	for path, want := range map[string]bool{
		"usr/local/bundle/specifications/rails-7.1.0.gemspec":               true,
		"usr/lib/ruby/gems/3.1.0/specifications/default/json-2.6.1.gemspec": true,
		"specifications/a-1.gemspec":                                        true,
		"app/myapp.gemspec":                                                 false,
		"usr/local/bundle/gems/rails-7.1.0/rails.gemspec":                   false,
		"usr/local/bundle/specifications/a-1.gemspec.bak":                   false,
	} {
		if got := inst.Required(path, nil) == analyzer.Content; got != want {
			t.Errorf("installed Required(%q) = %v, want %v", path, got, want)
		}
	}
	for path, want := range map[string]bool{
		"Gemfile.lock":         true,
		"srv/app/Gemfile.lock": true,
		"usr/local/bundle/gems/rack-3.0.0/Gemfile.lock": false,
		"Gemfile": false,
	} {
		if got := lock.Required(path, nil) == analyzer.Content; got != want {
			t.Errorf("lock Required(%q) = %v, want %v", path, got, want)
		}
	}
}

type sizeInfo int64

func (s sizeInfo) Name() string       { return "f" }
func (s sizeInfo) Size() int64        { return int64(s) }
func (s sizeInfo) Mode() fs.FileMode  { return 0o644 }
func (s sizeInfo) ModTime() time.Time { return time.Time{} }
func (s sizeInfo) IsDir() bool        { return false }
func (s sizeInfo) Sys() any           { return nil }

func TestTooLarge(t *testing.T) {
	a := NewLock()[0]
	info := sizeInfo(maxLockSize + 1)
	if need := a.Required("Gemfile.lock", info); need != analyzer.Metadata {
		t.Fatalf("Required of an oversized lock = %v, want Metadata", need)
	}
	if _, err := a.Analyze(context.Background(), analyzer.Input{Path: "Gemfile.lock", Info: info}); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("Analyze of an oversized lock: %v, want ErrTooLarge", err)
	}
	big := io.NewSectionReader(bytes.NewReader(nil), 0, maxLockSize+1)
	if _, err := a.Analyze(context.Background(), analyzer.Input{Path: "Gemfile.lock", Content: big}); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("Analyze of oversized content: %v, want ErrTooLarge", err)
	}
}
