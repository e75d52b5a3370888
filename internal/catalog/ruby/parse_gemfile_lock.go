package ruby

import (
	"strings"

	"mamori/internal/model"
)

var _ parseFunc = parseGemfileLock

// parseGemfileLock reads Gemfile.lock as Bundler writes it
// (https://bundler.io/guides/bundler_setup.html has no grammar; the format is
// Bundler::LockfileParser's):
//
//	GEM
//	  remote: https://rubygems.org/
//	  specs:
//	    nokogiri (1.15.4-x86_64-linux)
//	      racc (~> 1.4)
//
// Only the specs of GEM sections are packages from a gem server; GIT and
// PATH sections (repositories and local directories) are skipped, and so are
// dependency lines (six spaces). A platform suffix is removed from the
// version, so that a gem locked for several platforms is one package.
// Gemfile.lock has no development flag (groups live in the Gemfile), so Dev
// is false. A file without any GEM section yields nothing: it is not an
// error, since a Gemfile.lock may list only git and path gems.
func parseGemfileLock(path string, data []byte) ([]model.Package, error) {
	var (
		pkgs    []model.Package
		seen    = make(map[string]bool)
		inGem   bool
		inSpecs bool
	)
	for line := range strings.Lines(string(data)) {
		line = strings.TrimRight(line, "\r\n")
		if line == "" {
			continue
		}
		if line[0] != ' ' {
			inGem, inSpecs = line == "GEM", false
			continue
		}
		if !inGem {
			continue
		}
		if strings.HasPrefix(line, "  ") && !strings.HasPrefix(line, "   ") {
			inSpecs = line == "  specs:"
			continue
		}
		if !inSpecs || !strings.HasPrefix(line, "    ") || strings.HasPrefix(line, "     ") {
			continue
		}
		name, rest, ok := strings.Cut(line[4:], " (")
		if !ok || !strings.HasSuffix(rest, ")") {
			continue
		}
		version, _ := splitPlatform(strings.TrimSuffix(rest, ")"))
		if !validName(name) || !validVersion(version) || seen[name+"@"+version] {
			continue
		}
		seen[name+"@"+version] = true
		pkgs = append(pkgs, newPackage(name, version, "", path, nil))
	}
	model.SortPackages(pkgs)
	return pkgs, nil
}
