package java

import (
	"strings"

	packageurl "github.com/package-url/packageurl-go"

	"mamori/internal/model"
)

// coordinates are a Maven artifact's identity. group may be empty when no
// source names it.
type coordinates struct {
	group, artifact, version string
}

// pkg makes the inventory package for c found at loc. Name is
// "group:artifact", or the artifact alone when the group is not known.
func (c coordinates) pkg(loc string) model.Package {
	name := c.artifact
	if c.group != "" {
		name = c.group + ":" + c.artifact
	}
	return model.Package{
		Name:      name,
		Version:   c.version,
		Type:      model.TypeMaven,
		Ecosystem: model.EcosystemMaven,
		PURL:      packageurl.NewPackageURL(packageurl.TypeMaven, c.group, c.artifact, c.version, nil, "").ToString(),
		Cataloger: Name,
		Locations: []model.PackageLocation{{Path: loc}},
	}
}

// identity is what one archive says about itself.
type identity struct {
	fileName string            // base name of the archive ("commons-text-1.9.jar")
	manifest map[string]string // main section of META-INF/MANIFEST.MF, or nil
	poms     []pomProperties
}

// coordinates returns the artifacts of the archive: one per pom.properties,
// and the archive's own identity from its manifest and file name when no
// pom.properties describes the archive itself (as in shaded jars built
// without Maven). An artifact without a version is not reported: it could
// not be matched and is usually the application itself.
func (id *identity) coordinates() []coordinates {
	var out []coordinates
	for _, p := range id.poms {
		out = append(out, coordinates(p))
	}
	fileArtifact, fileVersion := splitFileName(id.fileName)
	if len(id.poms) == 1 {
		return out
	}
	for _, p := range id.poms {
		if p.artifact == fileArtifact {
			return out
		}
	}
	own := id.fromManifest(fileArtifact, fileVersion)
	if own.artifact == "" || own.version == "" {
		return out
	}
	for _, p := range id.poms {
		if p.artifact == own.artifact && (own.group == "" || own.group == p.group) {
			return out
		}
	}
	return append(out, own)
}

// fromManifest derives the archive's own coordinates from its manifest and
// file name, preferring the file name's artifact and version like syft
// (manifest titles are often prose: "Apache Commons Text").
func (id *identity) fromManifest(fileArtifact, fileVersion string) coordinates {
	m := id.manifest
	get := func(keys ...string) string {
		for _, k := range keys {
			if v := manifestGet(m, k); v != "" {
				return v
			}
		}
		return ""
	}
	symbolic := get("Bundle-SymbolicName")
	if i := strings.IndexByte(symbolic, ';'); i >= 0 { // "org.x.y;singleton:=true"
		symbolic = strings.TrimSpace(symbolic[:i])
	}
	var c coordinates
	c.artifact = fileArtifact
	if c.artifact == "" {
		c.artifact = get("Short-Name") // Jenkins plugins
	}
	if c.artifact == "" {
		if t := get("Implementation-Title"); t != "" && !strings.ContainsAny(t, " \t") {
			c.artifact = t
		}
	}
	if c.artifact == "" {
		c.artifact = symbolic
	}
	c.version = fileVersion
	if c.version == "" {
		c.version = get("Implementation-Version", "Plugin-Version", "Bundle-Version", "Specification-Version")
	}
	c.group = get("Implementation-Vendor-Id", "Group-Id")
	if c.group == "" && c.artifact != "" {
		// "org.apache.commons.commons-text" names group org.apache.commons.
		for _, s := range []string{symbolic, get("Automatic-Module-Name")} {
			if g, ok := strings.CutSuffix(s, "."+c.artifact); ok && g != "" && !strings.ContainsAny(g, " \t:/") {
				c.group = g
				break
			}
		}
	}
	if strings.ContainsAny(c.group, " \t:/") {
		c.group = ""
	}
	return c
}

// splitFileName splits an archive's base name into artifact and version,
// the version starting at the first "-" followed by a digit, as Maven names
// its artifacts (<artifactId>-<version>[-<classifier>].<ext>):
// "commons-text-1.9.jar" is commons-text 1.9, "guava-31.1-jre.jar" is guava
// 31.1-jre, "bcprov-jdk15on-1.70.jar" is bcprov-jdk15on 1.70, "app.war" is
// app with no version.
func splitFileName(base string) (artifact, version string) {
	if i := strings.LastIndexByte(base, '.'); i > 0 {
		base = base[:i]
	}
	for i := 0; i+1 < len(base); i++ {
		if base[i] == '-' && base[i+1] >= '0' && base[i+1] <= '9' && i > 0 {
			return base[:i], base[i+1:]
		}
	}
	return base, ""
}
