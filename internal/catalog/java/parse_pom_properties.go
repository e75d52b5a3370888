package java

import (
	"bufio"
	"bytes"
	"strings"
)

// pomProperties is the identity Maven writes to
// META-INF/maven/<groupId>/<artifactId>/pom.properties.
type pomProperties struct {
	group, artifact, version string
}

// parsePomProperties reads a pom.properties file (java.util.Properties
// format: "key=value" or "key: value" lines, '#' and '!' comments). It
// reports false when artifactId or version is missing.
func parsePomProperties(b []byte) (pomProperties, bool) {
	var p pomProperties
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 0, 4096), maxMetaBytes)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' || line[0] == '!' {
			continue
		}
		i := strings.IndexAny(line, "=:")
		if i < 0 {
			continue
		}
		key := strings.TrimSpace(line[:i])
		val := strings.TrimSpace(line[i+1:])
		switch key {
		case "groupId":
			p.group = val
		case "artifactId":
			p.artifact = val
		case "version":
			p.version = val
		}
	}
	// A scanner error (a line over maxMetaBytes) leaves what was read.
	return p, p.artifact != "" && p.version != ""
}
