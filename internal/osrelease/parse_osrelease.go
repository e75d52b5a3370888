package osrelease

import (
	"bytes"
	"io"
	"strings"

	"mamori/internal/model"
)

// parseEnvFile reads an os-release style file: KEY=VALUE assignments, one a
// line, as specified by
// https://www.freedesktop.org/software/systemd/man/latest/os-release.html:
// blank lines and lines starting with "#" are ignored, values may be
// enclosed in double or single quotes, and in double quotes (and unquoted)
// the shell escapes \" \\ \$ \` are honoured. Unquoted trailing whitespace is
// dropped. Lines without "=" or with an invalid key are skipped, as systemd's
// own parser does. lsb-release uses the same syntax.
func parseEnvFile(data []byte) map[string]string {
	fields := make(map[string]string)
	for _, raw := range strings.Split(string(data), "\n") {
		line := strings.TrimSpace(raw)
		if line == "" || line[0] == '#' {
			continue
		}
		key, value, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		key = strings.TrimSpace(key)
		if !validKey(key) {
			continue
		}
		fields[key] = unquote(strings.TrimLeft(value, " \t"))
	}
	return fields
}

// validKey accepts shell variable names ([A-Za-z_][A-Za-z0-9_]*).
func validKey(k string) bool {
	if k == "" {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		switch {
		case c == '_', c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z':
		case c >= '0' && c <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}

// unquote applies the shell-like quoting rules of os-release to one value.
// Quoted and unquoted runs may be concatenated (A="x"y is "xy"). An
// unterminated quote takes the rest of the line, as systemd does.
func unquote(s string) string {
	var b strings.Builder
	const (
		plain = iota
		single
		double
	)
	state := plain
	trailingWS := 0 // unquoted whitespace at the end of b, trimmed at the end
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch state {
		case plain:
			switch c {
			case '\'':
				state, trailingWS = single, 0
			case '"':
				state, trailingWS = double, 0
			case '\\':
				if i+1 < len(s) {
					i++
					b.WriteByte(s[i])
				}
				trailingWS = 0
			case ' ', '\t':
				b.WriteByte(c)
				trailingWS++
			default:
				b.WriteByte(c)
				trailingWS = 0
			}
		case single:
			if c == '\'' {
				state = plain
				continue
			}
			b.WriteByte(c)
		case double:
			switch {
			case c == '"':
				state = plain
			case c == '\\' && i+1 < len(s) && strings.IndexByte("\"\\$`", s[i+1]) >= 0:
				i++
				b.WriteByte(s[i])
			default:
				b.WriteByte(c)
			}
		}
	}
	out := b.String()
	return out[:len(out)-trailingWS]
}

// ParseOSRelease parses the content of an os-release file into an OS. It
// returns ErrNoID when the file has no ID field (the spec's default "linux"
// is useless for matching, so it is not assumed).
func ParseOSRelease(r io.Reader) (*model.OS, error) {
	data, err := readSmall(r)
	if err != nil {
		return nil, err
	}
	f := parseEnvFile(data)
	id := strings.ToLower(f["ID"])
	if id == "" {
		return nil, ErrNoID
	}
	os := &model.OS{
		ID:         id,
		VersionID:  f["VERSION_ID"],
		Codename:   f["VERSION_CODENAME"],
		PrettyName: f["PRETTY_NAME"],
	}
	if os.Codename == "" {
		// Ubuntu before 17.10 only had UBUNTU_CODENAME.
		os.Codename = f["UBUNTU_CODENAME"]
	}
	for _, like := range strings.Fields(f["ID_LIKE"]) {
		os.IDLike = append(os.IDLike, strings.ToLower(like))
	}
	return os, nil
}

// firstLine returns the first non-empty line of a small release file.
func firstLine(data []byte) string {
	for _, line := range bytes.Split(data, []byte("\n")) {
		if l := strings.TrimSpace(string(line)); l != "" {
			return l
		}
	}
	return ""
}
