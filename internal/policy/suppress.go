package policy

import (
	"fmt"

	"mamori/internal/model"
	"mamori/internal/vex"
)

// vexSuppressor applies ignore files and OpenVEX statements (internal/vex).
type vexSuppressor struct {
	rules *vex.Rules
}

// LoadSuppressor loads an ignore file and OpenVEX documents. It returns
// nil when neither is given. VEX statements apply to the scanned artifact:
// the documents given for a scan are taken to be about it.
func LoadSuppressor(ignoreFile string, vexFiles []string) (Suppressor, error) {
	if ignoreFile == "" && len(vexFiles) == 0 {
		return nil, nil
	}
	r := &vex.Rules{}
	if ignoreFile != "" {
		ig, err := vex.LoadIgnoreFile(ignoreFile)
		if err != nil {
			return nil, fmt.Errorf("--ignorefile: %w", err)
		}
		r.Ignores = ig
	}
	for _, f := range vexFiles {
		st, err := vex.LoadOpenVEX(f)
		if err != nil {
			return nil, fmt.Errorf("--vex %s: %w", f, err)
		}
		r.Statements = append(r.Statements, st...)
	}
	return &vexSuppressor{rules: r}, nil
}

func (s *vexSuppressor) Suppress(vulns []model.Vulnerability) ([]model.Vulnerability, int, []string) {
	kept, sup := vex.Filter(vulns, s.rules)
	return kept, len(sup), s.rules.Warnings()
}
