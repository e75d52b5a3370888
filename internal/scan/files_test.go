package scan

import (
	"context"
	"os"
	"slices"
	"strings"
	"testing"

	"mamori/internal/inuse"
	"mamori/internal/model"
	"mamori/internal/testimage/debfs"
)

// TestPackageFiles (issue 15): an OS package gets the executables and
// shared libraries its md5sums list, and a load event of one of them maps
// back to it. libssl3 and openssl as this machine's dpkg installed them.
func TestPackageFiles(t *testing.T) {
	var pkgs []string
	for _, re := range []string{`^libssl3(t64)?$`, `^openssl$`} {
		p := installedLike(t, re)
		if p == "" {
			if os.Getenv("MAMORI_TEST_DISTRO") == "1" {
				t.Fatalf("no installed package matches %s", re)
			}
			t.Skipf("no installed package matches %s", re)
		}
		pkgs = append(pkgs, p)
	}
	root := t.TempDir()
	if _, err := debfs.Stage(root, pkgs); err != nil {
		t.Fatal(err)
	}
	s, cleanup, _, err := Build(context.Background(), BuildOptions{Kind: model.TargetRootFS, Quiet: true})
	if err != nil {
		t.Fatal(err)
	}
	defer cleanup()
	res, err := s.ScanDir(context.Background(), root, model.TargetRootFS)
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]model.Package{}
	for _, p := range res.Inventory.Packages {
		byName[p.Name] = p
	}
	ssl, cli := byName[pkgs[0]], byName["openssl"]
	if !slices.ContainsFunc(ssl.Files, func(f string) bool { return strings.HasSuffix(f, "/libssl.so.3") }) ||
		!slices.Contains(cli.Files, "usr/bin/openssl") {
		t.Fatalf("files: %s %v, openssl %v", ssl.Name, ssl.Files, cli.Files)
	}
	for _, f := range append(ssl.Files, cli.Files...) {
		if !inuse.Loadable(f) || strings.Contains(f, "/share/") {
			t.Errorf("not loadable: %s", f)
		}
	}
	if !slices.IsSorted(ssl.Files) {
		t.Errorf("not sorted: %v", ssl.Files)
	}
	lib := ""
	for _, f := range ssl.Files {
		if strings.HasSuffix(f, "/libssl.so.3") {
			lib = f
		}
	}
	ix := inuse.NewIndex(&res.Inventory)
	owners := ix.Owners("/" + lib)
	if len(owners) != 1 || res.Inventory.Packages[owners[0]].Name != ssl.Name {
		t.Errorf("owners of /%s: %v", lib, owners)
	}
}
