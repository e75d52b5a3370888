package policy

import (
	_ "embed"
	"slices"
)

//go:embed default.yaml
var defaultPolicy []byte

// DefaultPolicyYAML is the default policy document: it blocks every Pod
// Security Standards baseline violation, logs the restricted ones, and
// admits images it cannot scan (logged, scanned afterwards). It returns a
// copy.
func DefaultPolicyYAML() []byte { return slices.Clone(defaultPolicy) }

// Default parses and compiles the default policy.
func Default() (*Evaluator, error) {
	p, err := Parse("default.yaml", defaultPolicy)
	if err != nil {
		return nil, err
	}
	return Compile(p)
}
