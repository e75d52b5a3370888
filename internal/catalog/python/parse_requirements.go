package python

import (
	"strings"

	"mamori/internal/model"
)

var _ parseFunc = parseRequirements

// parseRequirements reads a pip requirements file
// (https://pip.pypa.io/en/stable/reference/requirements-file-format/) and
// returns only requirements pinned to one exact version with "==" (or
// "==="): a range says nothing certain about what is installed.
//
// Handled: comments (" #", or "#" at line start), "\" line continuations,
// extras (name[a,b]), environment markers (after ";"), per-requirement
// options (--hash=...). Skipped: options lines (-r, -c, -e, --index-url:
// included files are not followed), URLs and paths, "name @ url", and
// wildcard pins ("==1.*"). A requirements file carries no dev/prod
// distinction, so Dev is false. It is never an error: pip would reject bad
// lines, but other lines stay meaningful.
func parseRequirements(path string, data []byte) ([]model.Package, error) {
	var pkgs []model.Package
	text := strings.ReplaceAll(string(data), "\r\n", "\n")
	var logical strings.Builder
	for text != "" {
		var line string
		line, text, _ = strings.Cut(text, "\n")
		line = stripComment(line)
		if cont, ok := strings.CutSuffix(line, `\`); ok {
			logical.WriteString(cont)
			logical.WriteByte(' ')
			if logical.Len() < maxRequirementsSize {
				continue
			}
		}
		logical.WriteString(line)
		if name, version, ok := pinnedRequirement(logical.String()); ok {
			pkgs = append(pkgs, newPackage(name, version, path, false, nil))
		}
		logical.Reset()
	}
	return dedupe(pkgs), nil
}

// stripComment removes a comment: "#" at the start of the line or after
// whitespace (a "#" inside a URL fragment is not a comment).
func stripComment(line string) string {
	for i := 0; i < len(line); i++ {
		if line[i] == '#' && (i == 0 || line[i-1] == ' ' || line[i-1] == '\t') {
			return line[:i]
		}
	}
	return line
}

// pinnedRequirement parses one logical requirement line and returns its
// name and exact version.
func pinnedRequirement(line string) (name, version string, ok bool) {
	line = strings.TrimSpace(line)
	if line == "" || line[0] == '-' {
		return "", "", false
	}
	// Per-requirement options start with " --" (" --hash=sha256:...").
	if i := strings.Index(line, " --"); i >= 0 {
		line = line[:i]
	}
	if i := strings.IndexByte(line, ';'); i >= 0 {
		line = line[:i]
	}
	line = strings.TrimSpace(line)
	// The name runs up to the first character that cannot be in one.
	end := 0
	for end < len(line) && isNameChar(line[end]) {
		end++
	}
	name, rest := line[:end], strings.TrimSpace(line[end:])
	if !validName(name) {
		return "", "", false
	}
	if strings.HasPrefix(rest, "[") {
		close := strings.IndexByte(rest, ']')
		if close < 0 {
			return "", "", false
		}
		rest = strings.TrimSpace(rest[close+1:])
	}
	// "name (==1.0)" is an old but valid form.
	rest = strings.TrimSpace(strings.TrimSuffix(strings.TrimPrefix(rest, "("), ")"))
	for _, clause := range strings.Split(rest, ",") {
		clause = strings.TrimSpace(clause)
		v, isPin := strings.CutPrefix(clause, "==")
		if !isPin {
			continue
		}
		v = strings.TrimSpace(strings.TrimPrefix(v, "="))
		if validVersion(v) {
			return name, v, true
		}
	}
	return "", "", false
}

func isNameChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-'
}
