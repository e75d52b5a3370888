package store

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"mamori/internal/model"
	"mamori/internal/store/pgtest"
)

// pgServer is the PostgreSQL server shared by this package's tests when
// MAMORI_TEST_POSTGRES=1 (one initdb per test binary, a database per test).
var pgServer *pgtest.Server

func TestMain(m *testing.M) {
	// The child of TestKillDuringIngest is killed with -9 and uses the
	// parent's database: it must not start a server of its own.
	if pgtest.Enabled() && os.Getenv(crashChildEnv) == "" {
		s, err := pgtest.Launch()
		if err != nil {
			fmt.Fprintf(os.Stderr, "pgtest: %v\n", err)
			os.Exit(1)
		}
		pgServer = s
	}
	code := m.Run()
	if pgServer != nil {
		if err := pgServer.Stop(); err != nil {
			fmt.Fprintf(os.Stderr, "pgtest: %v\n", err)
		}
	}
	os.Exit(code)
}

// testDSN returns the DSN of a fresh, empty database of the engine for one
// test (it skips PostgreSQL tests unless they are on).
func testDSN(t testing.TB, engine string) string {
	t.Helper()
	if engine == EnginePostgres {
		if pgServer == nil {
			t.Skipf("PostgreSQL tests are off: set %s=1 (needs Debian's postgresql package)", pgtest.EnvVar)
		}
		return pgServer.NewDatabase(t)
	}
	return filepath.Join(t.TempDir(), "data") + "/"
}

// openTest opens a fresh store of the engine for one test.
func openTest(t testing.TB, engine string) *sqlStore {
	t.Helper()
	return openDSN(t, testDSN(t, engine))
}

