package hostile

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"mamori/internal/model"
)

// dpkgStatus is a one-package dpkg status database (deb-control(5) stanzas).
func dpkgStatus(names ...string) string {
	var b strings.Builder
	for _, n := range names {
		b.WriteString("Package: " + n + "\nStatus: install ok installed\nPriority: optional\nSection: misc\nMaintainer: Hostile <h@example.org>\nArchitecture: amd64\nVersion: 1.0-1\nDescription: hostile suite package\n\n")
	}
	return b.String()
}

// assertInTree asserts every package location and finding path of res is a
// clean, relative path inside the image tree.
func assertInTree(t *testing.T, res *model.Result) {
	t.Helper()
	bad := func(p string) bool {
		return p != "" && (strings.HasPrefix(p, "/") || p != path.Clean(p) || p == ".." || strings.HasPrefix(p, "../"))
	}
	for _, p := range res.Inventory.Packages {
		for _, l := range p.Locations {
			if bad(l.Path) {
				t.Errorf("package %s located outside the tree: %q", p.Name, l.Path)
			}
		}
	}
	for _, f := range res.Findings {
		if bad(f.Location.Path) {
			t.Errorf("finding %s located outside the tree: %q", f.ID, f.Location.Path)
		}
	}
}

// packagesOfType lists the names of res's packages of purl type typ.
func packagesOfType(res *model.Result, typ string) []string {
	var out []string
	for _, p := range res.Inventory.Packages {
		if string(p.Type) == typ {
			out = append(out, p.Name)
		}
	}
	return out
}

// Case 1: entries named with ".." and absolute paths.
func TestTraversalEntryNames(t *testing.T) {
	e := newEnv(t)
	c1, c2 := e.canary(t), e.canary(t)
	entries := append(goodEntries(),
		reg("../../etc/passwd", "pwned::0:0::/:/bin/sh\n"),
		reg("/etc/shadow", "root:pwned:19000:0:99999:7:::\n"),
		reg("../../../../../../../../.."+c1, "escaped relative\n"),
		reg(c2, "escaped absolute\n"),
		reg("a/../../b", "dotdot inside\n"),
		reg("./../x", "dotdot after dot\n"),
		reg("../var/lib/dpkg/status", dpkgStatus("escaped-pkg")),
		reg("/var/lib/dpkg/status", dpkgStatus("abs-pkg")),
		dirEntry("../../"),
		symlink("../link-out", "/etc"),
	)
	l := writeLayer(t, t.TempDir(), gzipped, entries...)
	archive := filepath.Join(t.TempDir(), "traversal.tar")
	writeArchive(t, archive, archiveSpec{layers: []layer{l}})

	o := scanImage(t, e, archive, fastDeadline, allScanners...)
	if o.err != nil {
		t.Fatalf("scan failed; the hostile entries should be skipped with warnings: %v", o.err)
	}
	mustWarn(t, o.res, "../../etc/passwd", `".."`)
	mustWarn(t, o.res, "../var/lib/dpkg/status")
	// Absolute names are taken relative to the root, as runtimes apply them.
	mustPackage(t, o.res, "abs-pkg", "hostile-good", "goodpy")
	if hasPackage(o.res, "escaped-pkg") {
		t.Error("a package database named ../var/lib/dpkg/status was catalogued")
	}
	assertInTree(t, o.res)
	mustMatchAdvisory(t, o.res)

	// The binary, from a working directory the relative names would climb out of.
	r := runMamori(t, e, fastDeadline, "image", "--input", archive, "--scanners", "vuln,secret,malware,misconfig", "--format", "json")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, tail(r.stderr))
	}
	res := decodeResult(t, r.stdout)
	mustPackage(t, res, "abs-pkg", "hostile-good")
	assertInTree(t, res)

	// The SBOM shortcut over the same archive.
	r = runMamori(t, e, fastDeadline, "sbom", "--input", archive, "--format", "cyclonedx")
	if r.code != 0 || !json.Valid(r.stdout) {
		t.Fatalf("sbom: exit %d, valid JSON %v: %s", r.code, json.Valid(r.stdout), tail(r.stderr))
	}
	if !bytes.Contains(r.stdout, []byte("abs-pkg")) {
		t.Error("the SBOM lacks abs-pkg")
	}
}

