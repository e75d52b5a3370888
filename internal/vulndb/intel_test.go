package vulndb

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// The feeds of ../match/testdata/prio: a subset of CISA's real KEV
// catalogue and real EPSS rows (see its NOTICE).
const (
	testPrio  = "../match/testdata/prio"
	testKEV   = testPrio + "/kev/known_exploited_vulnerabilities.json"
	testEPSS  = testPrio + "/epss/epss_scores-2026-01-02.csv"
	sharedKEV = "/work/shared/data/kev/known_exploited_vulnerabilities.json"
)

func readFile(t testing.TB, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func gz(t testing.TB, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestParseKEV(t *testing.T) {
	c, err := ParseKEV(bytes.NewReader(readFile(t, testKEV)))
	if err != nil {
		t.Fatal(err)
	}
	if c.Version != "2025.08.25" || c.Released != "2025-08-25T17:04:19.9796Z" || len(c.Entries) != 5 {
		t.Fatalf("catalogue %s %s, %d entries", c.Version, c.Released, len(c.Entries))
	}
	if e := c.Entries["CVE-2023-4911"]; e != (KEVEntry{DateAdded: "2023-11-21", DueDate: "2023-12-12"}) {
		t.Errorf("CVE-2023-4911: %+v", e)
	}
	if e := c.Entries["CVE-2025-49704"]; !e.Ransomware {
		t.Errorf("CVE-2025-49704: %+v, want the ransomware flag", e)
	}
	// The whole real catalogue, when the shared data is there.
	if b, err := os.ReadFile(sharedKEV); err == nil {
		c, err := ParseKEV(bytes.NewReader(b))
		if err != nil || len(c.Entries) != 1404 {
			t.Errorf("real catalogue: %v, %d entries", err, len(c.Entries))
		}
	}
}

func TestParseKEVRejects(t *testing.T) {
	good := string(readFile(t, testKEV))
	for name, in := range map[string]string{
		"empty":           "",
		"garbage":         "\x00\x01 not json",
		"html error page": "<html><body>Access Denied</body></html>",
		"truncated":       good[:len(good)/2],
		"count mismatch":  strings.Replace(good, `"count": 5`, `"count": 6`, 1),
		"no count":        strings.Replace(good, `"count": 5,`, ``, 1),
		"no version":      strings.Replace(good, `"catalogVersion": "2025.08.25",`, ``, 1),
		"bad CVE":         strings.Replace(good, `"cveID": "CVE-2023-4911"`, `"cveID": "CVE-23-4911"`, 1),
		"bad date":        strings.Replace(good, `"dateAdded": "2023-11-21"`, `"dateAdded": "21/11/2023"`, 1),
		"trailing data":   good + `{"more": 1}`,
		"empty list":      `{"catalogVersion": "1", "count": 0, "vulnerabilities": []}`,
		"list of numbers": `{"catalogVersion": "1", "count": 1, "vulnerabilities": [1]}`,
	} {
		if _, err := ParseKEV(strings.NewReader(in)); !errors.Is(err, ErrFeed) {
			t.Errorf("%s: err = %v, want ErrFeed", name, err)
		}
	}
	// Oversized: one byte over the cap, never buffered beyond it.
	big := io.MultiReader(strings.NewReader(`{"catalogVersion":"`), &repeatReader{b: 'a', n: MaxKEVBytes})
	if _, err := ParseKEV(big); !errors.Is(err, ErrFeed) || !strings.Contains(err.Error(), "over") {
		t.Errorf("oversized: %v", err)
	}
}

// repeatReader yields n copies of b.
type repeatReader struct {
	b byte
	n int64
}

func (r *repeatReader) Read(p []byte) (int, error) {
	if r.n <= 0 {
		return 0, io.EOF
	}
	n := int64(len(p))
	n = min(n, r.n)
	for i := range p[:n] {
		p[i] = r.b
	}
	r.n -= n
	return int(n), nil
}

func TestParseEPSS(t *testing.T) {
	raw := readFile(t, testEPSS)
	for name, in := range map[string][]byte{"plain": raw, "gzip": gz(t, raw), "CRLF": bytes.ReplaceAll(raw, []byte("\n"), []byte("\r\n"))} {
		f, err := ParseEPSS(bytes.NewReader(in))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if f.Model != "v2025.03.14" || f.Date != "2026-01-02" || len(f.Rows) != 98 {
			t.Fatalf("%s: model %q date %q, %d rows", name, f.Model, f.Date, len(f.Rows))
		}
		var got EPSSRow
		for _, r := range f.Rows {
			if r.CVE == "CVE-2020-14040" {
				got = r
			}
		}
		// Published as "8e-05".
		if got.Score != 0.00008 {
			t.Errorf("%s: CVE-2020-14040 %+v", name, got)
		}
	}
	// Without the comment line (files before 2022 had none).
	f, err := ParseEPSS(strings.NewReader("cve,epss,percentile\nCVE-2021-44228,0.97565,0.99996\n"))
	if err != nil || f.Date != "" || len(f.Rows) != 1 || f.Rows[0].Score != 0.97565 {
		t.Errorf("no comment: %+v, %v", f, err)
	}
}

func TestParseEPSSRejects(t *testing.T) {
	head := "#model_version:v2025.03.14,score_date:2026-01-02T12:55:00Z\ncve,epss,percentile\n"
	for name, in := range map[string]string{
		"empty":          "",
		"garbage":        "\x00\x01\x02 garbage",
		"html":           "<html>503</html>\n",
		"header only":    head,
		"wrong header":   "cve,score\nCVE-2021-44228,0.9\n",
		"missing column": head + "CVE-2021-44228,0.97\n",
		"extra column":   head + "CVE-2021-44228,0.97,0.99,1\n",
		"not a CVE":      head + "GHSA-xxxx,0.1,0.2\n",
		"not a number":   head + "CVE-2021-44228,high,0.99\n",
		"above one":      head + "CVE-2021-44228,1.5,0.99\n",
		"negative":       head + "CVE-2021-44228,-0.1,0.99\n",
		"NaN":            head + "CVE-2021-44228,NaN,0.99\n",
		"duplicate":      head + "CVE-2021-44228,0.1,0.2\nCVE-2021-44228,0.1,0.2\n",
		"long line":      head + "CVE-2021-44228," + strings.Repeat("1", 5000) + ",0.1\n",
		"truncated gzip": string(gz(t, readFile(t, testEPSS))[:200]),
	} {
		if _, err := ParseEPSS(strings.NewReader(in)); !errors.Is(err, ErrFeed) {
			t.Errorf("%s: err = %v, want ErrFeed", name, err)
		}
	}
	// A gzip bomb: decompression stops at the cap.
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	zw.Write([]byte(head))
	for i := 0; i < 100_000; i++ {
		fmt.Fprintf(zw, "CVE-2021-%07d,0.1,0.2\n", i)
	}
	zw.Close()
	if _, err := parseEPSS(bytes.NewReader(buf.Bytes()), 1<<20); !errors.Is(err, ErrFeed) || !strings.Contains(err.Error(), "over") {
		t.Errorf("bomb: %v", err)
	}
}

// TestImportFeeds: `db import` of a directory holding the KEV catalogue and
// an EPSS file by their published names reads them; explicit files win;
// a bad feed fails the import and the old database stays.
func TestImportFeeds(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	res, err := Import(ctx, dir, testPrio)
	if err != nil {
		t.Fatal(err)
	}
	if res.Skipped != 0 || res.KEV == nil || res.KEV.Entries != 5 || res.KEV.Version != "2025.08.25" ||
		res.EPSS == nil || res.EPSS.Entries != 98 || res.EPSS.Date != "2026-01-02" || res.EPSS.Version != "v2025.03.14" {
		t.Fatalf("import: %+v KEV %+v EPSS %+v", res, res.KEV, res.EPSS)
	}
	if !strings.HasSuffix(res.KEV.Source.Path, "kev/known_exploited_vulnerabilities.json") {
		t.Errorf("KEV source %+v", res.KEV.Source)
	}
	db, err := Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	if e, ok, err := db.KEV("CVE-2020-0601"); err != nil || !ok || e.DateAdded != "2021-11-03" {
		t.Errorf("KEV lookup: %+v %v %v", e, ok, err)
	}
	if _, ok, err := db.KEV("CVE-2022-27664"); err != nil || ok {
		t.Errorf("CVE-2022-27664 is not in the subset: %v %v", ok, err)
	}
	if s, ok, err := db.EPSS("CVE-2024-2961"); err != nil || !ok || s != (EPSSScore{Score: 0.92739, Percentile: 0.99748}) {
		t.Errorf("EPSS lookup: %+v %v %v", s, ok, err)
	}
	// The alias index: the GHSA record aliased by GO-2022-0969, and the
	// records that list CVE-2022-27664.
	// GO-2022-0969 has no rating: only the GHSA record is there.
	rts, err := db.Ratings("", []string{"GO-2022-0969", "GHSA-69cg-p879-7622", "CVE-2022-27664"})
	if err != nil {
		t.Fatal(err)
	}
	if len(rts) != 1 || rts[0].ID != "GHSA-69cg-p879-7622" || rts[0].Word != "HIGH" ||
		len(rts[0].CVSS) != 1 || rts[0].CVSS[0] != "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H" || rts[0].Distro {
		t.Errorf("Ratings = %+v", rts)
	}
	// Through the CVE the DEBIAN-CVE record and the DSA about it both lend.
	rts, err = db.Ratings("DEBIAN-CVE-2023-4911", []string{"CVE-2023-4911"})
	if err != nil || len(rts) != 0 {
		// DSA-5514-1 has no rating of its own; DEBIAN-CVE-2023-4911 is the exception.
		t.Errorf("Ratings(CVE-2023-4911) = %+v %v", rts, err)
	}
	// The bundle DSA-5611-1 is never found through its CVEs.
	rts, _ = db.Ratings("", []string{"CVE-2023-6246"})
	for _, rt := range rts {
		if rt.ID == "DSA-5611-1" {
			t.Errorf("bundle found: %+v", rts)
		}
	}
	db.Close()
	before := readFile(t, filepath.Join(dir, FileName))

	// A broken EPSS file named explicitly: the import fails, the DB stays.
	bad := filepath.Join(t.TempDir(), "epss.csv")
	if err := os.WriteFile(bad, []byte("cve,epss,percentile\nCVE-2021-44228,2,0.5\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = Import(ctx, dir, testPrio, WithEPSSFile(bad))
	if !errors.Is(err, ErrFeed) || !strings.Contains(err.Error(), "line 2") {
		t.Errorf("bad EPSS: %v", err)
	}
	if !bytes.Equal(before, readFile(t, filepath.Join(dir, FileName))) {
		t.Error("a failed import changed the database")
	}
	assertNoTempFiles(t, dir)

	// Explicit files for an import of records without feeds.
	res, err = Import(ctx, dir, testPrio+"/Go", WithKEVFile(testKEV), WithEPSSFile(testEPSS))
	if err != nil || res.KEV == nil || res.EPSS == nil || res.Records != 24 {
		t.Fatalf("explicit feeds: %+v %v", res, err)
	}
	res, err = Import(ctx, dir, testPrio+"/Go")
	if err != nil || res.KEV != nil || res.EPSS != nil {
		t.Fatalf("no feeds: %+v %v", res, err)
	}
	md, _ := Info(dir)
	if md.KEV != nil || md.EPSS != nil {
		t.Errorf("metadata %+v", md)
	}
}

func TestFindFeeds(t *testing.T) {
	dir := t.TempDir()
	for _, p := range []string{"kev/known_exploited_vulnerabilities.json", "epss_scores-2026-01-02.csv.gz", "epss/epss_scores-2026-01-03.csv.gz"} {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, p)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, p), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := FindFeeds(dir); err == nil || !strings.Contains(err.Error(), "two EPSS files") {
		t.Errorf("two EPSS files: %v", err)
	}
	os.Remove(filepath.Join(dir, "epss_scores-2026-01-02.csv.gz"))
	k, e, err := FindFeeds(dir)
	if err != nil || k != filepath.Join(dir, "kev", KEVFileName) || e != filepath.Join(dir, "epss", "epss_scores-2026-01-03.csv.gz") {
		t.Errorf("FindFeeds = %q %q %v", k, e, err)
	}
}

// feedServer serves OSV zips, the KEV JSON and the EPSS CSV (gzip) with
// ETags, honouring If-None-Match.
type feedServer struct {
	files     map[string][]byte // URL path → body
	etags     map[string]string
	lengths   map[string]int64 // a Content-Length to claim instead
	downloads atomic.Int32
	notMod    atomic.Int32
}

func (s *feedServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, ok := s.files[r.URL.Path]
	if !ok {
		http.NotFound(w, r)
		return
	}
	tag := s.etags[r.URL.Path]
	if tag != "" && r.Header.Get("If-None-Match") == tag {
		s.notMod.Add(1)
		w.WriteHeader(http.StatusNotModified)
		return
	}
	s.downloads.Add(1)
	w.Header().Set("ETag", tag)
	if n, ok := s.lengths[r.URL.Path]; ok {
		w.Header().Set("Content-Length", strconv.FormatInt(n, 10))
		w.WriteHeader(http.StatusOK)
		return
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.Write(body)
}

// TestUpdateFeeds: `db update` fetches KEV and EPSS with the OSV dumps and
// swaps one new database in; unchanged feeds are not fetched again; a
// garbage, truncated or oversized feed fails the update and keeps the old
// database and the cached copies.
func TestUpdateFeeds(t *testing.T) {
	s := &feedServer{
		files: map[string][]byte{
			"/Go/all.zip": makeZip(t, map[string][]byte{
				"GO-2022-0969.json": readFile(t, testPrio+"/Go/GO-2022-0969.json"),
				"GO-2022-0535.json": readFile(t, testPrio+"/Go/GO-2022-0535.json"),
			}),
			"/kev.json":     readFile(t, testKEV),
			"/epss.csv.gz":  gz(t, readFile(t, testEPSS)),
			"/garbage.json": []byte("<html>Access Denied</html>"),
		},
		etags:   map[string]string{"/Go/all.zip": `"g1"`, "/kev.json": `"k1"`, "/epss.csv.gz": `"e1"`},
		lengths: map[string]int64{},
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Skipf("no loopback: %v", err)
	}
	srv := httptest.NewUnstartedServer(s)
	srv.Listener.Close()
	srv.Listener = l
	srv.Start()
	defer srv.Close()

	ctx := context.Background()
	dir := t.TempDir()
	opts := func(kev, epss string) []Option {
		return []Option{WithBaseURL(srv.URL), WithEcosystems("Go"), WithHTTPClient(srv.Client()),
			WithKEVURL(srv.URL + kev), WithEPSSURL(srv.URL + epss)}
	}
	res, err := Update(ctx, dir, opts("/kev.json", "/epss.csv.gz")...)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Updated || res.Records != 2 || res.KEV == nil || res.KEV.Entries != 5 || res.EPSS == nil || res.EPSS.Entries != 98 ||
		s.downloads.Load() != 3 || res.KEV.Source.ETag != `"k1"` || res.EPSS.Source.URL != srv.URL+"/epss.csv.gz" {
		t.Fatalf("first update: %+v, %d downloads", res, s.downloads.Load())
	}

	// Nothing changed: three conditional requests, no rebuild.
	res, err = Update(ctx, dir, opts("/kev.json", "/epss.csv.gz")...)
	if err != nil || res.Updated || s.notMod.Load() != 3 || s.downloads.Load() != 3 || res.KEV == nil {
		t.Fatalf("second update: %+v %v, %d not modified", res, err, s.notMod.Load())
	}

	// New EPSS scores only: rebuilt, the OSV zip and KEV from the cache.
	s.files["/epss.csv.gz"] = gz(t, []byte("#model_version:v2025.03.14,score_date:2026-01-03T00:00:00Z\ncve,epss,percentile\nCVE-2022-27664,0.5,0.9\n"))
	s.etags["/epss.csv.gz"] = `"e2"`
	res, err = Update(ctx, dir, opts("/kev.json", "/epss.csv.gz")...)
	if err != nil || !res.Updated || res.EPSS.Entries != 1 || res.EPSS.Date != "2026-01-03" || res.KEV.Entries != 5 || s.downloads.Load() != 4 {
		t.Fatalf("EPSS update: %+v %v, %d downloads", res, err, s.downloads.Load())
	}
	db, err := Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	if sc, ok, _ := db.EPSS("CVE-2022-27664"); !ok || sc.Score != 0.5 {
		t.Errorf("new EPSS score %+v %v", sc, ok)
	}
	db.Close()
	good := readFile(t, filepath.Join(dir, FileName))

	// Bad feeds: each fails with a clear error and changes nothing.
	s.files["/truncated.json"] = readFile(t, testKEV)[:1000]
	s.files["/big.csv.gz"] = []byte("x")
	s.lengths["/big.csv.gz"] = MaxEPSSBytes + 1
	s.files["/bad.csv.gz"] = gz(t, []byte("cve,epss,percentile\nCVE-2021-44228,0.1\n"))
	for _, c := range []struct{ kev, epss, want string }{
		{"/garbage.json", "/epss.csv.gz", "KEV: not the catalogue's JSON"},
		{"/truncated.json", "/epss.csv.gz", "KEV: not the catalogue's JSON"},
		{"/missing.json", "/epss.csv.gz", "404"},
		{"/kev.json", "/big.csv.gz", "input over limit"},
		{"/kev.json", "/bad.csv.gz", "EPSS: line 2"},
	} {
		_, err := Update(ctx, dir, opts(c.kev, c.epss)...)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s %s: err = %v, want %q", c.kev, c.epss, err, c.want)
		}
		if !bytes.Equal(good, readFile(t, filepath.Join(dir, FileName))) {
			t.Errorf("%s %s: the database changed", c.kev, c.epss)
		}
		assertNoTempFiles(t, dir)
	}
	// The cached feeds are still the good ones: an update that asks for
	// them again does not fetch or rebuild.
	res, err = Update(ctx, dir, opts("/kev.json", "/epss.csv.gz")...)
	if err != nil || res.Updated {
		t.Errorf("after failures: %+v %v", res, err)
	}
	// Dropping the feeds is a change: rebuilt without them.
	res, err = Update(ctx, dir, WithBaseURL(srv.URL), WithEcosystems("Go"), WithHTTPClient(srv.Client()))
	if err != nil || !res.Updated || res.KEV != nil || res.EPSS != nil {
		t.Errorf("without feeds: %+v %v", res, err)
	}
}

// TestSchemaUpgrade: a database of schema 1 (before the alias index) is
// refused with a clear error, and `db update` rebuilds it.
func TestSchemaUpgrade(t *testing.T) {
	dir := t.TempDir()
	bdb, err := bolt.Open(filepath.Join(dir, FileName), 0o644, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = bdb.Update(func(tx *bolt.Tx) error {
		for _, n := range []string{"meta", "records", "index"} {
			b, err := tx.CreateBucket([]byte(n))
			if err != nil {
				return err
			}
			if n == "meta" {
				if err := b.Put(keyMetadata, []byte(`{"schemaVersion":1,"builtAt":"2026-01-01T00:00:00Z","records":1}`)); err != nil {
					return err
				}
			}
		}
		return nil
	})
	bdb.Close()
	if err != nil {
		t.Fatal(err)
	}
	_, err = Open(context.Background(), dir)
	if !errors.Is(err, ErrSchema) || !strings.Contains(err.Error(), "schema 1, this mamori reads 2") || !strings.Contains(err.Error(), "mamori db update") {
		t.Fatalf("open: %v", err)
	}
	_, srv := newOSVServer(t)
	res, err := Update(context.Background(), dir, WithBaseURL(srv.URL), WithEcosystems("npm"), WithHTTPClient(srv.Client()))
	if err != nil || !res.Updated {
		t.Fatalf("update: %+v %v", res, err)
	}
	if md, err := Info(dir); err != nil || md.SchemaVersion != SchemaVersion {
		t.Fatalf("after update: %+v %v", md, err)
	}
}

func ExampleParseEPSS() {
	f, _ := ParseEPSS(strings.NewReader("#model_version:v2025.03.14,score_date:2026-01-02T12:55:00Z\ncve,epss,percentile\nCVE-2024-2961,0.92739,0.99748\n"))
	fmt.Println(f.Date, f.Rows[0].CVE, f.Rows[0].Score, f.Rows[0].Percentile)
	// Output: 2026-01-02 CVE-2024-2961 0.92739 0.99748
}
