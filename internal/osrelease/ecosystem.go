package osrelease

import (
	"strconv"
	"strings"

	"github.com/package-url/packageurl-go"

	"mamori/internal/model"
)

// OSV ecosystem base names of operating systems
// (https://ossf.github.io/osv-schema/#affectedpackage-field).
const (
	EcosystemDebian     = "Debian"
	EcosystemUbuntu     = "Ubuntu"
	EcosystemAlpine     = "Alpine"
	EcosystemAlmaLinux  = "AlmaLinux"
	EcosystemRocky      = "Rocky Linux"
	EcosystemRedHat     = "Red Hat"
	EcosystemOpenSUSE   = "openSUSE"
	EcosystemSUSE       = "SUSE"
	EcosystemWolfi      = "Wolfi"
	EcosystemChainguard = "Chainguard"
	EcosystemPhoton     = "Photon OS"
	EcosystemMageia     = "Mageia"
	EcosystemOpenEuler  = "openEuler"
)

// distro describes what this package knows of one os-release ID.
type distro struct {
	ecosystem string // OSV base name
	pkgType   string // package-url type of its packages
	namespace string // package-url namespace (vendor), as syft and trivy spell it
}

var distros = map[string]distro{
	"debian":              {EcosystemDebian, model.TypeDeb, "debian"},
	"ubuntu":              {EcosystemUbuntu, model.TypeDeb, "ubuntu"},
	"alpine":              {EcosystemAlpine, model.TypeAPK, "alpine"},
	"wolfi":               {EcosystemWolfi, model.TypeAPK, "wolfi"},
	"chainguard":          {EcosystemChainguard, model.TypeAPK, "chainguard"},
	"almalinux":           {EcosystemAlmaLinux, model.TypeRPM, "almalinux"},
	"rocky":               {EcosystemRocky, model.TypeRPM, "rocky"},
	"rhel":                {EcosystemRedHat, model.TypeRPM, "redhat"},
	"opensuse-leap":       {EcosystemOpenSUSE, model.TypeRPM, "opensuse"},
	"opensuse-tumbleweed": {EcosystemOpenSUSE, model.TypeRPM, "opensuse"},
	"opensuse-leap-micro": {EcosystemOpenSUSE, model.TypeRPM, "opensuse"},
	"opensuse":            {EcosystemOpenSUSE, model.TypeRPM, "opensuse"},
	"sles":                {EcosystemSUSE, model.TypeRPM, "suse"},
	"sled":                {EcosystemSUSE, model.TypeRPM, "suse"},
	"sle-micro":           {EcosystemSUSE, model.TypeRPM, "suse"},
	"sl-micro":            {EcosystemSUSE, model.TypeRPM, "suse"},
	"photon":              {EcosystemPhoton, model.TypeRPM, "photon"},
	"mageia":              {EcosystemMageia, model.TypeRPM, "mageia"},
	"openeuler":           {EcosystemOpenEuler, model.TypeRPM, "openeuler"},
	"centos":              {"centos", model.TypeRPM, "centos"},
	"fedora":              {"fedora", model.TypeRPM, "fedora"},
	"amzn":                {"amzn", model.TypeRPM, "amazon"},
	"ol":                  {"ol", model.TypeRPM, "oracle"},
}

// Ecosystem returns the OSV ecosystem base name of os ("Debian", "Rocky
// Linux", "Red Hat", "openSUSE" ...); for a distribution without an OSV
// ecosystem it returns os.ID. It returns "" for a nil os.
func Ecosystem(os *model.OS) string {
	if os == nil {
		return ""
	}
	if d, ok := distros[os.ID]; ok {
		return d.ecosystem
	}
	return os.ID
}

// debianReleases maps Debian codenames to release numbers
// (https://debian.pages.debian.net/distro-info-data/debian.csv), for
// testing and unstable whose os-release has no VERSION_ID.
var debianReleases = map[string]string{
	"jessie": "8", "stretch": "9", "buster": "10", "bullseye": "11",
	"bookworm": "12", "trixie": "13", "forky": "14", "duke": "15",
}

