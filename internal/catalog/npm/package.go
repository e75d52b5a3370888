package npm

import (
	"strings"

	packageurl "github.com/package-url/packageurl-go"

	"mamori/internal/model"
)

// newPackage builds an npm package found in the file at path.
func newPackage(name, version, path string, dev bool, licenses []string) model.Package {
	return model.Package{
		Name:      name,
		Version:   version,
		Type:      model.TypeNPM,
		Ecosystem: model.EcosystemNPM,
		PURL:      purl(name, version),
		Licenses:  licenses,
		Dev:       dev,
		Locations: []model.PackageLocation{{Path: path}},
	}
}

// purl returns pkg:npm/name@version, with the scope of a scoped package as
// namespace ("@babel/core" -> pkg:npm/%40babel/core@7.0.0), as the purl
// specification's npm type defines it.
func purl(name, version string) string {
	ns := ""
	if strings.HasPrefix(name, "@") {
		if scope, rest, ok := strings.Cut(name, "/"); ok {
			ns, name = scope, rest
		}
	}
	return packageurl.NewPackageURL(packageurl.TypeNPM, ns, name, version, nil, "").ToString()
}

// validName reports whether name can be an npm package name: non-empty, at
// most 214 characters (npm's limit), no whitespace or control characters,
// and a scoped name has both a scope and a name. It is deliberately looser
// than npm's validate-npm-package-name (legacy names with capitals exist).
func validName(name string) bool {
	if name == "" || len(name) > 214 {
		return false
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; c <= ' ' || c == 0x7f {
			return false
		}
	}
	if name[0] == '@' {
		scope, rest, ok := strings.Cut(name, "/")
		return ok && len(scope) > 1 && rest != "" && !strings.Contains(rest, "/")
	}
	return !strings.Contains(name, "/")
}

// validVersion reports whether version looks like a registry version (semver,
// possibly loose) rather than a URL, a path or a git reference, which cannot
// be matched against advisories.
func validVersion(v string) bool {
	if v == "" || len(v) > 256 {
		return false
	}
	if v[0] < '0' || v[0] > '9' {
		return false
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case c >= '0' && c <= '9', c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z':
		case c == '.', c == '-', c == '+', c == '_':
		default:
			return false
		}
	}
	return true
}

// dedupe merges packages with the same name and version found in one file:
// a package is Dev only if every occurrence is.
func dedupe(pkgs []model.Package) []model.Package {
	idx := make(map[string]int, len(pkgs))
	out := pkgs[:0]
	for _, p := range pkgs {
		k := p.Name + "@" + p.Version
		if i, ok := idx[k]; ok {
			out[i].Dev = out[i].Dev && p.Dev
			if len(out[i].Licenses) == 0 {
				out[i].Licenses = p.Licenses
			}
			continue
		}
		idx[k] = len(out)
		out = append(out, p)
	}
	model.SortPackages(out)
	return out
}
