package php

import (
	"bytes"
	"encoding/json"
	"strings"

	packageurl "github.com/package-url/packageurl-go"

	"mamori/internal/model"
)

// composerPackage is one package of composer.lock or installed.json: the
// package's composer.json plus what Composer adds when locking.
type composerPackage struct {
	Name    string `json:"name"`
	Version string `json:"version"`
	// License is an array of SPDX identifiers, or a string in old packages.
	License json.RawMessage `json:"license"`
}

// newPackage builds a Composer package found in the file at path, or false
// when the entry has no usable vendor/name and version.
func newPackage(p composerPackage, path string, dev bool) (model.Package, bool) {
	vendor, name, ok := strings.Cut(p.Name, "/")
	version := NormalizeVersion(p.Version)
	if !ok || !validPart(vendor) || !validPart(name) || !validVersion(version) {
		return model.Package{}, false
	}
	return model.Package{
		Name:      p.Name,
		Version:   version,
		Type:      model.TypeComposer,
		Ecosystem: model.EcosystemPackagist,
		PURL:      packageurl.NewPackageURL(packageurl.TypeComposer, vendor, name, version, nil, "").ToString(),
		Licenses:  licenses(p.License),
		Dev:       dev,
		Locations: []model.PackageLocation{{Path: path}},
	}, true
}

// NormalizeVersion removes the "v" (or "V") that tags often carry before
// a digit: "v6.4.8" -> "6.4.8". Branch versions ("dev-main", "2.x-dev")
// are returned unchanged. See the package documentation for why.
func NormalizeVersion(v string) string {
	v = strings.TrimSpace(v)
	if len(v) > 1 && (v[0] == 'v' || v[0] == 'V') && v[1] >= '0' && v[1] <= '9' {
		return v[1:]
	}
	return v
}

// validPart reports whether s can be the vendor or the project part of a
// Composer package name (^[a-z0-9]([_.-]?[a-z0-9]+)*$, with upper case
// tolerated for packages locked before Composer 2 enforced lower case).
func validPart(s string) bool {
	if s == "" || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// validVersion accepts any Composer version string without spaces or
// control characters: releases ("1.2.3", "1.0.0-RC1") and branches
// ("dev-main"), which the matcher may not be able to order but which are
// still the installed version.
func validVersion(v string) bool {
	if v == "" || len(v) > 128 {
		return false
	}
	for i := 0; i < len(v); i++ {
		if c := v[i]; c <= ' ' || c == 0x7f {
			return false
		}
	}
	return true
}

func licenses(raw json.RawMessage) []string {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return nil
	}
	var list []string
	if raw[0] == '"' {
		var s string
		if json.Unmarshal(raw, &s) != nil {
			return nil
		}
		list = []string{s}
	} else if json.Unmarshal(raw, &list) != nil {
		return nil
	}
	var out []string
	for _, l := range list {
		if l = strings.TrimSpace(l); l != "" && len(l) <= 128 {
			out = append(out, l)
		}
	}
	return out
}

// dedupe merges packages with the same name and version: Dev only if every
// occurrence is.
func dedupe(pkgs []model.Package) []model.Package {
	idx := make(map[string]int, len(pkgs))
	out := pkgs[:0]
	for _, p := range pkgs {
		k := p.Name + "@" + p.Version
		if i, ok := idx[k]; ok {
			out[i].Dev = out[i].Dev && p.Dev
			continue
		}
		idx[k] = len(out)
		out = append(out, p)
	}
	model.SortPackages(out)
	return out
}
