package php

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
		v2 = " var/www/html/vendor/composer/installed.json " + CatalogerInstalled
		v1 = " srv/legacy/vendor/composer/installed.json " + CatalogerInstalled
	)
	diffLines(t, summary(got), []string{
		"monolog/monolog@3.6.0" + v2, "psr/log@3.0.0" + v2, "symfony/polyfill-mbstring@1.29.0" + v2,
		"phpunit/phpunit@10.5.20 dev" + v2,
		"guzzlehttp/guzzle@6.3.3" + v1, "Legacy/OldStyle@2.1.0" + v1,
	})
	for _, p := range got {
		if p.Type != model.TypeComposer || p.Ecosystem != model.EcosystemPackagist {
			t.Errorf("%s: type %q ecosystem %q", p.Name, p.Type, p.Ecosystem)
		}
		switch p.Name {
		case "symfony/polyfill-mbstring":
			if p.PURL != "pkg:composer/symfony/polyfill-mbstring@1.29.0" || strings.Join(p.Licenses, "|") != "MIT" {
				t.Errorf("%s: purl %q licenses %q", p.Name, p.PURL, p.Licenses)
			}
		case "Legacy/OldStyle":
			if strings.Join(p.Licenses, "|") != "GPL-2.0+" {
				t.Errorf("%s: licenses %q", p.Name, p.Licenses)
			}
		}
	}
}

func TestComposerLock(t *testing.T) {
	const c = " src/app/composer.lock " + CatalogerComposerLock
	diffLines(t, summary(catalogTree(t, "testdata", NewLock())), []string{
		"acme/internal-tools@dev-main" + c, "monolog/monolog@3.6.0" + c, "psr/log@3.0.0" + c,
		"symfony/http-kernel@6.4.8" + c, "phpunit/phpunit@10.5.20 dev" + c,
	})
}

func TestNormalizeVersion(t *testing.T) {
	for in, want := range map[string]string{
		"v6.4.8": "6.4.8", "V1.0": "1.0", "6.4.8": "6.4.8", "dev-main": "dev-main",
		"v": "v", "vendor-branch": "vendor-branch", " v2.0.0 ": "2.0.0", "2.x-dev": "2.x-dev",
	} {
		if got := NormalizeVersion(in); got != want {
			t.Errorf("NormalizeVersion(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestRequiredPaths(t *testing.T) {
	inst, lock := NewInstalled()[0], NewLock()[0]
	for path, want := range map[string]bool{
		"var/www/html/vendor/composer/installed.json": true,
		"vendor/composer/installed.json":              true,
		"var/www/html/vendor/composer/installed.php":  false,
		"var/www/html/installed.json":                 false,
	} {
		if got := inst.Required(path, nil) == analyzer.Content; got != want {
			t.Errorf("installed Required(%q) = %v, want %v", path, got, want)
		}
	}
	for path, want := range map[string]bool{
		"composer.lock":                         true,
		"srv/app/composer.lock":                 true,
		"srv/app/vendor/acme/lib/composer.lock": false,
		"vendor/acme/lib/composer.lock":         false,
		"srv/app/composer.json":                 false,
	} {
		if got := lock.Required(path, nil) == analyzer.Content; got != want {
			t.Errorf("lock Required(%q) = %v, want %v", path, got, want)
		}
	}
}

func TestMalformed(t *testing.T) {
	for _, tc := range []struct {
		parse parseFunc
		data  string
	}{
		{parseInstalledJSON, ``},
		{parseInstalledJSON, `"packages"`},
		{parseInstalledJSON, `[{"name": "a/b", "version": 1}]`},
		{parseInstalledJSON, `{"packages": {}}`},
		{parseComposerLock, `{"packages": [`},
		{parseComposerLock, `[]`},
	} {
		if _, err := tc.parse("x", []byte(tc.data)); err == nil {
			t.Errorf("parse(%q): no error", tc.data)
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
	info := sizeInfo(maxJSONSize + 1)
	if need := a.Required("composer.lock", info); need != analyzer.Metadata {
		t.Fatalf("Required of an oversized lock = %v, want Metadata", need)
	}
	if _, err := a.Analyze(context.Background(), analyzer.Input{Path: "composer.lock", Info: info}); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("Analyze of an oversized lock: %v, want ErrTooLarge", err)
	}
	big := io.NewSectionReader(bytes.NewReader(nil), 0, maxJSONSize+1)
	if _, err := a.Analyze(context.Background(), analyzer.Input{Path: "composer.lock", Content: big}); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("Analyze of oversized content: %v, want ErrTooLarge", err)
	}
}
