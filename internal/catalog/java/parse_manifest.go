package java

import (
	"bytes"
	"strings"
)

// maxManifestAttrs bounds the attributes kept from one manifest.
const maxManifestAttrs = 512

// parseManifest reads the main section of a JAR manifest
// (https://docs.oracle.com/en/java/javase/21/docs/specs/jar/jar.html#jar-manifest):
// "Name: value" lines, a line starting with one space continuing the one
// before, the main section ending at the first empty line. Attribute names
// are case-insensitive; they are returned as written, the first occurrence
// winning. Malformed lines are skipped.
func parseManifest(b []byte) map[string]string {
	attrs := make(map[string]string)
	b = bytes.TrimPrefix(b, []byte("\xef\xbb\xbf"))
	var key string
	var val strings.Builder
	flush := func() {
		if key != "" && len(attrs) < maxManifestAttrs {
			if _, dup := attrs[key]; !dup {
				attrs[key] = strings.TrimSpace(val.String())
			}
		}
		key = ""
		val.Reset()
	}
	for len(b) > 0 {
		var line []byte
		if i := bytes.IndexAny(b, "\r\n"); i >= 0 {
			line = b[:i]
			if b[i] == '\r' && i+1 < len(b) && b[i+1] == '\n' {
				b = b[i+2:]
			} else {
				b = b[i+1:]
			}
		} else {
			line, b = b, nil
		}
		if len(line) == 0 {
			break // end of the main section
		}
		if line[0] == ' ' {
			if key != "" {
				val.Write(line[1:])
			}
			continue
		}
		flush()
		k, v, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			continue
		}
		key = strings.TrimSpace(string(k))
		val.Write(bytes.TrimPrefix(v, []byte(" ")))
	}
	flush()
	return attrs
}

// manifestGet returns attribute name of m, case-insensitively.
func manifestGet(m map[string]string, name string) string {
	if v, ok := m[name]; ok {
		return v
	}
	for k, v := range m {
		if strings.EqualFold(k, name) {
			return v
		}
	}
	return ""
}
