package misconfig

import (
	"context"
	"io/fs"

	"mamori/internal/analyzer"
	"mamori/internal/model"
)

// Check IDs of this file.
const (
	ImgSetuid        = "MSC-IMG-008"
	ImgWorldWritable = "MSC-IMG-010"
)

// fileModeChecks are the file-mode checks of this file: metadata here, logic below, tests in filemode_test.go.
func fileModeChecks() []CheckInfo {
	return []CheckInfo{
		img(ImgSetuid, "setuid or setgid file", low,
			"A regular file has the setuid or setgid bit: a local privilege escalation path if the program is exploitable.",
			"Remove the bit (chmod a-s) from files that do not need it, or run with no-new-privileges.", nistImageConfig, "CIS-Docker-4.8").withPeers("CIS-DI-0008"),
		img(ImgWorldWritable, "World-writable file", med,
			"A regular file is writable by every user: any process in the container can change it.",
			"Remove the other-write bit (chmod o-w).", nistImageConfig, nistHostFS),
	}
}

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
