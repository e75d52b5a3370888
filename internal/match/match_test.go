package match

import (
	"context"
	"slices"
	"sync"
	"testing"

	"mamori/internal/model"
	"mamori/internal/vulndb"
)

var (
	testDBOnce sync.Once
	testDB     *vulndb.DB
	testDBErr  error
	testDBDir  string
)

// openTestDB imports testdata/osv (real records, see its NOTICE) into a
// database once per test binary.
func openTestDB(t testing.TB) *vulndb.DB {
	t.Helper()
	testDBOnce.Do(func() {
		dir, err := mkdirTemp()
		if err != nil {
			testDBErr = err
			return
		}
		testDBDir = dir
		if _, err := vulndb.Import(context.Background(), dir, "testdata/osv"); err != nil {
			testDBErr = err
			return
		}
		testDB, testDBErr = vulndb.Open(context.Background(), dir)
	})
	if testDBErr != nil {
		t.Fatal(testDBErr)
	}
	return testDB
}

func pkg(typ, name, ver string) model.Package {
	return model.Package{Name: name, Version: ver, Type: typ, PURL: "pkg:" + typ + "/" + name + "@" + ver,
		Locations: []model.PackageLocation{{Path: "some/path"}}}
}

func debPkg(name, src, ver string) model.Package {
	p := pkg(model.TypeDeb, name, ver)
	p.SourceName = src
	return p
}

type want struct {
	id, fix string
}

func idsOf(vs []model.Vulnerability) []want {
	var out []want
	for _, v := range vs {
		out = append(out, want{v.ID, v.FixedVersion})
	}
	return out
}

