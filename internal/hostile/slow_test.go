package hostile

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// reportRun logs a binary run's numbers and fails when its peak RSS is
// over maxRSSBytes.
func reportRun(t *testing.T, what string, r procRun) {
	t.Helper()
	t.Logf("%s: exit %d, wall %s, peak RSS %d MiB", what, r.code, r.wall.Round(10*time.Millisecond), r.maxRSS>>20)
	if r.maxRSS > maxRSSBytes {
		t.Errorf("%s: peak RSS %d MiB is over the %d MiB bound", what, r.maxRSS>>20, maxRSSBytes>>20)
	}
}

// Case 4: a gzip bomb layer, 4 GiB of zeros in 4 MiB of gzip. The scan
// streams it in bounded memory and time, and still checks the diff ID: the
// same blob under a wrong diff ID fails.
func TestGzipBombLayer(t *testing.T) {
	slow(t)
	const (
		jarSize    = 256 << 20 // at the malware cap: spilled, analysed
		statusSize = 4<<30 - jarSize
	)
	e := newEnv(t)
	dir := t.TempDir()
	start := time.Now()
	bomb := writeLayer(t, dir, gzipped, append(goodEntries(),
		regStream("var/lib/dpkg/status", statusSize, zeros{}),
		regStream("opt/app/app.jar", jarSize, zeros{}),
	)...)
	st, err := os.Stat(bomb.path)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("gzip bomb layer: %d MiB of gzip for 4 GiB of tar, generated in %s", st.Size()>>20, time.Since(start).Round(time.Second))
	archive := filepath.Join(dir, "bomb.tar")
	writeArchive(t, archive, archiveSpec{layers: []layer{bomb}})

	r := runMamori(t, e, slowDeadline, "image", "--input", archive, "--scanners", "vuln,secret,malware,misconfig", "--format", "json")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, tail(r.stderr))
	}
	reportRun(t, "gzip bomb (4 GiB), all scanners", r)
	res := decodeResult(t, r.stdout)
	mustPackage(t, res, "hostile-good", "goodpy")
	mustMatchAdvisory(t, res)
	mustWarn(t, res, "var/lib/dpkg/status")
	if n := cachedLayers(t, e); n != 1 {
		t.Errorf("%d layer results cached, want 1", n)
	}

	// The same 4 GiB under a diff ID that is not its own: read to the end,
	// refused, not cached.
	other := writeLayer(t, dir, plain, reg("x", "y"))
	wrong := filepath.Join(dir, "bomb-wrong-diffid.tar")
	writeArchive(t, wrong, archiveSpec{layers: []layer{{path: bomb.path, diffID: other.diffID}}})
	e2 := newEnv(t)
	r = runMamori(t, e2, slowDeadline, "image", "--input", wrong, "--scanners", "vuln,secret,malware,misconfig", "--format", "json")
	reportRun(t, "gzip bomb under a wrong diff ID", r)
	if r.code != 1 || !bytes.Contains(r.stderr, []byte("does not match")) {
		t.Errorf("exit %d, stderr %s: want 1 and a diff ID mismatch", r.code, tail(r.stderr))
	}
	if n := cachedLayers(t, e2); n != 0 {
		t.Errorf("a layer that failed its diff ID check was cached (%d entries)", n)
	}
}

// manyFilesLayer writes a layer of n tiny files: mostly text, with npm
// packages, Python dist-infos, shell scripts and config files among them,
// so that every scanner has work.
func manyFilesLayer(t *testing.T, dir string, n int) layer {
	t.Helper()
	mod := time.Unix(1700000000, 0)
	return writeLayerFunc(t, dir, gzipped, func(tw *tar.Writer) error {
		for _, e := range goodEntries() {
			hdr := e.hdr
			hdr.ModTime = mod
			if err := tw.WriteHeader(&hdr); err != nil {
				return err
			}
			if _, err := io.Copy(tw, e.body); err != nil {
				return err
			}
		}
		var body []byte
		for i := range n {
			var name string
			switch {
			case i%100 == 0:
				name = fmt.Sprintf("usr/lib/node_modules/pkg-%06d/package.json", i)
				body = fmt.Appendf(body[:0], `{"name":"pkg-%06d","version":"1.%d.0","license":"MIT"}`, i, i%7)
			case i%100 == 1:
				name = fmt.Sprintf("usr/lib/python3/dist-packages/py%06d-1.0.dist-info/METADATA", i)
				body = fmt.Appendf(body[:0], "Metadata-Version: 2.1\nName: py%06d\nVersion: 1.0\n", i)
			case i%100 == 2:
				name = fmt.Sprintf("etc/app/conf-%06d.yaml", i)
				body = fmt.Appendf(body[:0], "name: svc-%d\nport: %d\npassword_file: /run/secrets/db\n", i, 1000+i%5000)
			case i%100 == 3:
				name = fmt.Sprintf("usr/local/bin/tool-%06d.sh", i)
				body = fmt.Appendf(body[:0], "#!/bin/sh\nexec /usr/bin/env tool --id %d \"$@\"\n", i)
			default:
				name = fmt.Sprintf("usr/share/doc/d%03d/f%06d.txt", i/1000, i)
				body = fmt.Appendf(body[:0], "file %d of the many-files layer: lorem ipsum dolor sit amet %x\n", i, i*2654435761)
			}
			if err := tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(body)), ModTime: mod}); err != nil {
				return err
			}
			if _, err := tw.Write(body); err != nil {
				return err
			}
		}
		return nil
	})
}

