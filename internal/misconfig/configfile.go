package misconfig

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"io/fs"
	"path"
	"strings"

	"mamori/internal/analyzer"
)

// ConfigFileAnalyzer checks Dockerfiles and Kubernetes manifests met in the
// single-pass walk (`mamori fs --scanners misconfig`), with the same checks
// as ScanPath. Files under node_modules and .git are left alone.
type ConfigFileAnalyzer struct{}

var _ analyzer.Analyzer = ConfigFileAnalyzer{}

// NewConfigFileAnalyzer returns the analyzer.
func NewConfigFileAnalyzer() ConfigFileAnalyzer { return ConfigFileAnalyzer{} }

// Name implements analyzer.Analyzer.
func (ConfigFileAnalyzer) Name() string { return "misconfig-files" }

// Version implements analyzer.Analyzer.
func (ConfigFileAnalyzer) Version() int { return 1 }

// Required wants Dockerfiles and YAML/JSON files within the size caps.
func (ConfigFileAnalyzer) Required(p string, info fs.FileInfo) analyzer.Need {
	kind := classify(path.Base(p))
	if kind == kindNone || strings.Contains("/"+p+"/", "/node_modules/") || strings.Contains("/"+p+"/", "/.git/") {
		return analyzer.Skip
	}
	limit := int64(MaxManifestSize)
	if kind == kindDockerfile {
		limit = MaxDockerfileSize
	}
	if info.Size() > limit || info.Size() == 0 {
		return analyzer.Skip
	}
	return analyzer.Content
}

// Analyze implements analyzer.Analyzer.
func (ConfigFileAnalyzer) Analyze(_ context.Context, in analyzer.Input) (*analyzer.Result, error) {
	b, err := io.ReadAll(in.Content)
	if err != nil {
		return nil, fmt.Errorf("misconfig: read %s: %w", in.Path, err)
	}
	var res analyzer.Result
	if classify(path.Base(in.Path)) == kindDockerfile {
		res.Findings, err = CheckDockerfile(in.Path, b)
	} else {
		if !bytes.Contains(b, []byte("apiVersion")) || !bytes.Contains(b, []byte("kind")) {
			return nil, nil
		}
		res.Findings, err = CheckManifests(in.Path, b)
	}
	return &res, err
}