func TestMatchTable(t *testing.T) {
	db := openTestDB(t)
	debian12 := &model.OS{ID: "debian", VersionID: "12"}
	debian11 := &model.OS{ID: "debian", VersionID: "11"}
	alpine310 := &model.OS{ID: "alpine", VersionID: "3.10.4"}
	alma8 := &model.OS{ID: "almalinux", VersionID: "8.9"}
	alma9 := &model.OS{ID: "almalinux", VersionID: "9.3"}
	stdlib := func(v string) model.Package { return pkg(model.TypeGolang, "stdlib", v) }

	tests := []struct {
		name string
		os   *model.OS
		p    model.Package
		want []want
	}{
		// Debian: advisories name the source package; ranges + versions lists.
		{"glibc below fix", debian12, debPkg("libc6", "glibc", "2.36-9+deb12u2"),
			[]want{{"DEBIAN-CVE-2023-4911", "2.36-9+deb12u3"}}}, // DSA-5514-1 is the same vulnerability: an alias
		{"glibc at fix", debian12, debPkg("libc6", "glibc", "2.36-9+deb12u3"), nil},
		{"glibc above fix", debian12, debPkg("libc6", "glibc", "2.36-9+deb12u10"), nil},
		{"binary without source name is looked up by its name", debian12, debPkg("curl", "", "7.88.1-10+deb12u3"),
			[]want{{"DEBIAN-CVE-2023-38545", "7.88.1-10+deb12u4"}}},
		{"release scoping: Debian 11 range", debian11, debPkg("curl", "", "7.88.1-10+deb12u3"), nil},
		{"release scoping: Debian 11 below its fix", debian11, debPkg("curl", "", "7.74.0-1.3+deb11u9"),
			[]want{{"DEBIAN-CVE-2023-38545", "7.74.0-1.3+deb11u10"}}},
		{"open issue, no fix", debian12, debPkg("tar", "", "1.34+dfsg-1.2+deb12u1"),
			[]want{{"DEBIAN-CVE-2005-2541", ""}}},
		{"epoch in fixed version", debian12, debPkg("zlib1g", "zlib", "1:1.2.13.dfsg-1"),
			[]want{{"DEBIAN-CVE-2023-45853", ""}}},
		{"epoch: older than the fix", debian12, debPkg("zlib1g", "zlib", "1:1.2.11.dfsg-4"),
			[]want{{"DEBIAN-CVE-2022-37434", "1:1.2.11.dfsg-4.1"}, {"DEBIAN-CVE-2023-45853", ""}}},
		{"tilde sorts before", debian12, debPkg("libssl3", "openssl", "3.0.11-1~deb12u1"),
			[]want{{"DEBIAN-CVE-2023-5363", "3.0.11-1~deb12u2"}, {"DEBIAN-CVE-2024-2511", "3.0.14-1~deb12u1"}}},
		{"no OS: OS packages cannot be scoped", nil, debPkg("libc6", "glibc", "2.36-9"), nil},

		// npm: SEMVER with introduced/fixed and last_affected.
		{"lodash below fixes", nil, pkg(model.TypeNPM, "lodash", "4.17.20"),
			[]want{{"GHSA-29mw-wpgm-hmr9", "4.17.21"}, {"GHSA-35jh-r3h4-6jhm", "4.17.21"}, {"GHSA-xxjr-mmjv-4gpg", "4.17.23"}}},
		{"lodash just below a fix", nil, pkg(model.TypeNPM, "lodash", "4.17.18"),
			[]want{{"GHSA-29mw-wpgm-hmr9", "4.17.21"}, {"GHSA-35jh-r3h4-6jhm", "4.17.21"}, {"GHSA-p6mc-m468-83gw", "4.17.19"}, {"GHSA-xxjr-mmjv-4gpg", "4.17.23"}}},
		{"lodash at newest fix", nil, pkg(model.TypeNPM, "lodash", "4.17.23"), nil},
		{"last_affected: at it", nil, pkg(model.TypeNPM, "lodash.trimend", "4.5.1"),
			[]want{{"GHSA-29mw-wpgm-hmr9", ""}}},
		{"last_affected: above it", nil, pkg(model.TypeNPM, "lodash.trimend", "4.5.2"), nil},
		{"introduced: below it", nil, pkg(model.TypeNPM, "lodash.trimend", "3.9.0"), nil},
		{"minimist two entries, lower branch", nil, pkg(model.TypeNPM, "minimist", "0.2.1"),
			[]want{{"GHSA-xvch-5gv4-984h", "0.2.4"}}},
		{"minimist two entries, upper branch", nil, pkg(model.TypeNPM, "minimist", "1.2.0"),
			[]want{{"GHSA-vh95-rmgr-6w4m", "1.2.3"}, {"GHSA-xvch-5gv4-984h", "1.2.6"}}},

		// Go: stdlib and toolchain, go-prefixed versions, several introduced.
		{"stdlib 1.25 branch", nil, stdlib("go1.25.12"),
			[]want{{"GO-2026-6218", "1.25.13"}}},
		{"stdlib 1.26 branch", nil, stdlib("1.26.5"),
			[]want{{"GO-2026-5942", "1.26.6"}, {"GO-2026-6218", "1.26.6"}}},
		{"stdlib fixed", nil, stdlib("go1.26.6"), nil},
		{"stdlib rc", nil, stdlib("go1.27rc2"),
			[]want{{"GO-2026-5942", "1.27.0-rc.3"}, {"GO-2026-6218", "1.27.0-rc.3"}}},
		{"module with v prefix", nil, pkg(model.TypeGolang, "golang.org/x/net", "v0.55.0"),
			[]want{{"GO-2026-5942", "0.56.0"}}},
		{"withdrawn advisory", nil, pkg(model.TypeGolang, "k8s.io/kubernetes", "v1.20.0"), nil},

		// PyPI: unsorted events, name normalisation, last_affected, withdrawn.
		{"django 4.2 branch (events listed out of order)", nil, pkg(model.TypePyPI, "Django", "4.2.14"),
			[]want{{"PYSEC-2024-68", "4.2.15"}}},
		{"django between branches", nil, pkg(model.TypePyPI, "django", "4.3"), nil},
		{"django 5.0 branch", nil, pkg(model.TypePyPI, "django", "5.0.7"), []want{{"PYSEC-2024-68", "5.0.8"}}},
		{"py last_affected", nil, pkg(model.TypePyPI, "py", "1.11.0"), []want{{"PYSEC-2022-42969", ""}}},
		{"withdrawn PyPI", nil, pkg(model.TypePyPI, "arrayfire", "3.5.0"), nil},

		// Alpine: origin, release scope.
		{"alpine origin", alpine310, func() model.Package {
			p := pkg(model.TypeAPK, "libcrypto1.1", "1.1.1c-r0")
			p.SourceName = "openssl"
			return p
		}(), []want{{"ALPINE-CVE-2019-1549", "1.1.1d-r0"}, {"ALPINE-CVE-2019-1563", "1.1.1d-r0"}}},
		{"alpine fixed", alpine310, pkg(model.TypeAPK, "openssl", "1.1.1d-r0"), nil},

		// AlmaLinux: binary package names, epochs.
		{"alma 9 openssl-libs", alma9, pkg(model.TypeRPM, "openssl-libs", "1:3.0.1-35.el9"),
			[]want{{"ALSA-2022:6224", "1:3.0.1-41.el9_0"}}},
		{"alma 8 openssl-libs scoped", alma8, pkg(model.TypeRPM, "openssl-libs", "1:1.1.1k-16.el8_6"),
			[]want{{"ALSA-2026:38503", "1:1.1.1k-17.el8_6"}}},
		{"alma module streams: lowest fix above", alma8, pkg(model.TypeRPM, "oci-systemd-hook", "1:0.1.15-2.git2d0b8a3.module_el8.3.0+1+aaaa"),
			[]want{{"ALBA-2019:0973", "1:0.1.15-2.git2d0b8a3.module_el8.3.0+2044+12421f43"}}},

		// crates.io: introduced 0.0.0-0.
		{"cap-primitives", nil, pkg(model.TypeCargo, "cap-primitives", "3.4.0"), []want{{"RUSTSEC-2024-0445", "3.4.1"}}},
		{"deno below introduced", nil, pkg(model.TypeCargo, "deno", "2.1.0"), nil},

		// Unknown ecosystems and garbage versions.
		{"unknown type", nil, pkg("conan", "openssl", "1.0"), nil},
		{"garbage version", nil, pkg(model.TypeNPM, "lodash", "not a version!"), nil},
		{"empty version", nil, pkg(model.TypeNPM, "lodash", ""), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			inv := &model.Inventory{OS: tt.os, Packages: []model.Package{tt.p}}
			vulns, mal, err := Match(context.Background(), db, inv)
			if err != nil {
				t.Fatal(err)
			}
			if len(mal) != 0 {
				t.Errorf("unexpected malware findings %v", mal)
			}
			got := idsOf(vulns)
			if !slices.Equal(got, tt.want) {
				t.Errorf("got  %v\nwant %v", got, tt.want)
			}
		})
	}
}

