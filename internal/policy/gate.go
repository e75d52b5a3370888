package policy

import (
	"fmt"
	"time"

	"mamori/internal/model"
	"mamori/internal/vex"
)

// The CI gate: filter what a scan reports (severities, unfixed, ignore file
// and VEX), then fail the pipeline when what remains is bad enough. The
// failing part is a policy (GatePolicy) decided by the evaluator; the
// settings come parsed from the edge (the CLI reads flags and files).

// GateOptions are the CI gate's settings.
type GateOptions struct {
	// Severities keeps only these severities in the report; empty keeps all.
	Severities []model.Severity
	// IgnoreUnfixed drops vulnerabilities without a known fix.
	IgnoreUnfixed bool
	// Suppress holds ignore-file entries and OpenVEX statements; nil
	// suppresses nothing. Its Now is ignored: Check's time decides expiry.
	Suppress *vex.Rules
	// FailOn fails the gate when anything at or above this severity
	// remains; nil sets no threshold.
	FailOn *model.Severity
	// FailAny fails the gate when anything at all remains (trivy's
	// --exit-code without a threshold).
	FailAny bool
}

// Gate is a compiled CI gate.
type Gate struct {
	opts GateOptions
	keep [model.SeverityCritical + 1]bool
	eval *Evaluator
}

// Verdict is the gate's decision about one scan.
type Verdict struct {
	// Result is the scan as the report shows it: a filtered copy, the
	// input is not modified.
	Result   *model.Result
	Decision Decision
	Failed   bool
	// Reasons say why it failed ("2 vulnerabilities at or above HIGH").
	Reasons []string
	// Warnings are about the suppressions (an expired ignore entry).
	Warnings   []string
	Suppressed int
}

// gateRules names the gate's rules and the words its reasons use for them.
var gateRules = []struct{ rule, noun string }{
	{"vulnerabilities", "vulnerabilities"},
	{"malware", string(model.KindMalware)},
	{"secrets", string(model.KindSecret)},
	{"misconfigurations", string(model.KindMisconfig)},
}

// GatePolicy is the policy the gate enforces: one blocking rule per kind of
// finding at or above FailOn (any severity with FailAny); no rules when the
// gate never fails.
func GatePolicy(o GateOptions) *Policy {
	p := &Policy{APIVersion: APIVersion, Kind: Kind, Name: "ci-gate"}
	if o.FailOn == nil && !o.FailAny {
		return p
	}
	sev := ""
	if o.FailOn != nil {
		sev = o.FailOn.String()
	}
	for _, g := range gateRules {
		r := Rule{Name: g.rule, Action: model.ActionBlock}
		switch g.rule {
		case "vulnerabilities":
			r.Vulnerabilities = &Vulnerabilities{Severity: sev}
		case "malware":
			r.Malware = &Findings{Severity: sev}
		case "secrets":
			r.Secrets = &Findings{Severity: sev}
		case "misconfigurations":
			r.Misconfigurations = &Findings{Severity: sev}
		}
		p.Admission = append(p.Admission, r)
	}
	return p
}

// NewGate compiles the gate.
func NewGate(o GateOptions) (*Gate, error) {
	ev, err := Compile(GatePolicy(o))
	if err != nil {
		return nil, fmt.Errorf("ci gate: %w", err)
	}
	g := &Gate{opts: o, eval: ev}
	if len(o.Severities) == 0 {
		for i := range g.keep {
			g.keep[i] = true
		}
	}
	for _, s := range o.Severities {
		if s >= 0 && int(s) < len(g.keep) {
			g.keep[s] = true
		}
	}
	return g, nil
}

func (g *Gate) kept(s model.Severity) bool { return s >= 0 && int(s) < len(g.keep) && g.keep[s] }

// Check filters res and decides, at time at (ignore-entry expiry).
func (g *Gate) Check(res *model.Result, at time.Time) Verdict {
	// Empty and nil slices stay as they were: the JSON report writes them
	// differently ([] and null), and the report must not change.
	out := *res
	out.Vulnerabilities = nil
	if res.Vulnerabilities != nil {
		out.Vulnerabilities = make([]model.Vulnerability, 0, len(res.Vulnerabilities))
	}
	for _, x := range res.Vulnerabilities {
		if g.opts.IgnoreUnfixed && x.FixedVersion == "" {
			continue
		}
		if !g.kept(x.Severity) {
			continue
		}
		out.Vulnerabilities = append(out.Vulnerabilities, x)
	}
	var v Verdict
	if g.opts.Suppress != nil {
		rules := *g.opts.Suppress
		rules.Now = at
		kept, sup := vex.Filter(out.Vulnerabilities, &rules)
		out.Vulnerabilities = kept
		v.Suppressed = len(sup)
		v.Warnings = append(v.Warnings, rules.Warnings()...)
	}
	out.Findings = nil
	if res.Findings != nil {
		out.Findings = make([]model.Finding, 0, len(res.Findings))
	}
	for _, f := range res.Findings {
		if g.kept(f.Severity) {
			out.Findings = append(out.Findings, f)
		}
	}
	v.Result = &out
	v.Decision = g.eval.Evaluate(&Image{Ref: res.Target.Name, Result: &out}, at)
	v.Failed = v.Decision.Action == model.ActionBlock
	for _, viol := range v.Decision.Violations {
		noun := viol.Rule
		for _, gr := range gateRules {
			if gr.rule == viol.Rule {
				noun = gr.noun
			}
		}
		if g.opts.FailOn != nil {
			v.Reasons = append(v.Reasons, fmt.Sprintf("%d %s at or above %s", viol.Count, noun, *g.opts.FailOn))
		} else {
			v.Reasons = append(v.Reasons, fmt.Sprintf("%d %s", viol.Count, noun))
		}
	}
	return v
}
