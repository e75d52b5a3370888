package python

import (
	"strings"

	packageurl "github.com/package-url/packageurl-go"

	"mamori/internal/model"
)

// newPackage builds a PyPI package found in the file at path.
func newPackage(name, version, path string, dev bool, licenses []string) model.Package {
	return model.Package{
		Name:      name,
		Version:   version,
		Type:      model.TypePyPI,
		Ecosystem: model.EcosystemPyPI,
		PURL:      packageurl.NewPackageURL(packageurl.TypePyPi, "", NormalizeName(name), version, nil, "").ToString(),
		Licenses:  licenses,
		Dev:       dev,
		Locations: []model.PackageLocation{{Path: path}},
	}
}

// NormalizeName returns the PEP 503 normalised form of a project name:
// lowercase, with every run of '-', '_' and '.' replaced by a single '-'
// ("Flask_Cors" -> "flask-cors", "zope.interface" -> "zope-interface").
// The purl specification's pypi type and OSV's PyPI records use this form.
func NormalizeName(name string) string {
	var b strings.Builder
	b.Grow(len(name))
	sep := false
	for i := 0; i < len(name); i++ {
		c := name[i]
		if c == '-' || c == '_' || c == '.' {
			sep = true
			continue
		}
		if sep && b.Len() > 0 {
			b.WriteByte('-')
		}
		sep = false
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		b.WriteByte(c)
	}
	return b.String()
}

// validName reports whether name is a valid project name per PEP 508:
// ASCII letters and digits, with '.', '_' and '-' inside.
func validName(name string) bool {
	if name == "" || len(name) > 256 {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		alnum := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
		if !alnum && ((c != '.' && c != '_' && c != '-') || i == 0 || i == len(name)-1) {
			return false
		}
	}
	return true
}

// validVersion reports whether v can be a release version: it must start
// with a digit (or 'v' and a digit, which PEP 440 tolerates) and hold only
// the characters PEP 440 versions (and legacy versions) use.
func validVersion(v string) bool {
	if v == "" || len(v) > 128 {
		return false
	}
	s := v
	if s[0] == 'v' || s[0] == 'V' {
		s = s[1:]
	}
	if s == "" || s[0] < '0' || s[0] > '9' {
		return false
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case c >= '0' && c <= '9', c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z':
		case c == '.', c == '-', c == '+', c == '_', c == '!':
		default:
			return false
		}
	}
	return true
}

// dedupe merges packages with the same normalised name and version found in
// one file: a package is Dev only if every occurrence is.
func dedupe(pkgs []model.Package) []model.Package {
	idx := make(map[string]int, len(pkgs))
	out := pkgs[:0]
	for _, p := range pkgs {
		k := NormalizeName(p.Name) + "@" + p.Version
		if i, ok := idx[k]; ok {
			out[i].Dev = out[i].Dev && p.Dev
			continue
		}
		idx[k] = len(out)
		out = append(out, p)
	}
	model.SortPackages(out)
	return out
}
