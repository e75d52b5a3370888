package npm

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
	const c = " " + CatalogerInstalled
	diffLines(t, summary(got), []string{
		"@npmcli/fs@5.0.0 app/node_modules/@npmcli/fs/package.json" + c,
		"abbrev@4.0.0 app/node_modules/abbrev/package.json" + c,
		// An alias directory holds the real package.
		"abbrev@4.0.0 app/node_modules/abbrev-alias/package.json" + c,
		"archy@1.0.0 app/node_modules/archy/package.json" + c,
		"debug@4.4.3 app/node_modules/debug/package.json" + c,
		"lodash@4.17.21 app/node_modules/.pnpm/lodash@4.17.21/node_modules/lodash/package.json" + c,
		"ms@2.0.0 app/node_modules/old-dep/node_modules/ms/package.json" + c,
		"ms@2.1.3 app/node_modules/ms/package.json" + c,
		"old-dep@0.3.1 app/node_modules/old-dep/package.json" + c,
		"semver@7.8.5 app/node_modules/semver/package.json" + c,
	})
	for _, p := range got {
		if p.Type != model.TypeNPM || p.Ecosystem != model.EcosystemNPM {
			t.Errorf("%s: type %q ecosystem %q", p.Name, p.Type, p.Ecosystem)
		}
		switch p.Name {
		case "@npmcli/fs":
			if p.PURL != "pkg:npm/%40npmcli/fs@5.0.0" {
				t.Errorf("purl %q", p.PURL)
			}
			if !equal(p.Licenses, "ISC") {
				t.Errorf("licenses %q", p.Licenses)
			}
		case "old-dep":
			if !equal(p.Licenses, "MIT") {
				t.Errorf("licenses %q", p.Licenses)
			}
		}
	}
}

func equal(got []string, want ...string) bool {
	return strings.Join(got, "|") == strings.Join(want, "|")
}

func TestIsInstalledPackageJSON(t *testing.T) {
	for path, want := range map[string]bool{
		"node_modules/a/package.json":                                true,
		"usr/lib/node_modules/npm/package.json":                      true,
		"app/node_modules/@s/a/package.json":                         true,
		"app/node_modules/a/node_modules/b/package.json":             true,
		"app/node_modules/a/node_modules/@s/b/package.json":          true,
		"app/package.json":                                           false,
		"package.json":                                               false,
		"app/node_modules/a/lib/package.json":                        false,
		"app/node_modules/@s/package.json":                           false,
		"app/node_modules/@/a/package.json":                          false,
		"app/node_modules/.bin/package.json":                         false,
		"app/node_modules/@s/.cache/package.json":                    false,
		"app/my_node_modules/a/package.json":                         false,
		"app/node_modules/a/package.json.bak":                        false,
		"app/node_modules/a/node_modules/b/test/package.json":        false,
		"app/node_modules/.pnpm/a@1.0.0/node_modules/a/package.json": true,
	} {
		if got := isInstalledPackageJSON(path); got != want {
			t.Errorf("isInstalledPackageJSON(%q) = %v, want %v", path, got, want)
		}
	}
}

func TestLockFiles(t *testing.T) {
	const (
		v1 = " lock/npm-v1/package-lock.json " + CatalogerNPMLock
		v2 = " lock/npm-v2/package-lock.json " + CatalogerNPMLock
		v3 = " lock/npm-v3/package-lock.json " + CatalogerNPMLock
		y1 = " lock/yarn-v1/yarn.lock " + CatalogerYarnLock
		yb = " lock/yarn-berry/yarn.lock " + CatalogerYarnLock
		p5 = " lock/pnpm-v5/pnpm-lock.yaml " + CatalogerPNPMLock
		p6 = " lock/pnpm-v6/pnpm-lock.yaml " + CatalogerPNPMLock
		p9 = " lock/pnpm-v9/pnpm-lock.yaml " + CatalogerPNPMLock
	)
	var want []string
	// The three package-lock versions were written by npm 11 from the same
	// tree: a workspace (link, skipped), an alias, a nested ms, a dev package.
	for _, f := range []string{v1, v2, v3} {
		want = append(want,
			"@npmcli/fs@5.0.0"+f, "abbrev@4.0.0"+f, "archy@1.0.0 dev"+f, "debug@4.4.3"+f,
			"ms@2.0.0"+f, "ms@2.1.3"+f, "old-dep@0.3.1"+f, "semver@7.8.5"+f)
	}
	want = append(want,
		"@babel/code-frame@7.12.13"+y1, "@babel/highlight@7.13.10"+y1, "ansi-styles@3.2.1"+y1,
		"chalk@2.4.2"+y1, "js-tokens@4.0.0"+y1, "lodash@4.17.21"+y1, "string-width@4.2.3"+y1,

		"@babel/code-frame@7.24.7"+yb, "lodash@4.17.21"+yb, "resolve@1.22.8"+yb,
		"semver@7.6.0"+yb, "string-width@4.2.3"+yb,

		"@babel/code-frame@7.18.6"+p5, "@babel/core@7.20.5"+p5, "@types/react-dom@18.0.10 dev"+p5,
		"js-tokens@4.0.0"+p5, "loose-envify@1.4.0"+p5, "react-dom@18.2.0"+p5, "react@18.2.0"+p5,
		"scheduler@0.23.0"+p5, "typescript@4.9.4 dev"+p5,

		"@types/prop-types@15.7.5 dev"+p6, "@types/react@18.2.14 dev"+p6, "csstype@3.1.2 dev"+p6,
		"js-tokens@4.0.0"+p6, "loose-envify@1.4.0"+p6, "react-dom@18.2.0"+p6, "react@18.2.0"+p6,
		"scheduler@0.23.0"+p6,

		"@types/prop-types@15.7.12 dev"+p9, "@types/react@18.3.3 dev"+p9, "csstype@3.1.3 dev"+p9,
		"js-tokens@4.0.0"+p9, "loose-envify@1.4.0"+p9, "react-dom@18.3.1"+p9, "react@18.3.1"+p9,
		"scheduler@0.23.2"+p9, "string-width@4.2.3"+p9, "typescript@5.4.5 dev"+p9,
	)
	diffLines(t, summary(catalogTree(t, "testdata", NewLock())), want)
}

