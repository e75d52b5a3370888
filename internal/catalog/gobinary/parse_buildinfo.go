package gobinary

import (
	"debug/buildinfo"
	"fmt"
	"io"
	"runtime/debug"
	"strings"

	packageurl "github.com/package-url/packageurl-go"

	"mamori/internal/model"
)

// parseBinary reads the build information of the executable in r and turns
// it into packages located at path. It returns ErrNotExecutable when r does
// not start with an executable magic number and ErrNoBuildInfo when the
// executable carries no Go build information.
func parseBinary(r io.ReaderAt, path string) ([]model.Package, error) {
	magic, err := readMagic(r)
	if err != nil {
		return nil, fmt.Errorf("gobinary %s: read magic: %w", path, err)
	}
	if !hasExecutableMagic(magic) {
		return nil, ErrNotExecutable
	}
	bi, err := buildinfo.Read(r)
	if err != nil {
		// debug/buildinfo does not export its sentinels; these two messages
		// (errNotGoExe, errUnrecognizedFormat in debug/buildinfo/buildinfo.go)
		// mean "not a Go program", which is the normal case for most
		// executables. Anything else is a damaged Go (or other) executable
		// and is worth a warning.
		msg := err.Error()
		if strings.Contains(msg, "not a Go executable") || strings.Contains(msg, "unrecognized file format") {
			return nil, ErrNoBuildInfo
		}
		return nil, fmt.Errorf("gobinary %s: read build info: %w", path, err)
	}
	return packagesFromBuildInfo(bi, path), nil
}

// packagesFromBuildInfo turns build information into packages: the main
// module (when it has a path), each dependency and the standard library.
//
// Decisions, after syft's and trivy's Go binary catalogers:
//   - the main module's version is kept as recorded, including "(devel)"
//     (DevelVersion) for builds without version information;
//   - a dependency replaced by another module is reported as the
//     replacement (its path and version), because that is the code linked in;
//   - a dependency replaced by a local directory (=> ../dir) has no module
//     identity of its own: it is reported under the original module path
//     with version "(devel)", not under the directory name;
//   - dependencies with an empty path (an old toolchain bug) are skipped.
func packagesFromBuildInfo(bi *debug.BuildInfo, path string) []model.Package {
	pkgs := make([]model.Package, 0, len(bi.Deps)+2)
	seen := make(map[string]bool, len(bi.Deps)+2)
	add := func(name, ver string) {
		if name == "" || seen[name+"@"+ver] {
			return
		}
		seen[name+"@"+ver] = true
		pkgs = append(pkgs, newPackage(name, ver, path))
	}
	if bi.Main.Path != "" {
		m := resolve(&bi.Main)
		add(m.Path, m.Version)
	}
	for _, d := range bi.Deps {
		if d == nil || d.Path == "" {
			continue
		}
		m := resolve(d)
		add(m.Path, m.Version)
	}
	if v, ok := StdlibVersion(bi.GoVersion); ok {
		add(StdlibName, v)
	}
	return pkgs
}

// resolve applies a replace directive to m.
func resolve(m *debug.Module) debug.Module {
	if m.Replace == nil || m.Replace.Path == "" {
		out := *m
		if out.Version == "" {
			out.Version = DevelVersion
		}
		return out
	}
	r := m.Replace
	if isLocalPath(r.Path) || r.Version == "" {
		return debug.Module{Path: m.Path, Version: DevelVersion}
	}
	return debug.Module{Path: r.Path, Version: r.Version}
}

// isLocalPath mirrors golang.org/x/mod/modfile.IsDirectoryPath: replacement
// paths that name a directory rather than a module.
func isLocalPath(p string) bool {
	return strings.HasPrefix(p, "./") || strings.HasPrefix(p, "../") || strings.HasPrefix(p, "/") ||
		p == "." || p == ".." ||
		strings.HasPrefix(p, `.\`) || strings.HasPrefix(p, `..\`) || strings.HasPrefix(p, `\`) ||
		(len(p) >= 2 && p[1] == ':') // C:\ on Windows
}

func newPackage(name, ver, path string) model.Package {
	ns, base := "", name
	if i := strings.LastIndexByte(name, '/'); i >= 0 {
		ns, base = name[:i], name[i+1:]
	}
	return model.Package{
		Name:      name,
		Version:   ver,
		Type:      model.TypeGolang,
		Ecosystem: model.EcosystemGo,
		PURL:      packageurl.NewPackageURL(packageurl.TypeGolang, ns, base, ver, nil, "").ToString(),
		Cataloger: Name,
		Locations: []model.PackageLocation{{Path: path}},
	}
}

// StdlibVersion turns a Go toolchain version as recorded in build
// information ("go1.21.3", "go1.20", "go1.22rc1", "go1.21.3 X:boringcrypto")
// into the semantic version the Go vulnerability database uses for the
// "stdlib" module ("1.21.3", "1.20.0", "1.22.0-rc.1", "1.21.3"), the same
// conversion as golang.org/x/vuln's GoTagToSemver. Development toolchains
// ("devel go1.23-abcdef") and anything unrecognised report false.
func StdlibVersion(goVersion string) (string, bool) {
	v, ok := strings.CutPrefix(strings.TrimSpace(goVersion), "go")
	if !ok {
		return "", false
	}
	// Drop experiment and vendor suffixes: "1.21.3 X:boringcrypto".
	if i := strings.IndexAny(v, " \t"); i >= 0 {
		v = v[:i]
	}
	var nums [3]string
	n := 0
	rest := v
	for n < 3 {
		d := leadingDigits(rest)
		if d == "" {
			return "", false
		}
		nums[n] = d
		n++
		rest = rest[len(d):]
		if !strings.HasPrefix(rest, ".") || n == 3 {
			break
		}
		rest = rest[1:]
	}
	for i := n; i < 3; i++ {
		nums[i] = "0"
	}
	out := nums[0] + "." + nums[1] + "." + nums[2]
	for _, pre := range []string{"rc", "beta", "alpha"} {
		if p, ok := strings.CutPrefix(rest, pre); ok {
			d := leadingDigits(p)
			if d == "" {
				return "", false
			}
			return out + "-" + pre + "." + d, true
		}
	}
	// Anything else after the numbers ("-bigcorp", "+auto") is a vendor
	// build of that release.
	if rest != "" && rest[0] != '-' && rest[0] != '+' {
		return "", false
	}
	return out, true
}

func leadingDigits(s string) string {
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	if i > 9 { // no real version component is this long
		return ""
	}
	return s[:i]
}