// OSVEcosystem returns the release-scoped OSV ecosystem string that the
// advisories for os's packages use:
//
//	Debian 12, 12.5              "Debian:12" (testing/sid by codename: trixie → "Debian:13")
//	Ubuntu 22.04 / 23.10         "Ubuntu:22.04:LTS" / "Ubuntu:23.10" (LTS = even year, April)
//	Alpine 3.18.4                "Alpine:v3.18"; edge (3.19_alpha…) → "Alpine"
//	AlmaLinux 9.3                "AlmaLinux:9"
//	Rocky Linux 9.3              "Rocky Linux:9"
//	RHEL 9.3                     "Red Hat" (see below)
//	openSUSE Leap 15.5           "openSUSE:Leap 15.5"; Tumbleweed → "openSUSE:Tumbleweed"
//	SLES 15 SP5                  "SUSE:Linux Enterprise Server 15 SP5"
//	Photon OS 5.0                "Photon OS:5.0"
//	Mageia 9                     "Mageia:9"
//	openEuler 24.03 (LTS-SP1)    "openEuler:24.03-LTS-SP1"
//	Wolfi, Chainguard            "Wolfi", "Chainguard" (rolling, no release)
//	anything else                os.ID
//
// Red Hat: OSV's Red Hat records are scoped by product stream, not by
// release: "Red Hat:<CPE without cpe:/[oa]:redhat:>", e.g.
// "Red Hat:enterprise_linux:9::baseos", "Red Hat:enterprise_linux:9::appstream",
// "Red Hat:rhel_eus:9.2::baseos". Which stream an installed RPM came from is
// not recorded in the rpm database, so OSVEcosystem returns the bare "Red
// Hat"; a matcher scopes with RedHatCPEPrefix ("Red Hat:enterprise_linux:9").
//
// SUSE and openSUSE: the suffix is the os-release PRETTY_NAME without the
// vendor word (osv-schema: "<RELEASE> matches the value in the
// /etc/os-release PRETTY_NAME field"). SUSE also publishes records per
// module ("SUSE:Linux Enterprise Module for Basesystem 15 SP5"), which a
// matcher may want to accept for the same service pack.
func OSVEcosystem(os *model.OS) string {
	if os == nil {
		return ""
	}
	base := Ecosystem(os)
	major := func() string { m, _, _ := strings.Cut(os.VersionID, "."); return m }
	switch os.ID {
	case "debian":
		if m := major(); isDigits(m) {
			return base + ":" + m
		}
		if n, ok := debianReleases[strings.ToLower(os.Codename)]; ok {
			return base + ":" + n
		}
		return base
	case "ubuntu":
		yy, mm, ok := strings.Cut(os.VersionID, ".")
		if !ok || !isDigits(yy) || len(mm) < 2 || !isDigits(mm[:2]) {
			return base
		}
		rel := yy + "." + mm[:2]
		if y, _ := strconv.Atoi(yy); y%2 == 0 && mm[:2] == "04" {
			return base + ":" + rel + ":LTS"
		}
		return base + ":" + rel
	case "alpine":
		if strings.Contains(os.VersionID, "_") { // edge: 3.19_alpha20230901
			return base
		}
		parts := strings.SplitN(os.VersionID, ".", 3)
		if len(parts) < 2 || !isDigits(parts[0]) || !isDigits(parts[1]) {
			return base
		}
		return base + ":v" + parts[0] + "." + parts[1]
	case "almalinux", "rocky":
		if m := major(); isDigits(m) {
			return base + ":" + m
		}
		return base
	case "photon", "mageia":
		if os.VersionID != "" {
			return base + ":" + os.VersionID
		}
		return base
	case "opensuse-leap", "opensuse-tumbleweed", "opensuse-leap-micro", "opensuse":
		if rest, ok := strings.CutPrefix(strings.TrimSpace(os.PrettyName), "openSUSE "); ok && rest != "" {
			return base + ":" + rest
		}
		switch os.ID {
		case "opensuse-tumbleweed":
			return base + ":Tumbleweed"
		case "opensuse-leap":
			if os.VersionID != "" {
				return base + ":Leap " + os.VersionID
			}
		}
		return base
	case "sles", "sled", "sle-micro", "sl-micro":
		if rest, ok := strings.CutPrefix(strings.TrimSpace(os.PrettyName), "SUSE "); ok && rest != "" {
			return base + ":" + rest
		}
		return base
	case "openeuler":
		// PRETTY_NAME="openEuler 24.03 (LTS-SP1)" → "openEuler:24.03-LTS-SP1".
		if os.VersionID == "" {
			return base
		}
		rel := os.VersionID
		if i := strings.IndexByte(os.PrettyName, '('); i >= 0 {
			if q := strings.TrimSuffix(os.PrettyName[i+1:], ")"); strings.HasPrefix(q, "LTS") {
				rel += "-" + q
			}
		}
		return base + ":" + rel
	}
	return base
}

