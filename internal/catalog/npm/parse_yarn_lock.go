package npm

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"

	yaml "go.yaml.in/yaml/v3"

	"mamori/internal/model"
)

// ErrYarnSyntax is returned for a yarn.lock v1 line that cannot be read.
var ErrYarnSyntax = errors.New("npm: yarn.lock syntax error")

// maxYarnLine bounds one line of yarn.lock v1 (keys of an entry with many
// specifiers are the longest lines; a few KiB in practice).
const maxYarnLine = 1 << 20

var _ parseFunc = parseYarnLock

// parseYarnLock reads yarn.lock, classic (v1, yarn's own indented syntax) or
// berry (yarn 2+, YAML with a __metadata entry). yarn.lock does not say which
// packages are development-only, so Dev is always false.
func parseYarnLock(path string, data []byte) ([]model.Package, error) {
	if isBerry(data) {
		return parseYarnBerry(path, data)
	}
	return parseYarnV1(path, data)
}

// isBerry reports whether a yarn.lock is in the YAML format of yarn 2+,
// recognised by its top-level "__metadata:" key.
func isBerry(data []byte) bool {
	return bytes.HasPrefix(data, []byte("__metadata:")) || bytes.Contains(data, []byte("\n__metadata:"))
}

// parseYarnV1 reads the classic format
// (https://classic.yarnpkg.com/en/docs/yarn-lock):
//
//	"@babel/code-frame@^7.0.0", "@babel/code-frame@^7.10.4":
//	  version "7.12.13"
//	  resolved "https://registry.yarnpkg.com/..."
//	  dependencies:
//	    "@babel/highlight" "^7.12.13"
//
// An entry starts with an unindented line of comma-separated specifiers
// (name@range, quoted when needed) ending in ":"; its "version" is on a line
// indented once. Only registry packages are kept (see registryRange).
func parseYarnV1(path string, data []byte) ([]model.Package, error) {
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64<<10), maxYarnLine)
	var (
		pkgs    []model.Package
		specs   []string // specifiers of the current entry; nil outside one
		version string
		lineNo  int
	)
	flush := func() {
		if specs != nil && version != "" {
			if name, ok := yarnEntryName(specs); ok && validVersion(version) {
				pkgs = append(pkgs, newPackage(name, version, path, false, nil))
			}
		}
		specs, version = nil, ""
	}
	for sc.Scan() {
		lineNo++
		line := strings.TrimRight(sc.Text(), " \t\r")
		trimmed := strings.TrimLeft(line, " ")
		if trimmed == "" || trimmed[0] == '#' {
			continue
		}
		indent := len(line) - len(trimmed)
		if indent == 0 {
			flush()
			if !strings.HasSuffix(line, ":") {
				return nil, fmt.Errorf("%w: line %d: entry key does not end with ':'", ErrYarnSyntax, lineNo)
			}
			s, err := splitSpecifiers(line[:len(line)-1])
			if err != nil {
				return nil, fmt.Errorf("%w: line %d: %v", ErrYarnSyntax, lineNo, err)
			}
			specs = s
			continue
		}
		if specs == nil || indent != 2 {
			continue
		}
		key, value := splitYarnField(trimmed)
		if key == "version" {
			version = value
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read yarn.lock: %w", err)
	}
	flush()
	return dedupe(pkgs), nil
}

// splitSpecifiers splits `"a@^1", a@~1.2` into its specifiers, honouring
// double quotes (a quoted specifier may contain commas and colons).
func splitSpecifiers(s string) ([]string, error) {
	var out []string
	for {
		s = strings.TrimLeft(s, " ")
		if s == "" {
			break
		}
		var spec string
		if s[0] == '"' {
			end := closingQuote(s)
			if end < 0 {
				return nil, errors.New("unterminated quoted key")
			}
			spec = unquote(s[:end+1])
			s = s[end+1:]
		} else {
			i := strings.IndexByte(s, ',')
			if i < 0 {
				i = len(s)
			}
			spec = strings.TrimSpace(s[:i])
			s = s[i:]
		}
		out = append(out, spec)
		s = strings.TrimLeft(s, " ")
		if s == "" {
			break
		}
		if s[0] != ',' {
			return nil, errors.New("expected ',' between keys")
		}
		s = s[1:]
	}
	if len(out) == 0 {
		return nil, errors.New("empty entry key")
	}
	return out, nil
}

// closingQuote returns the index of the '"' closing the string that s starts
// with, skipping backslash escapes, or -1.
func closingQuote(s string) int {
	for i := 1; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case '"':
			return i
		}
	}
	return -1
}

