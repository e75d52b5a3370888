package vulndb

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
)

// testRecords are real OSV records (see ../match/testdata/osv/NOTICE).
const testRecords = "../match/testdata/osv"

func readTestRecord(t testing.TB, rel string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(testRecords, rel))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// makeZip builds an all.zip of the given entries in memory.
func makeZip(t testing.TB, entries map[string][]byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for name, data := range entries {
		w, err := zw.Create(name)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(data); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestImportDirectory(t *testing.T) {
	dir := t.TempDir()
	res, err := Import(context.Background(), dir, testRecords)
	if err != nil {
		t.Fatal(err)
	}
	if res.Skipped != 0 || res.Records != res.Files || res.Records < 40 {
		t.Fatalf("result %+v", res)
	}
	md, err := Info(dir)
	if err != nil {
		t.Fatal(err)
	}
	if md.SchemaVersion != SchemaVersion || md.BuiltAt.IsZero() || md.Ecosystems["Debian"] != 10 || md.Ecosystems["Go"] != 8 || len(md.Sources) != 1 {
		t.Errorf("metadata %+v", md)
	}
	db, err := Open(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	recs, err := db.Lookup("debian:12", "glibc") // base name case-insensitive
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, r := range recs {
		ids = append(ids, r.ID)
	}
	if strings.Join(ids, ",") != "DEBIAN-CVE-2023-4911,DSA-5514-1" {
		t.Errorf("glibc: %v", ids)
	}
	if recs, _ := db.Lookup("PyPI", "Django"); len(recs) != 1 { // PEP 503 normalisation
		t.Errorf("Django: %d records", len(recs))
	}
	if recs, _ := db.Lookup("Debian:13", "no-such-package"); len(recs) != 0 {
		t.Errorf("miss returned %d", len(recs))
	}
	if r, err := db.Get("GO-2026-6218"); err != nil || r == nil || r.Summary == "" {
		t.Errorf("Get: %v %v", r, err)
	}
}

func TestImportZipWithGarbage(t *testing.T) {
	entries := map[string][]byte{
		"DSA-5514-1.json":    readTestRecord(t, "Debian/DSA-5514-1.json"),
		"GO-2026-6218.json":  readTestRecord(t, "Go/GO-2026-6218.json"),
		"garbage.json":       []byte("{not json"),
		"empty.json":         nil,
		"no-id.json":         []byte(`{"modified":"2024-01-01T00:00:00Z","affected":[]}`),
		"two-fields.json":    []byte(`{"id":"X-1","modified":"2024-01-01T00:00:00Z","affected":[{"package":{"ecosystem":"npm","name":"a"},"ranges":[{"type":"SEMVER","events":[{"introduced":"0","fixed":"1"}]}]}]}`),
		"array.json":         []byte(`[1,2,3]`),
		"README.txt":         []byte("not a record, not counted"),
		"dir/nested/ok.json": readTestRecord(t, "npm/GHSA-29mw-wpgm-hmr9.json"),
	}
	zipPath := filepath.Join(t.TempDir(), "all.zip")
	if err := os.WriteFile(zipPath, makeZip(t, entries), 0o644); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	res, err := Import(context.Background(), dir, zipPath)
	if err != nil {
		t.Fatal(err)
	}
	if res.Records != 3 || res.Skipped != 5 || res.Files != 8 || len(res.SkipReasons) != 5 {
		t.Fatalf("result %+v", res)
	}
}

func TestImportNothingValidKeepsOldDB(t *testing.T) {
	dir := t.TempDir()
	if _, err := Import(context.Background(), dir, testRecords); err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(t.TempDir(), "bad.zip")
	os.WriteFile(bad, makeZip(t, map[string][]byte{"x.json": []byte("garbage")}), 0o644)
	if _, err := Import(context.Background(), dir, bad); !errors.Is(err, ErrEmpty) {
		t.Fatalf("want ErrEmpty, got %v", err)
	}
	notZip := filepath.Join(t.TempDir(), "not.zip")
	os.WriteFile(notZip, []byte("PK\x03\x04 truncated"), 0o644)
	if _, err := Import(context.Background(), dir, notZip); err == nil {
		t.Fatal("want an error for a corrupt zip")
	}
	md, err := Info(dir)
	if err != nil || md.Records < 40 {
		t.Fatalf("old database damaged: %v %+v", err, md)
	}
	assertNoTempFiles(t, dir)
}

func TestImportLimits(t *testing.T) {
	rec := readTestRecord(t, "Debian/DSA-5514-1.json")
	entries := map[string][]byte{}
	for i := range 20 {
		entries["R"+strconv.Itoa(i)+".json"] = rec
	}
	zipPath := filepath.Join(t.TempDir(), "all.zip")
	os.WriteFile(zipPath, makeZip(t, entries), 0o644)
	if _, err := Import(context.Background(), t.TempDir(), zipPath, WithLimits(10, 0, 0)); !errors.Is(err, ErrLimit) {
		t.Errorf("entry cap: want ErrLimit, got %v", err)
	}
	if _, err := Import(context.Background(), t.TempDir(), zipPath, WithLimits(0, int64(len(rec))*5, 0)); !errors.Is(err, ErrLimit) {
		t.Errorf("size cap: want ErrLimit, got %v", err)
	}
}

// TestImportZipBomb: an entry that inflates past MaxRecordBytes is skipped
// after reading at most MaxRecordBytes+1 bytes, whatever its header says.
func TestImportZipBomb(t *testing.T) {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	w, _ := zw.Create("bomb.json")
	zeros := make([]byte, 1<<20)
	for range 64 { // 64 MiB of zeros deflates to ~64 KiB
		w.Write(zeros)
	}
	w2, _ := zw.Create("ok.json")
	w2.Write(readTestRecord(t, "Debian/DSA-5514-1.json"))
	zw.Close()
	honest := bytes.Clone(buf.Bytes())
	// A lying copy: the central directory claims the bomb inflates to 1000 bytes.
	lying := bytes.Clone(honest)
	cd := bytes.Index(lying, []byte("PK\x01\x02"))
	if cd < 0 {
		t.Fatal("no central directory")
	}
	binary.LittleEndian.PutUint32(lying[cd+24:], 1000)
	for name, data := range map[string][]byte{"honest": honest, "lying": lying} {
		zipPath := filepath.Join(t.TempDir(), "all.zip")
		os.WriteFile(zipPath, data, 0o644)
		res, err := Import(context.Background(), t.TempDir(), zipPath)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if res.Records != 1 || res.Skipped != 1 {
			t.Fatalf("%s: result %+v", name, res)
		}
	}
}

func TestOpenErrors(t *testing.T) {
	if _, err := Open(context.Background(), t.TempDir()); !errors.Is(err, ErrNoDB) || !strings.Contains(err.Error(), "mamori db update") {
		t.Fatalf("want ErrNoDB with advice, got %v", err)
	}
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, FileName), []byte("not a bolt file"), 0o644)
	if _, err := Open(context.Background(), dir); err == nil {
		t.Fatal("want an error for a corrupt file")
	}
}

// osvServer serves <Ecosystem>/all.zip with an ETag, honouring
// If-None-Match, and counts full downloads.
type osvServer struct {
	zips      map[string][]byte
	etag      map[string]string
	downloads atomic.Int32
	notMod    atomic.Int32
	dieAfter  atomic.Int64 // >0: send that many bytes then drop the connection
}

func (s *osvServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	eco, ok := strings.CutSuffix(strings.TrimPrefix(r.URL.Path, "/"), "/all.zip")
	data, found := s.zips[eco]
	if !ok || !found {
		http.NotFound(w, r)
		return
	}
	tag := s.etag[eco]
	if r.Header.Get("If-None-Match") == tag {
		s.notMod.Add(1)
		w.WriteHeader(http.StatusNotModified)
		return
	}
	s.downloads.Add(1)
	w.Header().Set("ETag", tag)
	w.Header().Set("Last-Modified", "Mon, 02 Jan 2026 15:04:05 GMT")
	w.Header().Set("Content-Length", strconv.Itoa(len(data)))
	if n := s.dieAfter.Load(); n > 0 {
		w.Write(data[:n])
		w.(http.Flusher).Flush()
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			conn.Close()
		}
		return
	}
	w.Write(data)
}