// Case 2: a symlink to /etc (and ../../..) in layer 1, files written through
// it in layer 2. Nothing is read or written on the host; what is reported
// sits in the image tree.
func TestSymlinkThenWriteThrough(t *testing.T) {
	e := newEnv(t)
	c := e.canary(t)
	dir := t.TempDir()
	l1 := writeLayer(t, dir, gzipped, append(goodEntries(),
		reg("var/lib/dpkg/status", dpkgStatus("in-image-pkg")),
		symlink("etc-link", "/etc"),
		symlink("up", "../../.."),
		symlink("dpkg-link", "/var/lib/dpkg"),
		symlink("tmp-link", "/tmp"),
	)...)
	l2 := writeLayer(t, dir, gzipped,
		reg("etc-link/passwd", "hostile::0:0::/:/bin/sh\n"),
		reg("up/etc/passwd", "hostile2::0:0::/:/bin/sh\n"),
		reg("up/tmp/"+path.Base(c), "through ../../..\n"),
		reg("tmp-link/"+path.Base(c), "through /tmp\n"),
		reg("dpkg-link/status", dpkgStatus("through-link-pkg")),
	)
	archive := filepath.Join(t.TempDir(), "symlink.tar")
	writeArchive(t, archive, archiveSpec{layers: []layer{l1, l2}})

	o := scanImage(t, e, archive, fastDeadline, allScanners...)
	if o.err != nil {
		t.Fatalf("scan: %v", o.err)
	}
	assertInTree(t, o.res)
	// The image's own dpkg database is the only one: the host's
	// /var/lib/dpkg/status (behind dpkg-link) is never read.
	if got := packagesOfType(o.res, "deb"); len(got) != 1 || got[0] != "in-image-pkg" {
		t.Errorf("deb packages = %v, want only in-image-pkg (host packages or the write through dpkg-link leaked in)", got)
	}
	mustPackage(t, o.res, "hostile-good", "goodpy")
	mustMatchAdvisory(t, o.res)
}

// Case 2, file trees: `mamori rootfs` over a directory whose symlinks point
// at the host's package database and os-release must not read them.
func TestRootFSSymlinksToHost(t *testing.T) {
	if _, err := os.Stat("/var/lib/dpkg/status"); err != nil {
		t.Skip("the host has no dpkg database to leak")
	}
	e := newEnv(t)
	root := t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(root, "var/lib"), 0o755))
	must(os.MkdirAll(filepath.Join(root, "etc"), 0o755))
	must(os.MkdirAll(filepath.Join(root, "usr/lib/node_modules/hostile-good"), 0o755))
	must(os.Symlink("/var/lib/dpkg", filepath.Join(root, "var/lib/dpkg")))
	must(os.Symlink("/etc/os-release", filepath.Join(root, "etc/os-release")))
	must(os.Symlink("../../../../../../../../etc", filepath.Join(root, "up")))
	must(os.WriteFile(filepath.Join(root, "usr/lib/node_modules/hostile-good/package.json"), []byte(`{"name":"hostile-good","version":"1.0.0"}`), 0o644))

	o := scanDir(t, e, root, model.TargetRootFS, allScanners...)
	if o.err != nil {
		t.Fatalf("scan: %v", o.err)
	}
	if got := packagesOfType(o.res, "deb"); len(got) != 0 {
		t.Errorf("rootfs scan read the host's dpkg database through a symlink: %d deb packages (%v…)", len(got), got[:min(3, len(got))])
	}
	if o.res.Inventory.OS != nil && o.res.Inventory.OS.ID != "" {
		t.Errorf("rootfs scan read the host's os-release through a symlink: %+v", o.res.Inventory.OS)
	}
	mustPackage(t, o.res, "hostile-good")
}