// unquote removes the quotes of a JSON-style quoted string as yarn writes
// them, falling back to trimming the quotes for escapes Go does not know.
func unquote(q string) string {
	if s, err := strconv.Unquote(q); err == nil {
		return s
	}
	return strings.Trim(q, `"`)
}

// splitYarnField splits a property line `version "1.0.0"` (or the tolerated
// `version: 1.0.0`) into key and unquoted value.
func splitYarnField(line string) (key, value string) {
	if line[0] == '"' {
		end := closingQuote(line)
		if end < 0 {
			return "", ""
		}
		key, line = unquote(line[:end+1]), line[end+1:]
	} else {
		i := strings.IndexAny(line, " :")
		if i < 0 {
			return line, ""
		}
		key, line = line[:i], line[i:]
	}
	line = strings.TrimLeft(line, ":")
	line = strings.TrimSpace(line)
	if strings.HasPrefix(line, `"`) {
		if end := closingQuote(line); end > 0 {
			return key, unquote(line[:end+1])
		}
	}
	return key, line
}

// yarnEntryName returns the registry package name an entry's specifiers
// resolve to, and false when none is a registry specifier.
func yarnEntryName(specs []string) (string, bool) {
	for _, spec := range specs {
		name, rng, ok := splitNameRange(spec)
		if !ok {
			continue
		}
		if target, isAlias := strings.CutPrefix(rng, "npm:"); isAlias {
			// "string-width-cjs@npm:string-width@^4.2.0": the real package.
			if n, r, ok := splitNameRange(target); ok {
				name, rng = n, r
			} else if validName(target) {
				name, rng = target, "*"
			} else {
				continue
			}
		}
		if registryRange(rng) && validName(name) {
			return name, true
		}
	}
	return "", false
}

// splitNameRange splits "name@range" or "@scope/name@range" at the '@' that
// ends the name.
func splitNameRange(spec string) (name, rng string, ok bool) {
	from := 0
	if strings.HasPrefix(spec, "@") {
		from = 1
	}
	i := strings.IndexByte(spec[from:], '@')
	if i < 0 {
		return "", "", false
	}
	i += from
	return spec[:i], spec[i+1:], spec[:i] != ""
}

// registryRange reports whether a dependency range refers to the registry
// (a semver range, a tag or a tarball URL) rather than to a local directory,
// a workspace or a git repository, whose versions cannot be matched against
// advisories for the registry package of the same name.
func registryRange(r string) bool {
	for _, p := range []string{"file:", "link:", "portal:", "workspace:", "patch:", "exec:",
		"git:", "git+", "git@", "github:", "gitlab:", "bitbucket:", "gist:"} {
		if strings.HasPrefix(r, p) {
			return false
		}
	}
	if strings.Contains(r, "://") {
		// A tarball URL is a registry download; a repository URL or a
		// GitHub archive of a git ref is git.
		return !strings.Contains(r, ".git#") && !strings.HasSuffix(r, ".git") &&
			!strings.Contains(r, "#commit=") && !strings.Contains(r, "codeload.github.com/")
	}
	// "user/repo" or "user/repo#ref" is GitHub shorthand.
	return !strings.Contains(r, "/")
}

// berryEntry is one package of a yarn berry lock file
// (https://yarnpkg.com/advanced/lockfile is not a formal spec; the fields are
// those yarn writes: version, resolution, linkType ...).
type berryEntry struct {
	Version    string `yaml:"version"`
	Resolution string `yaml:"resolution"`
	LinkType   string `yaml:"linkType"`
}

// parseYarnBerry reads a yarn 2+ lock file. The package is named by its
// "resolution" (name@npm:1.2.3); workspaces, links, portals and patches
// (a patched package is also listed unpatched) are skipped.
func parseYarnBerry(path string, data []byte) ([]model.Package, error) {
	// Every top-level value, __metadata included, is a mapping; decoding
	// straight into the entry type is several times faster than via nodes.
	var doc map[string]berryEntry
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("parse yarn.lock (berry): %w", err)
	}
	var pkgs []model.Package
	for key, e := range doc {
		if key == "__metadata" || e.LinkType == "soft" {
			continue
		}
		name, rng, ok := splitNameRange(e.Resolution)
		if !ok {
			continue
		}
		if v, isNPM := strings.CutPrefix(rng, "npm:"); isNPM {
			if e.Version == "" {
				e.Version = v
			}
		} else if !registryRange(rng) {
			continue
		}
		if validName(name) && validVersion(e.Version) {
			pkgs = append(pkgs, newPackage(name, e.Version, path, false, nil))
		}
	}
	return dedupe(pkgs), nil
}
