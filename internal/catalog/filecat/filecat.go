// Package filecat adapts a parser of one file format (a lock file, a
// package manifest) to analyzer.Analyzer: the shape every "one file in,
// packages out" cataloger shares, so each ecosystem folder holds only its
// path tests and parsers.
package filecat

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"

	"mamori/internal/analyzer"
	"mamori/internal/model"
)

// ParseFunc parses one file's bytes; path is the file's clean path.
type ParseFunc func(path string, data []byte) ([]model.Package, error)

// Analyzer runs a ParseFunc on files its match function accepts. It holds
// no mutable state and is safe for concurrent use.
type Analyzer struct {
	name        string
	version     int
	match       func(path string) bool
	parse       ParseFunc
	maxSize     int64
	errTooLarge error
}

var _ analyzer.Analyzer = (*Analyzer)(nil)

// New returns an analyzer named name (also the packages' Cataloger) at
// version, wanting the files match accepts, reading at most maxSize bytes of
// each (larger files fail with an error wrapping errTooLarge).
func New(name string, version int, match func(path string) bool, parse ParseFunc, maxSize int64, errTooLarge error) *Analyzer {
	if errTooLarge == nil {
		errTooLarge = errors.New(name + ": file too large")
	}
	return &Analyzer{name: name, version: version, match: match, parse: parse, maxSize: maxSize, errTooLarge: errTooLarge}
}

// Name implements analyzer.Analyzer.
func (a *Analyzer) Name() string { return a.name }

// Version implements analyzer.Analyzer.
func (a *Analyzer) Version() int { return a.version }

// Required implements analyzer.Analyzer. A matching file above the size cap
// is asked for as Metadata only, so that the walk does not materialise it and
// Analyze can report it as too large.
func (a *Analyzer) Required(path string, info fs.FileInfo) analyzer.Need {
	if !a.match(path) {
		return analyzer.Skip
	}
	if info != nil && info.Size() > a.maxSize {
		return analyzer.Metadata
	}
	return analyzer.Content
}

// Analyze implements analyzer.Analyzer.
func (a *Analyzer) Analyze(ctx context.Context, in analyzer.Input) (*analyzer.Result, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	data, err := a.readCapped(in)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", a.name, in.Path, err)
	}
	pkgs, err := a.parse(in.Path, data)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", a.name, in.Path, err)
	}
	for i := range pkgs {
		pkgs[i].Cataloger = a.name
	}
	if len(pkgs) == 0 {
		return nil, nil
	}
	return &analyzer.Result{Packages: pkgs}, nil
}

// readCapped reads the whole input, refusing more than the cap.
func (a *Analyzer) readCapped(in analyzer.Input) ([]byte, error) {
	limit := a.maxSize
	if in.Content == nil {
		if in.Info != nil && in.Info.Size() > limit {
			return nil, fmt.Errorf("%w: %d bytes, limit %d", a.errTooLarge, in.Info.Size(), limit)
		}
		return nil, errors.New("no content given")
	}
	if in.Content.Size() > limit {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", a.errTooLarge, in.Content.Size(), limit)
	}
	data, err := io.ReadAll(io.LimitReader(io.NewSectionReader(in.Content, 0, in.Content.Size()), limit+1))
	if err != nil {
		return nil, fmt.Errorf("read: %w", err)
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%w: more than %d bytes", a.errTooLarge, limit)
	}
	return data, nil
}
