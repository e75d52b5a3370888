package model

import "sort"

// SortFindings orders findings by severity (worst first), kind, path and ID.
func SortFindings(fs []Finding) {
	sort.SliceStable(fs, func(i, j int) bool {
		a, b := &fs[i], &fs[j]
		if a.Severity != b.Severity {
			return a.Severity > b.Severity
		}
		if a.Kind != b.Kind {
			return a.Kind < b.Kind
		}
		if a.Location.Path != b.Location.Path {
			return a.Location.Path < b.Location.Path
		}
		if a.Location.StartLine != b.Location.StartLine {
			return a.Location.StartLine < b.Location.StartLine
		}
		return a.ID < b.ID
	})
}

// SortVulnerabilities orders vulnerabilities by severity (worst first), then
// package, then ID.
func SortVulnerabilities(vs []Vulnerability) {
	sort.SliceStable(vs, func(i, j int) bool {
		a, b := &vs[i], &vs[j]
		if a.Severity != b.Severity {
			return a.Severity > b.Severity
		}
		if a.Package.Name != b.Package.Name {
			return a.Package.Name < b.Package.Name
		}
		if a.Package.Path != b.Package.Path {
			return a.Package.Path < b.Package.Path
		}
		return a.ID < b.ID
	})
}
