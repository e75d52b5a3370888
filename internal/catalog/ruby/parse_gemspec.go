package ruby

import (
	"errors"
	"fmt"
	"regexp"
	"strings"

	"mamori/internal/model"
)

// ErrNoGem is returned for a gemspec from which no literal name and version
// can be read.
var ErrNoGem = errors.New("ruby: gemspec has no literal name and version")

var (
	// specBlock finds the block variable of "Gem::Specification.new do |s|"
	// (or "{ |spec|").
	specBlock = regexp.MustCompile(`Gem::Specification\.new\s*(?:\([^)]*\)\s*)?(?:do|\{)\s*\|\s*([A-Za-z_][A-Za-z0-9_]*)\s*\|`)
	// stubLine is the first-line summary RubyGems writes since 2.0:
	// "# stub: nokogiri 1.15.4 x86_64-linux lib".
	stubLine = regexp.MustCompile(`(?m)^# stub: (\S+) (\S+) (\S+)`)
)

var _ parseFunc = parseGemspec

// parseGemspec reads an installed gemspec as written by
// Gem::Specification#to_ruby, textually:
//
//	Gem::Specification.new do |s|
//	  s.name = "rake".freeze
//	  s.version = "13.0.6"
//	  s.platform = "x86_64-linux".freeze
//	  s.licenses = ["MIT".freeze]
//
// Older RubyGems wrote %q{...} literals; both forms and any block variable
// name are accepted. Values that are not literals (a constant, a method
// call without literal arguments) are not evaluated; when name or version is
// not a literal the "# stub:" comment line is used, else ErrNoGem.
func parseGemspec(path string, data []byte) ([]model.Package, error) {
	text := string(data)
	v := "s"
	if m := specBlock.FindStringSubmatch(text); m != nil {
		v = m[1]
	}
	prefix := v + "."
	var name, version, platform string
	var licenses []string
	for line := range strings.Lines(text) {
		rest, ok := afterReceiver(line, prefix)
		if !ok {
			continue
		}
		attr, value, ok := strings.Cut(rest, "=")
		if !ok || strings.HasPrefix(value, "=") || strings.HasPrefix(value, "~") {
			continue // "==" or "=~", not an assignment
		}
		attr = strings.TrimSpace(attr)
		lits := rubyStrings(value)
		if len(lits) == 0 {
			continue
		}
		switch attr {
		case "name":
			if name == "" {
				name = lits[0]
			}
		case "version":
			if version == "" {
				version = lits[0]
			}
		case "platform":
			if platform == "" {
				platform = lits[0]
			}
		case "license", "licenses":
			if licenses == nil {
				for _, l := range lits {
					if l = strings.TrimSpace(l); l != "" && len(l) <= 128 {
						licenses = append(licenses, l)
					}
				}
			}
		}
	}
	if m := stubLine.FindStringSubmatch(text); m != nil {
		if name == "" {
			name = m[1]
		}
		if version == "" {
			version = m[2]
		}
		if platform == "" {
			platform = m[3]
		}
	}
	if !validName(name) || !validVersion(version) {
		return nil, fmt.Errorf("%w (name %q, version %q)", ErrNoGem, clip(name), clip(version))
	}
	if !validName(platform) {
		platform = ""
	}
	return []model.Package{newPackage(name, version, platform, path, licenses)}, nil
}

// afterReceiver returns what follows the first "s." in line that starts a
// method call on the block variable (at the start of the line or after a
// character that cannot be part of an identifier: "{ |s| s.name = ...").
func afterReceiver(line, prefix string) (string, bool) {
	for from := 0; from < len(line); {
		i := strings.Index(line[from:], prefix)
		if i < 0 {
			return "", false
		}
		i += from
		if i == 0 || !isIdentChar(line[i-1]) && line[i-1] != '.' && line[i-1] != '"' && line[i-1] != '\'' {
			return line[i+len(prefix):], true
		}
		from = i + len(prefix)
	}
	return "", false
}

func isIdentChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_'
}

// rubyStrings returns the string literals in a line of Ruby, in order:
// "double" (with backslash escapes), 'single', and %q/%Q/% literals with
// (), [], {} or <> delimiters. Anything else is skipped.
func rubyStrings(s string) []string {
	var out []string
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '#':
			return out // a comment runs to the end of the line
		case '"', '\'':
			var b strings.Builder
			j := i + 1
			for ; j < len(s) && s[j] != c; j++ {
				if s[j] == '\\' && j+1 < len(s) {
					j++
					if c == '\'' && s[j] != '\'' && s[j] != '\\' {
						b.WriteByte('\\')
					}
				}
				b.WriteByte(s[j])
			}
			if j >= len(s) {
				return out // unterminated
			}
			out = append(out, b.String())
			i = j
		case '%':
			j := i + 1
			if j < len(s) && (s[j] == 'q' || s[j] == 'Q' || s[j] == 'w' || s[j] == 'W') {
				j++
			}
			if j >= len(s) {
				return out
			}
			closer := map[byte]byte{'(': ')', '[': ']', '{': '}', '<': '>'}[s[j]]
			if closer == 0 {
				continue
			}
			end := strings.IndexByte(s[j+1:], closer)
			if end < 0 {
				return out
			}
			body := s[j+1 : j+1+end]
			if s[j-1] == 'w' || s[j-1] == 'W' {
				out = append(out, strings.Fields(body)...)
			} else {
				out = append(out, body)
			}
			i = j + 1 + end
		}
	}
	return out
}

func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}