func TestMatchRowContents(t *testing.T) {
	db := openTestDB(t)
	inv := &model.Inventory{
		OS: &model.OS{ID: "debian", VersionID: "12.4"},
		Packages: []model.Package{
			debPkg("curl", "", "7.88.1-10+deb12u3"),
			debPkg("libcurl4", "curl", "7.88.1-10+deb12u3"),
			debPkg("tar", "", "1.34+dfsg-1.2+deb12u1"),
			pkg(model.TypeCargo, "cap-primitives", "3.4.0"),
			pkg(model.TypeNPM, "lodash", "4.17.20"),
		},
	}
	inv.Packages[0].Ecosystem = "Debian"
	vulns, _, err := Match(context.Background(), db, inv)
	if err != nil {
		t.Fatal(err)
	}
	byKey := map[string]model.Vulnerability{}
	for _, v := range vulns {
		byKey[v.Package.Name+" "+v.ID] = v
	}
	// One row per binary package built from curl.
	curl, ok := byKey["curl DEBIAN-CVE-2023-38545"]
	if !ok || byKey["libcurl4 DEBIAN-CVE-2023-38545"].ID == "" {
		t.Fatalf("want rows for curl and libcurl4, got %v", idsOf(vulns))
	}
	// Debian's urgency is "not yet assigned": the NVD CVSS 3.1 vector decides.
	if curl.Severity != model.SeverityCritical || len(curl.CVSS) != 1 || curl.CVSS[0].Version != "3.1" || curl.CVSS[0].Score != 9.8 {
		t.Errorf("curl severity %v cvss %+v", curl.Severity, curl.CVSS)
	}
	if curl.DataSource != "Debian:12" || curl.Package.Ecosystem != "Debian" || curl.Package.Path != "some/path" {
		t.Errorf("curl row %+v", curl)
	}
	if !slices.Equal(curl.Aliases, []string{"CVE-2023-38545"}) {
		t.Errorf("aliases %v", curl.Aliases)
	}
	if curl.Published.IsZero() || curl.Modified.IsZero() || curl.Details == "" || len(curl.References) == 0 {
		t.Errorf("missing published/modified/details/references: %+v", curl)
	}
	// Debian rates the tar issue "unimportant".
	if v := byKey["tar DEBIAN-CVE-2005-2541"]; v.Severity != model.SeverityNegligible {
		t.Errorf("tar severity %v", v.Severity)
	}
	// CVSS v4.0 vector.
	if v := byKey["cap-primitives RUSTSEC-2024-0445"]; v.Severity == model.SeverityUnknown || len(v.CVSS) != 1 || v.CVSS[0].Version != "4.0" {
		t.Errorf("cap-primitives severity %v cvss %+v", v.Severity, v.CVSS)
	}
	// GHSA CVSS 3.1 AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:L = 5.3 Medium.
	if v := byKey["lodash GHSA-29mw-wpgm-hmr9"]; v.Severity != model.SeverityMedium || v.CVSS[0].Score != 5.3 {
		t.Errorf("lodash severity %v cvss %+v", v.Severity, v.CVSS)
	}
	for _, v := range vulns {
		if !slices.IsSorted(v.Aliases) {
			t.Errorf("%s aliases not sorted: %v", v.ID, v.Aliases)
		}
	}
}

