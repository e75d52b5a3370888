// Package catalog lists the package catalogers, one folder per ecosystem
// below this one. The lists here are the only registration: a cataloger
// that is not named here does not run.
package catalog

import (
	"fmt"

	"mamori/internal/analyzer"
	"mamori/internal/catalog/apk"
	"mamori/internal/catalog/dotnet"
	"mamori/internal/catalog/dpkg"
	"mamori/internal/catalog/gobinary"
	"mamori/internal/catalog/java"
	"mamori/internal/catalog/npm"
	"mamori/internal/catalog/php"
	"mamori/internal/catalog/python"
	"mamori/internal/catalog/rpm"
	"mamori/internal/catalog/ruby"
	"mamori/internal/catalog/rust"
	"mamori/internal/osrelease"
)

// Installed returns the analyzers for images and root file systems: OS
// detection and what is really installed (package databases,
// node_modules, site-packages, gemspecs, binaries, archives), never lock
// files, so a package is reported once. tempDir is where the rpm cataloger
// writes a database while reading it (its reader needs a file).
func Installed(tempDir string) ([]analyzer.Analyzer, error) {
	r, err := rpm.New(rpm.WithTempDir(tempDir))
	if err != nil {
		return nil, fmt.Errorf("catalog: %w", err)
	}
	as := []analyzer.Analyzer{
		osrelease.New(),
		dpkg.New(),
		apk.New(),
		r,
		gobinary.New(),
		java.New(),
		rust.New(),
		dotnet.New(),
	}
	as = append(as, npm.NewInstalled()...)
	as = append(as, python.NewInstalled()...)
	as = append(as, ruby.NewInstalled()...)
	as = append(as, php.NewInstalled()...)
	return as, nil
}

// Declared returns the analyzers for source trees: lock files of what a
// project depends on, plus the binaries and archives it holds.
func Declared() []analyzer.Analyzer {
	as := []analyzer.Analyzer{
		osrelease.New(),
		gobinary.New(),
		java.New(),
		rust.New(),
		dotnet.New(),
	}
	as = append(as, npm.NewLock()...)
	as = append(as, python.NewLock()...)
	as = append(as, ruby.NewLock()...)
	as = append(as, php.NewLock()...)
	return as
}