// Cases 5 and 10: a 200k-file layer with all scanners, and with secret and
// malware only (issue 4), in bounded memory.
func TestManyFilesLayer(t *testing.T) {
	slow(t)
	const n = 200_000
	dir := t.TempDir()
	start := time.Now()
	l := manyFilesLayer(t, dir, n)
	archive := filepath.Join(dir, "many.tar")
	writeArchive(t, archive, archiveSpec{layers: []layer{l}})
	st, err := os.Stat(archive)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("200k-file layer: %d MiB archive, generated in %s", st.Size()>>20, time.Since(start).Round(time.Second))

	e := newEnv(t)
	r := runMamori(t, e, slowDeadline, "image", "--input", archive, "--scanners", "vuln,secret,malware,misconfig", "--format", "json")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, tail(r.stderr))
	}
	reportRun(t, "200k files, all scanners", r)
	res := decodeResult(t, r.stdout)
	mustPackage(t, res, "hostile-good", "goodpy", "pkg-000000", fmt.Sprintf("pkg-%06d", n-100), fmt.Sprintf("py%06d", n-99))
	if got, want := len(res.Inventory.Packages), 2+2*n/100; got < want {
		t.Errorf("%d packages, want at least %d", got, want)
	}
	mustMatchAdvisory(t, res)

	e = newEnv(t)
	r = runMamori(t, e, slowDeadline, "image", "--input", archive, "--scanners", "secret,malware", "--format", "json")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, tail(r.stderr))
	}
	reportRun(t, "200k files, secret+malware", r)

	// Warm cache: the same scan reads the layer result back.
	r = runMamori(t, e, slowDeadline, "image", "--input", archive, "--scanners", "secret,malware", "--format", "json")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, tail(r.stderr))
	}
	reportRun(t, "200k files, secret+malware, warm cache", r)
}

// Case 10: a 1 GiB file of random bytes (over every content cap: streamed
// past) and a 200 MiB one (under the malware cap: spilled to TMPDIR,
// scanned, removed) with secret and malware on, in bounded memory.
func TestGiBRandomFile(t *testing.T) {
	slow(t)
	dir := t.TempDir()
	start := time.Now()
	l := writeLayer(t, dir, plain, append(goodEntries(),
		regStream("opt/data/blob-1g.bin", 1<<30, random(20, 1<<30)),
		regStream("opt/data/blob-200m.bin", 200<<20, random(21, 200<<20)),
		reg("opt/data/.env", "GITHUB_TOKEN="+tokenA+"\n"),
	)...)
	archive := filepath.Join(dir, "random.tar")
	writeArchive(t, archive, archiveSpec{layers: []layer{l}})
	if err := os.Remove(l.path); err != nil {
		t.Fatal(err)
	}
	t.Logf("1 GiB random layer generated in %s", time.Since(start).Round(time.Second))

	e := newEnv(t)
	r := runMamori(t, e, slowDeadline, "image", "--input", archive, "--scanners", "secret,malware", "--format", "json")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, tail(r.stderr))
	}
	reportRun(t, "1 GiB + 200 MiB random, secret+malware", r)
	res := decodeResult(t, r.stdout)
	found := false
	for _, f := range res.Findings {
		if f.Kind == "secret" && f.Location.Path == "opt/data/.env" {
			found = true
		}
	}
	if !found {
		t.Error("the secret beside the random files was not found")
	}
	mustWarn(t, res, "opt/data/blob-1g.bin")

	e = newEnv(t)
	r = runMamori(t, e, slowDeadline, "image", "--input", archive, "--scanners", "vuln,secret,malware,misconfig", "--format", "json")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, tail(r.stderr))
	}
	reportRun(t, "1 GiB + 200 MiB random, all scanners", r)
}
