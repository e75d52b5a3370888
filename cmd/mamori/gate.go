package main

import (
	"fmt"
	"io"
	"os"
	"strings"

	"mamori/internal/model"
	"mamori/internal/policy"
	"mamori/internal/vex"
)

// The CI gate's edge: flags are parsed and files read here; internal/policy
// decides without I/O.

// gateOptions turns the gate flags into policy.GateOptions, loading the
// ignore file and VEX documents.
func gateOptions(o *scanOptions) (policy.GateOptions, error) {
	g := policy.GateOptions{IgnoreUnfixed: o.ignoreUnfixed, FailAny: o.exitCode != 0 && o.failOn == ""}
	sevs, err := parseSeverityList(o.severities)
	if err != nil {
		return g, fmt.Errorf("--severity: %w", err)
	}
	g.Severities = sevs
	if o.failOn != "" {
		sev, err := model.ParseSeverity(o.failOn)
		if err != nil {
			return g, fmt.Errorf("--fail-on: %w", err)
		}
		g.FailOn = &sev
	}
	g.Suppress, err = loadSuppression(o.ignoreFile, o.vexFiles)
	return g, err
}

// parseSeverityList reads --severity values, each possibly comma-separated.
func parseSeverityList(values []string) ([]model.Severity, error) {
	var out []model.Severity
	for _, s := range values {
		for _, part := range strings.Split(s, ",") {
			if strings.TrimSpace(part) == "" {
				continue
			}
			sev, err := model.ParseSeverity(part)
			if err != nil {
				return nil, err
			}
			out = append(out, sev)
		}
	}
	return out, nil
}

// loadSuppression loads an ignore file and OpenVEX documents; nil when
// neither is given. VEX statements apply to the scanned artifact: the
// documents given for a scan are taken to be about it.
func loadSuppression(ignoreFile string, vexFiles []string) (*vex.Rules, error) {
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
	return r, nil
}

// loadPolicy reads and compiles a policy file (--policy).
func loadPolicy(path string) (*policy.Evaluator, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("--policy: %w", err)
	}
	defer f.Close()
	// One byte over the limit lets Parse say the file is too large.
	data, err := io.ReadAll(io.LimitReader(f, policy.MaxPolicySize+1))
	if err != nil {
		return nil, fmt.Errorf("--policy: read %s: %w", path, err)
	}
	p, err := policy.Parse(path, data)
	if err != nil {
		return nil, fmt.Errorf("--policy: %w", err)
	}
	ev, err := policy.Compile(p)
	if err != nil {
		return nil, fmt.Errorf("--policy: %w", err)
	}
	return ev, nil
}