func newOSVServer(t *testing.T) (*osvServer, *httptest.Server) {
	t.Helper()
	s := &osvServer{
		zips: map[string][]byte{
			"Debian": makeZip(t, map[string][]byte{
				"DSA-5514-1.json":            readTestRecord(t, "Debian/DSA-5514-1.json"),
				"DEBIAN-CVE-2023-38545.json": readTestRecord(t, "Debian/DEBIAN-CVE-2023-38545.json"),
			}),
			"Rocky Linux": makeZip(t, map[string][]byte{}),
			"npm":         makeZip(t, map[string][]byte{"GHSA-29mw-wpgm-hmr9.json": readTestRecord(t, "npm/GHSA-29mw-wpgm-hmr9.json")}),
		},
		etag: map[string]string{"Debian": `"d1"`, "npm": `"n1"`, "Rocky Linux": `"r1"`},
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Skipf("no loopback: %v", err)
	}
	srv := httptest.NewUnstartedServer(s)
	srv.Listener.Close()
	srv.Listener = l
	srv.Start()
	t.Cleanup(srv.Close)
	return s, srv
}

func TestUpdate(t *testing.T) {
	s, srv := newOSVServer(t)
	dir := t.TempDir()
	ctx := context.Background()
	opts := []Option{WithBaseURL(srv.URL), WithEcosystems("Debian:12", "npm", "Rocky Linux"), WithHTTPClient(srv.Client())}

	res, err := Update(ctx, dir, opts...)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Updated || res.Records != 3 || s.downloads.Load() != 3 {
		t.Fatalf("first update %+v, %d downloads", res, s.downloads.Load())
	}
	md, err := Info(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, src := range md.Sources {
		if src.ETag == "" || src.LastModified == "" || src.URL == "" {
			t.Errorf("source without validators: %+v", src)
		}
	}

	// Nothing changed: conditional requests, no download, DB kept.
	res, err = Update(ctx, dir, opts...)
	if err != nil {
		t.Fatal(err)
	}
	if res.Updated || s.downloads.Load() != 3 || s.notMod.Load() != 3 {
		t.Fatalf("second update %+v, %d downloads, %d not-modified", res, s.downloads.Load(), s.notMod.Load())
	}

	// npm changed: only npm is downloaded, Debian comes from the cache.
	s.zips["npm"] = makeZip(t, map[string][]byte{
		"GHSA-29mw-wpgm-hmr9.json": readTestRecord(t, "npm/GHSA-29mw-wpgm-hmr9.json"),
		"GHSA-35jh-r3h4-6jhm.json": readTestRecord(t, "npm/GHSA-35jh-r3h4-6jhm.json"),
	})
	s.etag["npm"] = `"n2"`
	res, err = Update(ctx, dir, opts...)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Updated || res.Records != 4 || s.downloads.Load() != 4 {
		t.Fatalf("third update %+v, %d downloads", res, s.downloads.Load())
	}
	db, err := Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	if recs, _ := db.Lookup("Debian:12", "glibc"); len(recs) != 1 {
		t.Errorf("Debian records lost: %d", len(recs))
	}
	db.Close()
	assertNoTempFiles(t, dir)
}

// TestUpdateServerDiesMidDownload: the old database stays intact and opens.
func TestUpdateServerDiesMidDownload(t *testing.T) {
	s, srv := newOSVServer(t)
	dir := t.TempDir()
	ctx := context.Background()
	opts := []Option{WithBaseURL(srv.URL), WithEcosystems("Debian", "npm"), WithHTTPClient(srv.Client())}
	if _, err := Update(ctx, dir, opts...); err != nil {
		t.Fatal(err)
	}
	before, err := os.ReadFile(filepath.Join(dir, FileName))
	if err != nil {
		t.Fatal(err)
	}
	s.etag["Debian"] = `"d2"`
	s.dieAfter.Store(int64(len(s.zips["Debian"]) / 2))
	if _, err := Update(ctx, dir, opts...); err == nil {
		t.Fatal("want an error when the server drops the connection")
	}
	after, err := os.ReadFile(filepath.Join(dir, FileName))
	if err != nil || !bytes.Equal(before, after) {
		t.Fatalf("database changed by a failed update (err %v)", err)
	}
	db, err := Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	if recs, _ := db.Lookup("npm", "lodash"); len(recs) != 1 {
		t.Errorf("lookup after failed update: %d", len(recs))
	}
	db.Close()
	assertNoTempFiles(t, dir)

	// A server error status is an error too, and a later good update works.
	s.dieAfter.Store(0)
	if _, err := Update(ctx, dir, WithBaseURL(srv.URL), WithEcosystems("NoSuch"), WithHTTPClient(srv.Client())); err == nil {
		t.Error("want an error for 404")
	}
	if res, err := Update(ctx, dir, opts...); err != nil || !res.Updated {
		t.Errorf("recovery update: %+v %v", res, err)
	}
}

func TestOptionsValidation(t *testing.T) {
	for _, o := range []Option{WithBaseURL("ftp://x"), WithBaseURL("not a url"), WithEcosystems("../etc"), WithHTTPClient(nil), WithLimits(-1, 0, 0)} {
		if _, err := makeOptions([]Option{o}); err == nil {
			t.Error("want an option error")
		}
	}
	if _, err := Update(context.Background(), t.TempDir()); err == nil {
		t.Error("update without ecosystems must fail")
	}
}

func assertNoTempFiles(t *testing.T, dir string) {
	t.Helper()
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && strings.HasSuffix(p, ".tmp") {
			t.Errorf("temp file left behind: %s", p)
		}
		return nil
	})
}