// openDSN opens the store at dsn, closed when the test ends.
func openDSN(t testing.TB, dsn string) *sqlStore {
	t.Helper()
	st, err := Open(context.Background(), dsn, WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() {
		if err := st.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return st.(*sqlStore)
}

// engines runs fn against a fresh store of each engine.
func engines(t *testing.T, fn func(t *testing.T, s *sqlStore)) {
	t.Helper()
	for _, e := range []string{EngineSQLite, EnginePostgres} {
		t.Run(e, func(t *testing.T) { fn(t, openTest(t, e)) })
	}
}

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// vuln builds one vulnerability row.
func vuln(id, pkg string, sev model.Severity, cvss float64, fixed string, aliases ...string) model.Vulnerability {
	v := model.Vulnerability{
		ID:      id,
		Aliases: aliases,
		Package: model.PackageRef{Name: pkg, Version: "1.0", Type: model.TypeDeb, Ecosystem: "Debian",
			PURL: "pkg:deb/debian/" + pkg + "@1.0", Path: "var/lib/dpkg/status", Layer: "sha256:l1"},
		FixedVersion: fixed,
		Severity:     sev,
		Summary:      "summary of " + id,
		Details:      "details of " + id,
		References:   []string{"https://example.org/" + id},
		DataSource:   "Debian:12",
		Published:    t0.Add(-48 * time.Hour),
		Modified:     t0.Add(-24 * time.Hour),
	}
	if cvss >= 0 {
		v.CVSS = []model.CVSS{{Version: "3.1", Vector: "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", Score: cvss, Source: "nvd"}}
	}
	return v
}

func pkg(name, version string) model.Package {
	return model.Package{Name: name, Version: version, Type: model.TypeDeb, Ecosystem: "Debian",
		PURL: "pkg:deb/debian/" + name + "@" + version, Cataloger: "dpkg", Licenses: []string{"MIT"},
		Locations: []model.PackageLocation{{Path: "var/lib/dpkg/status", LayerDiffID: "sha256:l1"}}}
}

// dg makes a short test digest a valid one, so that tests stay readable:
// hex is padded with zeros ("sha256:d1" -> "sha256:00…d1"), anything else
// is hashed ("sha256:new" -> the SHA-256 of "new").
func dg(d string) string {
	h, ok := strings.CutPrefix(d, "sha256:")
	if !ok || len(h) >= 64 {
		return d
	}
	if _, err := hex.DecodeString(strings.Repeat("0", len(h)%2) + h); err != nil {
		sum := sha256.Sum256([]byte(h))
		return "sha256:" + hex.EncodeToString(sum[:])
	}
	return "sha256:" + strings.Repeat("0", 64-len(h)) + h
}

// result builds a scan result of an image (a short digest is padded by dg).
func result(name, digest, scanID string, created time.Time, vulns []model.Vulnerability, findings ...model.Finding) *model.Result {
	digest = dg(digest)
	seen := map[string]bool{}
	var pkgs []model.Package
	for _, v := range vulns {
		if !seen[v.Package.Name] {
			seen[v.Package.Name] = true
			pkgs = append(pkgs, pkg(v.Package.Name, v.Package.Version))
		}
	}
	pkgs = append(pkgs, pkg("base-files", "12.4"))
	return &model.Result{
		SchemaVersion: model.SchemaVersion,
		Tool:          model.Tool{Name: "mamori", Version: "test"},
		ScanID:        scanID,
		CreatedAt:     created,
		Target: model.Target{Name: name, Type: model.TargetImage, Digest: digest, ImageID: "sha256:cfg" + digest,
			RepoTags: []string{name}, Platform: "linux/amd64", Size: 1234,
			Layers: []model.Layer{{DiffID: "sha256:l1", Digest: "sha256:b1", Size: 1234, CreatedBy: "ADD rootfs"}}},
		Scanners:        []string{"vuln", "secret"},
		Inventory:       model.Inventory{OS: &model.OS{ID: "debian", VersionID: "12", PrettyName: "Debian GNU/Linux 12 (bookworm)"}, Packages: pkgs},
		Vulnerabilities: vulns,
		Findings:        findings,
		Warnings:        []string{"a warning"},
		DB:              &model.DBInfo{BuiltAt: t0.Add(-time.Hour), Ecosystems: []string{"Debian"}},
	}
}

func secret(id string, sev model.Severity) model.Finding {
	return model.Finding{Kind: model.KindSecret, ID: id, Title: "secret " + id, Severity: sev,
		Location: model.Location{Path: "etc/app.conf", LayerDiffID: "sha256:l1", StartLine: 3, EndLine: 3},
		Category: "AWS", Evidence: "AKIA****", References: []string{"https://example.org"}, Controls: []string{"4.1.4"}}
}

func mustIngest(t testing.TB, s Store, r *model.Result) IngestOutcome {
	t.Helper()
	out, err := s.IngestScan(context.Background(), r)
	if err != nil {
		t.Fatalf("ingest %s/%s: %v", r.Target.Name, r.ScanID, err)
	}
	return out
}

// checkAggregates recomputes every vulnerability's aggregates from the rows
// and compares them with the maintained counters.
func checkAggregates(t testing.TB, s *sqlStore) {
	t.Helper()
	ctx := context.Background()
	rows, err := s.db.QueryContext(ctx, `SELECT v.id, v.affected_images, v.affected_rows, v.fixable_rows, v.package_count,
		(SELECT COUNT(DISTINCT iv.image_id) FROM image_vulnerabilities iv WHERE iv.vuln_id = v.id),
		(SELECT COUNT(*) FROM image_vulnerabilities iv WHERE iv.vuln_id = v.id),
		(SELECT COUNT(*) FROM image_vulnerabilities iv WHERE iv.vuln_id = v.id AND iv.fixed_version <> ''),
		(SELECT COUNT(DISTINCT iv.pkg_name) FROM image_vulnerabilities iv WHERE iv.vuln_id = v.id)
		FROM vulnerabilities v`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		var a [8]int64
		if err := rows.Scan(&id, &a[0], &a[1], &a[2], &a[3], &a[4], &a[5], &a[6], &a[7]); err != nil {
			t.Fatal(err)
		}
		if a[0] != a[4] || a[1] != a[5] || a[2] != a[6] || a[3] != a[7] {
			t.Errorf("%s: counters images/rows/fixable/packages = %d/%d/%d/%d, rows say %d/%d/%d/%d",
				id, a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7])
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	var orphans int
	if err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM vuln_packages vp WHERE vp.n_rows <> (SELECT COUNT(*)
		FROM image_vulnerabilities iv WHERE iv.vuln_id = vp.vuln_id AND iv.pkg_name = vp.pkg_name)`).Scan(&orphans); err != nil {
		t.Fatal(err)
	}
	if orphans != 0 {
		t.Errorf("%d vuln_packages rows disagree with the rows", orphans)
	}
}

func toJSON(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