func TestLockPaths(t *testing.T) {
	lock := NewLock()
	for path, want := range map[string]string{
		"package-lock.json":           CatalogerNPMLock,
		"srv/app/npm-shrinkwrap.json": CatalogerNPMLock,
		"srv/app/yarn.lock":           CatalogerYarnLock,
		"pnpm-lock.yaml":              CatalogerPNPMLock,
	} {
		var got []string
		for _, a := range lock {
			if a.Required(path, nil) == analyzer.Content {
				got = append(got, a.Name())
			}
		}
		if strings.Join(got, ",") != want {
			t.Errorf("Required(%q) wanted by %v, want %s", path, got, want)
		}
	}
}

func TestLockIgnoresNodeModules(t *testing.T) {
	for _, a := range NewLock() {
		for _, p := range []string{
			"app/node_modules/x/package-lock.json", "node_modules/x/yarn.lock",
			"a/node_modules/.pnpm/x/node_modules/x/pnpm-lock.yaml", "app/node_modules/.package-lock.json",
			"node_modules/x/npm-shrinkwrap.json", "app/package.json", "app/my-package-lock.json",
		} {
			if need := a.Required(p, nil); need != analyzer.Skip {
				t.Errorf("%s.Required(%q) = %v, want Skip", a.Name(), p, need)
			}
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
	if need := a.Required("package-lock.json", info); need != analyzer.Metadata {
		t.Fatalf("Required of an oversized lock = %v, want Metadata", need)
	}
	_, err := a.Analyze(context.Background(), analyzer.Input{Path: "package-lock.json", Info: info})
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("Analyze of an oversized lock: %v, want ErrTooLarge", err)
	}
	// Content larger than the cap (the walk may hand it anyway) is refused too.
	big := io.NewSectionReader(bytes.NewReader(nil), 0, maxLockSize+1)
	_, err = a.Analyze(context.Background(), analyzer.Input{Path: "package-lock.json", Content: big})
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("Analyze of oversized content: %v, want ErrTooLarge", err)
	}
}

func TestMalformed(t *testing.T) {
	for _, tc := range []struct {
		name  string
		parse parseFunc
		data  string
	}{
		{"package.json not json", parsePackageJSON, `{"name": "a",`},
		{"package-lock truncated", parsePackageLock, `{"lockfileVersion": 3, "packages": {"node_modules/a": {"vers`},
		{"package-lock version 4", parsePackageLock, `{"lockfileVersion": 4, "packages": {}}`},
		{"package-lock no version", parsePackageLock, `{"name": "x"}`},
		{"yarn v1 key without colon", parseYarnLock, "lodash@^4\n  version \"4.17.21\"\n"},
		{"yarn v1 unterminated quote", parseYarnLock, "\"lodash@^4:\n  version \"4.17.21\"\n"},
		{"yarn berry bad yaml", parseYarnLock, "__metadata:\n  version: 8\n\"a@npm:1\": [\n"},
		{"pnpm bad version", parsePNPMLock, "lockfileVersion: '4.0'\npackages: {}\n"},
		{"pnpm not yaml", parsePNPMLock, "lockfileVersion: '9.0'\npackages: [\n"},
		{"pnpm empty", parsePNPMLock, ""},
	} {
		if _, err := tc.parse("x", []byte(tc.data)); err == nil {
			t.Errorf("%s: no error", tc.name)
		}
	}
}

func TestYarnV1Quirks(t *testing.T) {
	// CRLF line endings, an unquoted version, comments and a scoped alias.
	data := "# yarn lockfile v1\r\n\r\n" +
		"\"@scope/alias@npm:@babel/core@^7\", \"@babel/core@7.x\":\r\n" +
		"  version \"7.1.0\"\r\n" +
		"  resolved \"https://registry.yarnpkg.com/@babel/core/-/core-7.1.0.tgz\"\r\n" +
		"foo@1.0.0:\r\n" +
		"  version 1.0.0\r\n" +
		"  dependencies:\r\n" +
		"    version \"9.9.9\"\r\n"
	pkgs, err := parseYarnLock("yarn.lock", []byte(data))
	if err != nil {
		t.Fatal(err)
	}
	got := []string{}
	for _, p := range pkgs {
		got = append(got, p.PURL)
	}
	if want := "pkg:npm/%40babel/core@7.1.0 pkg:npm/foo@1.0.0"; strings.Join(got, " ") != want {
		t.Errorf("got %v, want %s", got, want)
	}
}
