package python

import (
	"bytes"
	"context"
	"encoding/json"
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
		sp = "usr/local/lib/python3.11/site-packages/"
		dp = "usr/lib/python3/dist-packages/"
	)
	diffLines(t, summary(got), []string{
		"attrs@26.1.0 " + sp + "attrs-26.1.0.dist-info/METADATA" + c,
		"annotated-types@0.7.0 " + sp + "annotated_types-0.7.0.dist-info/METADATA" + c,
		"libcst@1.0.1 " + sp + "libcst-1.0.1.dist-info/METADATA" + c,
		"PyJWT@2.6.0 " + dp + "PyJWT-2.6.0.egg-info/PKG-INFO" + c,
		"lazr.uri@1.0.6 " + dp + "lazr.uri-1.0.6.egg-info/PKG-INFO" + c,
		"PyYAML@6.0 " + dp + "PyYAML-6.0.dist-info/METADATA" + c,
		"wsgiref@0.1.2 usr/lib/python2.7/wsgiref.egg-info" + c,
	})
	want := map[string]struct{ purl, licenses string }{
		"attrs":           {"pkg:pypi/attrs@26.1.0", "MIT"},                  // License-Expression
		"annotated-types": {"pkg:pypi/annotated-types@0.7.0", "MIT License"}, // classifier only
		"libcst":          {"pkg:pypi/libcst@1.0.1", "MIT License"},          // multi-line License -> classifier
		"PyJWT":           {"pkg:pypi/pyjwt@2.6.0", "MIT"},                   // License
		"lazr.uri":        {"pkg:pypi/lazr-uri@1.0.6", "LGPL v3"},            // PEP 503 purl
		"PyYAML":          {"pkg:pypi/pyyaml@6.0", "MIT"},
		"wsgiref":         {"pkg:pypi/wsgiref@0.1.2", "PSF or ZPL"},
	}
	for _, p := range got {
		w := want[p.Name]
		if p.PURL != w.purl || strings.Join(p.Licenses, "|") != w.licenses {
			t.Errorf("%s: purl %q licenses %q, want %q %q", p.Name, p.PURL, p.Licenses, w.purl, w.licenses)
		}
		if p.Type != model.TypePyPI || p.Ecosystem != model.EcosystemPyPI {
			t.Errorf("%s: type %q ecosystem %q", p.Name, p.Type, p.Ecosystem)
		}
	}
}

func TestLockFiles(t *testing.T) {
	const (
		p11 = " src/poetry-1.1/poetry.lock " + CatalogerPoetryLock
		p20 = " src/poetry-2.0/poetry.lock " + CatalogerPoetryLock
		p21 = " src/poetry-2.1/poetry.lock " + CatalogerPoetryLock
		pf  = " src/rsa/Pipfile.lock " + CatalogerPipfileLock
		rq  = " src/reqs/requirements.txt " + CatalogerRequirements
		rb  = " src/reqs/requirements/base.txt " + CatalogerRequirements
		rd  = " src/reqs/dev-requirements.txt " + CatalogerRequirements
	)
	want := []string{
		"Flask@2.0.2" + p11, "certifi@2021.10.8" + p11, "pytest@6.2.5 dev" + p11, "zope.interface@5.4.0" + p11,
		"charset-normalizer@3.3.2" + p20, "requests@2.31.0" + p20, "django-extensions@3.2.4.dev0" + p20,
		"idna@3.10" + p21, "iniconfig@2.0.0 dev" + p21, "colorama@0.4.6" + p21,
		"pyasn1@0.4.4" + pf,
		"Django@4.2.7" + rq, "requests@2.31.0" + rq, "urllib3@2.0.7" + rq, "zope.interface@6.1" + rq, "numpy@1.26.2" + rq,
		"PyYAML@6.0.1" + rb,
		"pytest@7.4.3" + rd, "coverage@7.3.2" + rd,
	}
	for _, d := range strings.Fields(`alabaster@0.7.12 appdirs@1.4.3 atomicwrites@1.3.0 attrs@19.3.0 babel@2.8.0
		certifi@2020.4.5.1 chardet@3.0.4 coverage@5.1 coveralls@1.5.0 distlib@0.3.0 docopt@0.6.2 docutils@0.16
		filelock@3.0.12 idna@2.9 imagesize@1.2.0 importlib-metadata@1.6.0 importlib-resources@1.5.0 jinja2@2.11.2
		markupsafe@1.1.1 mock@2.0.0 more-itertools@8.2.0 packaging@20.3 pathlib2@2.3.5 pbr@5.4.5 pluggy@0.13.1
		py@1.8.1 pygments@2.6.1 pyparsing@2.4.7 pytest@3.8.0 pytest-cov@2.6.0 pytz@2019.3 requests@2.23.0
		six@1.14.0 snowballstemmer@2.0.0 sphinx@1.8.0 sphinxcontrib-websupport@1.2.1 toml@0.10.0 tox@3.3.0
		urllib3@1.24.2 virtualenv@20.0.18 zipp@3.1.0`) {
		want = append(want, d+" dev"+pf)
	}
	diffLines(t, summary(catalogTree(t, "testdata", NewLock())), want)
}