func TestMatchDistroSeverityRedHatFamily(t *testing.T) {
	db := openTestDB(t)
	inv := &model.Inventory{OS: &model.OS{ID: "almalinux", VersionID: "9.3"},
		Packages: []model.Package{pkg(model.TypeRPM, "openssl", "1:3.0.1-35.el9")}}
	vulns, _, err := Match(context.Background(), db, inv)
	if err != nil {
		t.Fatal(err)
	}
	if len(vulns) != 1 || vulns[0].Severity != model.SeverityMedium { // "Moderate: openssl security …"
		t.Fatalf("got %+v", vulns)
	}
	if !slices.Contains(vulns[0].Aliases, "CVE-2022-1292") {
		t.Errorf("related CVEs should be aliases: %v", vulns[0].Aliases)
	}
}

func TestMatchMalware(t *testing.T) {
	db := openTestDB(t)
	inv := &model.Inventory{Packages: []model.Package{
		pkg(model.TypePyPI, "1337test", "1"),
		pkg(model.TypePyPI, "1337TEST", "2"),
	}}
	vulns, mal, err := Match(context.Background(), db, inv)
	if err != nil {
		t.Fatal(err)
	}
	if len(vulns) != 0 {
		t.Errorf("MAL records must not be vulnerabilities: %v", idsOf(vulns))
	}
	if len(mal) != 1 {
		t.Fatalf("want 1 malware finding (version 1 only), got %+v", mal)
	}
	f := mal[0]
	if f.Kind != model.KindMalware || f.ID != "MAL-2024-4720" || f.Engine != "osv" || f.Severity != model.SeverityCritical ||
		f.Location.Path != "some/path" || f.Title != "Malicious code in 1337test (PyPI)" {
		t.Errorf("finding %+v", f)
	}
}

// TestMatchDedup: a package listed by several affected entries of one
// advisory, and stdlib matched through both "stdlib" and "toolchain", give
// one row each.
func TestMatchDedup(t *testing.T) {
	db := openTestDB(t)
	inv := &model.Inventory{Packages: []model.Package{pkg(model.TypeNPM, "qs", "6.2.0")}}
	vulns, _, err := Match(context.Background(), db, inv)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, v := range vulns {
		if seen[v.ID] {
			t.Errorf("duplicate row %s", v.ID)
		}
		seen[v.ID] = true
	}
	if len(vulns) == 0 {
		t.Fatal("qs 6.2.0 is affected by GHSA-hrpp-h998-j3pp")
	}
}

type failingSource struct{}

func (failingSource) Lookup(string, string) ([]*vulndb.Record, error) {
	return nil, errTest
}

func TestMatchSourceError(t *testing.T) {
	inv := &model.Inventory{Packages: []model.Package{pkg(model.TypeNPM, "lodash", "1.0.0")}}
	if _, _, err := Match(context.Background(), failingSource{}, inv); err == nil {
		t.Fatal("want the source's error")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, _, err := Match(ctx, openTestDB(t), inv); err == nil {
		t.Fatal("want context error")
	}
}

func TestGoVersion(t *testing.T) {
	for in, want := range map[string]string{
		"go1.21.3": "1.21.3", "1.21": "1.21.0", "go1.22rc1": "1.22.0-rc.1", "go1.20beta1": "1.20.0-beta.1", "v1.2.3": "1.2.3",
	} {
		if got := goVersion(in, true); got != want {
			t.Errorf("goVersion(%q) = %q, want %q", in, got, want)
		}
	}
	if got := goVersion("v0.55.0", false); got != "0.55.0" {
		t.Errorf("module version %q", got)
	}
}

func TestAliasesKeepRelatedOnlyForDistroAdvisories(t *testing.T) {
	pysec := &vulndb.Record{ID: "PYSEC-2023-175", Aliases: []string{"CVE-2023-44271"}, Related: []string{"CVE-2023-4863"}}
	if got := aliasesOf(pysec); slices.Contains(got, "CVE-2023-4863") || !slices.Contains(got, "CVE-2023-44271") {
		t.Errorf("PYSEC aliases = %v", got)
	}
	alsa := &vulndb.Record{ID: "ALSA-2022:6224", Related: []string{"CVE-2022-1292"}}
	if got := aliasesOf(alsa); !slices.Contains(got, "CVE-2022-1292") {
		t.Errorf("ALSA aliases = %v", got)
	}
}
