package vex

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"mamori/internal/model"
)

func vuln(id string, aliases []string, name, src, purl string) model.Vulnerability {
	return model.Vulnerability{ID: id, Aliases: aliases, Package: model.PackageRef{Name: name, SourceName: src, PURL: purl}}
}

func ids(vs []model.Vulnerability) string {
	var out []string
	for _, v := range vs {
		out = append(out, v.ID+"@"+v.Package.Name)
	}
	return strings.Join(out, ",")
}

var (
	zlib  = vuln("DEBIAN-CVE-2023-45853", []string{"CVE-2023-45853"}, "zlib1g", "zlib", "pkg:deb/debian/zlib1g@1:1.2.13.dfsg-1?arch=amd64&distro=debian-12")
	tar   = vuln("DEBIAN-CVE-2005-2541", []string{"CVE-2005-2541"}, "tar", "", "pkg:deb/debian/tar@1.34+dfsg-1.2+deb12u1?arch=amd64&distro=debian-12")
	lodsh = vuln("GHSA-29mw-wpgm-hmr9", []string{"CVE-2020-28500"}, "lodash", "", "pkg:npm/lodash@4.17.20")
	git   = vuln("CGA-xxxx", []string{"CVE-2023-12345"}, "git", "", "pkg:apk/wolfi/git@2.39.0-r1?arch=x86_64")
	git2  = vuln("CGA-xxxx", []string{"CVE-2023-12345"}, "git", "", "pkg:apk/wolfi/git@2.40.0-r0?arch=x86_64")
	log4j = vuln("GHSA-jfh8-c2jp-5v3q", []string{"CVE-2021-44228"}, "spring-boot", "", "pkg:maven/org.springframework.boot/spring-boot@2.6.0-M3")
	all   = []model.Vulnerability{zlib, tar, lodsh, git, git2, log4j}
)

func TestIgnoreFile(t *testing.T) {
	rules, err := ParseIgnore([]byte(`
ignore:
  - id: CVE-2023-45853
    package: zlib
    reason: minizip is not shipped in this image
    expires: 2026-06-30
  - id: GHSA-29mw-wpgm-hmr9
    purl: pkg:npm/lodash
    reason: ReDoS needs untrusted input, we have none
  - id: cve-2005-2541
    purl: pkg:deb/debian/tar@9.9
    reason: wrong version, must not match
  - id: CVE-2021-44228
    reason: expired
    expires: 2025-01-01T00:00:00Z
`))
	if err != nil {
		t.Fatal(err)
	}
	r := &Rules{Ignores: rules, Now: time.Date(2026, 6, 30, 23, 0, 0, 0, time.UTC)}
	kept, sup := Filter(all, r)
	if got := ids(kept); got != "DEBIAN-CVE-2005-2541@tar,CGA-xxxx@git,CGA-xxxx@git,GHSA-jfh8-c2jp-5v3q@spring-boot" {
		t.Errorf("kept %s", got)
	}
	if len(sup) != 2 || sup[0].By != "ignore" || sup[0].Reason != "minizip is not shipped in this image" {
		t.Errorf("suppressed %+v", sup)
	}
	if w := r.Warnings(); len(w) != 1 || !strings.Contains(w[0], "CVE-2021-44228") {
		t.Errorf("warnings %v", w)
	}
	// The day after its expiry date the zlib entry stops ignoring.
	r.Now = time.Date(2026, 7, 1, 0, 0, 0, 0, time.UTC)
	kept, _ = Filter(all, r)
	if !strings.Contains(ids(kept), "DEBIAN-CVE-2023-45853") || len(r.Warnings()) != 2 {
		t.Errorf("expired entry still ignoring: %s %v", ids(kept), r.Warnings())
	}
}

func TestIgnoreFileErrors(t *testing.T) {
	for name, doc := range map[string]string{
		"unknown key": "ignore:\n  - id: X\n    reason: r\n    pakage: typo\n",
		"no id":       "ignore:\n  - reason: r\n",
		"no reason":   "ignore:\n  - id: X\n",
		"bad date":    "ignore:\n  - id: X\n    reason: r\n    expires: next week\n",
		"not yaml":    "ignore: [\n",
		"wrong shape": "ignore: 3\n",
	} {
		if _, err := ParseIgnore([]byte(doc)); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: want ErrInvalid, got %v", name, err)
		}
	}
	if r, err := ParseIgnore(nil); err != nil || len(r) != 0 {
		t.Errorf("empty file: %v %v", r, err)
	}
}

