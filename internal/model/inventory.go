package model

import (
	"sort"
	"strings"
)

// Package types, spelt as package-url types (https://github.com/package-url/purl-spec).
const (
	TypeDeb      = "deb"
	TypeAPK      = "apk"
	TypeRPM      = "rpm"
	TypeGolang   = "golang"
	TypeNPM      = "npm"
	TypePyPI     = "pypi"
	TypeMaven    = "maven"
	TypeGem      = "gem"
	TypeCargo    = "cargo"
	TypeComposer = "composer"
	TypeNuGet    = "nuget"
)

// OSV ecosystem names (https://ossf.github.io/osv-schema/#affectedpackage-field)
// for language packages. OS packages get theirs from the detected OS
// (Debian, Ubuntu, Alpine, AlmaLinux, Rocky Linux, Red Hat, SUSE ...).
const (
	EcosystemGo        = "Go"
	EcosystemNPM       = "npm"
	EcosystemPyPI      = "PyPI"
	EcosystemMaven     = "Maven"
	EcosystemRubyGems  = "RubyGems"
	EcosystemCratesIO  = "crates.io"
	EcosystemPackagist = "Packagist"
	EcosystemNuGet     = "NuGet"
)

// PackageLocation is where a package was found: a clean slash-separated path
// relative to the root of the image or file tree (no leading slash), and the
// diff ID of the layer that holds that file (empty for file trees).
type PackageLocation struct {
	Path        string `json:"path"`
	LayerDiffID string `json:"layerDiffID,omitempty"`
}

// Package is one installed package.
type Package struct {
	// Name is the ecosystem's own name: "openssl" (deb), "@babel/core" (npm),
	// "org.apache.commons:commons-text" (maven, group:artifact), "github.com/x/y" (golang).
	Name string `json:"name"`
	// Version is the ecosystem's full version string, as the ecosystem's
	// version ordering reads it: "1:2.36-9+deb12u4" (deb, with epoch when not 0),
	// "1:3.0.7-27.el9" (rpm epoch:version-release, epoch when not 0), "1.2.3-r0" (apk).
	Version string `json:"version"`
	// Type is the package-url type (TypeDeb ...).
	Type string `json:"type"`
	// Ecosystem is the OSV ecosystem without release ("Debian", "npm" ...);
	// for OS packages it is filled in when the OS is known.
	Ecosystem string `json:"ecosystem,omitempty"`
	// PURL is the package-url of the package.
	PURL string `json:"purl"`
	// SourceName and SourceVersion name the source package an OS package was
	// built from (dpkg Source:, rpm SOURCERPM, apk origin); empty when the
	// same as Name/Version or unknown.
	SourceName    string   `json:"sourceName,omitempty"`
	SourceVersion string   `json:"sourceVersion,omitempty"`
	Arch          string   `json:"arch,omitempty"`
	Licenses      []string `json:"licenses,omitempty"`
	// Cataloger names the analyzer that found it ("dpkg", "npm-lock" ...).
	Cataloger string `json:"cataloger"`
	// Dev is true for development-only dependencies (npm devDependencies ...).
	Dev       bool              `json:"dev,omitempty"`
	Locations []PackageLocation `json:"locations"`
	// Owner is the OS package that installed this package's files (a
	// Python or Ruby library from Debian's python3-* or ruby-* packages),
	// when the first location is listed in the OS package database.
	Owner *FileOwner `json:"owner,omitempty"`
	// Files are the package's files a process can execute or load, as its
	// package database lists them (OS packages: executables and shared
	// libraries, see internal/inuse.Loadable), sorted; they map the
	// runtime agent's load events back to the package.
	Files []string `json:"files,omitempty"`
}

// Key identifies a package for de-duplication: the same name and version of
// the same type and architecture at the same path is one package. The
// architecture matters for multi-arch installs: Debian's libc6:amd64 and
// libc6:i386 of one version are two packages in one status file.
func (p *Package) Key() string {
	path := ""
	if len(p.Locations) > 0 {
		path = p.Locations[0].Path
	}
	return p.Type + "\x00" + p.Name + "\x00" + p.Version + "\x00" + p.Arch + "\x00" + path
}

// OS is the detected operating system of an image or file tree.
type OS struct {
	// ID is os-release's ID ("debian", "ubuntu", "alpine", "rhel", "almalinux", "rocky" ...).
	ID string `json:"id"`
	// VersionID is os-release's VERSION_ID ("12", "22.04", "3.18.4", "9.3").
	VersionID  string `json:"versionID,omitempty"`
	Codename   string `json:"codename,omitempty"`
	PrettyName string `json:"prettyName,omitempty"`
	// IDLike is os-release's ID_LIKE, split.
	IDLike []string `json:"idLike,omitempty"`
}

// Inventory is everything the inventory half found in one target.
type Inventory struct {
	OS       *OS       `json:"os,omitempty"`
	Packages []Package `json:"packages"`
}

// SortPackages orders packages by type, name, version and first path, so that
// output is stable.
func SortPackages(pkgs []Package) {
	sort.SliceStable(pkgs, func(i, j int) bool {
		a, b := &pkgs[i], &pkgs[j]
		if a.Type != b.Type {
			return a.Type < b.Type
		}
		if a.Name != b.Name {
			return a.Name < b.Name
		}
		if a.Version != b.Version {
			return a.Version < b.Version
		}
		return firstPath(a) < firstPath(b)
	})
}

func firstPath(p *Package) string {
	if len(p.Locations) == 0 {
		return ""
	}
	return p.Locations[0].Path
}

// CleanPath turns a path from a tar header or a walk into the form used in
// Locations: slash-separated, no leading "/" or "./". It does not resolve "..";
// callers refuse such paths before they get here.
func CleanPath(p string) string {
	p = strings.TrimPrefix(p, "./")
	return strings.TrimLeft(p, "/")
}
