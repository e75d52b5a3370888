package scan

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"mamori/internal/model"
)

func md5hex(s string) string {
	h := md5.Sum([]byte(s))
	return hex.EncodeToString(h[:])
}

// awsKey is an AWS access key ID of the real format, built at run time.
func awsKey() string { return "AK" + "IA" + "R7W2QX5N3MZK4VTB" }

// writeTree writes files under a fresh directory.
func writeTree(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for p, c := range files {
		if err := os.MkdirAll(filepath.Join(dir, filepath.Dir(p)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, p), []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// TestPackagedFiles (issue 14): a secret in a file that dpkg installed
// unmodified is the distribution's text (left out, or shown at the lowest
// severity naming the package); one in a packaged file modified after
// install is raised to at least HIGH; one in no package's file is as
// before; a language package installed by a Debian package names it.
func TestPackagedFiles(t *testing.T) {
	doc := "# Example: Aws.config(access_key_id: '" + awsKey() + "')\n"
	planted := "password = 'x'\nkey = '" + awsKey() + "'\n"
	md5sums := fmt.Sprintf("%s  usr/lib/ruby/3.1.0/doc.rb\n%s  usr/lib/ruby/3.1.0/config.rb\n", md5hex(doc), md5hex("original content\n"))
	pyMD5sums := fmt.Sprintf("%s  usr/lib/python3/dist-packages/yaml-6.0.dist-info/METADATA\n",
		md5hex("Metadata-Version: 2.1\nName: PyYAML\nVersion: 6.0\n"))
	dir := writeTree(t, map[string]string{
		"etc/os-release":                                            "ID=debian\nVERSION_ID=\"12\"\n",
		"var/lib/dpkg/status":                                       "Package: libruby3.1\nStatus: install ok installed\nVersion: 3.1.2-7\nArchitecture: amd64\n\nPackage: python3-yaml\nStatus: install ok installed\nVersion: 6.0-3\nArchitecture: amd64\n",
		"var/lib/dpkg/info/libruby3.1:amd64.md5sums":                md5sums,
		"var/lib/dpkg/info/python3-yaml.md5sums":                    pyMD5sums,
		"usr/lib/ruby/3.1.0/doc.rb":                                 doc,     // unmodified
		"usr/lib/ruby/3.1.0/config.rb":                              planted, // modified after install
		"app/settings.py":                                           planted, // nobody's
		"usr/lib/python3/dist-packages/yaml-6.0.dist-info/METADATA": "Metadata-Version: 2.1\nName: PyYAML\nVersion: 6.0\n",
	})
	scanWith := func(show bool) *model.Result {
		s, cleanup, _, err := Build(context.Background(), BuildOptions{Kind: model.TargetRootFS, Scanners: []string{ScannerSecret},
			Quiet: true, ShowPackagedSecrets: show})
		if err != nil {
			t.Fatal(err)
		}
		defer cleanup()
		res, err := s.ScanDir(context.Background(), dir, model.TargetRootFS)
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	secrets := func(res *model.Result) map[string]model.Finding {
		m := map[string]model.Finding{}
		for _, f := range res.Findings {
			if f.Kind == model.KindSecret && strings.HasPrefix(f.ID, "aws") {
				m[f.Location.Path] = f
			}
		}
		return m
	}

	res := scanWith(false)
	got := secrets(res)
	if _, ok := got["usr/lib/ruby/3.1.0/doc.rb"]; ok {
		t.Error("secret in an unmodified packaged file reported by default")
	}
	mod, ok := got["usr/lib/ruby/3.1.0/config.rb"]
	if !ok || mod.Severity < model.SeverityHigh || mod.Owner == nil || !mod.Owner.Modified ||
		mod.Owner.Package != "libruby3.1" || mod.Owner.Version != "3.1.2-7" || mod.Owner.Type != "deb" {
		t.Errorf("modified packaged file: %+v (owner %+v)", mod, mod.Owner)
	}
	plain, ok := got["app/settings.py"]
	if !ok || plain.Owner != nil || plain.Severity > mod.Severity {
		t.Errorf("unowned file: %+v, modified packaged file at %s", plain, mod.Severity)
	}
	var yaml *model.Package
	for i, p := range res.Inventory.Packages {
		if p.Name == "PyYAML" {
			yaml = &res.Inventory.Packages[i]
		}
	}
	if yaml == nil || yaml.Owner == nil || *yaml.Owner != (model.FileOwner{Package: "python3-yaml", Version: "6.0-3", Type: "deb"}) {
		t.Errorf("PyYAML: %+v", yaml)
	}

	shown := secrets(scanWith(true))["usr/lib/ruby/3.1.0/doc.rb"]
	if shown.Owner == nil || shown.Owner.Modified || shown.Severity != model.SeverityNegligible ||
		!strings.Contains(shown.Description, "libruby3.1 3.1.2-7") {
		t.Errorf("--show-packaged-secrets: %+v (owner %+v)", shown, shown.Owner)
	}
}

func TestRaise(t *testing.T) {
	for in, want := range map[model.Severity]model.Severity{
		model.SeverityUnknown: model.SeverityHigh, model.SeverityLow: model.SeverityHigh, model.SeverityMedium: model.SeverityHigh,
		model.SeverityHigh: model.SeverityCritical, model.SeverityCritical: model.SeverityCritical,
	} {
		if got := raise(in); got != want {
			t.Errorf("raise(%s) = %s, want %s", in, got, want)
		}
	}
}