func loadVEX(t *testing.T, name string) []Statement {
	t.Helper()
	st, err := LoadOpenVEX(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func TestOpenVEXSpecExamples(t *testing.T) {
	// Minimal example: git 2.39.0-r1 fixed for two arches; 2.40.0 not named.
	kept, sup := Filter(all, &Rules{Statements: loadVEX(t, "minimal.openvex.json")})
	if len(sup) != 1 || sup[0].Vulnerability.Package.PURL != git.Package.PURL || sup[0].Reason != "fixed" ||
		sup[0].Rule != "https://openvex.dev/docs/example/vex-9fb3463de1b57" || len(kept) != 5 {
		t.Errorf("minimal: kept %s suppressed %+v", ids(kept), sup)
	}
	// Inheritance example: under_investigation (statement timestamp) then
	// fixed (document timestamp, later) for armv7 only.
	armv7 := git
	armv7.Package.PURL = "pkg:apk/wolfi/git@2.39.0-r1?arch=armv7"
	_, sup = Filter([]model.Vulnerability{armv7, git}, &Rules{Statements: loadVEX(t, "inheritance.openvex.json")})
	if len(sup) != 1 || sup[0].Vulnerability.Package.PURL != armv7.Package.PURL {
		t.Errorf("inheritance: %+v", sup)
	}
	// Spring example: not_affected, named by CVE with a GHSA alias.
	_, sup = Filter(all, &Rules{Statements: loadVEX(t, "spring.openvex.json")})
	if len(sup) != 1 || sup[0].Vulnerability.ID != "GHSA-jfh8-c2jp-5v3q" || sup[0].Reason != "not_affected: vulnerable_code_not_in_execute_path" {
		t.Errorf("spring: %+v", sup)
	}
}

func TestOpenVEXImageSubcomponents(t *testing.T) {
	st := loadVEX(t, "image-subcomponents.openvex.json")
	image := []string{"pkg:oci/app@sha256:abc123?repository_url=registry.example/app"}
	kept, sup := Filter(all, &Rules{Statements: st, Products: image})
	// zlib via subcomponent; lodash via a whole-image statement; tar stays
	// (status affected).
	if got := ids(kept); got != "DEBIAN-CVE-2005-2541@tar,CGA-xxxx@git,CGA-xxxx@git,GHSA-jfh8-c2jp-5v3q@spring-boot" {
		t.Errorf("kept %s (suppressed %+v)", got, sup)
	}
	// Another image: the statements are not about it.
	kept, _ = Filter(all, &Rules{Statements: st, Products: []string{"pkg:oci/other@sha256:def"}})
	if len(kept) != len(all) {
		t.Errorf("statements about another image applied: kept %s", ids(kept))
	}
}

func TestOpenVEXv001AndErrors(t *testing.T) {
	st, err := ParseOpenVEX([]byte(`{"@context":"https://openvex.dev/ns","@id":"x","timestamp":"2023-01-01T00:00:00Z",
		"statements":[{"vulnerability":"CVE-2020-28500","products":["pkg:npm/lodash@4.17.20"],"status":"not_affected","justification":"component_not_present"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if _, sup := Filter(all, &Rules{Statements: st}); len(sup) != 1 || sup[0].Vulnerability.ID != lodsh.ID {
		t.Errorf("v0.0.1 form: %+v", sup)
	}
	for name, doc := range map[string]string{
		"bad status":  `{"statements":[{"vulnerability":{"name":"X"},"status":"maybe"}]}`,
		"no name":     `{"statements":[{"vulnerability":{},"status":"fixed"}]}`,
		"not json":    `{"statements":[`,
		"bad product": `{"statements":[{"vulnerability":"X","status":"fixed","products":[3]}]}`,
	} {
		if _, err := ParseOpenVEX([]byte(doc)); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: want ErrInvalid, got %v", name, err)
		}
	}
}

func TestLoadErrors(t *testing.T) {
	if _, err := LoadIgnoreFile(filepath.Join(t.TempDir(), "missing.yaml")); err == nil {
		t.Error("missing file")
	}
	big := filepath.Join(t.TempDir(), "big.json")
	os.WriteFile(big, make([]byte, MaxFileBytes+1), 0o644)
	if _, err := LoadOpenVEX(big); !errors.Is(err, ErrInvalid) {
		t.Errorf("oversized: %v", err)
	}
}

func TestPURLMatches(t *testing.T) {
	for _, c := range []struct {
		p, t string
		want bool
	}{
		{"pkg:npm/lodash", "pkg:npm/lodash@4.17.20", true},
		{"pkg:npm/lodash@4.17.21", "pkg:npm/lodash@4.17.20", false},
		{"pkg:deb/debian/zlib1g?arch=amd64", "pkg:deb/debian/zlib1g@1:1.2.13.dfsg-1?arch=amd64&distro=debian-12", true},
		{"pkg:deb/debian/zlib1g?arch=arm64", "pkg:deb/debian/zlib1g@1:1.2.13.dfsg-1?arch=amd64", false},
		{"pkg:deb/ubuntu/zlib1g", "pkg:deb/debian/zlib1g@1", false},
		{"pkg:oci/app@sha256%3Aabc123", "pkg:oci/app@sha256:abc123?repository_url=x", true},
		{"not a purl", "pkg:npm/x@1", false},
		{"", "pkg:npm/x@1", false},
	} {
		if got := purlMatches(c.p, c.t); got != c.want {
			t.Errorf("purlMatches(%q, %q) = %v", c.p, c.t, got)
		}
	}
}
