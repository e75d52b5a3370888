package npm

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	yaml "go.yaml.in/yaml/v3"

	"mamori/internal/model"
)

// maxPNPMDocuments bounds the YAML documents read from one pnpm-lock.yaml
// (pnpm 10 may prefix the lock with one document for config dependencies).
const maxPNPMDocuments = 8

// pnpmLock is pnpm-lock.yaml. Package keys differ by lockfileVersion:
//
//	5.x  /name/1.0.0, /@scope/name/1.0.0_peer@2.0.0 (peers after "_")
//	6.x  /name@1.0.0, /@scope/name@1.0.0(peer@2.0.0)
//	9.x  name@1.0.0 in "packages"; name@1.0.0(peer@2.0.0) in "snapshots"
//
// 5.x and 6.x mark development-only packages with "dev: true"; 9.x does not,
// so Dev is derived from the importers' devDependencies through "snapshots".
type pnpmLock struct {
	LockfileVersion string                  `yaml:"lockfileVersion"`
	Importers       map[string]pnpmImporter `yaml:"importers"`
	Packages        map[string]pnpmPackage  `yaml:"packages"`
	Snapshots       map[string]pnpmSnapshot `yaml:"snapshots"`
}

type pnpmImporter struct {
	Dependencies         map[string]pnpmDep `yaml:"dependencies"`
	OptionalDependencies map[string]pnpmDep `yaml:"optionalDependencies"`
	DevDependencies      map[string]pnpmDep `yaml:"devDependencies"`
}

type pnpmPackage struct {
	// Name and Version are written for packages whose key is not
	// name@version (tarball and git dependencies).
	Name       string         `yaml:"name"`
	Version    string         `yaml:"version"`
	Dev        *bool          `yaml:"dev"`
	Resolution pnpmResolution `yaml:"resolution"`
}

type pnpmResolution struct {
	Type      string `yaml:"type"`
	Directory string `yaml:"directory"`
	Tarball   string `yaml:"tarball"`
}

type pnpmSnapshot struct {
	Dependencies         map[string]string `yaml:"dependencies"`
	OptionalDependencies map[string]string `yaml:"optionalDependencies"`
}

// pnpmDep is an importer's dependency: a version string (5.x, 6.x) or a
// {specifier, version} mapping (6.x, 9.x).
type pnpmDep struct {
	Version string
}

// UnmarshalYAML accepts both shapes of an importer dependency.
func (d *pnpmDep) UnmarshalYAML(n *yaml.Node) error {
	switch n.Kind {
	case yaml.ScalarNode:
		d.Version = n.Value
		return nil
	case yaml.MappingNode:
		var m struct {
			Version string `yaml:"version"`
		}
		if err := n.Decode(&m); err != nil {
			return err
		}
		d.Version = m.Version
		return nil
	}
	return fmt.Errorf("line %d: dependency is neither a string nor a mapping", n.Line)
}

var _ parseFunc = parsePNPMLock

// parsePNPMLock reads pnpm-lock.yaml of lockfileVersion 5.x to 9.x
// (https://github.com/pnpm/spec/tree/master/lockfile). Links, local
// directories and git dependencies are skipped.
func parsePNPMLock(path string, data []byte) ([]model.Package, error) {
	lock, err := decodePNPM(data)
	if err != nil {
		return nil, err
	}
	major, err := pnpmMajor(lock.LockfileVersion)
	if err != nil {
		return nil, err
	}
	var prod, dev map[string]bool
	if major >= 9 {
		prod, dev = pnpmReach(lock)
	}
	var pkgs []model.Package
	for key, p := range lock.Packages {
		r := p.Resolution
		if r.Type == "git" || r.Type == "directory" || r.Directory != "" || (r.Tarball != "" && !registryRange(r.Tarball)) {
			continue
		}
		name, version := pnpmKey(key, major)
		if p.Name != "" && p.Version != "" {
			name, version = p.Name, p.Version
		}
		if !validName(name) || !validVersion(version) {
			continue
		}
		isDev := p.Dev != nil && *p.Dev
		if major >= 9 {
			id := name + "@" + version
			isDev = dev[id] && !prod[id]
		}
		pkgs = append(pkgs, newPackage(name, version, path, isDev, nil))
	}
	return dedupe(pkgs), nil
}

