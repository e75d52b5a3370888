package misconfig

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"mamori/internal/model"
)

// maxScanFiles bounds the files ScanPath examines under one directory, so
// that pointing it at / or a monorepo ends in bounded time.
const maxScanFiles = 100_000

// File kinds ScanPath recognises.
const (
	kindNone = iota
	kindDockerfile
	kindManifest
)

// classify says what a file is from its name: Dockerfile, Containerfile,
// *.Dockerfile, Dockerfile.*, or a YAML/JSON candidate manifest.
func classify(name string) int {
	l := strings.ToLower(name)
	switch {
	case l == "dockerfile" || l == "containerfile" || strings.HasSuffix(l, ".dockerfile") ||
		strings.HasSuffix(l, ".containerfile") || strings.HasPrefix(l, "dockerfile.") || strings.HasPrefix(l, "containerfile."):
		return kindDockerfile
	case strings.HasSuffix(l, ".yaml") || strings.HasSuffix(l, ".yml") || strings.HasSuffix(l, ".json"):
		return kindManifest
	}
	return kindNone
}

// ScanPath checks the Dockerfiles and Kubernetes manifests at path (a file
// or a directory walked recursively, without following symbolic links;
// .git and node_modules are skipped). YAML and JSON files count as
// manifests only when they mention both apiVersion and kind. Findings'
// Location.Path is relative to path for a directory, and path itself for a
// file.
//
// Files that cannot be read or parsed do not stop the scan: their errors
// are joined into the returned error, alongside the findings of every
// other file. Only a path that cannot be opened at all returns no findings.
func ScanPath(ctx context.Context, root string) ([]model.Finding, error) {
	st, err := os.Stat(root)
	if err != nil {
		return nil, fmt.Errorf("misconfig: %w", err)
	}
	if !st.IsDir() {
		kind := classify(filepath.Base(root))
		if kind == kindNone {
			// An explicitly named file is checked by content.
			kind = kindManifest
		}
		return scanFile(root, filepath.ToSlash(root), kind)
	}
	var out []model.Finding
	var errs []error
	files := 0
	walkErr := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			errs = append(errs, err)
			if d != nil && d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		if cerr := ctx.Err(); cerr != nil {
			return cerr
		}
		if d.IsDir() {
			if n := d.Name(); p != root && (n == ".git" || n == "node_modules") {
				return fs.SkipDir
			}
			return nil
		}
		if !d.Type().IsRegular() {
			return nil
		}
		kind := classify(d.Name())
		if kind == kindNone {
			return nil
		}
		files++
		if files > maxScanFiles {
			return fmt.Errorf("%w: more than %d candidate files under %s", ErrTooLarge, maxScanFiles, root)
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			rel = p
		}
		fs, err := scanFile(p, filepath.ToSlash(rel), kind)
		out = append(out, fs...)
		if err != nil {
			errs = append(errs, err)
		}
		return nil
	})
	if walkErr != nil {
		errs = append(errs, walkErr)
	}
	return out, errors.Join(errs...)
}

// scanFile reads at most the cap for its kind and checks it.
func scanFile(osPath, relPath string, kind int) ([]model.Finding, error) {
	limit := int64(MaxManifestSize)
	if kind == kindDockerfile {
		limit = MaxDockerfileSize
	}
	f, err := os.Open(osPath)
	if err != nil {
		return nil, fmt.Errorf("misconfig: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fmt.Errorf("misconfig: read %s: %w", relPath, err)
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%w: %s is larger than %d bytes", ErrTooLarge, relPath, limit)
	}
	if kind == kindDockerfile {
		fs, err := CheckDockerfile(relPath, b)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", relPath, err)
		}
		return fs, nil
	}
	if !bytes.Contains(b, []byte("apiVersion")) || !bytes.Contains(b, []byte("kind")) {
		return nil, nil // not a Kubernetes manifest
	}
	return CheckManifests(relPath, b)
}
