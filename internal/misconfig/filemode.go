package misconfig

import (
	"context"
	"io/fs"

	"mamori/internal/analyzer"
	"mamori/internal/model"
)

// fileModeVersion is bumped when FileModeAnalyzer's output can change.
const fileModeVersion = 1

// FileModeAnalyzer is a Metadata-only analyzer that reports, per file, the
// setuid/setgid regular files (MSC-IMG-008, CIS Docker 4.8) and the
// world-writable regular files (MSC-IMG-010) of a layer or tree.
//
// Design: the per-file Result model carries findings, and findings of a
// file deleted by a later layer are dropped by the whiteout merge like its
// packages, so the merged result is exactly the image's offending files.
// No separate collector is needed; CheckImage's ImageFacts file lists are
// for callers that did not run this analyzer.
type FileModeAnalyzer struct{}

var _ analyzer.Analyzer = FileModeAnalyzer{}

// NewFileModeAnalyzer returns the file mode analyzer.
func NewFileModeAnalyzer() FileModeAnalyzer { return FileModeAnalyzer{} }

// Name implements analyzer.Analyzer.
func (FileModeAnalyzer) Name() string { return "misconfig-filemode" }

// Version implements analyzer.Analyzer.
func (FileModeAnalyzer) Version() int { return fileModeVersion }

// Required implements analyzer.Analyzer: Metadata for regular files with
// a setuid, setgid or other-write bit; Skip otherwise.
func (FileModeAnalyzer) Required(_ string, info fs.FileInfo) analyzer.Need {
	if info == nil {
		return analyzer.Skip
	}
	m := info.Mode()
	if !m.IsRegular() {
		return analyzer.Skip
	}
	if m&(fs.ModeSetuid|fs.ModeSetgid) != 0 || m.Perm()&0o002 != 0 {
		return analyzer.Metadata
	}
	return analyzer.Skip
}

// Analyze implements analyzer.Analyzer.
func (FileModeAnalyzer) Analyze(_ context.Context, in analyzer.Input) (*analyzer.Result, error) {
	if in.Info == nil {
		return nil, nil
	}
	m := in.Info.Mode()
	if !m.IsRegular() {
		return nil, nil
	}
	var out []model.Finding
	loc := model.Location{Path: in.Path, LayerDiffID: in.Layer}
	if m&(fs.ModeSetuid|fs.ModeSetgid) != 0 {
		out = append(out, newFinding(ImgSetuid, loc, in.Path+" "+m.String()))
	}
	if m.Perm()&0o002 != 0 {
		out = append(out, newFinding(ImgWorldWritable, loc, in.Path+" "+m.String()))
	}
	if len(out) == 0 {
		return nil, nil
	}
	return &analyzer.Result{Findings: out}, nil
}