// Case 3: hard links out of the tree, to host package databases, and to
// missing targets.
func TestHardlinksOutOfTree(t *testing.T) {
	e := newEnv(t)
	c := e.canary(t)
	l := writeLayer(t, t.TempDir(), gzipped, append(goodEntries(),
		hardlink("hl-shadow", "/etc/shadow"),
		hardlink("hl-up", "../../../../../etc/passwd"),
		hardlink("hl-missing", "no/such/file"),
		hardlink("hl-self", "hl-self"),
		hardlink("var/lib/dpkg/status", "/var/lib/dpkg/status"),
		hardlink("lib/apk/db/installed", "../../../../lib/apk/db/installed"),
		hardlink(c, "/etc/passwd"),
		hardlink("up/"+path.Base(c), "../../../../../../.."+c),
	)...)
	archive := filepath.Join(t.TempDir(), "hardlinks.tar")
	writeArchive(t, archive, archiveSpec{layers: []layer{l}})

	o := scanImage(t, e, archive, fastDeadline, allScanners...)
	if o.err != nil {
		t.Fatalf("scan: %v", o.err)
	}
	assertInTree(t, o.res)
	if got := packagesOfType(o.res, "deb"); len(got) != 0 {
		t.Errorf("a hard link to /var/lib/dpkg/status read the host's database: %v", got)
	}
	if got := packagesOfType(o.res, "apk"); len(got) != 0 {
		t.Errorf("a hard link out of the tree read a host apk database: %v", got)
	}
	mustPackage(t, o.res, "hostile-good", "goodpy")
}

// Case 3, in-tree: a hard link is a second name for earlier content. When
// the package database is the link (content first stored under another
// name, as deduplicating image builders do), the merged image has the
// database at its real path and dpkg reads it; the scan must too.
func TestHardlinkedPackageDatabase(t *testing.T) {
	e := newEnv(t)
	l := writeLayer(t, t.TempDir(), gzipped, append(goodEntries(),
		reg("usr/share/dedup/0001", dpkgStatus("linked-pkg")),
		hardlink("var/lib/dpkg/status", "usr/share/dedup/0001"),
	)...)
	archive := filepath.Join(t.TempDir(), "hardlinked-db.tar")
	writeArchive(t, archive, archiveSpec{layers: []layer{l}})
	o := scanImage(t, e, archive, fastDeadline, allScanners...)
	if o.err != nil {
		t.Fatalf("scan: %v", o.err)
	}
	mustPackage(t, o.res, "hostile-good")
	if !hasPackage(o.res, "linked-pkg") {
		t.Errorf("var/lib/dpkg/status is a hard link to an earlier entry of the layer; its package linked-pkg is missing (warnings: %v)", o.res.Warnings)
	}
}

// Case 3, amplification: one 16 MiB file and 10,000 hard links to it at
// paths every analyzer wants. The second pass for hard links must stay
// bounded: analysing the same bytes 10,000 times (160 GiB of work) is a
// denial of service, not a scan.
func TestHardlinkAmplification(t *testing.T) {
	const (
		size  = 16 << 20
		links = 10_000
	)
	e := newEnv(t)
	head := `{"name":"amplified","version":"1.0.0","description":"`
	tailStr := `"}`
	body := io.MultiReader(strings.NewReader(head), repeat("A", size-int64(len(head)+len(tailStr))), strings.NewReader(tailStr))
	entries := append(goodEntries(), regStream("usr/lib/node_modules/amplified/package.json", size, body))
	for i := range links {
		entries = append(entries, hardlink(fmt.Sprintf("usr/lib/node_modules/l%05d/package.json", i), "usr/lib/node_modules/amplified/package.json"))
	}
	l := writeLayer(t, t.TempDir(), gzipped, entries...)
	archive := filepath.Join(t.TempDir(), "amplify.tar")
	writeArchive(t, archive, archiveSpec{layers: []layer{l}})

	o := scanImage(t, e, archive, fastDeadline, allScanners...)
	if o.err != nil {
		t.Fatalf("scan: %v", o.err)
	}
	t.Logf("10,000 hard links to a 16 MiB file: scanned in %s, %d packages, %d warnings", o.wall.Round(time.Millisecond), len(o.res.Inventory.Packages), len(o.res.Warnings))
	mustPackage(t, o.res, "hostile-good", "amplified")
}
