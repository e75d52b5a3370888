package ruby

import (
	"strings"

	packageurl "github.com/package-url/packageurl-go"

	"mamori/internal/model"
)

// newPackage builds a gem found in the file at path. platform is the gem's
// platform for installed platform gems ("x86_64-linux"), empty for pure-Ruby
// gems and for lock entries.
func newPackage(name, version, platform, path string, licenses []string) model.Package {
	var q packageurl.Qualifiers
	if platform != "" && platform != "ruby" {
		q = packageurl.QualifiersFromMap(map[string]string{"platform": platform})
	} else {
		platform = ""
	}
	return model.Package{
		Name:      name,
		Version:   version,
		Type:      model.TypeGem,
		Ecosystem: model.EcosystemRubyGems,
		PURL:      packageurl.NewPackageURL(packageurl.TypeGem, "", name, version, q, "").ToString(),
		Arch:      platform,
		Licenses:  licenses,
		Locations: []model.PackageLocation{{Path: path}},
	}
}

// validName reports whether name can be a gem name (RubyGems allows
// letters, digits, '.', '_' and '-').
func validName(name string) bool {
	if name == "" || len(name) > 256 {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// validVersion reports whether v matches Gem::Version's pattern
// ([0-9]+(\.[0-9a-zA-Z]+)*(-[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*)?) loosely:
// a leading digit and only those characters.
func validVersion(v string) bool {
	if v == "" || len(v) > 128 || v[0] < '0' || v[0] > '9' {
		return false
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '-') {
			return false
		}
	}
	return true
}

// platformPrefixes start the CPU part of a Gem::Platform string
// ("x86_64-linux", "arm64-darwin", "x64-mingw-ucrt", "java", "universal-darwin").
var platformPrefixes = []string{
	"x86", "x64", "i386", "i486", "i586", "i686", "amd64", "aarch64", "arm", "universal",
	"powerpc", "ppc", "s390", "sparc", "mips", "riscv", "loongarch", "wasm", "java", "jruby", "dalvik",
	"mswin", "mingw", "dotnet",
}

// splitPlatform splits a Gemfile.lock version "1.15.4-x86_64-linux" into
// version and platform. Bundler writes "version-platform" for platform gems;
// a pre-release written with a dash ("1.0.0-rc1") is not a platform and is
// left alone.
func splitPlatform(v string) (version, platform string) {
	i := strings.IndexByte(v, '-')
	if i < 0 {
		return v, ""
	}
	rest := strings.ToLower(v[i+1:])
	for _, p := range platformPrefixes {
		if strings.HasPrefix(rest, p) {
			return v[:i], v[i+1:]
		}
	}
	for _, os := range []string{"linux", "darwin", "mingw", "mswin", "bsd", "solaris", "cygwin"} {
		if strings.Contains(rest, os) {
			return v[:i], v[i+1:]
		}
	}
	return v, ""
}
