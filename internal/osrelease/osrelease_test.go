package osrelease

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"mamori/internal/analyzer"
	"mamori/internal/model"
)

// detect walks testdata/<dir> the way the layer walk does: every regular
// file is offered to Required, wanted ones go to Analyze, and the per-path
// results go to Resolve.
func detect(t *testing.T, dir string) (*model.OS, map[string]*model.OS) {
	t.Helper()
	a := New()
	root := filepath.Join("testdata", dir)
	cands := map[string]*model.OS{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		info, err := d.Info()
		if err != nil {
			return err
		}
		if a.Required(rel, info) != analyzer.Content {
			return nil
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		res, err := a.Analyze(context.Background(), analyzer.Input{
			Path: rel, Info: info, Content: io.NewSectionReader(strings.NewReader(string(data)), 0, int64(len(data))),
		})
		if err != nil {
			t.Errorf("Analyze(%s): %v", rel, err)
			return nil
		}
		cands[rel] = res.OS
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return Resolve(cands), cands
}

func TestDistros(t *testing.T) {
	tests := []struct {
		dir       string
		want      model.OS
		ecosystem string
		osv       string
	}{
		{"debian12", model.OS{ID: "debian", VersionID: "12", Codename: "bookworm", PrettyName: "Debian GNU/Linux 12 (bookworm)"}, "Debian", "Debian:12"},
		{"debian-trixie", model.OS{ID: "debian", Codename: "trixie", PrettyName: "Debian GNU/Linux trixie/sid"}, "Debian", "Debian:13"},
		{"ubuntu2204", model.OS{ID: "ubuntu", VersionID: "22.04", Codename: "jammy", PrettyName: "Ubuntu 22.04.3 LTS", IDLike: []string{"debian"}}, "Ubuntu", "Ubuntu:22.04:LTS"},
		{"ubuntu2310", model.OS{ID: "ubuntu", VersionID: "23.10", Codename: "mantic", PrettyName: "Ubuntu 23.10", IDLike: []string{"debian"}}, "Ubuntu", "Ubuntu:23.10"},
		{"alpine3184", model.OS{ID: "alpine", VersionID: "3.18.4", PrettyName: "Alpine Linux v3.18"}, "Alpine", "Alpine:v3.18"},
		{"alpine-edge", model.OS{ID: "alpine", VersionID: "3.19_alpha20230901", PrettyName: "Alpine Linux edge"}, "Alpine", "Alpine"},
		{"almalinux93", model.OS{ID: "almalinux", VersionID: "9.3", PrettyName: "AlmaLinux 9.3 (Shamrock Pampas Cat)", IDLike: []string{"rhel", "centos", "fedora"}, Codename: "Shamrock Pampas Cat"}, "AlmaLinux", "AlmaLinux:9"},
		{"rocky93", model.OS{ID: "rocky", VersionID: "9.3", PrettyName: "Rocky Linux 9.3 (Blue Onyx)", IDLike: []string{"rhel", "centos", "fedora"}, Codename: "Blue Onyx"}, "Rocky Linux", "Rocky Linux:9"},
		{"ubi93", model.OS{ID: "rhel", VersionID: "9.3", PrettyName: "Red Hat Enterprise Linux 9.3 (Plow)", IDLike: []string{"fedora"}, Codename: "Plow"}, "Red Hat", "Red Hat"},
		{"centos6", model.OS{ID: "centos", VersionID: "6.10", PrettyName: "CentOS release 6.10 (Final)"}, "centos", "centos"},
		{"centos7", model.OS{ID: "centos", VersionID: "7", PrettyName: "CentOS Linux 7 (Core)", IDLike: []string{"rhel", "fedora"}}, "centos", "centos"},
		{"opensuse-leap155", model.OS{ID: "opensuse-leap", VersionID: "15.5", PrettyName: "openSUSE Leap 15.5", IDLike: []string{"suse", "opensuse"}}, "openSUSE", "openSUSE:Leap 15.5"},
		{"opensuse-tumbleweed", model.OS{ID: "opensuse-tumbleweed", VersionID: "20240801", PrettyName: "openSUSE Tumbleweed", IDLike: []string{"opensuse", "suse"}}, "openSUSE", "openSUSE:Tumbleweed"},
		{"sles155", model.OS{ID: "sles", VersionID: "15.5", PrettyName: "SUSE Linux Enterprise Server 15 SP5", IDLike: []string{"suse"}}, "SUSE", "SUSE:Linux Enterprise Server 15 SP5"},
		{"wolfi", model.OS{ID: "wolfi", VersionID: "20230201", PrettyName: "Wolfi"}, "Wolfi", "Wolfi"},
		{"chainguard", model.OS{ID: "chainguard", VersionID: "20230214", PrettyName: "Chainguard"}, "Chainguard", "Chainguard"},
		{"photon5", model.OS{ID: "photon", VersionID: "5.0", PrettyName: "VMware Photon OS/Linux"}, "Photon OS", "Photon OS:5.0"},
		{"amazon2023", model.OS{ID: "amzn", VersionID: "2023", PrettyName: "Amazon Linux 2023.3.20240304", IDLike: []string{"fedora"}}, "amzn", "amzn"},
	}
	for _, tt := range tests {
		t.Run(tt.dir, func(t *testing.T) {
			got, cands := detect(t, tt.dir)
			if got == nil {
				t.Fatalf("no OS detected; candidates %v", cands)
			}
			if !reflect.DeepEqual(*got, tt.want) {
				t.Errorf("OS = %+v\nwant %+v", *got, tt.want)
			}
			if e := Ecosystem(got); e != tt.ecosystem {
				t.Errorf("Ecosystem = %q, want %q", e, tt.ecosystem)
			}
			if e := OSVEcosystem(got); e != tt.osv {
				t.Errorf("OSVEcosystem = %q, want %q", e, tt.osv)
			}
		})
	}
}

func TestRedHatCPEPrefix(t *testing.T) {
	got, _ := detect(t, "ubi93")
	if p := RedHatCPEPrefix(got); p != "Red Hat:enterprise_linux:9" {
		t.Errorf("RedHatCPEPrefix = %q", p)
	}
	if p := RedHatCPEPrefix(&model.OS{ID: "rocky", VersionID: "9.3"}); p != "" {
		t.Errorf("RedHatCPEPrefix(rocky) = %q, want empty", p)
	}
}

func TestParseOSReleaseQuoting(t *testing.T) {
	in := "# a comment\n" +
		"  \n" +
		"ID=\"debian\"\r\n" + // CRLF tolerated
		"NAME='Single \"quoted\" $NAME'\n" +
		"PRETTY_NAME=\"Escaped \\\"quote\\\" \\$dollar \\\\back \\`tick\\` \\n kept\"\n" +
		"VERSION_ID=12   \n" + // unquoted trailing whitespace dropped
		"VERSION_CODENAME=book\\ worm\n" + // unquoted escape
		"ID_LIKE=\"a\"b' c'\n" + // concatenated quoting
		"not a line\n" +
		"1BAD=x\n" +
		"UNTERMINATED=\"open\n"
	os, err := ParseOSRelease(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	want := model.OS{
		ID:         "debian",
		VersionID:  "12",
		Codename:   "book worm",
		PrettyName: `Escaped "quote" $dollar \back ` + "`tick` \\n kept",
		IDLike:     []string{"ab", "c"},
	}
	if !reflect.DeepEqual(*os, want) {
		t.Errorf("got  %+v\nwant %+v", *os, want)
	}
	f := parseEnvFile([]byte(in))
	if f["NAME"] != `Single "quoted" $NAME` || f["UNTERMINATED"] != "open" {
		t.Errorf("NAME=%q UNTERMINATED=%q", f["NAME"], f["UNTERMINATED"])
	}
	if _, ok := f["1BAD"]; ok {
		t.Error("invalid key accepted")
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name  string
		parse func(io.Reader) (*model.OS, error)
		in    string
		want  error
	}{
		{"os-release without ID", ParseOSRelease, "NAME=x\nVERSION_ID=1\n", ErrNoID},
		{"lsb without ID", ParseLSBRelease, "DISTRIB_RELEASE=1\n", ErrNoID},
		{"alpine-release garbage", ParseAlpineRelease, "\x00\x01 binary junk\n", ErrMalformed},
		{"alpine-release empty", ParseAlpineRelease, "\n\n", ErrMalformed},
		{"redhat-release no release word", ParseRedHatRelease, "Fedora 39\n", ErrMalformed},
		{"redhat-release unknown", ParseRedHatRelease, "Frobnix Linux release 3 (x)\n", ErrUnknownDistro},
		{"debian_version junk", ParseDebianVersion, "hello world\n", ErrMalformed},
		{"too large", ParseOSRelease, strings.Repeat("#", maxReleaseFileSize+1), ErrTooLarge},
		{"line too long for scanner", ParseOSRelease, "ID=" + strings.Repeat("x", maxReleaseFileSize-3), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.parse(strings.NewReader(tt.in))
			if tt.want == nil {
				if err != nil {
					t.Fatalf("err = %v", err)
				}
				return
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestAnalyzeRefusesLargeFile(t *testing.T) {
	data := strings.Repeat("#", maxReleaseFileSize+1)
	_, err := New().Analyze(context.Background(), analyzer.Input{
		Path: PathOSRelease, Content: io.NewSectionReader(strings.NewReader(data), 0, int64(len(data))),
	})
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("err = %v, want ErrTooLarge", err)
	}
}

func TestRequired(t *testing.T) {
	a := New()
	for _, p := range precedence {
		if a.Required(p, nil) != analyzer.Content {
			t.Errorf("Required(%q) = Skip", p)
		}
	}
	for _, p := range []string{"etc/os-release.bak", "usr/etc/os-release", "os-release", "etc/photon-release", "var/lib/dpkg/status"} {
		if a.Required(p, nil) != analyzer.Skip {
			t.Errorf("Required(%q) wants it", p)
		}
	}
}

func TestResolve(t *testing.T) {
	deb := &model.OS{ID: "debian", Codename: "trixie"}
	tests := []struct {
		name  string
		cands map[string]*model.OS
		want  *model.OS
	}{
		{"empty", nil, nil},
		{"nil and ID-less ignored", map[string]*model.OS{"etc/os-release": nil, "usr/lib/os-release": {VersionID: "1"}}, nil},
		{"etc beats usr/lib", map[string]*model.OS{
			"usr/lib/os-release": {ID: "debian", VersionID: "11"},
			"/etc/os-release":    {ID: "debian", VersionID: "12"},
		}, &model.OS{ID: "debian", VersionID: "12"}},
		{"debian_version fills point release when VERSION_ID missing", map[string]*model.OS{
			"etc/os-release":     deb,
			"etc/debian_version": {ID: "debian", VersionID: "13.1"},
		}, &model.OS{ID: "debian", VersionID: "13.1", Codename: "trixie"}},
		{"debian_version does not override VERSION_ID", map[string]*model.OS{
			"etc/os-release":     {ID: "debian", VersionID: "12"},
			"etc/debian_version": {ID: "debian", VersionID: "12.5"},
		}, &model.OS{ID: "debian", VersionID: "12"}},
		{"another distribution is not mixed in", map[string]*model.OS{
			"etc/os-release":     {ID: "ubuntu"},
			"etc/debian_version": {ID: "debian", Codename: "bookworm"},
		}, &model.OS{ID: "ubuntu"}},
		{"lsb-release beats debian_version", map[string]*model.OS{
			"etc/lsb-release":    {ID: "ubuntu", VersionID: "22.04"},
			"etc/debian_version": {ID: "debian", Codename: "bookworm"},
		}, &model.OS{ID: "ubuntu", VersionID: "22.04"}},
		{"rocky-release beats redhat-release", map[string]*model.OS{
			"etc/redhat-release": {ID: "rhel", VersionID: "8.9"},
			"etc/rocky-release":  {ID: "rocky", VersionID: "8.9"},
		}, &model.OS{ID: "rocky", VersionID: "8.9"}},
		{"unknown paths ignored", map[string]*model.OS{"etc/issue": {ID: "x"}}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Resolve(tt.cands)
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("Resolve = %+v, want %+v", got, tt.want)
			}
		})
	}
	if deb.VersionID != "" {
		t.Error("Resolve modified its input")
	}
}

func TestOSVEcosystemEdges(t *testing.T) {
	tests := []struct {
		os   *model.OS
		want string
	}{
		{nil, ""},
		{&model.OS{ID: "ubuntu", VersionID: "24.04"}, "Ubuntu:24.04:LTS"},
		{&model.OS{ID: "ubuntu", VersionID: "23.04"}, "Ubuntu:23.04"},
		{&model.OS{ID: "ubuntu", VersionID: "20.10"}, "Ubuntu:20.10"},
		{&model.OS{ID: "ubuntu"}, "Ubuntu"},
		{&model.OS{ID: "debian", VersionID: "11"}, "Debian:11"},
		{&model.OS{ID: "debian", Codename: "sid"}, "Debian"},
		{&model.OS{ID: "alpine", VersionID: "3.20"}, "Alpine:v3.20"},
		{&model.OS{ID: "alpine", VersionID: "x"}, "Alpine"},
		{&model.OS{ID: "almalinux", VersionID: "8.10"}, "AlmaLinux:8"},
		{&model.OS{ID: "rocky"}, "Rocky Linux"},
		{&model.OS{ID: "opensuse-leap", VersionID: "15.6"}, "openSUSE:Leap 15.6"},
		{&model.OS{ID: "sles"}, "SUSE"},
		{&model.OS{ID: "mageia", VersionID: "9"}, "Mageia:9"},
		{&model.OS{ID: "openeuler", VersionID: "24.03", PrettyName: "openEuler 24.03 (LTS-SP1)"}, "openEuler:24.03-LTS-SP1"},
		{&model.OS{ID: "arch"}, "arch"},
	}
	for _, tt := range tests {
		if got := OSVEcosystem(tt.os); got != tt.want {
			t.Errorf("OSVEcosystem(%+v) = %q, want %q", tt.os, got, tt.want)
		}
	}
}

func TestApply(t *testing.T) {
	tests := []struct {
		name string
		os   *model.OS
		pkg  model.Package
		eco  string
		purl string
	}{
		{"debian", &model.OS{ID: "debian", VersionID: "12"},
			model.Package{Name: "openssl", Version: "3.0.11-1~deb12u2", Type: "deb", Arch: "amd64", PURL: "pkg:deb/debian/openssl@3.0.11-1~deb12u2?arch=amd64"},
			"Debian", "pkg:deb/debian/openssl@3.0.11-1~deb12u2?arch=amd64&distro=debian-12"},
		{"ubuntu rewrites namespace", &model.OS{ID: "ubuntu", VersionID: "22.04"},
			model.Package{Name: "libc6", Version: "2.35-0ubuntu3.4", Type: "deb", Arch: "amd64", PURL: "pkg:deb/debian/libc6@2.35-0ubuntu3.4?arch=amd64"},
			"Ubuntu", "pkg:deb/ubuntu/libc6@2.35-0ubuntu3.4?arch=amd64&distro=ubuntu-22.04"},
		{"deb epoch kept in version", &model.OS{ID: "debian", VersionID: "12"},
			model.Package{Name: "perl-base", Version: "1:5.36.0-7", Type: "deb", Arch: "amd64", PURL: "pkg:deb/debian/perl-base@1:5.36.0-7?arch=amd64"},
			"Debian", "pkg:deb/debian/perl-base@1:5.36.0-7?arch=amd64&distro=debian-12"},
		{"alpine", &model.OS{ID: "alpine", VersionID: "3.18.4"},
			model.Package{Name: "musl", Version: "1.2.4-r2", Type: "apk", Arch: "x86_64", PURL: "pkg:apk/alpine/musl@1.2.4-r2?arch=x86_64"},
			"Alpine", "pkg:apk/alpine/musl@1.2.4-r2?arch=x86_64&distro=alpine-3.18.4"},
		{"wolfi", &model.OS{ID: "wolfi", VersionID: "20230201"},
			model.Package{Name: "glibc", Version: "2.38-r1", Type: "apk", Arch: "x86_64", PURL: "pkg:apk/alpine/glibc@2.38-r1?arch=x86_64"},
			"Wolfi", "pkg:apk/wolfi/glibc@2.38-r1?arch=x86_64&distro=wolfi-20230201"},
		{"rhel with epoch", &model.OS{ID: "rhel", VersionID: "9.3"},
			model.Package{Name: "openssl", Version: "1:3.0.7-27.el9", Type: "rpm", Arch: "x86_64", PURL: "pkg:rpm/openssl@3.0.7-27.el9?arch=x86_64&epoch=1"},
			"Red Hat", "pkg:rpm/redhat/openssl@3.0.7-27.el9?arch=x86_64&distro=rhel-9.3&epoch=1"},
		{"unparsable purl rebuilt", &model.OS{ID: "rocky", VersionID: "9.3"},
			model.Package{Name: "openssl", Version: "1:3.0.7-27.el9", Type: "rpm", Arch: "x86_64", PURL: "garbage"},
			"Rocky Linux", "pkg:rpm/rocky/openssl@3.0.7-27.el9?arch=x86_64&distro=rocky-9.3&epoch=1"},
		{"debian testing uses codename", &model.OS{ID: "debian", Codename: "trixie"},
			model.Package{Name: "bash", Version: "5.2.21-2", Type: "deb", Arch: "amd64", PURL: "pkg:deb/debian/bash@5.2.21-2?arch=amd64"},
			"Debian", "pkg:deb/debian/bash@5.2.21-2?arch=amd64&distro=debian-trixie"},
		{"rpm in a debian image left alone", &model.OS{ID: "debian", VersionID: "12"},
			model.Package{Name: "x", Version: "1-1", Type: "rpm", PURL: "pkg:rpm/x@1-1"},
			"", "pkg:rpm/x@1-1"},
		{"language package left alone", &model.OS{ID: "debian", VersionID: "12"},
			model.Package{Name: "lodash", Version: "4.17.21", Type: "npm", Ecosystem: "npm", PURL: "pkg:npm/lodash@4.17.21"},
			"npm", "pkg:npm/lodash@4.17.21"},
		{"unknown distro uses ID", &model.OS{ID: "arch", VersionID: "rolling"},
			model.Package{Name: "x", Version: "1-1", Type: "rpm", PURL: "pkg:rpm/x@1-1"},
			"arch", "pkg:rpm/arch/x@1-1?distro=arch-rolling"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			inv := &model.Inventory{OS: tt.os, Packages: []model.Package{tt.pkg}}
			Apply(inv)
			got := inv.Packages[0]
			if got.Ecosystem != tt.eco || got.PURL != tt.purl {
				t.Errorf("got (%q, %q)\nwant (%q, %q)", got.Ecosystem, got.PURL, tt.eco, tt.purl)
			}
		})
	}
	Apply(nil)
	Apply(&model.Inventory{Packages: []model.Package{{Type: "deb"}}})
}
