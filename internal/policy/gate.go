// Package policy decides what to do about scan results. The CI gate is the
// first policy: filter what is reported, then fail the pipeline when what
// remains is bad enough.
package policy

import (
	"fmt"
	"strings"

	"mamori/internal/model"
)

// GateOptions are the CI gate's settings, as the CLI flags give them.
type GateOptions struct {
	// Severities keeps only these severities in the report; empty keeps all.
	Severities []string
	// IgnoreUnfixed drops vulnerabilities without a known fix.
	IgnoreUnfixed bool
	// IgnoreFile and VEXFiles suppress vulnerabilities by ID.
	IgnoreFile string
	VEXFiles   []string
	// FailOn fails the gate when anything at or above this severity remains.
	FailOn string
	// FailAny fails the gate when anything at all remains (trivy's
	// --exit-code without a threshold).
	FailAny bool
}

// Gate filters results and decides pass or fail.
type Gate struct {
	keep     map[model.Severity]bool
	unfixed  bool
	failOn   model.Severity
	hasFail  bool
	failAny  bool
	suppress Suppressor
}

// Suppressor removes vulnerabilities the user has said do not apply
// (ignore files, VEX statements).
type Suppressor interface {
	Suppress(vulns []model.Vulnerability) (kept []model.Vulnerability, suppressed int, warnings []string)
}

// Verdict is the gate's decision.
type Verdict struct {
	Failed     bool
	Reasons    []string
	Warnings   []string
	Suppressed int
}

// NewGate validates opts. Suppression files are loaded by LoadSuppressor.
func NewGate(opts GateOptions) (*Gate, error) {
	g := &Gate{unfixed: opts.IgnoreUnfixed, failAny: opts.FailAny}
	if len(opts.Severities) > 0 {
		g.keep = map[model.Severity]bool{}
		for _, s := range opts.Severities {
			for _, part := range strings.Split(s, ",") {
				if strings.TrimSpace(part) == "" {
					continue
				}
				sev, err := model.ParseSeverity(part)
				if err != nil {
					return nil, fmt.Errorf("--severity: %w", err)
				}
				g.keep[sev] = true
			}
		}
	}
	if opts.FailOn != "" {
		sev, err := model.ParseSeverity(opts.FailOn)
		if err != nil {
			return nil, fmt.Errorf("--fail-on: %w", err)
		}
		g.failOn, g.hasFail = sev, true
	}
	sup, err := LoadSuppressor(opts.IgnoreFile, opts.VEXFiles)
	if err != nil {
		return nil, err
	}
	g.suppress = sup
	return g, nil
}

// Apply filters res in place and returns the verdict.
func (g *Gate) Apply(res *model.Result) (Verdict, error) {
	var v Verdict
	vulns := res.Vulnerabilities[:0]
	for _, x := range res.Vulnerabilities {
		if g.unfixed && x.FixedVersion == "" {
			continue
		}
		if g.keep != nil && !g.keep[x.Severity] {
			continue
		}
		vulns = append(vulns, x)
	}
	res.Vulnerabilities = vulns
	if g.suppress != nil {
		kept, n, warns := g.suppress.Suppress(res.Vulnerabilities)
		res.Vulnerabilities = kept
		v.Suppressed = n
		v.Warnings = append(v.Warnings, warns...)
	}
	fs := res.Findings[:0]
	for _, f := range res.Findings {
		if g.keep != nil && !g.keep[f.Severity] {
			continue
		}
		fs = append(fs, f)
	}
	res.Findings = fs

	counts := map[string]int{}
	for _, x := range res.Vulnerabilities {
		if g.fails(x.Severity) {
			counts["vulnerabilities"]++
		}
	}
	for _, f := range res.Findings {
		if g.fails(f.Severity) {
			counts[string(f.Kind)]++
		}
	}
	for _, k := range []string{"vulnerabilities", string(model.KindMalware), string(model.KindSecret), string(model.KindMisconfig)} {
		if n := counts[k]; n > 0 {
			v.Failed = true
			if g.hasFail {
				v.Reasons = append(v.Reasons, fmt.Sprintf("%d %s at or above %s", n, k, g.failOn))
			} else {
				v.Reasons = append(v.Reasons, fmt.Sprintf("%d %s", n, k))
			}
		}
	}
	return v, nil
}

func (g *Gate) fails(s model.Severity) bool {
	switch {
	case g.hasFail:
		return s >= g.failOn
	case g.failAny:
		return true
	}
	return false
}
