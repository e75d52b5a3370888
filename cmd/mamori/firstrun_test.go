package main

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"mamori/internal/model"
	"mamori/internal/vulndb"
)

// osvZip is an OSV dump (all.zip) with one Debian advisory for zlib.
func osvZip(t *testing.T) []byte {
	t.Helper()
	rec := `{"id":"DEBIAN-CVE-2023-45853","modified":"2024-01-02T00:00:00Z","aliases":["CVE-2023-45853"],
"affected":[{"package":{"ecosystem":"Debian:12","name":"zlib"},
"ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"0"},{"fixed":"1:1.2.13.dfsg-1+deb12u1"}]}]}]}`
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	w, err := zw.Create("DEBIAN-CVE-2023-45853.json")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte(rec)); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// debianRoot is a root file system with one vulnerable Debian package.
func debianRoot(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	files := map[string]string{
		"etc/os-release":      "ID=debian\nVERSION_ID=\"12\"\nPRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\n",
		"var/lib/dpkg/status": "Package: zlib1g\nStatus: install ok installed\nVersion: 1:1.2.13.dfsg-1\nArchitecture: amd64\nSource: zlib\n",
	}
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

// TestFirstRunFetchesTheDatabase (issue 14): a scan with no vulnerability
// database downloads the dumps of the ecosystems its inventory needs from
// the mirror (here a local HTTP server), then matches; the next scan uses
// that database without the network; --offline and --skip-db-update keep
// the missing database an error.
func TestFirstRunFetchesTheDatabase(t *testing.T) {
	zipBytes := osvZip(t)
	var gets atomic.Int64
	var asked []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gets.Add(1)
		asked = append(asked, r.URL.Path)
		if r.URL.Path != "/Debian/all.zip" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Last-Modified", time.Now().Add(-3*time.Hour).UTC().Format(http.TimeFormat))
		_, _ = w.Write(zipBytes)
	}))
	defer srv.Close()

	root := debianRoot(t)
	cache := t.TempDir()
	dbDir := filepath.Join(cache, "db")
	scanTo := func(extra ...string) (int, *model.Result) {
		out := filepath.Join(t.TempDir(), "out.json")
		args := append([]string{"--quiet", "--cache-dir", cache, "--db-dir", dbDir, "rootfs", root,
			"--scanners", "vuln", "--format", "json", "--output", out}, extra...)
		code := run(context.Background(), args)
		b, err := os.ReadFile(out)
		if err != nil {
			return code, nil
		}
		var res model.Result
		if err := json.Unmarshal(b, &res); err != nil {
			t.Fatalf("output: %v", err)
		}
		return code, &res
	}

	// --offline and --skip-db-update: no download, a clear failure.
	for _, flag := range []string{"--offline", "--skip-db-update"} {
		if code, _ := scanTo(flag, "--db-url", srv.URL); code == 0 {
			t.Errorf("%s with no database: exit 0", flag)
		}
	}
	if n := gets.Load(); n != 0 {
		t.Fatalf("--offline/--skip-db-update downloaded %d times", n)
	}

	code, res := scanTo("--db-url", srv.URL)
	if code != 0 || res == nil {
		t.Fatalf("first run: exit %d", code)
	}
	if len(asked) != 1 || asked[0] != "/Debian/all.zip" {
		t.Errorf("downloaded %q, want only the Debian dump the inventory needs", asked)
	}
	if len(res.Vulnerabilities) != 1 || res.Vulnerabilities[0].ID != "DEBIAN-CVE-2023-45853" {
		t.Errorf("vulnerabilities %+v", res.Vulnerabilities)
	}
	if res.DB == nil || res.DB.BuiltAt.IsZero() || len(res.DB.Ecosystems) != 1 {
		t.Errorf("db info %+v", res.DB)
	}

	// The second run has a database: no download, same answer, even with
	// the mirror gone.
	srv.Close()
	code, res = scanTo("--db-url", srv.URL)
	if code != 0 || res == nil || len(res.Vulnerabilities) != 1 {
		t.Fatalf("second run: exit %d, %+v", code, res)
	}
	if n := gets.Load(); n != 1 {
		t.Errorf("%d downloads in all, want 1", n)
	}

	// A first run whose download fails keeps today's clear error.
	if code, _ := scanTo("--db-dir", filepath.Join(t.TempDir(), "db"), "--db-url", srv.URL); code == 0 {
		t.Error("first run with the mirror unreachable: exit 0")
	}
}

func TestDataAge(t *testing.T) {
	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	md := mdWith(now.Add(-26*time.Hour), now.Add(-2*time.Hour))
	if got, want := dataAge(md, now), "data as of 2026-12-05T10:00:00Z (26h0m0s old)"; got != want {
		t.Errorf("dataAge = %q, want %q", got, want)
	}
}

func mdWith(lastModified ...time.Time) *vulndb.Metadata {
	md := &vulndb.Metadata{BuiltAt: time.Unix(0, 0)}
	for _, t := range lastModified {
		md.Sources = append(md.Sources, vulndb.Source{Ecosystem: "x", LastModified: t.Format(http.TimeFormat)})
	}
	return md
}
