package demo

import (
	"context"
	"path/filepath"
	"testing"

	"mamori/internal/image"
	"mamori/internal/model"
	"mamori/internal/scan"
	"mamori/internal/scan/vulnmatch"
)

// TestDemoScan scans the demo image with the bundled database through the
// real scan path and checks that every kind of result is there.
func TestDemoScan(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	if _, err := ImportDB(ctx, filepath.Join(dir, "db")); err != nil {
		t.Fatal(err)
	}
	tarPath := filepath.Join(dir, "demo.tar")
	if err := WriteImage(tarPath); err != nil {
		t.Fatal(err)
	}
	s, cleanup, _, err := scan.Build(ctx, scan.BuildOptions{Kind: model.TargetImage, Quiet: true,
		Matcher:  vulnmatch.Opener(vulnmatch.Options{Dir: filepath.Join(dir, "db"), MaxAge: -1}),
		Scanners: []string{"vuln", "secret", "malware", "misconfig"}, Clamd: "unix://" + filepath.Join(dir, "no-clamd.sock")})
	if err != nil {
		t.Fatal(err)
	}
	defer cleanup()
	img, err := image.OpenFile(ctx, tarPath)
	if err != nil {
		t.Fatal(err)
	}
	defer img.Close()
	res, err := s.ScanImage(ctx, img.Image(), scan.ImageTarget{Name: img.Name()})
	if err != nil {
		t.Fatal(err)
	}
	types := map[string]int{}
	for _, p := range res.Inventory.Packages {
		types[p.Type]++
	}
	if types["deb"] != len(debPkgs) || types["npm"] != len(npmPkgs) || types["pypi"] != len(pyPkgs) {
		t.Errorf("packages per type = %v", types)
	}
	if len(res.Vulnerabilities) < 20 {
		t.Errorf("only %d vulnerabilities", len(res.Vulnerabilities))
	}
	kinds := map[string]int{}
	for _, f := range res.Findings {
		kinds[string(f.Kind)]++
	}
	for _, k := range []string{"secret", "malware", "misconfig"} {
		if kinds[k] == 0 {
			t.Errorf("no %s findings: %v", k, kinds)
		}
	}
}