func TestNormalizeName(t *testing.T) {
	for in, want := range map[string]string{
		"Flask_Cors": "flask-cors", "zope.interface": "zope-interface", "A-_.B": "a-b",
		"requests": "requests", "PyYAML": "pyyaml", "foo--bar__baz": "foo-bar-baz",
	} {
		if got := NormalizeName(in); got != want {
			t.Errorf("NormalizeName(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestRequiredPaths(t *testing.T) {
	inst := NewInstalled()[0]
	for path, want := range map[string]bool{
		"usr/lib/python3/dist-packages/six-1.16.0.dist-info/METADATA":       true,
		"usr/lib/python3/dist-packages/six-1.16.0.dist-info/RECORD":         false,
		"usr/lib/python3/dist-packages/six-1.16.0.egg-info/PKG-INFO":        true,
		"usr/lib/python3/dist-packages/six-1.16.0.egg-info":                 true,
		"usr/lib/python3/site-packages/foo-1.0-py3.8.egg/EGG-INFO/PKG-INFO": true,
		"usr/lib/python3/site-packages/.egg-info":                           false,
		"usr/lib/python3/site-packages/foo/METADATA":                        false,
		"usr/lib/python3/site-packages/foo-1.0.dist-info/METADATA.bak":      false,
	} {
		if got := inst.Required(path, nil) == analyzer.Content; got != want {
			t.Errorf("installed Required(%q) = %v, want %v", path, got, want)
		}
	}
	lock := NewLock()
	any := func(path string) bool {
		for _, a := range lock {
			if a.Required(path, nil) != analyzer.Skip {
				return true
			}
		}
		return false
	}
	for path, want := range map[string]bool{
		"app/requirements.txt":      true,
		"requirements-dev.txt":      true,
		"app/requirements/prod.txt": true,
		"app/notes.txt":             false,
		"app/poetry.lock":           true,
		"Pipfile.lock":              true,
		"Pipfile":                   false,
		"venv/lib/python3.11/site-packages/foo/requirements.txt": false,
		"usr/lib/python3/dist-packages/foo/poetry.lock":          false,
	} {
		if got := any(path); got != want {
			t.Errorf("lock Required(%q) = %v, want %v", path, got, want)
		}
	}
}

func TestRequirementLines(t *testing.T) {
	for line, want := range map[string]string{
		"foo==1.0":                         "foo 1.0",
		"foo == 1.0":                       "foo 1.0",
		"foo (==1.0)":                      "foo 1.0",
		"foo[bar]==1.0":                    "foo 1.0",
		"foo==1.0,!=1.1":                   "foo 1.0",
		"foo>=1.0,==1.2":                   "foo 1.2",
		"foo===1.0+local":                  "foo 1.0+local",
		"foo==1.0 --hash=sha256:abc":       "foo 1.0",
		"foo==1.0;python_version<'3'":      "foo 1.0",
		"foo==1.*":                         "",
		"foo>=1.0":                         "",
		"foo":                              "",
		"foo==":                            "",
		"-r other.txt":                     "",
		"--requirement other.txt":          "",
		"foo @ https://x/foo-1.0.tar.gz":   "",
		"https://x/foo-1.0.tar.gz#egg=foo": "",
		"foo[bar==1.0":                     "",
		"==1.0":                            "",
	} {
		n, v, ok := pinnedRequirement(line)
		got := ""
		if ok {
			got = n + " " + v
		}
		if got != want {
			t.Errorf("pinnedRequirement(%q) = %q, want %q", line, got, want)
		}
	}
}

func TestMetadataErrors(t *testing.T) {
	for _, data := range []string{
		"",
		"Metadata-Version: 2.1\nName: foo\n",
		"Metadata-Version: 2.1\nVersion: 1.0\n",
		"Metadata-Version: 2.1\n\nName: foo\nVersion: 1.0\n", // after the headers
		"garbage without colon\nName: foo\nVersion: 1.0\n",
		"Name: foo bar\nVersion: 1.0\n",
	} {
		if _, err := parseMetadata("x", []byte(data)); !errors.Is(err, ErrMissingField) {
			t.Errorf("parseMetadata(%q): %v, want ErrMissingField", data, err)
		}
	}
	// CRLF and a License-Expression beside a License.
	pkgs, err := parseMetadata("x", []byte("Name: Foo_Bar\r\nVersion: 2.0\r\nLicense: BSD\r\nLicense-Expression: Apache-2.0 OR MIT\r\n\r\nbody"))
	if err != nil || len(pkgs) != 1 || pkgs[0].PURL != "pkg:pypi/foo-bar@2.0" || strings.Join(pkgs[0].Licenses, "") != "Apache-2.0 OR MIT" {
		t.Fatalf("got %+v, %v", pkgs, err)
	}
}

func TestLockErrors(t *testing.T) {
	if _, err := parsePoetryLock("x", []byte("[[package]\nname = ")); err == nil || !strings.Contains(err.Error(), "toml") {
		t.Errorf("bad TOML: err = %v, want a TOML error", err)
	}
	var syn *json.SyntaxError
	if _, err := parsePipfileLock("x", []byte(`{"default": [`)); !errors.As(err, &syn) && !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("bad JSON: err = %v, want a JSON syntax error", err)
	}
	pkgs, err := parsePipfileLock("x", []byte(`{"default": {"a": {"version": "==1.0"}, "b": {"git": "https://x", "ref": "abc"}},
		"develop": {"a": {"version": "==1.0"}, "c": {"version": "==2.0"}}}`))
	if err != nil || len(pkgs) != 2 || pkgs[0].Dev || !pkgs[1].Dev {
		t.Errorf("Pipfile.lock sections: %+v %v", pkgs, err)
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
	if need := a.Required("poetry.lock", info); need != analyzer.Metadata {
		t.Fatalf("Required of an oversized lock = %v, want Metadata", need)
	}
	if _, err := a.Analyze(context.Background(), analyzer.Input{Path: "poetry.lock", Info: info}); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("Analyze of an oversized lock: %v, want ErrTooLarge", err)
	}
	big := io.NewSectionReader(bytes.NewReader(nil), 0, maxLockSize+1)
	if _, err := a.Analyze(context.Background(), analyzer.Input{Path: "poetry.lock", Content: big}); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("Analyze of oversized content: %v, want ErrTooLarge", err)
	}
}