// decodePNPM decodes the document of the lock that lists packages.
func decodePNPM(data []byte) (*pnpmLock, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var chosen *pnpmLock
	for i := 0; i < maxPNPMDocuments; i++ {
		var doc pnpmLock
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("parse pnpm-lock.yaml: %w", err)
		}
		if chosen == nil || len(doc.Packages) > 0 || len(doc.Importers) > 0 {
			d := doc
			chosen = &d
		}
	}
	if chosen == nil {
		return nil, fmt.Errorf("%w: empty pnpm-lock.yaml", ErrUnsupportedLock)
	}
	return chosen, nil
}

// pnpmMajor returns the major lockfileVersion ("5.4" -> 5, "9.0" -> 9).
func pnpmMajor(v string) (int, error) {
	major, _, _ := strings.Cut(strings.TrimSpace(v), ".")
	n, err := strconv.Atoi(major)
	if err != nil || n < 5 || n > 9 {
		return 0, fmt.Errorf("%w: pnpm lockfileVersion %q", ErrUnsupportedLock, v)
	}
	return n, nil
}

// pnpmKey splits a "packages" key into name and version, dropping the peer
// dependency suffix. An unrecognised key yields an invalid name or version.
func pnpmKey(key string, major int) (name, version string) {
	key = strings.TrimPrefix(key, "/")
	if major < 6 {
		segs := strings.SplitN(key, "/", 4)
		if strings.HasPrefix(key, "@") {
			if len(segs) < 3 {
				return "", ""
			}
			name, version = segs[0]+"/"+segs[1], segs[2]
		} else {
			if len(segs) < 2 {
				return "", ""
			}
			name, version = segs[0], segs[1]
		}
		version, _, _ = strings.Cut(version, "_")
		return name, version
	}
	key = stripPeers(key)
	name, version, _ = splitNameRange(key)
	return name, version
}

// stripPeers removes the "(peer@1.0.0)(other@2.0.0)" suffix of 6.x/9.x keys.
func stripPeers(s string) string {
	if i := strings.IndexByte(s, '('); i >= 0 {
		return s[:i]
	}
	return s
}

// pnpmReach computes, for a 9.x lock, which packages ("name@version") are
// reachable from the importers' dependencies and optionalDependencies (prod)
// and which from their devDependencies (dev), following "snapshots".
func pnpmReach(lock *pnpmLock) (prod, dev map[string]bool) {
	// snapshots keyed by name@version without peers, merging peer variants.
	edges := make(map[string][]string, len(lock.Snapshots))
	for key, s := range lock.Snapshots {
		id := stripPeers(key)
		for _, deps := range []map[string]string{s.Dependencies, s.OptionalDependencies} {
			for n, v := range deps {
				if target := pnpmDepID(n, v); target != "" {
					edges[id] = append(edges[id], target)
				}
			}
		}
	}
	walk := func(roots []string) map[string]bool {
		seen := make(map[string]bool)
		stack := roots
		for len(stack) > 0 {
			id := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			if seen[id] {
				continue
			}
			seen[id] = true
			stack = append(stack, edges[id]...)
		}
		return seen
	}
	var prodRoots, devRoots []string
	for _, imp := range lock.Importers {
		for _, deps := range []map[string]pnpmDep{imp.Dependencies, imp.OptionalDependencies} {
			for n, d := range deps {
				if id := pnpmDepID(n, d.Version); id != "" {
					prodRoots = append(prodRoots, id)
				}
			}
		}
		for n, d := range imp.DevDependencies {
			if id := pnpmDepID(n, d.Version); id != "" {
				devRoots = append(devRoots, id)
			}
		}
	}
	return walk(prodRoots), walk(devRoots)
}

// pnpmDepID turns a dependency (name, resolved version) of a 9.x importer or
// snapshot into the "name@version" id of its package: the version may carry
// peers ("1.0.0(react@18.2.0)"), be an alias ("string-width@4.2.3") or a
// link ("link:../pkg", no package).
func pnpmDepID(name, version string) string {
	version = stripPeers(version)
	if version == "" || strings.HasPrefix(version, "link:") {
		return ""
	}
	if n, v, ok := splitNameRange(version); ok {
		return n + "@" + v
	}
	return name + "@" + version
}
