package rust

import (
	"fmt"
	"io"

	"github.com/pelletier/go-toml/v2"

	"mamori/internal/model"
)

// cargoLock is the part of a Cargo.lock read here. All lock file versions
// (v1 with a [metadata] checksum table, v2 and v3 without a version key or
// with version = 3, v4) list crates as [[package]] tables with name and
// version (https://doc.rust-lang.org/cargo/reference/resolver.html and
// cargo's src/cargo/core/resolver/encode.rs).
type cargoLock struct {
	Version int `toml:"version"`
	Package []struct {
		Name    string `toml:"name"`
		Version string `toml:"version"`
		Source  string `toml:"source"`
	} `toml:"package"`
}

// parseCargoLockFile reads at most maxLockBytes of r and parses it.
func parseCargoLockFile(r *io.SectionReader, loc string) ([]model.Package, error) {
	if n := r.Size(); n > maxLockBytes {
		return nil, fmt.Errorf("cargo lock %s: %w: %d bytes (cap %d)", loc, ErrTooLarge, n, maxLockBytes)
	}
	b, err := io.ReadAll(io.NewSectionReader(r, 0, maxLockBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read cargo lock %s: %w", loc, err)
	}
	if len(b) > maxLockBytes {
		return nil, fmt.Errorf("cargo lock %s: %w: over %d bytes", loc, ErrTooLarge, maxLockBytes)
	}
	return parseCargoLock(b, loc)
}

// parseCargoLock parses a Cargo.lock. Every [[package]] is reported,
// workspace members and path or git dependencies included (they have no
// source, or a "git+" source): they are compiled in too. Entries without a
// name or version are skipped.
func parseCargoLock(b []byte, loc string) ([]model.Package, error) {
	var lock cargoLock
	if err := toml.Unmarshal(b, &lock); err != nil {
		return nil, fmt.Errorf("parse cargo lock %s: %w: %w", loc, ErrMalformed, err)
	}
	pkgs := make([]model.Package, 0, len(lock.Package))
	seen := make(map[string]bool, len(lock.Package))
	for _, p := range lock.Package {
		if p.Name == "" || p.Version == "" {
			continue
		}
		k := p.Name + "@" + p.Version
		if seen[k] {
			continue
		}
		seen[k] = true
		pkgs = append(pkgs, newPackage(p.Name, p.Version, CatalogerLock, loc))
	}
	return pkgs, nil
}
