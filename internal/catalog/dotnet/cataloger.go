// Package dotnet catalogs NuGet packages listed in .NET dependency manifests
// (<app>.deps.json, written by the .NET SDK beside every published
// application; https://github.com/dotnet/sdk/blob/main/documentation/specs/runtime-configuration-file.md).
package dotnet

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"sort"
	"strings"

	packageurl "github.com/package-url/packageurl-go"

	"mamori/internal/analyzer"
	"mamori/internal/model"
)

const (
	// Name is the analyzer's name and the Cataloger of its packages.
	Name = "dotnet-deps"
	// version is bumped whenever the output for the same input may change.
	version = 1

	depsSuffix = ".deps.json"

	// maxDepsBytes bounds a deps.json read into memory. Large ASP.NET
	// applications have deps.json files of a few MiB at most.
	maxDepsBytes = 32 << 20

	// libraryTypePackage is the "type" of NuGet packages in "libraries";
	// "project" (projects of the solution) and "reference" (assembly
	// references) are not NuGet packages.
	libraryTypePackage = "package"
)

// Sentinel errors.
var (
	// ErrTooLarge: the file is over maxDepsBytes.
	ErrTooLarge = errors.New("dotnet: deps.json over size cap")
	// ErrMalformed: the file is not a deps.json document.
	ErrMalformed = errors.New("dotnet: malformed deps.json")
)

// Cataloger is the .NET deps.json analyzer. Create it with New.
type Cataloger struct{}

var _ analyzer.Analyzer = (*Cataloger)(nil)

// New returns the .NET deps.json analyzer. It is safe for concurrent use.
func New() analyzer.Analyzer { return &Cataloger{} }

// Name implements analyzer.Analyzer.
func (*Cataloger) Name() string { return Name }

// Version implements analyzer.Analyzer.
func (*Cataloger) Version() int { return version }

// Required wants regular files named *.deps.json.
func (*Cataloger) Required(path string, info fs.FileInfo) analyzer.Need {
	if info != nil && !info.Mode().IsRegular() {
		return analyzer.Skip
	}
	if len(path) > len(depsSuffix) && strings.HasSuffix(path, depsSuffix) {
		return analyzer.Content
	}
	return analyzer.Skip
}

// Analyze reads one deps.json.
func (*Cataloger) Analyze(ctx context.Context, in analyzer.Input) (*analyzer.Result, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if in.Content == nil {
		return nil, fmt.Errorf("dotnet %s: no content", in.Path)
	}
	if n := in.Content.Size(); n > maxDepsBytes {
		return nil, fmt.Errorf("deps.json %s: %w: %d bytes (cap %d)", in.Path, ErrTooLarge, n, maxDepsBytes)
	}
	b, err := io.ReadAll(io.NewSectionReader(in.Content, 0, maxDepsBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read deps.json %s: %w", in.Path, err)
	}
	if len(b) > maxDepsBytes {
		return nil, fmt.Errorf("deps.json %s: %w: over %d bytes", in.Path, ErrTooLarge, maxDepsBytes)
	}
	pkgs, err := parseDepsJSON(b, in.Path)
	if err != nil {
		return nil, err
	}
	return &analyzer.Result{Packages: pkgs}, nil
}

// depsFile is the part of a deps.json read here.
type depsFile struct {
	Libraries map[string]struct {
		Type string `json:"type"`
	} `json:"libraries"`
}

// parseDepsJSON returns one package per "libraries" entry of type
// "package", named and versioned by its "Name/Version" key, sorted by key.
func parseDepsJSON(b []byte, loc string) ([]model.Package, error) {
	var d depsFile
	if err := json.Unmarshal(b, &d); err != nil {
		return nil, fmt.Errorf("parse deps.json %s: %w: %w", loc, ErrMalformed, err)
	}
	if d.Libraries == nil {
		return nil, fmt.Errorf("parse deps.json %s: %w: no \"libraries\" object", loc, ErrMalformed)
	}
	keys := make([]string, 0, len(d.Libraries))
	for k, lib := range d.Libraries {
		if strings.EqualFold(lib.Type, libraryTypePackage) {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	pkgs := make([]model.Package, 0, len(keys))
	for _, k := range keys {
		name, ver, ok := strings.Cut(k, "/")
		name, ver = strings.TrimSpace(name), strings.TrimSpace(ver)
		if !ok || name == "" || ver == "" || strings.Contains(ver, "/") {
			continue // not a "Name/Version" key; NuGet IDs and versions have no "/"
		}
		pkgs = append(pkgs, model.Package{
			Name:      name,
			Version:   ver,
			Type:      model.TypeNuGet,
			Ecosystem: model.EcosystemNuGet,
			PURL:      packageurl.NewPackageURL(packageurl.TypeNuget, "", name, ver, nil, "").ToString(),
			Cataloger: Name,
			Locations: []model.PackageLocation{{Path: loc}},
		})
	}
	return pkgs, nil
}