// RedHatCPEPrefix returns the prefix of the OSV "Red Hat" ecosystem strings
// that cover os's release ("Red Hat:enterprise_linux:9"), or "" when os is
// not RHEL or its major version is unknown.
func RedHatCPEPrefix(os *model.OS) string {
	if os == nil || os.ID != "rhel" {
		return ""
	}
	m, _, _ := strings.Cut(os.VersionID, ".")
	if !isDigits(m) {
		return ""
	}
	return EcosystemRedHat + ":enterprise_linux:" + m
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// osPackageTypes are the package types Apply scopes to the OS.
func isOSPackageType(t string) bool {
	return t == model.TypeDeb || t == model.TypeAPK || t == model.TypeRPM
}

// Apply scopes the OS packages (deb, apk, rpm) of inv to inv.OS: it sets
// Ecosystem to the OSV base name (Ecosystem) and rewrites PURL with the
// distribution's namespace and a distro qualifier, the way syft and trivy
// spell them:
//
//	pkg:deb/debian/openssl@3.0.11-1~deb12u2?arch=amd64&distro=debian-12
//	pkg:apk/alpine/musl@1.2.4-r2?arch=x86_64&distro=alpine-3.18.4
//	pkg:rpm/redhat/openssl@3.0.7-27.el9?arch=x86_64&distro=rhel-9.3&epoch=1
//
// Other qualifiers (arch, epoch) are kept. A package whose type does not
// belong to a known distribution (an rpm database in a Debian image) is left
// alone: the OS's advisories do not cover it. Apply does nothing when
// inv.OS is nil. A PURL that does not parse is rebuilt from the package's
// fields.
func Apply(inv *model.Inventory) {
	if inv == nil || inv.OS == nil || inv.OS.ID == "" {
		return
	}
	os := inv.OS
	d, known := distros[os.ID]
	if !known {
		d = distro{ecosystem: os.ID, namespace: os.ID}
	}
	distroQ := os.ID
	switch {
	case os.VersionID != "":
		distroQ += "-" + os.VersionID
	case os.Codename != "":
		distroQ += "-" + os.Codename
	}
	for i := range inv.Packages {
		p := &inv.Packages[i]
		if !isOSPackageType(p.Type) || (known && p.Type != d.pkgType) {
			continue
		}
		p.Ecosystem = d.ecosystem
		p.PURL = rewritePURL(p, d.namespace, distroQ)
	}
}

// rewritePURL sets the namespace and distro qualifier of p's purl.
func rewritePURL(p *model.Package, namespace, distroQ string) string {
	u, err := packageurl.FromString(p.PURL)
	if err != nil || u.Type != p.Type {
		u = packageurl.PackageURL{Type: p.Type, Name: p.Name, Version: p.Version}
		if p.Arch != "" {
			u.Qualifiers = packageurl.Qualifiers{{Key: "arch", Value: p.Arch}}
		}
		if p.Type == model.TypeRPM {
			if e, v, ok := strings.Cut(p.Version, ":"); ok {
				u.Version = v
				u.Qualifiers = append(u.Qualifiers, packageurl.Qualifier{Key: "epoch", Value: e})
			}
		}
	}
	q := u.Qualifiers.Map()
	q["distro"] = distroQ
	return packageurl.NewPackageURL(u.Type, namespace, u.Name, u.Version, packageurl.QualifiersFromMap(q), u.Subpath).ToString()
}
