// Package catalog lists the package catalogers, one folder per ecosystem
// below this one. The lists here are the only registration: a cataloger
// that is not named here does not run.
package catalog

import (
	"mamori/internal/analyzer"
	"mamori/internal/catalog/gobinary"
	"mamori/internal/catalog/java"
	"mamori/internal/catalog/npm"
	"mamori/internal/osrelease"
)

// Installed returns the analyzers for images and root file systems: OS
// detection and what is really installed (package databases,
// node_modules, site-packages, binaries, archives), never lock files, so a
// package is reported once.
func Installed() []analyzer.Analyzer {
	as := []analyzer.Analyzer{
		osrelease.New(),
		gobinary.New(),
		java.New(),
	}
	as = append(as, npm.NewInstalled()...)
	return as
}

// Declared returns the analyzers for source trees: lock files and manifests
// of what a project depends on, plus binaries and archives it holds.
func Declared() []analyzer.Analyzer {
	as := []analyzer.Analyzer{
		osrelease.New(),
		gobinary.New(),
		java.New(),
	}
	as = append(as, npm.NewLock()...)
	return as
}
